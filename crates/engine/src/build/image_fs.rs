//! Reading an image's file system without mounting it: paths are looked up through the
//! image's unpacked layer directories, top-most first (a 0:0 character device is a deletion),
//! following symbolic links inside the image, never out of it.

use std::fs::{self, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;

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
            return self.layers.first().and_then(|l| fs::metadata(l).ok());
        }
        for l in &self.layers {
            if let Ok(m) = fs::symlink_metadata(l.join(rel)) {
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
            if let Ok(t) = fs::read_link(l.join(rel)) {
                return Some(t.to_string_lossy().into_owned());
            }
            if fs::symlink_metadata(l.join(rel)).is_ok() {
                return None;
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

    /// The contents of the regular file at `path`, or empty.
    pub fn read_file(&self, path: &str) -> String {
        let Some((rel, m)) = self.resolve(path, true) else {
            return String::new();
        };
        if !m.is_file() {
            return String::new();
        }
        for l in &self.layers {
            if let Ok(s) = fs::read(l.join(&rel)) {
                return String::from_utf8_lossy(&s).into_owned();
            }
        }
        String::new()
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
        assert!(img.read_file("/etc/passwd").starts_with("root"));
        assert!(img.lstat("/nope").is_none());
    }
}
