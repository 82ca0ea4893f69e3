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
//!
//! This module owns `apply_layer` and the unpack loop; `stream` holds the decompressing,
//! hashing and limit-checking reader, `entry` writes each entry (whiteouts included), and
//! `fsops` the path and removal helpers other modules use too.

mod entry;
mod fsops;
mod stream;

use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::layer_limits::CountingReader;
pub use crate::layer_limits::LayerLimits;
use crate::{ImageError, Result};
use entry::{is_root, set_mtime, Applier};
pub(crate) use fsops::{clean_path, lsetxattr, remove_any, remove_tree};
pub use stream::maybe_decompress;
use stream::HashingReader;

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
    use std::ffi::CString;
    use std::fs;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    use tar::EntryType;

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
}
