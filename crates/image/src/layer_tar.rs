//! Safe application of a layer tar stream into a layer directory in overlay format.
//!
//! Handles regular files, directories, symlinks, hard links, devices, fifos, ownership, modes
//! (setuid/setgid/sticky included), mtimes and `SCHILY.xattr.*` PAX xattrs. AUFS-style whiteouts
//! become overlay whiteouts: `.wh.NAME` → a 0:0 character device `NAME`, `.wh..wh..opq` → the
//! `trusted.overlay.opaque=y` xattr on the directory.
//!
//! Security: absolute entry names are made relative, `..` that would climb above the layer root is
//! refused, no entry is written through a symlink (every parent component must be a real
//! directory inside the layer), and hard-link targets must be already extracted inside the layer.
//! The diff ID (sha256 of the uncompressed tar) is computed while applying; the uncompressed stream
//! can be teed into a writer (the content store) at the same time.

use std::ffi::{CString, OsStr};
use std::fs::{self, File, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use nix::sys::stat::{mknod, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use sha2::{Digest, Sha256};
use tar::EntryType;

use crate::layer_limits::CountingReader;
pub use crate::layer_limits::LayerLimits;
use crate::{io_err, ImageError, Result};

/// What applying a layer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// `sha256:<hex>` of the uncompressed tar stream.
    pub diff_id: String,
    /// The size of the uncompressed tar stream in bytes.
    pub size: u64,
}

fn bad_layer(msg: impl std::fmt::Display) -> ImageError {
    ImageError::InvalidArgument(format!("invalid layer: {msg}"))
}

/// Wraps `r` in a decompressor when it starts with the gzip magic. zstd, xz and bzip2 streams are
/// refused as unsupported.
pub fn maybe_decompress<'a>(mut r: Box<dyn Read + 'a>) -> Result<Box<dyn Read + 'a>> {
    let mut head = [0u8; 6];
    let mut n = 0;
    while n < head.len() {
        let k = match r.read(&mut head[n..]) {
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err("read stream", e)),
        };
        if k == 0 {
            break;
        }
        n += k;
    }
    let h = &head[..n];
    let chained = io::Cursor::new(h.to_vec()).chain(r);
    if h.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(MultiGzDecoder::new(chained)))
    } else if h.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Err(ImageError::InvalidArgument(
            "zstd-compressed streams are not supported".into(),
        ))
    } else if h.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) || h.starts_with(b"BZh") {
        Err(ImageError::InvalidArgument(
            "xz/bzip2-compressed streams are not supported".into(),
        ))
    } else {
        Ok(Box::new(chained))
    }
}

/// A reader that hashes and counts what passes through it, optionally copying it to a writer,
/// and stops at the layer limits (the reason kept in `broken`).
struct HashingReader<'a, 'b> {
    inner: Box<dyn Read + 'a>,
    hasher: Sha256,
    size: u64,
    tee: Option<&'b mut dyn Write>,
    limits: LayerLimits,
    compressed: std::rc::Rc<std::cell::Cell<u64>>,
    broken: Option<String>,
}

impl Read for HashingReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        if let Some(why) = self.limits.broken_by(self.size, self.compressed.get()) {
            self.broken = Some(why.clone());
            return Err(io::Error::other(why));
        }
        if let Some(t) = self.tee.as_mut() {
            t.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}

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

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
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

