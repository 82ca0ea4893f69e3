//! Extracting a tar stream into a directory of a container root (`PUT
//! /containers/{id}/archive`), with chroot semantics and no way out: each entry's parent
//! directory is opened with `openat2(RESOLVE_IN_ROOT)` on the container root, and the entry is
//! created under that descriptor with calls that never follow a final symlink
//! (`O_CREAT|O_EXCL|O_NOFOLLOW`, `mkdirat`, `symlinkat`, `linkat`, `mknodat`); ownership, mode
//! and times are set on descriptors of what was just created, not on paths.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};

use berth_sys::at;
use tar::EntryType;

use crate::inroot::{fstat, is_type, lstat_at, Root};
use crate::tarwrite::openat_nofollow;

/// Why an extraction failed.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The archive asks for something refused (a path outside the destination, a directory
    /// over a file with `noOverwriteDirNonDir`).
    #[error("{0}")]
    Invalid(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

fn io_at(context: impl std::fmt::Display) -> impl FnOnce(io::Error) -> ExtractError {
    move |source| ExtractError::Io {
        context: context.to_string(),
        source,
    }
}

/// Options of `PUT /containers/{id}/archive`.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// `noOverwriteDirNonDir`: refuse replacing a directory by a non-directory and back.
    pub no_overwrite_dir_non_dir: bool,
    /// `copyUIDGID`: every entry owned by this uid:gid instead of the archive's.
    pub owner: Option<(u32, u32)>,
}

/// Lexically cleaned components of an archive path; `None` when `..` climbs above its root.
pub(crate) fn clean_components(raw: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c.to_string()),
        }
    }
    Some(out)
}

/// Removes `name` in `dir` (a directory recursively), never following a symlink.
fn remove_at(dir: RawFd, name: &str) -> io::Result<()> {
    let Some(st) = lstat_at(dir, name)? else {
        return Ok(());
    };
    if is_type(&st, libc::S_IFDIR) {
        let sub = openat_nofollow(dir, name, libc::O_RDONLY | libc::O_DIRECTORY)?;
        let mut names = Vec::new();
        {
            let mut d =
                nix::dir::Dir::from_fd(sub.try_clone()?.into_raw_fd()).map_err(io::Error::from)?;
            for e in d.iter() {
                let e = e.map_err(io::Error::from)?;
                let en = e.file_name().to_string_lossy().into_owned();
                if en != "." && en != ".." {
                    names.push(en);
                }
            }
        }
        for en in names {
            remove_at(sub.as_raw_fd(), &en)?;
        }
        at::unlinkat(dir, name, libc::AT_REMOVEDIR)
    } else {
        at::unlinkat(dir, name, 0)
    }
}

fn timespec(secs: u64) -> [libc::timespec; 2] {
    let t = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: 0,
    };
    [t, t]
}

/// Sets owner, mode and (unless a directory, done last) mtime of the just-created `name` in
/// `parent`, through a descriptor of it.
fn set_metadata(
    parent: RawFd,
    name: &str,
    kind: EntryType,
    owner: (u32, u32),
    mode: u32,
    mtime: u64,
) -> io::Result<()> {
    if kind == EntryType::Symlink {
        // The link itself, never its target.
        at::fchownat_nofollow(parent, name, owner.0, owner.1)?;
        at::utimensat_nofollow(parent, name, &timespec(mtime))?;
        return Ok(());
    }
    let fd = openat_nofollow(parent, name, libc::O_PATH)?;
    let st = fstat(fd.as_raw_fd())?;
    if is_type(&st, libc::S_IFLNK) {
        return Err(io::Error::other("replaced by a symlink while extracting"));
    }
    // Through the magic link to exactly the inode `fd` holds.
    at::chown_pinned(fd.as_raw_fd(), owner.0, owner.1)?;
    at::chmod_pinned(fd.as_raw_fd(), (mode & 0o7777) as libc::mode_t)?;
    if kind != EntryType::Directory {
        at::utimens_pinned(fd.as_raw_fd(), &timespec(mtime))?;
    }
    Ok(())
}

