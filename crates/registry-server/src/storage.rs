//! The content-addressed filesystem store (all calls block; the server runs them on the
//! blocking pool).
//!
//! ```text
//! ROOT/blobs/<alg>/<2 hex>/<hex>                        content, shared by every repository
//! ROOT/repositories/<name>/_layers/<alg>/<hex>          the blob belongs to <name> (empty file)
//! ROOT/repositories/<name>/_manifests/revisions/<alg>/<hex>   a manifest of <name>; holds its media type
//! ROOT/repositories/<name>/_manifests/tags/<tag>        holds the tagged manifest's digest
//! ROOT/repositories/<name>/_referrers/<alg>/<subject hex>/<alg>-<hex>  a referrer's descriptor (JSON)
//! ROOT/uploads/<id>/{data,repository}                   an upload in progress (see `uploads`)
//! ROOT/tmp/                                             files being written, renamed into place
//! ROOT/gc.lock                                          gc holds it exclusively, writers shared
//! ```
//!
//! Every file appears by rename of a complete, fsynced temporary file, so a reader (or a
//! restart after SIGKILL) sees the old state or the new one, never a partial file. Repository
//! names and tags are validated (`names`) before they become paths; `_` cannot start a
//! component of a valid name, so the `_layers`/`_manifests`/`_referrers` directories cannot
//! collide with a repository.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::digest::{Algorithm, Digest};

/// The store under one root directory.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

fn not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

