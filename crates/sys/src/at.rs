//! Single-name system calls relative to a directory descriptor that never follow a final
//! symbolic link: the steps of every walk that must stay inside a tree (copy-up, archives).
//!
//! Each function makes one system call and reports a failure as the `errno` in an
//! [`io::Error`] (a name holding a NUL is `InvalidInput`, before any call); what a failure
//! means is left to the caller. The `*_pinned` functions act on the inode that a descriptor
//! (`O_PATH` ones included) refers to, through its `/proc/self/fd` magic link, never through a
//! path that could be swapped meanwhile.

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

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `mkdirat(dirfd, name, mode)`: a new directory `name` in `dirfd` (`EEXIST` when anything,
/// a symlink included, is there already); `mode` before the umask.
pub fn mkdirat(dirfd: RawFd, name: impl AsRef<[u8]>, mode: libc::mode_t) -> io::Result<()> {
    let n = cstring(name)?;
    // SAFETY: `n` is a valid C string alive for the call; mkdirat touches no other memory of
    // this process.
    check(unsafe { libc::mkdirat(dirfd, n.as_ptr(), mode) })
}

/// `symlinkat(target, dirfd, name)`: a new symbolic link `name` in `dirfd` pointing at
/// `target` (never followed; `EEXIST` when `name` exists).
pub fn symlinkat(target: impl AsRef<[u8]>, dirfd: RawFd, name: impl AsRef<[u8]>) -> io::Result<()> {
    let t = cstring(target)?;
    let n = cstring(name)?;
    // SAFETY: `t` and `n` are valid C strings alive for the call; symlinkat only reads them.
    check(unsafe { libc::symlinkat(t.as_ptr(), dirfd, n.as_ptr()) })
}

/// `linkat(olddirfd, oldname, newdirfd, newname, 0)`: a hard link `newname` in `newdirfd` to
/// `oldname` in `olddirfd`. Without `AT_SYMLINK_FOLLOW`, a symbolic link `oldname` is linked
/// itself, never its target.
pub fn linkat(
    olddirfd: RawFd,
    oldname: impl AsRef<[u8]>,
    newdirfd: RawFd,
    newname: impl AsRef<[u8]>,
) -> io::Result<()> {
    let o = cstring(oldname)?;
    let n = cstring(newname)?;
    // SAFETY: `o` and `n` are valid C strings alive for the call; linkat only reads them.
    check(unsafe { libc::linkat(olddirfd, o.as_ptr(), newdirfd, n.as_ptr(), 0) })
}

/// `mknodat(dirfd, name, mode, dev)`: a new device node, FIFO or socket `name` in `dirfd`;
/// `mode` holds the type bits (`S_IFCHR`, `S_IFBLK`, `S_IFIFO`, …) and the permissions
/// (before the umask). A final symlink is never followed (`EEXIST`).
pub fn mknodat(
    dirfd: RawFd,
    name: impl AsRef<[u8]>,
    mode: libc::mode_t,
    dev: libc::dev_t,
) -> io::Result<()> {
    let n = cstring(name)?;
    // SAFETY: `n` is a valid C string alive for the call; mknodat only reads it.
    check(unsafe { libc::mknodat(dirfd, n.as_ptr(), mode, dev) })
}

/// `unlinkat(dirfd, name, flags)`: removes `name` in `dirfd` (an empty directory with
/// `AT_REMOVEDIR`); a symbolic link is removed itself.
pub fn unlinkat(dirfd: RawFd, name: impl AsRef<[u8]>, flags: i32) -> io::Result<()> {
    let n = cstring(name)?;
    // SAFETY: `n` is a valid C string alive for the call; unlinkat only reads it.
    check(unsafe { libc::unlinkat(dirfd, n.as_ptr(), flags) })
}

/// `fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW)`: sets the owner of `name` in
/// `dirfd`, of a final symbolic link itself.
pub fn fchownat_nofollow(
    dirfd: RawFd,
    name: impl AsRef<[u8]>,
    uid: libc::uid_t,
    gid: libc::gid_t,
) -> io::Result<()> {
    let n = cstring(name)?;
    // SAFETY: `n` is a valid C string alive for the call; fchownat only reads it.
    check(unsafe { libc::fchownat(dirfd, n.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) })
}

/// `utimensat(dirfd, name, times, AT_SYMLINK_NOFOLLOW)`: sets the access (`times[0]`) and
/// modification (`times[1]`) times of `name` in `dirfd`, of a final symbolic link itself.
pub fn utimensat_nofollow(
    dirfd: RawFd,
    name: impl AsRef<[u8]>,
    times: &[libc::timespec; 2],
) -> io::Result<()> {
    let n = cstring(name)?;
    // SAFETY: `n` is a valid C string and `times` points at the two timespecs utimensat
    // reads, both alive for the call.
    check(unsafe { libc::utimensat(dirfd, n.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })
}

/// `futimens(fd, times)`: sets the access (`times[0]`) and modification (`times[1]`) times of
/// the file open as `fd`.
pub fn futimens(fd: RawFd, times: &[libc::timespec; 2]) -> io::Result<()> {
    // SAFETY: `times` points at the two timespecs futimens reads, alive for the call; `fd` is
    // only an integer to the kernel.
    check(unsafe { libc::futimens(fd, times.as_ptr()) })
}

/// `fchmod(fd, mode)`: sets the permission bits of the file open as `fd`.
pub fn fchmod(fd: RawFd, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: fchmod takes only integers and touches no memory of this process.
    check(unsafe { libc::fchmod(fd, mode) })
}

/// `/proc/self/fd/<fd>`: the magic link to exactly the inode `fd` refers to.
fn proc_fd(fd: RawFd) -> io::Result<CString> {
    cstring(format!("/proc/self/fd/{fd}"))
}

/// `chown("/proc/self/fd/<pinned>", uid, gid)`: sets the owner of the inode `pinned` refers
/// to (an `O_PATH` descriptor, on which `fchown` fails).
pub fn chown_pinned(pinned: RawFd, uid: libc::uid_t, gid: libc::gid_t) -> io::Result<()> {
    let p = proc_fd(pinned)?;
    // SAFETY: `p` is a valid C string alive for the call; chown only reads it.
    check(unsafe { libc::chown(p.as_ptr(), uid, gid) })
}

/// `chmod("/proc/self/fd/<pinned>", mode)`: sets the permission bits of the inode `pinned`
/// refers to (an `O_PATH` descriptor, on which `fchmod` fails).
pub fn chmod_pinned(pinned: RawFd, mode: libc::mode_t) -> io::Result<()> {
    let p = proc_fd(pinned)?;
    // SAFETY: `p` is a valid C string alive for the call; chmod only reads it.
    check(unsafe { libc::chmod(p.as_ptr(), mode) })
}

/// `utimensat(AT_FDCWD, "/proc/self/fd/<pinned>", times, 0)`: sets the access (`times[0]`)
/// and modification (`times[1]`) times of the inode `pinned` refers to.
pub fn utimens_pinned(pinned: RawFd, times: &[libc::timespec; 2]) -> io::Result<()> {
    let p = proc_fd(pinned)?;
    // SAFETY: `p` is a valid C string and `times` points at the two timespecs utimensat
    // reads, both alive for the call.
    check(unsafe { libc::utimensat(libc::AT_FDCWD, p.as_ptr(), times.as_ptr(), 0) })
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

    #[test]
    fn creations_and_metadata_by_descriptor() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let t = tempfile::tempdir().unwrap();
        let d: OwnedFd = std::fs::File::open(t.path()).unwrap().into();
        let dfd = d.as_raw_fd();
        mkdirat(dfd, "sub", 0o700).unwrap();
        assert_eq!(
            mkdirat(dfd, "sub", 0o700).unwrap_err().raw_os_error(),
            Some(libc::EEXIST)
        );
        symlinkat("sub", dfd, "ln").unwrap();
        assert_eq!(readlinkat(dfd, "ln").unwrap(), b"sub");
        mknodat(dfd, "fifo", libc::S_IFIFO | 0o600, 0).unwrap();
        std::fs::write(t.path().join("f"), "x").unwrap();
        linkat(dfd, "f", dfd, "hard").unwrap();
        let ino = |n: &str| std::fs::symlink_metadata(t.path().join(n)).unwrap().ino();
        assert_eq!(ino("f"), ino("hard"));
        // The link's own times change, not its target's.
        let ts = [libc::timespec {
            tv_sec: 1_000_000,
            tv_nsec: 0,
        }; 2];
        utimensat_nofollow(dfd, "ln", &ts).unwrap();
        let m = |n: &str| std::fs::symlink_metadata(t.path().join(n)).unwrap();
        assert_eq!(m("ln").mtime(), 1_000_000);
        assert_ne!(m("sub").mtime(), 1_000_000);
        let uid = m("f").uid();
        let gid = m("f").gid();
        fchownat_nofollow(dfd, "ln", uid, gid).unwrap();
        // Through a pinned O_PATH descriptor.
        let p = openat_nofollow(dfd, "f", libc::O_PATH).unwrap();
        chmod_pinned(p.as_raw_fd(), 0o640).unwrap();
        chown_pinned(p.as_raw_fd(), uid, gid).unwrap();
        utimens_pinned(p.as_raw_fd(), &ts).unwrap();
        assert_eq!(m("f").permissions().mode() & 0o7777, 0o640);
        assert_eq!(m("f").mtime(), 1_000_000);
        let f = openat_nofollow(dfd, "sub", libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
        fchmod(f.as_raw_fd(), 0o751).unwrap();
        futimens(f.as_raw_fd(), &ts).unwrap();
        assert_eq!(m("sub").permissions().mode() & 0o7777, 0o751);
        assert_eq!(m("sub").mtime(), 1_000_000);
        unlinkat(dfd, "ln", 0).unwrap();
        assert!(t.path().join("sub").is_dir());
        unlinkat(dfd, "sub", libc::AT_REMOVEDIR).unwrap();
        assert!(!t.path().join("sub").exists());
        assert_eq!(
            mkdirat(dfd, "a\0b", 0o700).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
