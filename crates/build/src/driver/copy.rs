//! COPY/ADD planning: sources (globs, directories, the whole context) resolved against the
//! build context (minus `.dockerignore`d files) or a mounted image, Docker's destination rules
//! (a trailing `/` or several sources make the destination a directory; a directory source
//! copies its contents; relative destinations are under WORKDIR), and the content digest of
//! the copied files (names, content, mode, owner, link targets) that goes into the cache key
//! and into the history entry (`file:<hex>`, `dir:<hex>`, `multi:<hex>`).

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::backend::{CopyEntry, CopySource};
use crate::error::BuildError;
use crate::ignore::{clean_path, IgnoreMatcher};

/// A tree sources are taken from: the build context (with its ignore rules) or an image's
/// mounted root filesystem.
pub struct SourceTree<'a> {
    pub root: &'a Path,
    pub matcher: Option<&'a IgnoreMatcher>,
    /// Name used in "not found" errors.
    pub is_context: bool,
}

fn io_err(context: &str, e: std::io::Error) -> BuildError {
    BuildError::InvalidInput(format!("{context}: {e}"))
}

impl SourceTree<'_> {
    fn excluded(&self, rel: &str) -> bool {
        !rel.is_empty() && self.matcher.is_some_and(|m| m.is_excluded(rel))
    }

    /// The relative paths a source pattern names (`""` is the root itself), sorted.
    pub fn resolve(&self, cmd: &str, pattern: &str) -> Result<Vec<String>, BuildError> {
        let cleaned = clean_path(pattern);
        let cleaned = cleaned.trim_start_matches('/');
        if cleaned == ".." || cleaned.starts_with("../") {
            return Err(BuildError::InvalidInput(format!(
                "{cmd} failed: forbidden path outside the build context: {pattern} ()"
            )));
        }
        if cleaned.is_empty() || cleaned == "." {
            return Ok(vec![String::new()]);
        }
        let mut found = vec![String::new()];
        for component in cleaned.split('/') {
            let mut next = Vec::new();
            let has_glob = component.contains(['*', '?', '[']);
            for base in &found {
                // Symlinks in the directories walked through stay inside the root.
                let Some(base) = self.follow_in_root(base) else {
                    continue;
                };
                let base = &base;
                let dir = self.root.join(base);
                if !has_glob {
                    let rel = join_rel(base, component);
                    if std::fs::symlink_metadata(self.root.join(&rel)).is_ok() {
                        next.push(rel);
                    }
                    continue;
                }
                let Ok(rd) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in rd.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if crate::ignore::glob_matches(component, &name) {
                        next.push(join_rel(base, &name));
                    }
                }
            }
            found = next;
        }
        found.retain(|p| !self.excluded(p));
        found.sort();
        if found.is_empty() {
            let what = if self.is_context {
                "file not found in build context or excluded by .dockerignore"
            } else {
                "file not found in image"
            };
            return Err(BuildError::InvalidInput(format!(
                "{cmd} failed: {what}: stat {cleaned}: file does not exist"
            )));
        }
        Ok(found)
    }

    /// Resolves every symlink of `rel` as if `root` were `/` (absolute targets and `..` never
    /// leave it). `None` on a symlink loop.
    pub fn follow_in_root(&self, rel: &str) -> Option<String> {
        let mut parts: Vec<String> = Vec::new();
        let mut queue: std::collections::VecDeque<String> =
            rel.split('/').map(str::to_string).collect();
        let mut hops = 0;
        while let Some(c) = queue.pop_front() {
            match c.as_str() {
                "" | "." => continue,
                ".." => {
                    parts.pop();
                    continue;
                }
                _ => parts.push(c),
            }
            let host = self.root.join(parts.join("/"));
            let is_link =
                std::fs::symlink_metadata(&host).is_ok_and(|m| m.file_type().is_symlink());
            if !is_link {
                continue;
            }
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = std::fs::read_link(&host).ok()?;
            let target = target.to_string_lossy().into_owned();
            parts.pop();
            if target.starts_with('/') {
                parts.clear();
            }
            for comp in target.split('/').rev() {
                queue.push_front(comp.to_string());
            }
        }
        Some(parts.join("/"))
    }

    /// Everything below directory `rel` that is kept, parents first, sorted.
    pub fn descendants(&self, rel: &str) -> Result<Vec<String>, BuildError> {
        let mut out = Vec::new();
        self.walk(rel, &mut out)?;
        Ok(out)
    }

    fn walk(&self, rel: &str, out: &mut Vec<String>) -> Result<bool, BuildError> {
        let dir = self.root.join(rel);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map_err(|e| io_err(&dir.display().to_string(), e))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut any = false;
        for name in names {
            let child = join_rel(rel, &name);
            let meta =
                std::fs::symlink_metadata(self.root.join(&child)).map_err(|e| io_err(&child, e))?;
            let excluded = self.excluded(&child);
            if meta.is_dir() {
                if excluded && !self.matcher.is_some_and(|m| m.has_exceptions()) {
                    continue;
                }
                let pos = out.len();
                out.push(child.clone());
                let kept = self.walk(&child, out)?;
                if excluded && !kept {
                    out.remove(pos);
                } else {
                    any = true;
                }
            } else if !excluded {
                out.push(child);
                any = true;
            }
        }
        Ok(any)
    }
}