struct Applier<'a> {
    root: &'a Path,
    root_user: bool,
    /// Directories whose mtime is set once all entries are written.
    dir_times: Vec<(PathBuf, u64)>,
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

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<()> {
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

fn set_mtime(path: &Path, mtime: u64) {
    let ts = TimeSpec::new(mtime as i64, 0);
    // Best effort: a failed timestamp does not make the layer wrong.
    let _ = nix::sys::stat::utimensat(None, path, &ts, &ts, UtimensatFlags::NoFollowSymlink);
}

/// Applies the (optionally gzip'd) layer tar `src` into the existing, empty directory `dest`.
/// The uncompressed stream is copied to `tee` when given. On error `dest` is left in an
/// unspecified state: the caller removes it.
///
/// A stream that breaks `limits` stops there with an error saying which.
pub fn apply_layer(
    src: &mut dyn Read,
    dest: &Path,
    tee: Option<&mut dyn Write>,
    limits: LayerLimits,
) -> Result<Applied> {
    let compressed = std::rc::Rc::new(std::cell::Cell::new(0));
    let counted = CountingReader {
        inner: src,
        count: compressed.clone(),
    };
    let plain = maybe_decompress(Box::new(io::BufReader::with_capacity(1 << 16, counted)))?;
    let mut hr = HashingReader {
        inner: plain,
        hasher: Sha256::new(),
        size: 0,
        tee,
        limits,
        compressed,
        broken: None,
    };
    let result = unpack(&mut hr, dest);
    if let Some(why) = hr.broken.take() {
        return Err(ImageError::InvalidArgument(why));
    }
    result?;
    Ok(Applied {
        diff_id: format!("sha256:{}", hex::encode(hr.hasher.finalize())),
        size: hr.size,
    })
}

/// Applies the entries of the tar stream `hr` under `dest`, then reads its padding.
fn unpack(hr: &mut HashingReader<'_, '_>, dest: &Path) -> Result<()> {
    {
        let mut ar = tar::Archive::new(&mut *hr);
        let mut ap = Applier {
            root: dest,
            root_user: is_root(),
            dir_times: Vec::new(),
        };
        let entries = ar.entries().map_err(bad_layer)?;
        for entry in entries {
            let mut entry = entry.map_err(bad_layer)?;
            ap.entry(&mut entry)?;
        }
        for (p, t) in ap.dir_times.iter().rev() {
            set_mtime(p, *t);
        }
    }
    // Hash (and tee) the end-of-archive padding too.
    io::copy(hr, &mut io::sink()).map_err(bad_layer)?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    /// Builds tar archives with arbitrary (even malicious) names.
    pub struct TarBuilder {
        b: tar::Builder<Vec<u8>>,
    }

    impl Default for TarBuilder {
        fn default() -> Self {
            Self::new()
        }
    }

    impl TarBuilder {
        pub fn new() -> Self {
            TarBuilder {
                b: tar::Builder::new(Vec::new()),
            }
        }

        fn header(name: &str, kind: EntryType, mode: u32, size: u64) -> tar::Header {
            let mut h = tar::Header::new_ustar();
            let bytes = name.as_bytes();
            assert!(bytes.len() < 100);
            let old = h.as_old_mut();
            old.name = [0; 100];
            old.name[..bytes.len()].copy_from_slice(bytes);
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(size);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_700_000_000);
            h
        }

        pub fn file(mut self, name: &str, data: &[u8]) -> Self {
            let mut h = Self::header(name, EntryType::Regular, 0o644, data.len() as u64);
            h.set_cksum();
            self.b.append(&h, data).unwrap();
            self
        }

        pub fn file_mode(mut self, name: &str, data: &[u8], mode: u32) -> Self {
            let mut h = Self::header(name, EntryType::Regular, mode, data.len() as u64);
            h.set_cksum();
            self.b.append(&h, data).unwrap();
            self
        }

        pub fn dir(mut self, name: &str) -> Self {
            let mut h = Self::header(name, EntryType::Directory, 0o755, 0);
            h.set_cksum();
            self.b.append(&h, io::empty()).unwrap();
            self
        }

        pub fn link(mut self, name: &str, target: &str, kind: EntryType) -> Self {
            let mut h = Self::header(name, kind, 0o777, 0);
            let t = target.as_bytes();
            let old = h.as_old_mut();
            old.linkname = [0; 100];
            old.linkname[..t.len()].copy_from_slice(t);
            h.set_cksum();
            self.b.append(&h, io::empty()).unwrap();
            self
        }

        pub fn fifo(mut self, name: &str) -> Self {
            let mut h = Self::header(name, EntryType::Fifo, 0o600, 0);
            h.set_cksum();
            self.b.append(&h, io::empty()).unwrap();
            self
        }

        pub fn chardev(mut self, name: &str, major: u32, minor: u32) -> Self {
            let mut h = Self::header(name, EntryType::Char, 0o666, 0);
            h.set_device_major(major).unwrap();
            h.set_device_minor(minor).unwrap();
            h.set_cksum();
            self.b.append(&h, io::empty()).unwrap();
            self
        }

        pub fn owned_file(mut self, name: &str, uid: u64, gid: u64) -> Self {
            let mut h = Self::header(name, EntryType::Regular, 0o640, 1);
            h.set_uid(uid);
            h.set_gid(gid);
            h.set_cksum();
            self.b.append(&h, &b"o"[..]).unwrap();
            self
        }

        /// A PAX extended header applying `key=value` to the next entry.
        pub fn pax(mut self, key: &str, value: &str) -> Self {
            let body = format!(" {key}={value}\n");
            let mut len = body.len() + 1;
            while format!("{len}{body}").len() != len {
                len += 1;
            }
            let rec = format!("{len}{body}");
            let mut h = Self::header("PaxHeader", EntryType::XHeader, 0o644, rec.len() as u64);
            h.set_cksum();
            self.b.append(&h, rec.as_bytes()).unwrap();
            self
        }

        pub fn build(self) -> Vec<u8> {
            self.b.into_inner().unwrap()
        }
    }

    fn apply(data: &[u8]) -> (tempfile::TempDir, Result<Applied>) {
        let dir = tempfile::tempdir().unwrap();
        let r = apply_layer(&mut &data[..], dir.path(), None, LayerLimits::default());
        (dir, r)
    }

    fn assert_escape(r: Result<Applied>) {
        match r {
            Err(ImageError::InvalidArgument(m)) => assert!(m.starts_with("invalid layer"), "{m}"),
            other => panic!("expected refusal, got {other:?}"),
        }
    }

    #[test]
    fn basic_entries_and_diff_id() {
        let data = TarBuilder::new()
            .dir("bin/")
            .file_mode("bin/sh", b"#!shell", 0o4755)
            .link("bin/ash", "sh", EntryType::Symlink)
            .link("bin/sh2", "bin/sh", EntryType::Link)
            .file("./etc/hostname", b"x")
            .fifo("run/fifo")
            .build();
        let (dir, r) = apply(&data);
        let a = r.unwrap();
        assert_eq!(a.diff_id, crate::content::digest_bytes(&data));
        assert_eq!(a.size, data.len() as u64);
        let root = dir.path();
        assert_eq!(fs::read(root.join("bin/sh")).unwrap(), b"#!shell");
        let m = fs::metadata(root.join("bin/sh")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o4755);
        assert_eq!(m.mtime(), 1_700_000_000);
        assert_eq!(
            fs::read_link(root.join("bin/ash")).unwrap(),
            Path::new("sh")
        );
        assert_eq!(fs::metadata(root.join("bin/sh2")).unwrap().ino(), m.ino());
        assert_eq!(fs::read(root.join("etc/hostname")).unwrap(), b"x");
        assert!(fs::symlink_metadata(root.join("run/fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(
            fs::metadata(root.join("bin")).unwrap().mtime(),
            1_700_000_000
        );
    }

    #[test]
    fn gzip_is_detected() {
        let data = TarBuilder::new().file("a", b"hello").build();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let (dir, r) = apply(&gz);
        assert_eq!(r.unwrap().diff_id, crate::content::digest_bytes(&data));
        assert_eq!(fs::read(dir.path().join("a")).unwrap(), b"hello");
    }

    #[test]
    fn tee_receives_uncompressed_stream() {
        let data = TarBuilder::new().file("a", b"hello").build();
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        apply_layer(
            &mut &data[..],
            dir.path(),
            Some(&mut out),
            LayerLimits::default(),
        )
        .unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn whiteouts_and_opaque() {
        let data = TarBuilder::new()
            .dir("etc/")
            .file("etc/.wh.passwd", b"")
            .file("opq/.wh..wh..opq", b"")
            .build();
        let (dir, r) = apply(&data);
        r.unwrap();
        let root = dir.path();
        assert!(!root.join("etc/.wh.passwd").exists());
        if is_root() {
            let m = fs::symlink_metadata(root.join("etc/passwd")).unwrap();
            assert!(m.file_type().is_char_device());
            assert_eq!(m.rdev(), 0);
            let mut buf = [0u8; 8];
            let p = CString::new(root.join("opq").as_os_str().as_bytes()).unwrap();
            let n = CString::new("trusted.overlay.opaque").unwrap();
            if let Ok(len) = berth_sys::file::lgetxattr(&p, &n, &mut buf) {
                assert_eq!(&buf[..len], b"y");
            }
        }
        assert!(root.join("opq").is_dir());
        assert!(!root.join("opq/.wh..wh..opq").exists());
    }

    #[test]
    fn dotdot_escape_refused() {
        let (_d, r) = apply(&TarBuilder::new().file("../evil", b"x").build());
        assert_escape(r);
        let (_d, r) = apply(&TarBuilder::new().file("a/../../evil", b"x").build());
        assert_escape(r);
    }

    #[test]
    fn dotdot_inside_is_fine() {
        let (dir, r) = apply(&TarBuilder::new().file("a/b/../c", b"x").build());
        r.unwrap();
        assert_eq!(fs::read(dir.path().join("a/c")).unwrap(), b"x");
    }

    #[test]
    fn absolute_path_is_contained() {
        let (dir, r) = apply(
            &TarBuilder::new()
                .file("/etc/passwd-berth-test", b"x")
                .build(),
        );
        r.unwrap();
        assert_eq!(
            fs::read(dir.path().join("etc/passwd-berth-test")).unwrap(),
            b"x"
        );
        assert!(!Path::new("/etc/passwd-berth-test").exists());
    }

    #[test]
    fn write_through_symlink_refused() {
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().to_str().unwrap().to_string();
        let data = TarBuilder::new()
            .link("a", &target, EntryType::Symlink)
            .file("a/x", b"evil")
            .build();
        let (_d, r) = apply(&data);
        assert_escape(r);
        assert!(!outside.path().join("x").exists());
        let data = TarBuilder::new()
            .link("a", "/", EntryType::Symlink)
            .file("a/etc/x", b"evil")
            .build();
        let (_d, r) = apply(&data);
        assert_escape(r);
    }

    #[test]
    fn symlink_final_component_is_replaced_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("f"), b"orig").unwrap();
        let target = outside.path().join("f").to_str().unwrap().to_string();
        let data = TarBuilder::new()
            .link("a", &target, EntryType::Symlink)
            .file("a", b"new")
            .build();
        let (dir, r) = apply(&data);
        r.unwrap();
        assert_eq!(fs::read(outside.path().join("f")).unwrap(), b"orig");
        assert_eq!(fs::read(dir.path().join("a")).unwrap(), b"new");
    }

    #[test]
    fn hardlink_escape_refused() {
        let (_d, r) = apply(
            &TarBuilder::new()
                .link("x", "../../x", EntryType::Link)
                .build(),
        );
        assert_escape(r);
        let (_d, r) = apply(
            &TarBuilder::new()
                .link("x", "/etc/passwd", EntryType::Link)
                .build(),
        );
        assert_escape(r); // not extracted in the layer
        let data = TarBuilder::new()
            .link("s", "/etc", EntryType::Symlink)
            .link("x", "s/passwd", EntryType::Link)
            .build();
        let (_d, r) = apply(&data);
        assert_escape(r);
    }

    #[test]
    fn garbage_refused() {
        let (_d, r) = apply(&[0x42u8; 1024]);
        assert!(r.is_err());
    }

    #[test]
    fn devices_ownership_and_xattrs() {
        let data = TarBuilder::new()
            .chardev("dev/null", 1, 3)
            .owned_file("home/f", 1000, 1001)
            .pax("SCHILY.xattr.user.berth", "v1")
            .file("x", b"x")
            .build();
        let (dir, r) = apply(&data);
        r.unwrap();
        let root = dir.path();
        assert_eq!(fs::read(root.join("x")).unwrap(), b"x");
        if is_root() {
            let m = fs::symlink_metadata(root.join("dev/null")).unwrap();
            assert!(m.file_type().is_char_device());
            assert_eq!(m.rdev(), libc::makedev(1, 3));
            let m = fs::metadata(root.join("home/f")).unwrap();
            assert_eq!((m.uid(), m.gid()), (1000, 1001));
            assert_eq!(m.mode() & 0o7777, 0o640);
        }
        let mut buf = [0u8; 8];
        let p = CString::new(root.join("x").as_os_str().as_bytes()).unwrap();
        let n = CString::new("user.berth").unwrap();
        if let Ok(len) = berth_sys::file::lgetxattr(&p, &n, &mut buf) {
            assert_eq!(&buf[..len], b"v1");
        }
    }

    #[test]
    fn hardlink_to_missing_or_directory_refused() {
        let (_d, r) = apply(
            &TarBuilder::new()
                .link("x", "later", EntryType::Link)
                .file("later", b"x")
                .build(),
        );
        assert_escape(r);
        let (_d, r) = apply(
            &TarBuilder::new()
                .dir("d/")
                .link("x", "d", EntryType::Link)
                .build(),
        );
        assert_escape(r);
    }

    #[test]
    fn truncated_stream_refused() {
        let data = TarBuilder::new().file("big", &[7u8; 4096]).build();
        let (_d, r) = apply(&data[..1024]);
        assert!(r.is_err());
    }

    #[test]
    fn zstd_refused() {
        let (_d, r) = apply(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]);
        assert!(matches!(r, Err(ImageError::InvalidArgument(m)) if m.contains("zstd")));
    }

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
