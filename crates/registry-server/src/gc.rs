//! Garbage collection (`berth registry gc [--dry-run]`): mark every blob a manifest of any
//! repository references (the manifests themselves, configs, layers), sweep the rest.
//!
//! Safe against a push running at the same time: gc holds the store's gc lock exclusively
//! from mark to sweep, and the server takes it shared around every step that makes a blob
//! referenced (completing an upload, mounting, accepting a manifest), so no reference appears
//! between the mark and the sweep. A blob pushed but not yet referenced (its manifest comes
//! next) is protected by the grace period: blobs modified more recently than that (uploads
//! and re-uploads, mounts and `HEAD`s refresh the time) are kept.
//!
//! Upload sessions nobody has written to for longer than the upload age limit are abandoned
//! and removed too (an upload in progress writes its data file, which keeps it young), as are
//! temporary files older than the grace period (left by a killed server).

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::digest::Digest;
use crate::manifest;
use crate::storage::Store;

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("manifest {digest} of {repo} cannot be read ({why}); nothing deleted")]
    Manifest {
        repo: String,
        digest: Digest,
        why: String,
    },
}

/// What a run found (and, unless dry, removed).
#[derive(Debug, Default)]
pub struct GcReport {
    pub marked: usize,
    pub swept: Vec<(Digest, u64)>,
    pub kept_young: usize,
    /// Abandoned upload sessions (and stale temporary files) removed, or listed on a dry run.
    pub stale_uploads: Vec<String>,
}

fn blob_files(store: &Store) -> std::io::Result<Vec<(Digest, PathBuf)>> {
    let mut out = Vec::new();
    let base = store.root().join("blobs");
    for alg in ["sha256", "sha512"] {
        let Ok(prefixes) = std::fs::read_dir(base.join(alg)) else {
            continue;
        };
        for p in prefixes {
            for e in std::fs::read_dir(p?.path())? {
                let e = e?;
                let name = e.file_name().to_string_lossy().into_owned();
                if let Ok(d) = Digest::parse(&format!("{alg}:{name}")) {
                    out.push((d, e.path()));
                }
            }
        }
    }
    Ok(out)
}

fn older_than(path: &std::path::Path, now: SystemTime, age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map(|t| now.duration_since(t).unwrap_or(Duration::ZERO) >= age)
        .unwrap_or(false)
}

/// Abandoned uploads (no write for `max_age`) and temporary files older than `grace`.
fn stale_uploads(
    store: &Store,
    now: SystemTime,
    max_age: Duration,
    grace: Duration,
    dry_run: bool,
) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(store.uploads_dir())? {
        let e = e?;
        let id = e.file_name().to_string_lossy().into_owned();
        let data = e.path().join("data");
        let probe = if data.exists() { data } else { e.path() };
        if older_than(&probe, now, max_age) {
            if !dry_run {
                std::fs::remove_dir_all(e.path())?;
            }
            out.push(format!("upload {id}"));
        }
    }
    for e in std::fs::read_dir(store.tmp_dir())? {
        let e = e?;
        if older_than(&e.path(), now, grace.max(Duration::from_secs(60))) {
            if !dry_run {
                std::fs::remove_file(e.path())?;
            }
            out.push(format!(
                "temporary file {}",
                e.file_name().to_string_lossy()
            ));
        }
    }
    Ok(out)
}

/// Runs gc over `store`; with `dry_run` nothing is removed.
pub fn collect(store: &Store, dry_run: bool, grace: Duration) -> Result<GcReport, GcError> {
    collect_with(store, dry_run, grace, DEFAULT_UPLOAD_MAX_AGE)
}