fn join_rel(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

/// Joins an absolute directory and a relative path, cleaned.
pub fn join_abs(dir: &str, rel: &str) -> String {
    if rel.is_empty() {
        return clean_path(dir);
    }
    clean_path(&format!("{}/{rel}", dir.trim_end_matches('/')))
}

/// The destination of a COPY: absolute (relative ones are under `workdir`), and whether it is
/// written as a directory (`/` at the end, `.`).
pub fn destination(dest: &str, workdir: &str) -> (String, bool) {
    let dir_like = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    let abs = if dest.starts_with('/') {
        clean_path(dest)
    } else {
        let base = if workdir.is_empty() { "/" } else { workdir };
        join_abs(base, dest)
    };
    (abs, dir_like)
}

/// One resolved source: a path in a tree, with what it is.
pub struct Matched {
    /// The host path, symlinks followed inside the tree's root.
    pub host: PathBuf,
    /// The same, relative to the root.
    pub rel: String,
    /// The name the source was matched by (before following a symlink): a file copied into a
    /// directory gets this name.
    pub name: String,
    pub is_dir: bool,
}

impl Matched {
    /// Resolves a matched relative path of `tree`: a symlink at the top is followed (inside
    /// the root), as Docker does for COPY sources.
    pub fn resolve(tree: &SourceTree<'_>, rel: &str) -> Result<Self, BuildError> {
        let name = rel.rsplit('/').next().unwrap_or("").to_string();
        let resolved = tree.follow_in_root(rel).ok_or_else(|| {
            BuildError::InvalidInput(format!("too many levels of symbolic links: {rel}"))
        })?;
        let host = tree.root.join(&resolved);
        let is_dir = std::fs::metadata(&host).is_ok_and(|m| m.is_dir());
        Ok(Matched {
            host,
            rel: resolved,
            name,
            is_dir,
        })
    }
}

/// Builds the entries of one source that is a directory: the destination directory itself and
/// every kept descendant.
pub fn dir_entries(
    tree: &SourceTree<'_>,
    src: &Matched,
    dest: &str,
) -> Result<Vec<CopyEntry>, BuildError> {
    let mut out = vec![CopyEntry {
        dest: dest.to_string(),
        source: CopySource::Dir(src.host.clone()),
    }];
    for child in tree.descendants(&src.rel)? {
        let host = tree.root.join(&child);
        let below = child
            .strip_prefix(&src.rel)
            .unwrap_or(&child)
            .trim_start_matches('/');
        out.push(CopyEntry {
            dest: join_abs(dest, below),
            source: host_source(&host)?,
        });
    }
    Ok(out)
}

/// The kind of a host path as a copy source (not following a final symlink).
pub fn host_source(host: &Path) -> Result<CopySource, BuildError> {
    let meta =
        std::fs::symlink_metadata(host).map_err(|e| io_err(&host.display().to_string(), e))?;
    Ok(if meta.file_type().is_symlink() {
        CopySource::Symlink(host.to_path_buf())
    } else if meta.is_dir() {
        CopySource::Dir(host.to_path_buf())
    } else {
        CopySource::File(host.to_path_buf())
    })
}

/// Whether a file is an archive ADD extracts: tar (`ustar` at 257) or gzip/bzip2/xz.
pub fn is_archive(path: &Path) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = [0u8; 262];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let head = &head[..n];
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(b"BZh")
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00])
        || (n >= 262 && &head[257..262] == b"ustar")
}

/// The digest of a list of entries: destination names, kinds, modes, owners, sizes, content
/// and link targets.
pub fn digest_entries(entries: &[CopyEntry]) -> Result<String, BuildError> {
    let mut h = Sha256::new();
    for e in entries {
        h.update(e.dest.as_bytes());
        h.update([0]);
        match &e.source {
            CopySource::File(p) | CopySource::Archive(p) => {
                let meta =
                    std::fs::metadata(p).map_err(|err| io_err(&p.display().to_string(), err))?;
                h.update(format!(
                    "f {:o} {} {} {}",
                    meta.mode() & 0o7777,
                    meta.uid(),
                    meta.gid(),
                    meta.len()
                ));
                let mut f =
                    std::fs::File::open(p).map_err(|err| io_err(&p.display().to_string(), err))?;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = f
                        .read(&mut buf)
                        .map_err(|err| io_err(&p.display().to_string(), err))?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
            }
            CopySource::Dir(p) => {
                let meta =
                    std::fs::metadata(p).map_err(|err| io_err(&p.display().to_string(), err))?;
                h.update(format!(
                    "d {:o} {} {}",
                    meta.mode() & 0o7777,
                    meta.uid(),
                    meta.gid()
                ));
            }
            CopySource::Symlink(p) => {
                let meta = std::fs::symlink_metadata(p)
                    .map_err(|err| io_err(&p.display().to_string(), err))?;
                let target =
                    std::fs::read_link(p).map_err(|err| io_err(&p.display().to_string(), err))?;
                h.update(format!(
                    "l {} {} {}",
                    meta.uid(),
                    meta.gid(),
                    target.display()
                ));
            }
            CopySource::Bytes { content, mode } => {
                h.update(format!("b {mode:o} {}", content.len()));
                h.update(content);
            }
        }
        h.update([0]);
    }
    Ok(hex::encode(h.finalize()))
}