fn join_rel(dest: &str, comps: &[String]) -> String {
    let mut s = dest.trim_end_matches('/').to_string();
    for c in comps {
        s.push('/');
        s.push_str(c);
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

/// Extracts the tar `src` into directory `dest` (a path inside `root` with symlinks resolved).
pub(crate) fn extract(
    root: &Root,
    dest: &str,
    src: impl Read,
    opts: &ExtractOptions,
) -> Result<(), ExtractError> {
    let mut ar = tar::Archive::new(src);
    let mut dir_times: Vec<(String, u64)> = Vec::new();
    let entries = ar
        .entries()
        .map_err(|e| ExtractError::Invalid(format!("invalid tar stream: {e}")))?;
    for entry in entries {
        let mut e = entry.map_err(|e| ExtractError::Invalid(format!("invalid tar stream: {e}")))?;
        let kind = e.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            continue;
        }
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let comps = clean_components(&raw).ok_or_else(|| {
            ExtractError::Invalid(format!("invalid path in archive, outside of {dest}: {raw}"))
        })?;
        let h = e.header();
        let mode = h.mode().unwrap_or(0o644);
        let mtime = h.mtime().unwrap_or(0);
        let owner = opts
            .owner
            .unwrap_or((h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32));
        let Some((name, parents)) = comps.split_last() else {
            // The archive's root entry ("./") describes the destination itself.
            if kind.is_dir() {
                let fd = root
                    .open_in(dest, libc::O_PATH | libc::O_DIRECTORY)
                    .map_err(io_at(dest))?;
                set_metadata(fd.as_raw_fd(), ".", kind, owner, mode, mtime).map_err(io_at(dest))?;
                dir_times.push((dest.to_string(), mtime));
            }
            continue;
        };
        if name.starts_with(".wh.") {
            continue;
        }
        let shown = join_rel(dest, &comps);
        let parent_rel = join_rel(dest, parents);
        let parent = root.mkdir_all(&parent_rel).map_err(io_at(&parent_rel))?;
        let pfd = parent.as_raw_fd();
        if let Some(existing) = lstat_at(pfd, name).map_err(io_at(&shown))? {
            let was_dir = is_type(&existing, libc::S_IFDIR);
            let is_dir = kind == EntryType::Directory;
            if opts.no_overwrite_dir_non_dir && was_dir && !is_dir {
                return Err(ExtractError::Invalid(format!(
                    "cannot overwrite directory \"{shown}\" with non-directory \"{raw}\""
                )));
            }
            if opts.no_overwrite_dir_non_dir && !was_dir && is_dir {
                return Err(ExtractError::Invalid(format!(
                    "cannot overwrite non-directory \"{shown}\" with directory \"{raw}\""
                )));
            }
            if !(was_dir && is_dir) {
                remove_at(pfd, name).map_err(io_at(format!("remove {shown}")))?;
            }
        }
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                // O_EXCL|O_NOFOLLOW never opens an existing file or link.
                let fd = at::create_at(
                    pfd,
                    name,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                    0o600,
                )
                .map_err(io_at(format!("create {shown}")))?;
                let mut f = File::from(fd);
                io::copy(&mut e, &mut f).map_err(io_at(format!("write {shown}")))?;
            }
            EntryType::Directory => {
                if lstat_at(pfd, name).map_err(io_at(&shown))?.is_none() {
                    at::mkdirat(pfd, name, 0o755).map_err(io_at(format!("mkdir {shown}")))?;
                }
                dir_times.push((shown.clone(), mtime));
            }
            EntryType::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| ExtractError::Invalid(format!("symlink {raw} has no target")))?;
                let t = at::cstring(target)
                    .map_err(|_| ExtractError::Invalid(format!("bad symlink target in {raw}")))?;
                // symlinkat never follows `name`.
                at::symlinkat(t.as_bytes(), pfd, name)
                    .map_err(io_at(format!("symlink {shown}")))?;
            }
            EntryType::Link => {
                let target = e
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .ok_or_else(|| {
                        ExtractError::Invalid(format!("hard link {raw} has no target"))
                    })?;
                let tcomps = clean_components(&target)
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| {
                        ExtractError::Invalid(format!(
                            "invalid hardlink in archive, outside of {dest}: {target}"
                        ))
                    })?;
                let (tname, tparents) = tcomps.split_last().expect("non-empty");
                let tparent_rel = join_rel(dest, tparents);
                let tparent = root
                    .open_in(&tparent_rel, libc::O_PATH | libc::O_DIRECTORY)
                    .map_err(io_at(&tparent_rel))?;
                at::cstring(tname).map_err(io_at(&target))?;
                // Without AT_SYMLINK_FOLLOW linkat links a symlink itself, never its target.
                at::linkat(tparent.as_raw_fd(), tname, pfd, name)
                    .map_err(io_at(format!("link {shown}")))?;
                continue;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (fmt, dev) = match kind {
                    EntryType::Fifo => (libc::S_IFIFO, 0),
                    _ => {
                        let major = h.device_major().ok().flatten().unwrap_or(0);
                        let minor = h.device_minor().ok().flatten().unwrap_or(0);
                        let fmt = if kind == EntryType::Char {
                            libc::S_IFCHR
                        } else {
                            libc::S_IFBLK
                        };
                        (fmt, libc::makedev(major, minor))
                    }
                };
                // mknodat never follows `name`.
                at::mknodat(pfd, name, fmt | 0o600, dev)
                    .map_err(io_at(format!("mknod {shown}")))?;
            }
            _ => continue, // other types are ignored, as Docker does
        }
        set_metadata(pfd, name, kind, owner, mode, mtime).map_err(io_at(&shown))?;
    }
    for (rel, mtime) in dir_times.iter().rev() {
        if let Ok(fd) = root.open_in(rel, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW) {
            // Best effort.
            let _ = at::futimens(fd.as_raw_fd(), &timespec(*mtime));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    fn tar_of(entries: &[(&str, EntryType, &str, u32)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data, mode) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(*mode);
            h.set_uid(1234);
            h.set_gid(4321);
            h.set_mtime(1_000_000);
            // Raw names: the builder refuses `..`, which these tests need.
            let raw = &mut h.as_old_mut().name;
            raw[..name.len()].copy_from_slice(name.as_bytes());
            match kind {
                EntryType::Symlink | EntryType::Link => {
                    let l = &mut h.as_old_mut().linkname;
                    l[..data.len()].copy_from_slice(data.as_bytes());
                    h.set_size(0);
                    h.set_cksum();
                    b.append(&h, &[][..]).unwrap();
                }
                _ => {
                    h.set_size(data.len() as u64);
                    h.set_cksum();
                    b.append(&h, data.as_bytes()).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    fn setup() -> (tempfile::TempDir, Root) {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().join("root");
        std::fs::create_dir_all(r.join("dst")).unwrap();
        std::fs::create_dir_all(t.path().join("host")).unwrap();
        symlink("/", r.join("toroot")).unwrap();
        symlink("../../../../../..", r.join("dst/up")).unwrap();
        let root = Root::open(&r).unwrap();
        (t, root)
    }

    #[test]
    fn extracts_files_dirs_links_with_metadata() {
        let (t, root) = setup();
        let data = tar_of(&[
            ("d/", EntryType::Directory, "", 0o750),
            ("d/f", EntryType::Regular, "hello", 0o4755),
            ("d/l", EntryType::Symlink, "f", 0o777),
            ("d/h", EntryType::Link, "d/f", 0o644),
        ]);
        extract(&root, "/dst", &data[..], &ExtractOptions::default()).unwrap();
        let d = t.path().join("root/dst/d");
        assert_eq!(std::fs::read_to_string(d.join("f")).unwrap(), "hello");
        let m = std::fs::metadata(d.join("f")).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o4755);
        if nix::unistd::geteuid().is_root() {
            assert_eq!((m.uid(), m.gid()), (1234, 4321));
        }
        assert_eq!(m.mtime(), 1_000_000);
        assert_eq!(std::fs::read_link(d.join("l")).unwrap().to_str(), Some("f"));
        assert_eq!(std::fs::metadata(d.join("h")).unwrap().ino(), m.ino());
        assert_eq!(
            std::fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o750
        );
    }

    #[test]
    fn symlinks_in_the_container_cannot_lead_outside() {
        let (t, root) = setup();
        // Through an existing link to `/` or `../../..`, and through a link the archive
        // itself plants: everything lands inside the root.
        let data = tar_of(&[
            ("up/escaped", EntryType::Regular, "x", 0o644),
            ("planted", EntryType::Symlink, "/../../../host", 0o777),
            ("planted/escaped2", EntryType::Regular, "y", 0o644),
        ]);
        extract(&root, "/dst", &data[..], &ExtractOptions::default()).unwrap();
        let host = t.path().join("host");
        assert_eq!(std::fs::read_dir(&host).unwrap().count(), 0);
        assert!(t.path().join("root/escaped").exists());
        assert!(t.path().join("root/host/escaped2").exists());
        // `..` above the destination is refused.
        let bad = tar_of(&[("../../evil", EntryType::Regular, "z", 0o644)]);
        assert!(matches!(
            extract(&root, "/dst", &bad[..], &ExtractOptions::default()),
            Err(ExtractError::Invalid(_))
        ));
        let badlink = tar_of(&[("hl", EntryType::Link, "../../../etc/passwd", 0o644)]);
        assert!(extract(&root, "/dst", &badlink[..], &ExtractOptions::default()).is_err());
    }

    #[test]
    fn no_overwrite_dir_non_dir() {
        let (t, root) = setup();
        std::fs::create_dir_all(t.path().join("root/dst/adir")).unwrap();
        std::fs::write(t.path().join("root/dst/afile"), "").unwrap();
        let opts = ExtractOptions {
            no_overwrite_dir_non_dir: true,
            owner: None,
        };
        let a = tar_of(&[("adir", EntryType::Regular, "x", 0o644)]);
        assert!(extract(&root, "/dst", &a[..], &opts).is_err());
        let b = tar_of(&[("afile/", EntryType::Directory, "", 0o755)]);
        assert!(extract(&root, "/dst", &b[..], &opts).is_err());
        assert!(t.path().join("root/dst/adir").is_dir());
        // Without the option, a file replaces the directory.
        extract(&root, "/dst", &a[..], &ExtractOptions::default()).unwrap();
        assert!(t.path().join("root/dst/adir").is_file());
    }
}
