//! Confined access to a directory tree that a container or an image controls.
//!
//! A [`Root`] is a directory opened as a descriptor; [`Root::open_in`] resolves every path
//! through `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so symbolic links are resolved
//! as if the root were `/` and can never reach a host path, even when the container swaps a
//! directory for a link while we work (CVE-2018-15664).
//!
//! [`Root::read_regular`] is how the daemon reads a file the container controls: the path is
//! resolved inside the root and opened `O_PATH` first, so a FIFO, a device or a socket is
//! recognised by `fstat` without ever being opened for reading (an open of a FIFO blocks, a
//! device's open can have effects); only a regular file is reopened for reading, non-blocking,
//! and no more than a cap is read.

use std::ffi::{CStr, CString};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Symlinks followed in one resolution before giving up (as Linux's ELOOP).
const MAX_LINKS: usize = 255;

/// Why [`Root::read_regular`] could not return a file's contents.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The path does not exist inside the root (a dangling link included).
    #[error("{0} does not exist")]
    Missing(String),
    /// The path names something other than a regular file (a FIFO, device, socket, directory).
    #[error("{path} is not a regular file ({kind})")]
    NotRegular { path: String, kind: &'static str },
    /// The file is larger than the caller's cap; nothing past the cap was read.
    #[error("{path} is larger than {limit} bytes")]
    TooLarge { path: String, limit: u64 },
    /// Any other failure (a symlink loop, a permission error, an I/O error).
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// A directory opened as a root for confined lookups.
pub struct Root {
    fd: OwnedFd,
}

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `openat2(dirfd, path, flags | O_CLOEXEC, resolve)`, retried on EAGAIN and EINTR.
pub fn openat2(dirfd: RawFd, path: &str, flags: i32, resolve: u64) -> io::Result<OwnedFd> {
    openat2_c(dirfd, &cstr(path)?, flags, resolve)
}

/// [`openat2`] of a C string path (any bytes but NUL).
pub fn openat2_c(dirfd: RawFd, p: &CStr, flags: i32, resolve: u64) -> io::Result<OwnedFd> {
    // SAFETY: open_how is plain old data; zeroed is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    loop {
        // SAFETY: `p` is a valid NUL-terminated string and `how` a valid open_how, both alive
        // for the call; the size passed is the struct's size.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                p.as_ptr(),
                std::ptr::from_ref(&how),
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if rc >= 0 {
            // SAFETY: the kernel returned a new descriptor that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(rc as RawFd) });
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EAGAIN) && e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// `fstat` of a descriptor (O_PATH ones included).
pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: stat is plain old data; zeroed is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let empty = cstr("")?;
    // SAFETY: `empty` is a valid C string; `st` is a valid out pointer; AT_EMPTY_PATH makes
    // fstatat act on `fd` itself.
    let rc = unsafe {
        libc::fstatat(
            fd,
            empty.as_ptr(),
            &mut st,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        Ok(st)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW)`; `None` when it does not exist.
pub fn lstat_at(dirfd: RawFd, name: &str) -> io::Result<Option<libc::stat>> {
    // SAFETY: stat is plain old data; zeroed is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let n = cstr(name)?;
    // SAFETY: `n` is a valid C string and `st` a valid out pointer for the call.
    let rc = unsafe { libc::fstatat(dirfd, n.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    if rc == 0 {
        return Ok(Some(st));
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ENOENT) {
        Ok(None)
    } else {
        Err(e)
    }
}

/// The target of the symlink that O_PATH descriptor `fd` refers to.
pub fn readlink_fd(fd: RawFd) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    let empty = cstr("")?;
    // SAFETY: `buf` is a writable buffer of the given length; `empty` a valid C string; an
    // empty path makes readlinkat read the link `fd` refers to.
    let n = unsafe { libc::readlinkat(fd, empty.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// Whether `st` describes a file of type `kind` (`libc::S_IFDIR`, `S_IFLNK`, …).
pub fn is_type(st: &libc::stat, kind: libc::mode_t) -> bool {
    st.st_mode & libc::S_IFMT == kind
}

/// A word for a file type, for error messages.
fn kind_name(st: &libc::stat) -> &'static str {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => "a directory",
        libc::S_IFIFO => "a FIFO",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        libc::S_IFSOCK => "a socket",
        libc::S_IFLNK => "a symbolic link",
        _ => "not a regular file",
    }
}

/// Reads at most `limit` bytes of `f`; [`None`] when it holds more.
pub fn read_at_most(f: impl Read, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    f.take(limit.saturating_add(1)).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Ok(None);
    }
    Ok(Some(out))
}

/// Splits a slash path into its non-empty components (`.` and `..` kept).
fn components(p: &str) -> Vec<String> {
    p.split('/')
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

/// Opens `rel` beneath the host directory `dir` with no symbolic link anywhere on the way
/// (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`): for paths already resolved elsewhere, such as a
/// path looked up through an image's layer directories. A final symlink is returned itself
/// with `O_PATH | O_NOFOLLOW`; any other link fails with `ELOOP`.
pub fn open_beneath(dir: &Path, rel: &str, flags: i32) -> io::Result<OwnedFd> {
    let d = dir
        .to_str()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let dfd = openat2(libc::AT_FDCWD, d, libc::O_PATH | libc::O_DIRECTORY, 0)?;
    let rel = rel.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    openat2(
        dfd.as_raw_fd(),
        rel,
        flags,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
    )
}

/// The contents of the file that the `O_PATH` descriptor `pinned` refers to (named `what` in
/// errors), at most `limit` bytes. Anything but a regular file is refused without being opened
/// for reading; a regular file is reopened through `/proc/self/fd` (the very inode checked),
/// `O_NONBLOCK | O_NOCTTY`.
pub fn read_pinned(pinned: &OwnedFd, what: &str, limit: u64) -> Result<Vec<u8>, ReadError> {
    let io_err = |source: io::Error| ReadError::Io {
        path: what.to_string(),
        source,
    };
    let st = fstat(pinned.as_raw_fd()).map_err(io_err)?;
    if !is_type(&st, libc::S_IFREG) {
        return Err(ReadError::NotRegular {
            path: what.to_string(),
            kind: kind_name(&st),
        });
    }
    let too_large = || ReadError::TooLarge {
        path: what.to_string(),
        limit,
    };
    if st.st_size as u64 > limit {
        return Err(too_large());
    }
    let file = openat2(
        libc::AT_FDCWD,
        &format!("/proc/self/fd/{}", pinned.as_raw_fd()),
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
        0,
    )
    .map_err(io_err)?;
    // The size can grow between fstat and read: the cap holds on what is read, too.
    read_at_most(std::fs::File::from(file), limit)
        .map_err(io_err)?
        .ok_or_else(too_large)
}

impl Root {
    /// Opens `path` (a directory on the host) as a root.
    pub fn open(path: &Path) -> io::Result<Root> {
        let p = path
            .to_str()
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let fd = openat2(libc::AT_FDCWD, p, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        Ok(Root { fd })
    }

    /// Opens `rel` (a path inside the root, absolute or not) with `flags`, every symlink
    /// resolved inside the root. Add `O_NOFOLLOW` to open a final symlink itself (with
    /// `O_PATH`).
    pub fn open_in(&self, rel: &str, flags: i32) -> io::Result<OwnedFd> {
        let rel = rel.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        openat2(
            self.fd.as_raw_fd(),
            rel,
            flags,
            libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
        )
    }

    /// The contents of the regular file at `path` inside the root, at most `limit` bytes.
    ///
    /// Symlinks, the last one included, are followed inside the root (as Docker's
    /// `FollowSymlinkInScope`): `/etc/passwd -> /dev/zero` names the root's own `/dev/zero`.
    /// The file is first opened `O_PATH`, which never blocks and has no effect on a device,
    /// and is reopened for reading (`O_NONBLOCK | O_NOCTTY`, through `/proc/self/fd`, so the
    /// very inode that was checked) only when it is a regular file.
    pub fn read_regular(&self, path: &str, limit: u64) -> Result<Vec<u8>, ReadError> {
        let io_err = |source: io::Error| ReadError::Io {
            path: path.to_string(),
            source,
        };
        let pinned = match self.open_in(path, libc::O_PATH) {
            Ok(fd) => fd,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {
                return Err(ReadError::Missing(path.to_string()))
            }
            Err(e) => return Err(io_err(e)),
        };
        read_pinned(&pinned, path, limit)
    }

    /// Opens directory `rel` in the root, creating missing components (mode 0755) as Docker's
    /// extraction does. Each component is created with `mkdirat` under a parent descriptor that
    /// was itself resolved inside the root, so nothing is created outside it.
    pub fn mkdir_all(&self, rel: &str) -> io::Result<OwnedFd> {
        let resolved = self.resolve(rel)?;
        let comps = components(&resolved);
        for i in 0..comps.len() {
            let prefix = format!("/{}", comps[..=i].join("/"));
            match self.open_in(&prefix, libc::O_PATH | libc::O_DIRECTORY) {
                Ok(_) => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e),
            }
            let parent = self.open_in(
                &format!("/{}", comps[..i].join("/")),
                libc::O_PATH | libc::O_DIRECTORY,
            )?;
            let n = cstr(&comps[i])?;
            // SAFETY: `n` is a valid C string; `parent` a valid directory descriptor.
            let rc = unsafe { libc::mkdirat(parent.as_raw_fd(), n.as_ptr(), 0o755) };
            if rc != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EEXIST) {
                    return Err(e);
                }
            }
        }
        self.open_in(&resolved, libc::O_PATH | libc::O_DIRECTORY)
    }

    /// Docker's `FollowSymlinkInScope`: `path` with every symlink resolved inside the root,
    /// component by component, as an absolute path in the container. Missing components are
    /// kept as they are.
    pub fn resolve(&self, path: &str) -> io::Result<String> {
        let mut resolved: Vec<String> = Vec::new();
        let mut pending: std::collections::VecDeque<String> = components(path).into();
        let mut links = 0;
        while let Some(c) = pending.pop_front() {
            match c.as_str() {
                "." => continue,
                ".." => {
                    resolved.pop();
                    continue;
                }
                _ => {}
            }
            let candidate = format!("/{}", [resolved.join("/"), c.clone()].join("/"));
            let fd = match self.open_in(&candidate, libc::O_PATH | libc::O_NOFOLLOW) {
                Ok(fd) => fd,
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {
                    resolved.push(c);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let st = fstat(fd.as_raw_fd())?;
            if is_type(&st, libc::S_IFLNK) {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = String::from_utf8_lossy(&readlink_fd(fd.as_raw_fd())?).into_owned();
                if target.starts_with('/') {
                    resolved.clear();
                }
                for (i, t) in components(&target).into_iter().enumerate() {
                    pending.insert(i, t);
                }
            } else {
                resolved.push(c);
            }
        }
        Ok(format!("/{}", resolved.join("/")))
    }
}

#[cfg(test)]
mod tests;