/// Reads a small file; `None` when it does not exist.
fn read_opt(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(d) => Ok(Some(d)),
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes a file; `false` when it was not there.
fn remove_opt(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if not_found(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// fsyncs a directory so a rename or unlink in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Store {
    /// Opens (creating) the store at `root`.
    pub fn open(root: &Path) -> io::Result<Store> {
        for d in ["blobs", "repositories", "uploads", "tmp"] {
            fs::create_dir_all(root.join(d))?;
        }
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn uploads_dir(&self) -> PathBuf {
        self.root.join("uploads")
    }

    pub fn repositories_dir(&self) -> PathBuf {
        self.root.join("repositories")
    }

    /// A fresh temporary file name under ROOT/tmp.
    pub fn tmp_path(&self) -> PathBuf {
        self.tmp_dir()
            .join(format!("{:032x}", rand::random::<u128>()))
    }

    /// Writes `data` to `path` atomically: temp file, fsync, rename, fsync of the directory.
    pub fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let dir = path.parent().ok_or_else(|| io::Error::other("no parent"))?;
        fs::create_dir_all(dir)?;
        let tmp = self.tmp_path();
        let r = (|| {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            fs::rename(&tmp, path)?;
            sync_dir(dir)
        })();
        if r.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        r
    }

    /// Takes the gc lock: shared for writers, exclusive for gc. Blocks until granted.
    pub fn gc_lock(&self, exclusive: bool) -> io::Result<Flock<File>> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join("gc.lock"))?;
        let arg = if exclusive {
            FlockArg::LockExclusive
        } else {
            FlockArg::LockShared
        };
        Flock::lock(f, arg).map_err(|(_, e)| io::Error::from(e))
    }

    // ---- blobs ----

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(d.algorithm().name())
            .join(&d.hex()[..2])
            .join(d.hex())
    }

    /// The blob's size, if it is stored.
    pub fn blob_size(&self, d: &Digest) -> io::Result<Option<u64>> {
        match fs::metadata(self.blob_path(d)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores `data` (whose digest the caller computed) unless it is already there.
    pub fn put_blob_bytes(&self, d: &Digest, data: &[u8]) -> io::Result<()> {
        let path = self.blob_path(d);
        if path.exists() {
            return Ok(());
        }
        self.atomic_write(&path, data)
    }

    /// Moves a complete, fsynced, verified file into the store as blob `d`.
    pub fn commit_blob_file(&self, d: &Digest, file: &Path) -> io::Result<()> {
        let path = self.blob_path(d);
        let dir = path.parent().ok_or_else(|| io::Error::other("no parent"))?;
        fs::create_dir_all(dir)?;
        fs::rename(file, &path)?;
        sync_dir(dir)
    }

    /// Marks a blob as recently used (gc keeps blobs younger than its grace period).
    pub fn touch_blob(&self, d: &Digest) {
        let _ = nix::sys::stat::utimensat(
            None,
            &self.blob_path(d),
            &nix::sys::time::TimeSpec::UTIME_NOW,
            &nix::sys::time::TimeSpec::UTIME_NOW,
            nix::sys::stat::UtimensatFlags::FollowSymlink,
        );
    }

    fn repo_dir(&self, repo: &str) -> PathBuf {
        self.root.join("repositories").join(repo)
    }

    fn layer_link(&self, repo: &str, d: &Digest) -> PathBuf {
        self.repo_dir(repo)
            .join("_layers")
            .join(d.algorithm().name())
            .join(d.hex())
    }

    /// Links blob `d` into `repo`.
    pub fn link_blob(&self, repo: &str, d: &Digest) -> io::Result<()> {
        let link = self.layer_link(repo, d);
        if link.exists() {
            return Ok(());
        }
        self.atomic_write(&link, b"")
    }

    /// The blob's size when `repo` holds it (linked and stored).
    pub fn repo_blob_size(&self, repo: &str, d: &Digest) -> io::Result<Option<u64>> {
        if !self.layer_link(repo, d).exists() {
            return Ok(None);
        }
        self.blob_size(d)
    }

    /// Unlinks blob `d` from `repo`; `false` when `repo` did not hold it. The content stays
    /// until gc finds nothing referencing it.
    pub fn unlink_blob(&self, repo: &str, d: &Digest) -> io::Result<bool> {
        if self.repo_blob_size(repo, d)?.is_none() {
            return Ok(false);
        }
        remove_opt(&self.layer_link(repo, d))
    }

    /// Removes `repo`'s link to `d` whether or not the blob is stored (gc's cleanup).
    pub fn unlink_blob_link_only(&self, repo: &str, d: &Digest) -> io::Result<bool> {
        remove_opt(&self.layer_link(repo, d))
    }

    // ---- manifests and tags ----

    fn revision_path(&self, repo: &str, d: &Digest) -> PathBuf {
        self.repo_dir(repo)
            .join("_manifests/revisions")
            .join(d.algorithm().name())
            .join(d.hex())
    }

    fn tags_dir(&self, repo: &str) -> PathBuf {
        self.repo_dir(repo).join("_manifests/tags")
    }

    /// Whether the repository exists (anything was ever pushed to it and not removed).
    pub fn repo_exists(&self, repo: &str) -> bool {
        self.repo_dir(repo).join("_manifests").is_dir()
            || self.repo_dir(repo).join("_layers").is_dir()
    }

    /// Stores a manifest's bytes and records it as a revision of `repo` with its media type.
    pub fn put_manifest(
        &self,
        repo: &str,
        d: &Digest,
        media_type: &str,
        data: &[u8],
    ) -> io::Result<()> {
        self.put_blob_bytes(d, data)?;
        self.touch_blob(d);
        self.atomic_write(&self.revision_path(repo, d), media_type.as_bytes())
    }

    /// A manifest of `repo`: its media type and bytes.
    pub fn get_manifest(&self, repo: &str, d: &Digest) -> io::Result<Option<(String, Vec<u8>)>> {
        let Some(mt) = read_opt(&self.revision_path(repo, d))? else {
            return Ok(None);
        };
        let Some(data) = read_opt(&self.blob_path(d))? else {
            return Ok(None);
        };
        Ok(Some((String::from_utf8_lossy(&mt).into_owned(), data)))
    }

    pub fn has_manifest(&self, repo: &str, d: &Digest) -> bool {
        self.revision_path(repo, d).exists() && self.blob_path(d).exists()
    }

    /// Points `tag` at manifest `d`.
    pub fn put_tag(&self, repo: &str, tag: &str, d: &Digest) -> io::Result<()> {
        self.atomic_write(&self.tags_dir(repo).join(tag), d.to_string().as_bytes())
    }

    /// The digest a tag points at.
    pub fn resolve_tag(&self, repo: &str, tag: &str) -> io::Result<Option<Digest>> {
        let Some(data) = read_opt(&self.tags_dir(repo).join(tag))? else {
            return Ok(None);
        };
        let s = String::from_utf8_lossy(&data);
        Digest::parse(s.trim())
            .map(Some)
            .map_err(|e| io::Error::other(format!("tag {repo}:{tag}: {e}")))
    }

    pub fn delete_tag(&self, repo: &str, tag: &str) -> io::Result<bool> {
        remove_opt(&self.tags_dir(repo).join(tag))
    }

    /// Every tag of `repo`, sorted; `None` when the repository does not exist.
    pub fn list_tags(&self, repo: &str) -> io::Result<Option<Vec<String>>> {
        if !self.repo_exists(repo) {
            return Ok(None);
        }
        let mut tags = Vec::new();
        match fs::read_dir(self.tags_dir(repo)) {
            Ok(rd) => {
                for e in rd {
                    let name = e?.file_name().to_string_lossy().into_owned();
                    if crate::names::valid_tag(&name) {
                        tags.push(name);
                    }
                }
            }
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(e),
        }
        tags.sort();
        Ok(Some(tags))
    }

    /// Removes manifest `d` from `repo` with every tag pointing at it; `false` when it was not
    /// there. Referrer entries are the caller's (it knows the subject).
    pub fn delete_manifest(&self, repo: &str, d: &Digest) -> io::Result<bool> {
        if !self.revision_path(repo, d).exists() {
            return Ok(false);
        }
        if let Some(tags) = self.list_tags(repo)? {
            for t in tags {
                if self.resolve_tag(repo, &t)?.as_ref() == Some(d) {
                    self.delete_tag(repo, &t)?;
                }
            }
        }
        remove_opt(&self.revision_path(repo, d))
    }

    /// Every manifest digest of `repo`.
    pub fn list_revisions(&self, repo: &str) -> io::Result<Vec<Digest>> {
        let mut out = Vec::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self
                .repo_dir(repo)
                .join("_manifests/revisions")
                .join(alg.name());
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if not_found(&e) => continue,
                Err(e) => return Err(e),
            };
            for e in rd {
                let name = e?.file_name().to_string_lossy().into_owned();
                if let Ok(d) = Digest::parse(&format!("{}:{name}", alg.name())) {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    /// Every repository name, sorted.
    pub fn catalog(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        let base = self.repositories_dir();
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if not_found(&e) => continue,
                Err(e) => return Err(e),
            };
            let mut is_repo = false;
            for e in rd {
                let e = e?;
                let name = e.file_name().to_string_lossy().into_owned();
                if name == "_manifests" || name == "_layers" {
                    is_repo = true;
                } else if !name.starts_with('_') && e.file_type()?.is_dir() {
                    stack.push(e.path());
                }
            }
            if is_repo {
                if let Ok(rel) = dir.strip_prefix(&base) {
                    let name = rel.to_string_lossy().into_owned();
                    if crate::names::valid_repository(&name) {
                        out.push(name);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    // ---- referrers ----

    fn referrer_path(&self, repo: &str, subject: &Digest, referrer: &Digest) -> PathBuf {
        self.referrers_dir(repo, subject).join(format!(
            "{}-{}",
            referrer.algorithm().name(),
            referrer.hex()
        ))
    }

    fn referrers_dir(&self, repo: &str, subject: &Digest) -> PathBuf {
        self.repo_dir(repo)
            .join("_referrers")
            .join(subject.algorithm().name())
            .join(subject.hex())
    }

    /// Records `referrer` (described by `descriptor`) as pointing at `subject`.
    pub fn add_referrer(
        &self,
        repo: &str,
        subject: &Digest,
        referrer: &Digest,
        descriptor: &serde_json::Value,
    ) -> io::Result<()> {
        let data = serde_json::to_vec(descriptor).map_err(io::Error::other)?;
        self.atomic_write(&self.referrer_path(repo, subject, referrer), &data)
    }

    pub fn remove_referrer(
        &self,
        repo: &str,
        subject: &Digest,
        referrer: &Digest,
    ) -> io::Result<()> {
        remove_opt(&self.referrer_path(repo, subject, referrer)).map(|_| ())
    }

    /// The descriptors of the manifests of `repo` whose subject is `subject`, sorted by digest.
    pub fn list_referrers(
        &self,
        repo: &str,
        subject: &Digest,
    ) -> io::Result<Vec<serde_json::Value>> {
        let dir = self.referrers_dir(repo, subject);
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut names: Vec<String> = Vec::new();
        for e in rd {
            names.push(e?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        let mut out = Vec::new();
        for name in names {
            let Some((alg, hex)) = name.split_once('-') else {
                continue;
            };
            let Ok(d) = Digest::parse(&format!("{alg}:{hex}")) else {
                continue;
            };
            if !self.has_manifest(repo, &d) {
                continue;
            }
            if let Some(data) = read_opt(&dir.join(&name))? {
                if let Ok(v) = serde_json::from_slice(&data) {
                    out.push(v);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_links_manifests_tags() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let d = Digest::sha256_of(b"hello");
        assert_eq!(s.repo_blob_size("a/b", &d).unwrap(), None);
        s.put_blob_bytes(&d, b"hello").unwrap();
        assert_eq!(s.repo_blob_size("a/b", &d).unwrap(), None, "not linked yet");
        s.link_blob("a/b", &d).unwrap();
        assert_eq!(s.repo_blob_size("a/b", &d).unwrap(), Some(5));
        assert_eq!(s.repo_blob_size("c", &d).unwrap(), None, "per repository");
        let m = Digest::sha256_of(b"{}");
        s.put_manifest("a/b", &m, "application/x", b"{}").unwrap();
        s.put_tag("a/b", "v1", &m).unwrap();
        s.put_tag("a/b", "V0", &m).unwrap();
        assert_eq!(s.list_tags("a/b").unwrap().unwrap(), vec!["V0", "v1"]);
        assert_eq!(s.list_tags("zz").unwrap(), None);
        assert_eq!(s.catalog().unwrap(), vec!["a/b"]);
        assert_eq!(s.resolve_tag("a/b", "v1").unwrap(), Some(m.clone()));
        assert!(s.delete_manifest("a/b", &m).unwrap());
        assert_eq!(s.list_tags("a/b").unwrap().unwrap(), Vec::<String>::new());
        assert!(!s.has_manifest("a/b", &m));
        assert!(s.unlink_blob("a/b", &d).unwrap());
        assert!(!s.unlink_blob("a/b", &d).unwrap());
        assert!(
            fs::read_dir(s.tmp_dir()).unwrap().next().is_none(),
            "no temp files left"
        );
    }

    #[test]
    fn referrers_follow_their_manifests() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let subject = Digest::sha256_of(b"subject");
        let r = Digest::sha256_of(b"ref");
        s.put_manifest("r", &r, "application/x", b"ref").unwrap();
        s.add_referrer(
            "r",
            &subject,
            &r,
            &serde_json::json!({"digest": r.to_string()}),
        )
        .unwrap();
        assert_eq!(s.list_referrers("r", &subject).unwrap().len(), 1);
        s.delete_manifest("r", &r).unwrap();
        assert!(s.list_referrers("r", &subject).unwrap().is_empty());
    }
}
