//! Single-name system calls relative to a directory descriptor that never follow a final
//! symbolic link: the steps of every walk that must stay inside a tree (copy-up, archives).

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// `name` as a C string (`InvalidInput` when it holds a NUL).
pub fn cstring(name: impl AsRef<[u8]>) -> io::Result<CString> {
    CString::new(name.as_ref()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC)`.
pub fn openat_nofollow(dirfd: RawFd, name: impl AsRef<[u8]>, flags: i32) -> io::Result<OwnedFd> {
    create_at(dirfd, name, flags, 0)
}

/// `openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC, mode)`: with `O_CREAT`, `mode` is the
/// new file's mode (before the umask).
pub fn create_at(
    dirfd: RawFd,
    name: impl AsRef<[u8]>,
    flags: i32,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    let n = cstring(name)?;
    // SAFETY: `n` is a valid C string alive for the call; the mode is passed as the variadic
    // argument openat expects.
    let fd = unsafe {
        libc::openat(
            dirfd,
            n.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The target of symlink `name` in `dirfd`.
pub fn readlinkat(dirfd: RawFd, name: impl AsRef<[u8]>) -> io::Result<Vec<u8>> {
    let n = cstring(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: `buf` is writable for its length; `n` a valid C string.
    let len = unsafe { libc::readlinkat(dirfd, n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if len < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(len as usize);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_final_link_is_not_followed() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), "x").unwrap();
        std::os::unix::fs::symlink("f", t.path().join("l")).unwrap();
        let d: OwnedFd = std::fs::File::open(t.path()).unwrap().into();
        assert!(openat_nofollow(d.as_raw_fd(), "f", libc::O_RDONLY).is_ok());
        let e = openat_nofollow(d.as_raw_fd(), "l", libc::O_RDONLY).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        assert_eq!(readlinkat(d.as_raw_fd(), "l").unwrap(), b"f");
        assert!(openat_nofollow(d.as_raw_fd(), "a\0b", 0).is_err());
        let c = create_at(d.as_raw_fd(), "new", libc::O_WRONLY | libc::O_CREAT, 0o600).unwrap();
        drop(c);
        assert!(t.path().join("new").exists());
    }
}
