//! Atomic file replacement with an explicit durability promise.
//!
//! Every record berth keeps is replaced the same way: the new content goes to a temporary file
//! beside the target, which is renamed over it, so readers see the old or the new content and
//! never a mix. Whether the content must also survive a host crash is each call site's
//! decision, stated with [`Durability`]: image content, layer metadata, network definitions,
//! volume records and the records of containers that are not `--rm` are durable; the runtime's
//! `state.json`, the shim's `exit.json`, network endpoint changes and `--rm` records are not
//! (a host crash makes them meaningless anyway).

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What [`write_atomic`] promises once it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Readers see the old or the new content, never a mix; a host crash may bring back the
    /// old content (no fsync).
    Atomic,
    /// As `Atomic`, and the new content survives a host crash (the file and its directory are
    /// fsynced).
    Durable,
}

/// A temporary name beside `path` that no concurrent writer (thread or process) shares.
fn temp_beside(path: &Path) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Replaces `path` with `data` atomically (temporary file, rename), with the file mode 0644
/// before the umask; with [`Durability::Durable`] the file is fsynced before the rename and the
/// directory after it. The temporary file is removed on failure.
pub fn write_atomic(path: &Path, data: &[u8], durability: Durability) -> io::Result<()> {
    write_atomic_mode(path, data, 0o644, durability)
}

/// [`write_atomic`] with the new file's `mode` (before the umask).
pub fn write_atomic_mode(
    path: &Path,
    data: &[u8],
    mode: u32,
    durability: Durability,
) -> io::Result<()> {
    let tmp = temp_beside(path);
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        if durability == Durability::Durable {
            f.sync_all()?;
        }
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if durability == Durability::Durable {
        sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    }
    Ok(())
}

/// fsyncs directory `dir`, so that renames and creations in it survive a host crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_leaves_no_temporary_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.json");
        write_atomic(&p, b"one", Durability::Durable).unwrap();
        write_atomic(&p, b"two", Durability::Atomic).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn concurrent_writers_of_one_file_all_succeed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::thread::scope(|s| {
            for i in 0..8 {
                let p = &p;
                s.spawn(move || {
                    for _ in 0..20 {
                        write_atomic(p, format!("{i}").as_bytes(), Durability::Atomic).unwrap();
                    }
                });
            }
        });
        let v: u32 = std::fs::read_to_string(&p).unwrap().parse().unwrap();
        assert!(v < 8);
    }

    #[test]
    fn failure_cleans_up_and_keeps_the_old_content() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("dir");
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("x"), "x").unwrap();
        // Renaming a file over a non-empty directory fails.
        assert!(write_atomic(&p, b"data", Durability::Durable).is_err());
        assert!(p.is_dir());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn mode_is_applied() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("secret");
        write_atomic_mode(&p, b"s", 0o600, Durability::Atomic).unwrap();
        let m = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(m & 0o077, 0);
    }

    #[test]
    fn missing_directory_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("no/such/f");
        let e = write_atomic(&p, b"x", Durability::Atomic).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
