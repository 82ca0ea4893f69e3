//! System calls on one file, each a safe wrapper that makes one call (`sync_file_range`, the
//! `FS_IOC_GETFLAGS`/`FS_IOC_SETFLAGS` ioctls, `lsetxattr`, `lgetxattr`, `llistxattr`) and
//! reports a failure as the `errno` in an [`io::Error`]. What a failure means (retry with a
//! larger buffer, treat as absent, ignore) is left to the callers: the image store's
//! write-back of blobs, its placement of layer directories (`FS_TOPDIR_FL`) and the extended
//! attributes of layers.

use std::ffi::{c_int, CStr};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// `sync_file_range(fd, offset, len, SYNC_FILE_RANGE_WRITE)`: starts writing `len` bytes of
/// `file` from `offset` to disk, without waiting.
pub fn sync_file_range_write(
    file: &File,
    offset: libc::off64_t,
    len: libc::off64_t,
) -> io::Result<()> {
    // SAFETY: sync_file_range only takes a descriptor (open for as long as `file` lives, which
    // is across the call) and integers; it touches no memory of this process.
    let rc = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The inode flags of `file` (`lsattr`, `FS_IOC_GETFLAGS`); an error where the filesystem has
/// none.
pub fn inode_flags(file: &File) -> io::Result<c_int> {
    let mut flags: c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int (the kernel's handlers use an int despite the
    // `long` in the ioctl number) to a valid, writable pointer to `flags`, which lives across
    // the call; `file` is an open descriptor.
    let r = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            libc::FS_IOC_GETFLAGS,
            std::ptr::from_mut(&mut flags),
        )
    };
    if r == 0 {
        Ok(flags)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets the inode flags of `file` to `flags` (`chattr`, `FS_IOC_SETFLAGS`).
pub fn set_inode_flags(file: &File, flags: c_int) -> io::Result<()> {
    // SAFETY: FS_IOC_SETFLAGS reads one int (the kernel's ext4/ext2 handlers take an int
    // despite the `long` in the ioctl number) from a valid pointer to `flags`, which lives
    // across the call; `file` is an open descriptor.
    let r = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            libc::FS_IOC_SETFLAGS,
            std::ptr::from_ref(&flags),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets extended attribute `name` of `path` to `value` (flags 0: create or replace), without
/// following a final symlink.
pub fn lsetxattr(path: &CStr, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: `path` and `name` are valid NUL-terminated C strings borrowed across the call, and
    // `value` is a valid buffer of `value.len()` bytes that lsetxattr only reads.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads extended attribute `name` of `path` into `buf`, without following a final symlink.
/// Returns the value's length; `ERANGE` when `buf` is too small for it.
pub fn lgetxattr(path: &CStr, name: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `path` and `name` are valid NUL-terminated C strings borrowed across the call, and
    // `buf` is a valid, writable buffer of `buf.len()` bytes, exclusively borrowed across the
    // call; lgetxattr writes at most `buf.len()` bytes to it.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    // A negative result (-1) is an error; any other fits in usize (it is at most `buf.len()`).
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Reads the NUL-separated names of `path`'s extended attributes into `buf`, without following
/// a final symlink. Returns the length of the list; `ERANGE` when `buf` is too small for it.
pub fn llistxattr(path: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `path` is a valid NUL-terminated C string borrowed across the call, and `buf` is a
    // valid, writable buffer of `buf.len()` bytes, exclusively borrowed across the call;
    // llistxattr writes at most `buf.len()` bytes to it.
    let n = unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    // A negative result (-1) is an error; any other fits in usize (it is at most `buf.len()`).
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xattr_round_trip_and_erange() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        std::fs::write(&f, "x").unwrap();
        let p = std::ffi::CString::new(f.to_str().unwrap()).unwrap();
        let n = c"user.berth";
        match lsetxattr(&p, n, b"value") {
            Ok(()) => {}
            // A filesystem without user xattrs (tmpfs before 6.6): nothing more to check.
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return,
            Err(e) => panic!("{e}"),
        }
        let mut buf = [0u8; 64];
        let len = lgetxattr(&p, n, &mut buf).unwrap();
        assert_eq!(&buf[..len], b"value");
        let mut small = [0u8; 2];
        assert_eq!(
            lgetxattr(&p, n, &mut small).unwrap_err().raw_os_error(),
            Some(libc::ERANGE)
        );
        let len = llistxattr(&p, &mut buf).unwrap();
        assert!(buf[..len].split(|b| *b == 0).any(|s| s == b"user.berth"));
        let file = File::open(&f).unwrap();
        sync_file_range_write(&file, 0, 1).unwrap();
    }
}
