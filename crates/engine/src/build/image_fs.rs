//! Reading an image's file system without mounting it: paths are looked up through the
//! image's unpacked layer directories, top-most first (a 0:0 character device is a deletion),
//! following symbolic links inside the image, never out of it.
//!
//! The image is hostile input: each lookup in a layer directory is one `openat2` with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` ([`berth_sys::root::open_beneath`]), so a symlink a
//! lower layer has where an upper layer has a directory can never lead the host path out of the
//! layer; file contents are read only from regular files and never past [`READ_LIMIT`].

use std::fs::{File, Metadata};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_sys::root::{open_beneath, read_pinned, readlink_fd};

/// The most of one image file (`/etc/passwd`, `/etc/group`) a build reads into memory.
pub const READ_LIMIT: u64 = 8 << 20;

/// `rel` in layer directory `layer`, itself (`O_PATH | O_NOFOLLOW`), with no symlink on the way.
fn pin(layer: &Path, rel: &str) -> Option<OwnedFd> {
    open_beneath(layer, rel, libc::O_PATH | libc::O_NOFOLLOW).ok()
}

fn metadata(fd: &OwnedFd) -> Option<Metadata> {
    File::from(fd.try_clone().ok()?).metadata().ok()
}

/// An image's layer directories, top-most first.
pub struct ImageFs {
    layers: Vec<PathBuf>,
}

const MAX_LINKS: usize = 40;

impl ImageFs {
    /// `bottom_first`: the layer `diff` dirs as the image store lists them.
    pub fn new(mut bottom_first: Vec<PathBuf>) -> Self {
        bottom_first.reverse();
        ImageFs {
            layers: bottom_first,
        }
    }

    /// The entry at the clean relative path `rel` (no symlink resolution).
    fn entry(&self, rel: &str) -> Option<Metadata> {
        if rel.is_empty() {
            return self.layers.first().and_then(|l| std::fs::metadata(l).ok());
        }
        for l in &self.layers {
            if let Some(m) = pin(l, rel).as_ref().and_then(metadata) {
                let whiteout = m.file_type().is_char_device() && m.rdev() == 0;
                return (!whiteout).then_some(m);
            }
        }
        None
    }

    /// Resolves `path` (absolute) inside the image, following symlinks in every component
    /// (the last one only when `follow_last`). Returns the resolved relative path and its
    /// metadata, or `None` when it does not exist.
    pub fn resolve(&self, path: &str, follow_last: bool) -> Option<(String, Metadata)> {
        let mut pending: Vec<String> = components(path).into_iter().rev().collect();
        let mut cur: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(comp) = pending.pop() {
            if comp == ".." {
                cur.pop();
                continue;
            }
            cur.push(comp);
            let rel = cur.join("/");
            let m = self.entry(&rel)?;
            let last = pending.is_empty();
            if m.file_type().is_symlink() && (!last || follow_last) {
                links += 1;
                if links > MAX_LINKS {
                    return None;
                }
                let target = self.read_link(&rel)?;
                cur.pop();
                if target.starts_with('/') {
                    cur.clear();
                }
                for c in components(&target).into_iter().rev() {
                    pending.push(c);
                }
            }
        }
        let rel = cur.join("/");
        let m = self.entry(&rel)?;
        Some((rel, m))
    }

    fn read_link(&self, rel: &str) -> Option<String> {
        for l in &self.layers {
            if let Some(fd) = pin(l, rel) {
                let t = readlink_fd(fd.as_raw_fd()).ok()?;
                return Some(String::from_utf8_lossy(&t).into_owned());
            }
        }
        None
    }

    /// Whether `path` is a directory (following symlinks).
    pub fn is_dir(&self, path: &str) -> bool {
        self.resolve(path, true).is_some_and(|(_, m)| m.is_dir())
    }

