//! The entry writer: creates one tar entry (file, directory, link, device, fifo) inside the
//! layer directory, never through a symlink or above the root, turns AUFS whiteouts into
//! overlay ones (`.wh.NAME` → a 0:0 char device, `.wh..wh..opq` → the opaque xattr), and
//! applies ownership, mode, xattrs and mtimes.

use std::ffi::OsStr;
use std::fs::{self, File, Permissions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{mknod, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use tar::EntryType;

use super::{bad_layer, clean_path, lsetxattr, remove_any};
use crate::{io_err, Result};

pub(super) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub(super) struct Applier<'a> {
    pub(super) root: &'a Path,
    pub(super) root_user: bool,
    /// Directories whose mtime is set once all entries are written.
    pub(super) dir_times: Vec<(PathBuf, u64)>,
}

impl Applier<'_> {
    /// Ensures the parent directories `comps` exist as real directories inside the layer, creating
    /// missing ones; refuses to go through a symlink or a non-directory.
    fn ensure_dirs(&self, comps: &[Vec<u8>], create: bool) -> Result<PathBuf> {
        let mut cur = self.root.to_path_buf();
        for c in comps {
            cur.push(OsStr::from_bytes(c));
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(bad_layer(format!(
                        "path escapes the layer through symlink {}",
                        cur.strip_prefix(self.root).unwrap_or(&cur).display()
                    )))
                }
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(bad_layer(format!(
                        "{} is not a directory",
                        cur.strip_prefix(self.root).unwrap_or(&cur).display()
                    )))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    fs::create_dir(&cur)
                        .map_err(|e| io_err(format!("mkdir {}", cur.display()), e))?;
                    fs::set_permissions(&cur, Permissions::from_mode(0o755))
                        .map_err(|e| io_err(format!("chmod {}", cur.display()), e))?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(bad_layer(format!(
                        "{} does not exist",
                        cur.strip_prefix(self.root).unwrap_or(&cur).display()
                    )))
                }
                Err(e) => return Err(io_err(format!("stat {}", cur.display()), e)),
            }
        }
        Ok(cur)
    }

    /// Runs a privileged operation, tolerating EPERM when not running as root.
    fn privileged(&self, what: &str, path: &Path, r: io::Result<()>) -> Result<()> {
        match r {
            Ok(()) => Ok(()),
            Err(e)
                if !self.root_user
                    && matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) =>
            {
                Ok(())
            }
            Err(e) => Err(io_err(format!("{what} {}", path.display()), e)),
        }
    }

    fn mknod(&self, path: &Path, kind: SFlag, perm: u32, dev: libc::dev_t) -> Result<()> {
        let r = mknod(path, kind, Mode::from_bits_truncate(perm & 0o7777), dev)
            .map_err(io::Error::from);
        self.privileged("mknod", path, r)
    }

    pub(super) fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<()> {
        let kind = e.header().entry_type();
        match kind {
            EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink => return Ok(()),
            _ => {}
        }
        let raw = e.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let comps = clean_path(&raw)
            .ok_or_else(|| bad_layer(format!("path escapes the layer root: {shown}")))?;
        let Some((name, parents)) = comps.split_last() else {
            // The root itself ("./"): take over its metadata.
            if kind.is_dir() {
                let root = self.root.to_path_buf();
                self.metadata(e, &root, false)?;
            }
            return Ok(());
        };
        let parent = self.ensure_dirs(parents, true)?;

        if let Some(wh) = name.strip_prefix(b".wh.") {
            if wh == b".wh..opq" {
                let r = lsetxattr(&parent, "trusted.overlay.opaque", b"y");
                return self.privileged("set opaque xattr on", &parent, r);
            }
            if wh.starts_with(b".wh.") {
                return Ok(()); // other AUFS metadata
            }
            if wh.is_empty() || wh == b"." || wh == b".." {
                return Err(bad_layer(format!("bad whiteout {shown}")));
            }
            let target = parent.join(OsStr::from_bytes(wh));
            remove_any(&target).map_err(|e| io_err(format!("remove {}", target.display()), e))?;
            return self.mknod(&target, SFlag::S_IFCHR, 0, libc::makedev(0, 0));
        }

        let path = parent.join(OsStr::from_bytes(name));
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() && kind.is_dir() => {}
            Ok(_) => {
                remove_any(&path).map_err(|e| io_err(format!("remove {}", path.display()), e))?
            }
            Err(_) => {}
        }
        let mode = e
            .header()
            .mode()
            .map_err(|e| bad_layer(format!("{shown}: {e}")))?;
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let mut f = File::options()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)
                    .map_err(|e| io_err(format!("create {}", path.display()), e))?;
                io::copy(e, &mut f).map_err(|e| bad_layer(format!("{shown}: {e}")))?;
            }
            EntryType::Directory => {
                if !path.is_dir() {
                    fs::create_dir(&path)
                        .map_err(|e| io_err(format!("mkdir {}", path.display()), e))?;
                }
            }
            EntryType::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| bad_layer(format!("symlink {shown} has no target")))?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path)
                    .map_err(|e| io_err(format!("symlink {}", path.display()), e))?;
            }
            EntryType::Link => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| bad_layer(format!("hard link {shown} has no target")))?;
                let tshown = String::from_utf8_lossy(&target).into_owned();
                let tcomps = clean_path(&target)
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| {
                        bad_layer(format!("hard link target escapes the layer: {tshown}"))
                    })?;
                let (tname, tparents) = tcomps.split_last().expect("non-empty");
                let tparent = self.ensure_dirs(tparents, false)?;
                let tpath = tparent.join(OsStr::from_bytes(tname));
                match fs::symlink_metadata(&tpath) {
                    Ok(m) if !m.is_dir() => {}
                    Ok(_) => return Err(bad_layer(format!("hard link to a directory: {tshown}"))),
                    Err(_) => {
                        return Err(bad_layer(format!("hard link target not found: {tshown}")))
                    }
                }
                fs::hard_link(&tpath, &path)
                    .map_err(|e| io_err(format!("link {}", path.display()), e))?;
                return Ok(());
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (flag, dev) = match kind {
                    EntryType::Fifo => (SFlag::S_IFIFO, 0),
                    _ => {
                        let major = e.header().device_major().ok().flatten().unwrap_or(0);
                        let minor = e.header().device_minor().ok().flatten().unwrap_or(0);
                        let flag = if kind == EntryType::Char {
                            SFlag::S_IFCHR
                        } else {
                            SFlag::S_IFBLK
                        };
                        (flag, libc::makedev(major, minor))
                    }
                };
                self.mknod(&path, flag, mode, dev)?;
                if fs::symlink_metadata(&path).is_err() {
                    return Ok(()); // skipped (unprivileged)
                }
            }
            _ => return Ok(()), // unknown types are ignored, as Docker does
        }
        self.metadata(e, &path, kind == EntryType::Symlink)
    }

    /// Applies ownership, mode, xattrs and mtime of the entry to `path`.
    fn metadata<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        path: &Path,
        symlink: bool,
    ) -> Result<()> {
        let h = e.header();
        let uid = h.uid().unwrap_or(0) as u32;
        let gid = h.gid().unwrap_or(0) as u32;
        let mode = h.mode().unwrap_or(0o644);
        let mtime = h.mtime().unwrap_or(0);
        let is_dir = h.entry_type().is_dir();
        let r = std::os::unix::fs::lchown(path, Some(uid), Some(gid));
        self.privileged("chown", path, r)?;
        if !symlink {
            fs::set_permissions(path, Permissions::from_mode(mode & 0o7777))
                .map_err(|e| io_err(format!("chmod {}", path.display()), e))?;
        }
        let mut xattrs = Vec::new();
        if let Ok(Some(exts)) = e.pax_extensions() {
            for ext in exts.flatten() {
                if let Ok(key) = ext.key() {
                    if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                        xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
                    }
                }
            }
        }
        for (name, value) in xattrs {
            match lsetxattr(path, &name, &value) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => {}
                Err(e) => self.privileged(&format!("set xattr {name} on"), path, Err(e))?,
            }
        }
        if is_dir {
            self.dir_times.push((path.to_path_buf(), mtime));
        } else {
            set_mtime(path, mtime);
        }
        Ok(())
    }
}

pub(super) fn set_mtime(path: &Path, mtime: u64) {
    let ts = TimeSpec::new(mtime as i64, 0);
    // Best effort: a failed timestamp does not make the layer wrong.
    let _ = nix::sys::stat::utimensat(None, path, &ts, &ts, UtimensatFlags::NoFollowSymlink);
}
