//! Unix socket paths that fit `sun_path` (108 bytes) however deep the state directory lies.
//!
//! A socket under a long exec root (`/tmp/some/deep/dir/exec/shims/exec-<64 hex>/shim.sock`)
//! cannot be bound or connected by its full name. [`SocketPath`] keeps such a directory open
//! (`O_PATH`) and names the socket through `/proc/self/fd/N/NAME` instead; short paths are
//! used as they are.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The longest path `bind(2)` and `connect(2)` take (`sun_path` less its terminating NUL).
pub const SUN_PATH_MAX: usize = 107;

/// A socket's name in a directory, short enough to bind or connect; holds the directory open
/// while the name is in use.
#[derive(Debug)]
pub struct SocketPath {
    path: PathBuf,
    dir: Option<File>,
}

impl SocketPath {
    /// The name of `name` in `dir`: the plain path when it fits, else a path through a
    /// descriptor of `dir` held by this value.
    pub fn new(dir: &Path, name: &str) -> io::Result<SocketPath> {
        let full = dir.join(name);
        if full.as_os_str().len() <= SUN_PATH_MAX {
            return Ok(SocketPath {
                path: full,
                dir: None,
            });
        }
        let handle = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(dir)?;
        let path = PathBuf::from(format!("/proc/self/fd/{}/{name}", handle.as_raw_fd()));
        Ok(SocketPath {
            path,
            dir: Some(handle),
        })
    }

    /// The path this process binds, connects or removes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path another process (a child such as the OCI runtime) uses to reach the same
    /// socket while this one lives.
    pub fn path_for_others(&self) -> PathBuf {
        match &self.dir {
            None => self.path.clone(),
            Some(d) => {
                let name = self.path.file_name().unwrap_or_default();
                PathBuf::from(format!("/proc/{}/fd/{}", std::process::id(), d.as_raw_fd()))
                    .join(name)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::{UnixListener, UnixStream};

    #[test]
    fn a_short_path_is_used_as_it_is() {
        let s = SocketPath::new(Path::new("/run/berth/shims/abc"), "shim.sock").unwrap();
        assert_eq!(s.path(), Path::new("/run/berth/shims/abc/shim.sock"));
        assert_eq!(s.path_for_others(), s.path());
    }

    #[test]
    fn a_socket_deeper_than_sun_path_binds_and_connects() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        assert!(
            UnixListener::bind(deep.join("s.sock")).is_err(),
            "plain bind should fail"
        );

        let bound = SocketPath::new(&deep, "s.sock").unwrap();
        assert!(bound.path().as_os_str().len() <= SUN_PATH_MAX);
        let listener = UnixListener::bind(bound.path()).unwrap();
        assert!(
            deep.join("s.sock").exists(),
            "the socket is made in the deep directory"
        );

        let peer = SocketPath::new(&deep, "s.sock").unwrap();
        UnixStream::connect(peer.path()).unwrap();
        UnixStream::connect(bound.path_for_others()).unwrap();
        let (_conn, _) = listener.accept().unwrap();
    }
}
