//! Build secrets on the daemon side: the values a client sent (`X-Berth-Build-Secrets`) are
//! written, for the time of one build only, into a private directory under the exec root
//! (`<exec-root>/build-secrets/build-<id>/`, mode 0700, one file of mode 0400 per secret,
//! named by number so no id can choose a path), and `RUN --mount=type=secret` binds those
//! files read-only. The directory goes when the build ends, whatever happened; one left by a
//! daemon that died mid-build is swept by the next build. Values are never logged
//! ([`SecretValues`]'s `Debug` shows ids only).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::util::ActivePaths;

pub use berth_build::secrets::{SecretError, HEADER};

/// The secrets of one build request: id → value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretValues(BTreeMap<String, Vec<u8>>);

impl std::fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl SecretValues {
    /// The secrets of an `X-Berth-Build-Secrets` header value.
    pub fn from_header(value: &str) -> Result<Self, SecretError> {
        berth_build::secrets::decode_header(value).map(SecretValues)
    }

    pub fn new(values: BTreeMap<String, Vec<u8>>) -> Self {
        SecretValues(values)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// `<exec-root>/build-secrets`.
fn base_dir(exec_root: &Path) -> PathBuf {
    exec_root.join("build-secrets")
}

/// The secret files of one build; the directory is removed when dropped.
pub(super) struct SecretDir {
    path: PathBuf,
    active: ActivePaths,
    /// Secret id → its file.
    pub files: BTreeMap<String, PathBuf>,
}

impl SecretDir {
    /// Writes `values` into `<exec-root>/build-secrets/<name>/`. An empty set makes no
    /// directory.
    pub fn create(
        exec_root: &Path,
        name: &str,
        values: &SecretValues,
        active: &ActivePaths,
    ) -> std::io::Result<SecretDir> {
        let base = base_dir(exec_root);
        let path = base.join(name);
        let mut dir = SecretDir {
            path: path.clone(),
            active: active.clone(),
            files: BTreeMap::new(),
        };
        if values.is_empty() {
            return Ok(dir);
        }
        active.insert(path.clone());
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&base)?;
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o700))?;
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        for (n, (id, value)) in values.0.iter().enumerate() {
            let file = path.join(n.to_string());
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o400)
                .open(&file)?;
            f.write_all(value)?;
            dir.files.insert(id.clone(), file);
        }
        Ok(dir)
    }
}

impl Drop for SecretDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        self.active.remove(&self.path);
    }
}

/// Removes the secret directories of builds that no longer run (a daemon that died).
pub(super) fn sweep_stale(exec_root: &Path, active: &ActivePaths) {
    let Ok(rd) = std::fs::read_dir(base_dir(exec_root)) else {
        return;
    };
    let stale: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| !active.contains(p))
        .collect();
    for p in stale {
        let _ = std::fs::remove_dir_all(p);
    }
}

/// The file to bind for a secret mount with `mode`, `uid` and `gid`: the build's file itself
/// for the defaults (0400, root), else a copy beside it with that owner and mode.
pub(super) fn file_for_mount(
    secret: &Path,
    mode: u32,
    uid: u32,
    gid: u32,
) -> std::io::Result<PathBuf> {
    if mode == 0o400 && uid == 0 && gid == 0 {
        return Ok(secret.to_path_buf());
    }
    let name = secret.file_name().and_then(|n| n.to_str()).unwrap_or("s");
    let target = secret.with_file_name(format!("{name}-{mode:o}-{uid}-{gid}"));
    if target.exists() {
        return Ok(target);
    }
    let temp = secret.with_file_name(format!("{name}.tmp-{}", crate::util::new_id()));
    let made = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        f.write_all(&std::fs::read(secret)?)?;
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        f.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))?;
        std::fs::rename(&temp, &target)
    })();
    if made.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    made.map(|()| target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn values() -> SecretValues {
        let mut m = BTreeMap::new();
        m.insert("tok".to_string(), b"s3cret".to_vec());
        m.insert("../../etc/evil".to_string(), b"x".to_vec());
        SecretValues::new(m)
    }

    #[test]
    fn files_are_private_and_go_on_drop() {
        let active = ActivePaths::default();
        let root = tempfile::tempdir().unwrap();
        let dir = SecretDir::create(root.path(), "build-1", &values(), &active).unwrap();
        let base = root.path().join("build-secrets");
        let own = base.join("build-1");
        assert_eq!(std::fs::metadata(&base).unwrap().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(&own).unwrap().mode() & 0o777, 0o700);
        let tok = &dir.files["tok"];
        assert_eq!(std::fs::read(tok).unwrap(), b"s3cret");
        assert_eq!(std::fs::metadata(tok).unwrap().mode() & 0o777, 0o400);
        // Ids never choose a path.
        let evil = &dir.files["../../etc/evil"];
        assert_eq!(evil.parent().unwrap(), own);
        drop(dir);
        assert!(!own.exists());
    }

    #[test]
    fn nothing_is_written_without_secrets() {
        let active = ActivePaths::default();
        let root = tempfile::tempdir().unwrap();
        let dir =
            SecretDir::create(root.path(), "build-2", &SecretValues::default(), &active).unwrap();
        assert!(dir.files.is_empty());
        assert!(!root.path().join("build-secrets").exists());
    }

    #[test]
    fn stale_dirs_are_swept_and_active_kept() {
        let active = ActivePaths::default();
        let root = tempfile::tempdir().unwrap();
        let stale = root.path().join("build-secrets/build-old");
        std::fs::create_dir_all(&stale).unwrap();
        let dir = SecretDir::create(root.path(), "build-now", &values(), &active).unwrap();
        sweep_stale(root.path(), &active);
        assert!(!stale.exists());
        assert!(dir.files["tok"].exists());
    }

    #[test]
    fn mount_copies_take_mode_and_owner() {
        let active = ActivePaths::default();
        let root = tempfile::tempdir().unwrap();
        let dir = SecretDir::create(root.path(), "build-3", &values(), &active).unwrap();
        let tok = dir.files["tok"].clone();
        assert_eq!(file_for_mount(&tok, 0o400, 0, 0).unwrap(), tok);
        // Our own ids, so the test needs no root.
        let (uid, gid) = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        let copy = file_for_mount(&tok, 0o444, uid, gid).unwrap();
        assert_ne!(copy, tok);
        let meta = std::fs::metadata(&copy).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o444);
        assert_eq!((meta.uid(), meta.gid()), (uid, gid));
        assert_eq!(std::fs::read(&copy).unwrap(), b"s3cret");
        assert_eq!(file_for_mount(&tok, 0o444, uid, gid).unwrap(), copy);
    }

    #[test]
    fn debug_shows_ids_only() {
        let shown = format!("{:?}", values());
        assert!(shown.contains("tok"));
        assert!(!shown.contains("s3cret"));
    }
}