/// How long an upload may sit unwritten before gc removes it.
pub const DEFAULT_UPLOAD_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// [`collect`] with an upload age limit.
pub fn collect_with(
    store: &Store,
    dry_run: bool,
    grace: Duration,
    upload_max_age: Duration,
) -> Result<GcReport, GcError> {
    let _lock = store.gc_lock(true)?;
    let started = SystemTime::now();
    let mut marked: HashSet<Digest> = HashSet::new();
    let repos = store.catalog()?;
    for repo in &repos {
        for d in store.list_revisions(repo)? {
            let Some((mt, data)) = store.get_manifest(repo, &d)? else {
                continue;
            };
            let m = manifest::parse(&data, Some(&mt)).map_err(|e| GcError::Manifest {
                repo: repo.clone(),
                digest: d.clone(),
                why: e.message,
            })?;
            marked.insert(d);
            marked.extend(m.blobs);
        }
    }
    let mut report = GcReport {
        marked: marked.len(),
        ..GcReport::default()
    };
    for (d, path) in blob_files(store)? {
        if marked.contains(&d) {
            continue;
        }
        let meta = std::fs::metadata(&path)?;
        let age = started
            .duration_since(meta.modified()?)
            .unwrap_or(Duration::ZERO);
        if age < grace {
            report.kept_young += 1;
            continue;
        }
        if !dry_run {
            std::fs::remove_file(&path)?;
        }
        report.swept.push((d, meta.len()));
    }
    if !dry_run {
        // Links to swept blobs go too, so a repository does not claim what is gone.
        for repo in &repos {
            for (d, _) in &report.swept {
                let _ = store.unlink_blob_link_only(repo, d);
            }
        }
    }
    report.stale_uploads = stale_uploads(store, started, upload_max_age, grace, dry_run)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_for(config: &Digest, layer: &Digest) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 1},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": 1}]
        }))
        .unwrap()
    }

    #[test]
    fn sweeps_only_the_unreferenced_and_old() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let blob = |b: &[u8]| {
            let d = Digest::sha256_of(b);
            s.put_blob_bytes(&d, b).unwrap();
            s.link_blob("r", &d).unwrap();
            d
        };
        let (c, l, orphan) = (blob(b"c"), blob(b"l"), blob(b"orphan"));
        let m = manifest_for(&c, &l);
        let md = Digest::sha256_of(&m);
        s.put_manifest("r", &md, manifest::OCI_MANIFEST, &m)
            .unwrap();

        let r = collect(&s, false, Duration::from_secs(3600)).unwrap();
        assert!(
            r.swept.is_empty(),
            "young orphans are kept (a push may be running)"
        );
        assert_eq!(r.kept_young, 1);

        let r = collect(&s, true, Duration::ZERO).unwrap();
        assert_eq!(r.swept.len(), 1);
        assert!(
            s.blob_size(&orphan).unwrap().is_some(),
            "dry run removes nothing"
        );

        let r = collect(&s, false, Duration::ZERO).unwrap();
        assert_eq!(r.swept, vec![(orphan.clone(), 6)]);
        assert!(s.blob_size(&orphan).unwrap().is_none());
        assert!(s.repo_blob_size("r", &orphan).unwrap().is_none());
        for d in [&c, &l, &md] {
            assert!(s.blob_size(d).unwrap().is_some(), "{d} is referenced");
        }
        s.delete_manifest("r", &md).unwrap();
        let r = collect(&s, false, Duration::ZERO).unwrap();
        assert_eq!(
            r.swept.len(),
            3,
            "the manifest and its blobs once it is deleted"
        );
    }

    #[tokio::test]
    async fn removes_abandoned_uploads_only() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let u = crate::uploads::Uploads::new(s.clone());
        let id = u.create("r").await.unwrap();
        let r = collect_with(&s, false, Duration::ZERO, Duration::from_secs(3600)).unwrap();
        assert!(r.stale_uploads.is_empty(), "a young upload is kept");
        let r = collect_with(&s, true, Duration::ZERO, Duration::ZERO).unwrap();
        assert_eq!(r.stale_uploads, vec![format!("upload {id}")]);
        assert!(u.size("r", &id).await.is_ok(), "dry run");
        collect_with(&s, false, Duration::ZERO, Duration::ZERO).unwrap();
        assert!(u.size("r", &id).await.is_err());
    }
}