/// `file:<hex>`, `dir:<hex>` for one source; `multi:<hex>` (the hash of the joined hashes) for
/// several, as the classic builder writes it in history.
pub fn source_hash(per_source: &[(bool, String)]) -> String {
    match per_source {
        [(is_dir, h)] => format!("{}:{h}", if *is_dir { "dir" } else { "file" }),
        many => {
            let joined: Vec<String> = many
                .iter()
                .map(|(d, h)| format!("{}:{h}", if *d { "dir" } else { "file" }))
                .collect();
            let mut s = Sha256::new();
            s.update(joined.join(",").as_bytes());
            format!("multi:{}", hex::encode(s.finalize()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, rel: &str, content: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    #[test]
    fn resolves_globs_and_ignores() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "a.txt",
            "b.txt",
            "c.log",
            "src/x.rs",
            "src/y.rs",
            "src/skip.tmp",
        ] {
            touch(root, f, f);
        }
        let m = IgnoreMatcher::parse("*.log\nsrc/*.tmp\n").unwrap();
        let tree = SourceTree {
            root,
            matcher: Some(&m),
            is_context: true,
        };
        assert_eq!(
            tree.resolve("COPY", "*.txt").unwrap(),
            vec!["a.txt", "b.txt"]
        );
        assert_eq!(
            tree.resolve("COPY", "./src/*.rs").unwrap(),
            vec!["src/x.rs", "src/y.rs"]
        );
        assert_eq!(tree.resolve("COPY", ".").unwrap(), vec![""]);
        let e = tree.resolve("COPY", "c.log").unwrap_err();
        assert_eq!(
            e.to_string(),
            "COPY failed: file not found in build context or excluded by .dockerignore: stat c.log: file does not exist"
        );
        assert!(tree
            .resolve("COPY", "../etc/passwd")
            .unwrap_err()
            .to_string()
            .contains("outside the build context"));
        assert_eq!(
            tree.descendants("src").unwrap(),
            vec!["src/x.rs", "src/y.rs"]
        );
    }

    #[test]
    fn symlinks_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(root, "usr/lib/libx.so", "x");
        touch(root, "real.txt", "r");
        std::os::unix::fs::symlink("/usr/lib", root.join("lib")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("../../real.txt", root.join("usr/link.txt")).unwrap();
        let tree = SourceTree {
            root,
            matcher: None,
            is_context: false,
        };
        assert_eq!(
            tree.resolve("COPY", "lib/libx.so").unwrap(),
            vec!["usr/lib/libx.so"]
        );
        assert_eq!(
            tree.follow_in_root("usr/link.txt").as_deref(),
            Some("real.txt")
        );
        // /etc of the host is never reached: `escape` points to <root>/etc, which is missing.
        assert!(tree.resolve("COPY", "escape/passwd").is_err());
        let m = Matched::resolve(&tree, "usr/link.txt").unwrap();
        assert_eq!(
            (m.rel.as_str(), m.name.as_str(), m.is_dir),
            ("real.txt", "link.txt", false)
        );
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert!(Matched::resolve(&tree, "loop").is_err());
    }

    #[test]
    fn destinations() {
        assert_eq!(destination("/app/", ""), ("/app".into(), true));
        assert_eq!(destination("rel", "/w"), ("/w/rel".into(), false));
        assert_eq!(destination(".", "/w"), ("/w".into(), true));
        assert_eq!(destination("x/", ""), ("/x".into(), true));
        assert_eq!(join_abs("/", "a/b"), "/a/b");
    }

    #[test]
    fn digests_change_with_content_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(root, "f", "one");
        let e = vec![CopyEntry {
            dest: "/f".into(),
            source: CopySource::File(root.join("f")),
        }];
        let d1 = digest_entries(&e).unwrap();
        assert_eq!(d1, digest_entries(&e).unwrap());
        touch(root, "f", "two");
        let d2 = digest_entries(&e).unwrap();
        assert_ne!(d1, d2);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root.join("f"), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_ne!(d2, digest_entries(&e).unwrap());
        let renamed = vec![CopyEntry {
            dest: "/g".into(),
            source: CopySource::File(root.join("f")),
        }];
        assert_ne!(
            digest_entries(&renamed).unwrap(),
            digest_entries(&e).unwrap()
        );
        assert!(source_hash(&[(false, "ab".into())]).starts_with("file:ab"));
        assert!(source_hash(&[(true, "ab".into()), (false, "cd".into())]).starts_with("multi:"));
    }

    #[test]
    fn archives_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.gz"), [0x1f, 0x8b, 8, 0]).unwrap();
        std::fs::write(dir.path().join("plain"), "hello").unwrap();
        assert!(is_archive(&dir.path().join("a.gz")));
        assert!(!is_archive(&dir.path().join("plain")));
    }
}
