//! The layer tar of a build's `COPY`/`ADD` (and of `WORKDIR`'s directory): the entries the
//! driver resolved, with their parent directories. A parent that exists in the image is
//! written with the image's own mode, owner and time (as overlay's copy-up would keep them),
//! a missing one as a root-owned 0755 directory.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;

use berth_build::backend::{CopyEntry, CopySource};
use tar::{EntryType, Header};

use super::image_fs::{components, ImageFs};

/// Ownership and mode rules of one COPY.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOwner {
    /// `--chown`, resolved.
    pub chown: Option<(u32, u32)>,
    /// `--chmod`.
    pub chmod: Option<u32>,
    /// Keep the source's owner when there is no `--chown` (`COPY --from`).
    pub preserve_owner: bool,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Writes layer tars for one step.
pub struct LayerWriter<'a, W: Write> {
    tar: tar::Builder<W>,
    image: &'a ImageFs,
    written_dirs: BTreeSet<String>,
    pub entries: usize,
}

impl<'a, W: Write> LayerWriter<'a, W> {
    pub fn new(out: W, image: &'a ImageFs) -> Self {
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        LayerWriter {
            tar,
            image,
            written_dirs: BTreeSet::new(),
            entries: 0,
        }
    }

    pub fn finish(self) -> io::Result<W> {
        self.tar.into_inner()
    }

    /// Writes the missing parents of the relative path `rel`.
    fn parents(&mut self, rel: &str) -> io::Result<()> {
        let comps = components(rel);
        for i in 1..comps.len() {
            let dir = comps[..i].join("/");
            self.ensure_dir(&dir, None)?;
        }
        Ok(())
    }

