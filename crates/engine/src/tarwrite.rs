//! Writing a tar of a path inside a container root without ever following a symlink the
//! container controls: the walk goes from directory descriptor to directory descriptor with
//! `O_NOFOLLOW`, so a directory swapped for a link mid-walk is refused instead of read
//! (`GET /containers/{id}/archive`, `GET /containers/{id}/export`).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};

use tar::{EntryType, Header};

use crate::inroot::{fstat, is_type, lstat_at};

pub(crate) use berth_sys::at::openat_nofollow;
use berth_sys::at::readlinkat;

/// Writes entries for `name` in directory `parent` (and, for a directory, everything under
/// it) named `tar_name` in the archive.
pub(crate) struct TreeWriter<W: Write> {
    builder: tar::Builder<W>,
    /// First archive name of each multiply-linked inode, for hard links.
    links: HashMap<(u64, u64), String>,
}

fn header_for(st: &libc::stat, kind: EntryType) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid as u64);
    h.set_gid(st.st_gid as u64);
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

impl<W: Write> TreeWriter<W> {
    pub(crate) fn new(out: W) -> Self {
        let mut builder = tar::Builder::new(out);
        builder.follow_symlinks(false);
        TreeWriter {
            builder,
            links: HashMap::new(),
        }
    }

    pub(crate) fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }

    pub(crate) fn append(&mut self, parent: RawFd, name: &str, tar_name: &str) -> io::Result<()> {
        let Some(st) = lstat_at(parent, name)? else {
            return Ok(()); // vanished while we walked
        };
        let fmt = st.st_mode & libc::S_IFMT;
        if fmt != libc::S_IFDIR && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key).cloned() {
                let mut h = header_for(&st, EntryType::Link);
                return self.builder.append_link(&mut h, tar_name, first);
            }
            self.links.insert(key, tar_name.to_string());
        }
        match fmt {
            libc::S_IFDIR => {
                let dir_fd = openat_nofollow(parent, name, libc::O_RDONLY | libc::O_DIRECTORY)?;
                // An empty name is the archive's root (export): no entry of its own.
                if !tar_name.is_empty() {
                    let mut h = header_for(&st, EntryType::Directory);
                    let dir_name = format!("{}/", tar_name.trim_end_matches('/'));
                    self.builder.append_data(&mut h, &dir_name, io::empty())?;
                }
                let mut names = Vec::new();
                {
                    let dup = dir_fd.try_clone()?;
                    let mut dir =
                        nix::dir::Dir::from_fd(dup.into_raw_fd()).map_err(io::Error::from)?;
                    for e in dir.iter() {
                        let e = e.map_err(io::Error::from)?;
                        let n = e.file_name().to_string_lossy().into_owned();
                        if n != "." && n != ".." {
                            names.push(n);
                        }
                    }
                }
                names.sort();
                let prefix = tar_name.trim_end_matches('/');
                for n in names {
                    let child = if prefix.is_empty() {
                        n.clone()
                    } else {
                        format!("{prefix}/{n}")
                    };
                    self.append(dir_fd.as_raw_fd(), &n, &child)?;
                }
                Ok(())
            }
            libc::S_IFREG => {
                let fd = openat_nofollow(parent, name, libc::O_RDONLY)?;
                let st = fstat(fd.as_raw_fd())?;
                if !is_type(&st, libc::S_IFREG) {
                    return Ok(());
                }
                let mut h = header_for(&st, EntryType::Regular);
                h.set_size(st.st_size as u64);
                let file = File::from(fd);
                use std::io::Read;
                self.builder
                    .append_data(&mut h, tar_name, file.take(st.st_size as u64))
            }
            libc::S_IFLNK => {
                let target = readlinkat(parent, name)?;
                let mut h = header_for(&st, EntryType::Symlink);
                let target = String::from_utf8_lossy(&target).into_owned();
                self.builder.append_link(&mut h, tar_name, target)
            }
            libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => {
                let kind = match fmt {
                    libc::S_IFCHR => EntryType::Char,
                    libc::S_IFBLK => EntryType::Block,
                    _ => EntryType::Fifo,
                };
                let mut h = header_for(&st, kind);
                if fmt != libc::S_IFIFO {
                    h.set_device_major(libc::major(st.st_rdev))?;
                    h.set_device_minor(libc::minor(st.st_rdev))?;
                }
                self.builder.append_data(&mut h, tar_name, io::empty())
            }
            _ => Ok(()), // sockets are skipped, as Docker does
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn tree_with_modes_links_and_hardlinks() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/f"), "data").unwrap();
        std::fs::set_permissions(d.join("sub/f"), std::fs::Permissions::from_mode(0o741)).unwrap();
        std::fs::hard_link(d.join("sub/f"), d.join("hl")).unwrap();
        symlink("/etc/passwd", d.join("ln")).unwrap();
        let parent = File::open(t.path()).unwrap();
        let mut w = TreeWriter::new(Vec::new());
        w.append(parent.as_raw_fd(), "d", "d").unwrap();
        let data = w.finish().unwrap();
        let mut ar = tar::Archive::new(&data[..]);
        let mut seen = Vec::new();
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            let h = e.header();
            seen.push((
                p,
                h.entry_type(),
                h.mode().unwrap(),
                e.link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned()),
            ));
        }
        assert_eq!(seen[0].0, "d/");
        assert!(
            seen.contains(&("d/sub/f".into(), EntryType::Regular, 0o741, None))
                || seen.contains(&(
                    "d/sub/f".into(),
                    EntryType::Link,
                    0o741,
                    Some("d/hl".into())
                ))
        );
        assert!(seen
            .iter()
            .any(|s| s.0 == "d/ln" && s.3.as_deref() == Some("/etc/passwd")));
        assert!(seen.iter().any(|s| s.1 == EntryType::Link));
    }
}