    /// The metadata of `path` (not following a final symlink).
    pub fn lstat(&self, path: &str) -> Option<Metadata> {
        self.resolve(path, false).map(|(_, m)| m)
    }

    /// The contents of the regular file at `path`: empty when it is missing or not a regular
    /// file, an error when it is larger than [`READ_LIMIT`].
    pub fn read_file(&self, path: &str) -> Result<String, String> {
        let Some((rel, m)) = self.resolve(path, true) else {
            return Ok(String::new());
        };
        if !m.is_file() {
            return Ok(String::new());
        }
        for l in &self.layers {
            if let Some(fd) = pin(l, &rel) {
                let data = read_pinned(&fd, path, READ_LIMIT)
                    .map_err(|e| format!("reading the image's {e}"))?;
                return Ok(String::from_utf8_lossy(&data).into_owned());
            }
        }
        Ok(String::new())
    }
}

/// The components of a path, without `.` and empty ones (`..` kept).
pub fn components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn lookups_through_layers_and_links() {
        let bottom = tempfile::tempdir().unwrap();
        let top = tempfile::tempdir().unwrap();
        fs::create_dir_all(bottom.path().join("usr/lib")).unwrap();
        fs::write(bottom.path().join("usr/lib/f"), b"x").unwrap();
        std::os::unix::fs::symlink("usr/lib", bottom.path().join("lib")).unwrap();
        std::os::unix::fs::symlink("/../../etc", bottom.path().join("esc")).unwrap();
        fs::create_dir_all(top.path().join("etc")).unwrap();
        fs::write(
            top.path().join("etc/passwd"),
            b"root:x:0:0::/root:/bin/sh\n",
        )
        .unwrap();
        let img = ImageFs::new(vec![bottom.path().into(), top.path().into()]);
        assert!(img.is_dir("/usr/lib"));
        assert!(img.is_dir("/lib"));
        assert!(!img.is_dir("/lib/f"));
        assert!(img.lstat("/lib").unwrap().file_type().is_symlink());
        assert!(
            img.is_dir("/esc"),
            "a link climbing out stays inside the image"
        );
        assert!(img.read_file("/etc/passwd").unwrap().starts_with("root"));
        assert!(img.lstat("/nope").is_none());
    }

    #[test]
    fn a_lower_layers_link_never_leads_out_of_the_layer() {
        // The top layer has /etc as a directory without passwd; the bottom layer has /etc as a
        // link to a host directory holding one. A host path `bottom/etc/passwd` would follow
        // the link out of the image.
        let host = tempfile::tempdir().unwrap();
        fs::write(host.path().join("passwd"), b"evil:x:4242:4242::/:/bin/sh\n").unwrap();
        fs::write(host.path().join("group"), b"evil:x:4242:\n").unwrap();
        let bottom = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(host.path(), bottom.path().join("etc")).unwrap();
        let top = tempfile::tempdir().unwrap();
        fs::create_dir_all(top.path().join("etc")).unwrap();
        let img = ImageFs::new(vec![bottom.path().into(), top.path().into()]);
        assert!(img.lstat("/etc/passwd").is_none());
        assert_eq!(img.read_file("/etc/passwd").unwrap(), "");
        assert_eq!(img.read_file("/etc/group").unwrap(), "");
    }

    #[test]
    fn reads_only_regular_files_and_never_past_the_cap() {
        let layer = tempfile::tempdir().unwrap();
        fs::create_dir_all(layer.path().join("etc")).unwrap();
        nix::unistd::mkfifo(
            &layer.path().join("etc/group"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        let big = fs::File::create(layer.path().join("etc/passwd")).unwrap();
        big.set_len(READ_LIMIT * 100).unwrap();
        let img = ImageFs::new(vec![layer.path().into()]);
        assert_eq!(img.read_file("/etc/group").unwrap(), "");
        let e = img.read_file("/etc/passwd").unwrap_err();
        assert!(e.contains("larger than 8388608 bytes"), "{e}");
    }
}