    /// Writes the directory `rel` once: with `meta` (mode, uid, gid) when given, else as the
    /// image has it, else 0755 root.
    pub fn ensure_dir(&mut self, rel: &str, meta: Option<(u32, u32, u32)>) -> io::Result<()> {
        if self.written_dirs.contains(rel) {
            return Ok(());
        }
        self.parents(rel)?;
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Directory);
        h.set_size(0);
        match (meta, self.image.lstat(&format!("/{rel}"))) {
            (Some((mode, uid, gid)), _) => {
                h.set_mode(mode);
                h.set_uid(uid.into());
                h.set_gid(gid.into());
                h.set_mtime(now());
            }
            (None, Some(m)) if m.is_dir() => {
                h.set_mode(m.mode() & 0o7777);
                h.set_uid(m.uid().into());
                h.set_gid(m.gid().into());
                h.set_mtime(m.mtime().max(0) as u64);
            }
            _ => {
                h.set_mode(0o755);
                h.set_uid(0);
                h.set_gid(0);
                h.set_mtime(now());
            }
        }
        self.tar
            .append_data(&mut h, format!("{rel}/"), io::empty())?;
        self.written_dirs.insert(rel.to_string());
        self.entries += 1;
        Ok(())
    }

    /// Writes one COPY entry.
    pub fn entry(&mut self, e: &CopyEntry, owner: &CopyOwner) -> io::Result<()> {
        let rel = components(&e.dest).join("/");
        if rel.is_empty() {
            if let CopySource::Archive(p) = &e.source {
                return self.archive(p, "", owner);
            }
            return Ok(());
        }
        self.parents(&rel)?;
        let ids = |m: &fs::Metadata| -> (u32, u32) {
            match owner.chown {
                Some(ids) => ids,
                None if owner.preserve_owner => (m.uid(), m.gid()),
                None => (0, 0),
            }
        };
        match &e.source {
            CopySource::Dir(p) => {
                let m = fs::metadata(p)?;
                let (uid, gid) = ids(&m);
                let mode = owner.chmod.unwrap_or(m.mode() & 0o7777);
                self.written_dirs.remove(&rel);
                self.ensure_dir(&rel, Some((mode, uid, gid)))?;
            }
            CopySource::File(p) => {
                let m = fs::symlink_metadata(p)?;
                let (uid, gid) = ids(&m);
                let mut h = Header::new_gnu();
                h.set_entry_type(EntryType::Regular);
                h.set_mode(owner.chmod.unwrap_or(m.mode() & 0o7777));
                h.set_uid(uid.into());
                h.set_gid(gid.into());
                h.set_mtime(m.mtime().max(0) as u64);
                h.set_size(m.len());
                let f = File::open(p)?;
                self.tar.append_data(&mut h, &rel, f.take(m.len()))?;
                self.entries += 1;
            }
            CopySource::Symlink(p) => {
                let m = fs::symlink_metadata(p)?;
                let target = fs::read_link(p)?;
                let (uid, gid) = ids(&m);
                let mut h = Header::new_gnu();
                h.set_entry_type(EntryType::Symlink);
                h.set_mode(0o777);
                h.set_uid(uid.into());
                h.set_gid(gid.into());
                h.set_mtime(m.mtime().max(0) as u64);
                h.set_size(0);
                self.tar.append_link(&mut h, &rel, &target)?;
                self.entries += 1;
            }
            CopySource::Bytes { content, mode } => {
                let (uid, gid) = owner.chown.unwrap_or((0, 0));
                let mut h = Header::new_gnu();
                h.set_entry_type(EntryType::Regular);
                h.set_mode(owner.chmod.unwrap_or(*mode));
                h.set_uid(uid.into());
                h.set_gid(gid.into());
                h.set_mtime(now());
                h.set_size(content.len() as u64);
                self.tar.append_data(&mut h, &rel, content.as_slice())?;
                self.entries += 1;
            }
            CopySource::Archive(p) => {
                self.ensure_dir(&rel, None)?;
                self.archive(p, &rel, owner)?;
            }
        }
        Ok(())
    }

    /// `ADD` of a local archive: its entries under `rel` (names cleaned, never above it).
    fn archive(&mut self, path: &std::path::Path, rel: &str, owner: &CopyOwner) -> io::Result<()> {
        let f = File::open(path)?;
        let plain = berth_image::layer_tar::maybe_decompress(Box::new(io::BufReader::new(f)))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let mut ar = tar::Archive::new(plain);
        for entry in ar.entries()? {
            let mut entry = entry?;
            let raw = entry.path_bytes().into_owned();
            let name = String::from_utf8_lossy(&raw);
            let mut clean: Vec<String> = Vec::new();
            for c in components(&name) {
                if c == ".." {
                    clean.pop();
                } else {
                    clean.push(c);
                }
            }
            if clean.is_empty() {
                continue;
            }
            let inner = clean.join("/");
            let full = if rel.is_empty() {
                inner
            } else {
                format!("{rel}/{inner}")
            };
            self.parents(&full)?;
            let mut h = entry.header().clone();
            if let Some((uid, gid)) = owner.chown {
                h.set_uid(uid.into());
                h.set_gid(gid.into());
            }
            let kind = h.entry_type();
            if kind.is_dir() {
                self.written_dirs.insert(full.clone());
                self.tar
                    .append_data(&mut h, format!("{full}/"), io::empty())?;
            } else if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name()?
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let target = if kind.is_hard_link() {
                    let t = components(&target).join("/");
                    if rel.is_empty() {
                        t
                    } else {
                        format!("{rel}/{t}")
                    }
                } else {
                    target
                };
                self.tar.append_link(&mut h, &full, &target)?;
            } else if kind.is_file() || kind == EntryType::Continuous {
                let size = h.size()?;
                self.tar
                    .append_data(&mut h, &full, (&mut entry).take(size))?;
            } else if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
                continue;
            } else {
                self.tar.append_data(&mut h, &full, io::empty())?;
            }
            self.entries += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn parents_keep_the_image_metadata() {
        let layer = tempfile::tempdir().unwrap();
        fs::create_dir_all(layer.path().join("tmp")).unwrap();
        fs::set_permissions(layer.path().join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        let src = tempfile::tempdir().unwrap();
        let f = src.path().join("f");
        fs::write(&f, b"data").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
        let img = ImageFs::new(vec![layer.path().into()]);
        let mut w = LayerWriter::new(Vec::new(), &img);
        let owner = CopyOwner {
            chown: Some((5, 6)),
            ..Default::default()
        };
        for (dest, source) in [
            ("/tmp/a/f", CopySource::File(f.clone())),
            (
                "/tmp/b",
                CopySource::Bytes {
                    content: b"x".to_vec(),
                    mode: 0o644,
                },
            ),
        ] {
            w.entry(
                &CopyEntry {
                    dest: dest.into(),
                    source,
                },
                &owner,
            )
            .unwrap();
        }
        assert_eq!(w.entries, 4);
        let bytes = w.finish().unwrap();
        let mut ar = tar::Archive::new(bytes.as_slice());
        let got: Vec<(String, u32, u64)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().mode().unwrap(),
                    e.header().uid().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("tmp/".into(), 0o1777, 0),
                ("tmp/a/".into(), 0o755, 0),
                ("tmp/a/f".into(), 0o640, 5),
                ("tmp/b".into(), 0o644, 5),
            ]
        );
    }
}
