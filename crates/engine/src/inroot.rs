//! Confined access to a container's root filesystem from the daemon: every lookup goes through
//! `openat2(RESOLVE_IN_ROOT)` on a directory descriptor of the root, so symbolic links (absolute
//! or `../../..`) are resolved as if the root were `/` and can never reach a host path, even when
//! the container swaps a directory for a link while we work (CVE-2018-15664). Also Docker's
//! lexical path rules (`filepath.Join("/", p)` keeping a trailing `/` or `/.`) and symlink
//! resolution in scope (`FollowSymlinkInScope`) for stat's `linkTarget`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Symlinks followed in one resolution before giving up (as Linux's ELOOP).
const MAX_LINKS: usize = 255;

/// A container root opened as a directory descriptor.
pub(crate) struct Root {
    fd: OwnedFd,
}

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `openat2(dirfd, path, flags, resolve)`.
fn openat2(dirfd: RawFd, path: &str, flags: i32, resolve: u64) -> io::Result<OwnedFd> {
    let p = cstr(path)?;
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
                &how as *const libc::open_how,
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
pub(crate) fn fstat(fd: RawFd) -> io::Result<libc::stat> {
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
pub(crate) fn lstat_at(dirfd: RawFd, name: &str) -> io::Result<Option<libc::stat>> {
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
pub(crate) fn readlink_fd(fd: RawFd) -> io::Result<Vec<u8>> {
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

pub(crate) fn is_type(st: &libc::stat, kind: libc::mode_t) -> bool {
    st.st_mode & libc::S_IFMT == kind
}

/// Splits a slash path into its non-empty components (`.` and `..` kept).
fn components(p: &str) -> Vec<String> {
    p.split('/')
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

/// Docker's `filepath.Join("/", p)` (lexical cleaning, `..` stops at `/`), keeping a trailing
/// `/` or `/.` of `p` (`PreserveTrailingDotOrSeparator`).
pub fn abs_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    let mut s = format!("/{}", out.join("/"));
    if s != "/" {
        if p.ends_with("/.") || p == "." {
            s.push_str("/.");
        } else if p.ends_with('/') {
            s.push('/');
        }
    }
    s
}

/// Splits a path from [`abs_path`] into its directory and last element (`""` for a trailing
/// slash or `/`, `"."` for a trailing `/.`), as Go's `filepath.Split`.
pub fn split_dir_base(abs: &str) -> (&str, &str) {
    match abs.rfind('/') {
        Some(i) => (&abs[..=i], &abs[i + 1..]),
        None => ("", abs),
    }
}

/// Go's `filepath.Base` of a path from [`abs_path`] (the name stat reports).
pub fn base_name(abs: &str) -> String {
    let t = abs.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

impl Root {
    /// Opens `path` (a directory on the host) as a root.
    pub(crate) fn open(path: &Path) -> io::Result<Root> {
        let p = path
            .to_str()
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let fd = openat2(libc::AT_FDCWD, p, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        Ok(Root { fd })
    }

    /// Opens `rel` (a path inside the root, absolute or not) with `flags`, every symlink
    /// resolved inside the root. Add `O_NOFOLLOW` to open a final symlink itself (with
    /// `O_PATH`).
    pub(crate) fn open_in(&self, rel: &str, flags: i32) -> io::Result<OwnedFd> {
        let rel = rel.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        openat2(
            self.fd.as_raw_fd(),
            rel,
            flags,
            libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
        )
    }

    /// Opens directory `rel` in the root, creating missing components (mode 0755) as Docker's
    /// extraction does. Each component is created with `mkdirat` under a parent descriptor that
    /// was itself resolved inside the root, so nothing is created outside it.
    pub(crate) fn mkdir_all(&self, rel: &str) -> io::Result<OwnedFd> {
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
    pub(crate) fn resolve(&self, path: &str) -> io::Result<String> {
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
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn docker_path_rules() {
        assert_eq!(abs_path("a/b"), "/a/b");
        assert_eq!(abs_path("/a/../../b/"), "/b/");
        assert_eq!(abs_path("/a/b/."), "/a/b/.");
        assert_eq!(abs_path("/"), "/");
        assert_eq!(abs_path("../../etc/passwd"), "/etc/passwd");
        assert_eq!(split_dir_base("/a/b"), ("/a/", "b"));
        assert_eq!(split_dir_base("/a/b/"), ("/a/b/", ""));
        assert_eq!(split_dir_base("/a/b/."), ("/a/b/", "."));
        assert_eq!(base_name("/a/b/"), "b");
        assert_eq!(base_name("/"), "/");
        assert_eq!(base_name("/a/."), ".");
    }

    fn tree() -> (tempfile::TempDir, Root) {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().join("root");
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/passwd"), "inside").unwrap();
        std::fs::write(t.path().join("secret"), "outside").unwrap();
        symlink("/", r.join("toroot")).unwrap();
        symlink("../../../../..", r.join("up")).unwrap();
        symlink("/etc", r.join("etclink")).unwrap();
        symlink("loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        let root = Root::open(&r).unwrap();
        (t, root)
    }

    #[test]
    fn symlinks_stay_inside_the_root() {
        let (_t, root) = tree();
        for p in [
            "/toroot/etc/passwd",
            "/up/etc/passwd",
            "../../etc/passwd",
            "/etclink/passwd",
        ] {
            let fd = root.open_in(p, libc::O_RDONLY).unwrap();
            let s = std::fs::read_to_string(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
            assert_eq!(s, "inside", "{p}");
        }
        // The file beside the root cannot be reached by any spelling.
        for p in ["/up/secret", "/toroot/../secret", "../secret"] {
            assert!(root.open_in(p, libc::O_RDONLY).is_err(), "{p}");
        }
        assert!(root.open_in("/loop1", libc::O_RDONLY).is_err());
    }

    #[test]
    fn resolve_in_scope() {
        let (_t, root) = tree();
        assert_eq!(root.resolve("/toroot").unwrap(), "/");
        assert_eq!(root.resolve("/up/etc").unwrap(), "/etc");
        assert_eq!(root.resolve("/etclink/passwd").unwrap(), "/etc/passwd");
        assert_eq!(
            root.resolve("/etclink/missing/x").unwrap(),
            "/etc/missing/x"
        );
        assert!(root.resolve("/loop1").is_err());
    }

    #[test]
    fn mkdir_all_creates_inside() {
        let (t, root) = tree();
        root.mkdir_all("/toroot/new/deep").unwrap();
        assert!(t.path().join("root/new/deep").is_dir());
        root.mkdir_all("/up/x").unwrap();
        assert!(t.path().join("root/x").is_dir());
        assert!(!t.path().join("x").exists());
    }
}
