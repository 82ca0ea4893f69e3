//! Filesystem and path helpers for layer directories, shared with the rest of the crate:
//! tar-path cleaning (no climbing above the root), `lsetxattr`, and removal of entries and
//! trees that may hold read-only directories.

use std::ffi::CString;
use std::fs::{self, Permissions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Splits a tar path into its components, dropping a leading `/`, `.` and empty components and
/// resolving `..`; `None` when `..` would climb above the root.
pub(crate) fn clean_path(raw: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop()?;
            }
            c => out.push(c.to_vec()),
        }
    }
    Some(out)
}

/// Sets an xattr on `path` without following a final symlink.
pub(crate) fn lsetxattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let p = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let n = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    berth_sys::file::lsetxattr(&p, &n, value)
}

/// Removes whatever is at `path` (a directory recursively).
pub(crate) fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => remove_tree(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes a directory tree, making directories writable when a plain removal is refused (an
/// unprivileged user cannot otherwise delete inside a 0555 directory).
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(first) => {
            fn chmod_dirs(p: &Path) {
                if let Ok(m) = fs::symlink_metadata(p) {
                    if m.is_dir() {
                        let _ = fs::set_permissions(p, Permissions::from_mode(0o700));
                        if let Ok(rd) = fs::read_dir(p) {
                            for e in rd.flatten() {
                                chmod_dirs(&e.path());
                            }
                        }
                    }
                }
            }
            chmod_dirs(path);
            fs::remove_dir_all(path).map_err(|_| first)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_cases() {
        assert_eq!(
            clean_path(b"/a//./b/"),
            Some(vec![b"a".to_vec(), b"b".to_vec()])
        );
        assert_eq!(clean_path(b"a/.."), Some(vec![]));
        assert_eq!(clean_path(b"../a"), None);
    }
}
