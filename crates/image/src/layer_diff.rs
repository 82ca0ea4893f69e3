//! Writing a container's writable overlay layer (`rw/<cid>/upper`) as a layer tar in Docker's
//! format: overlay whiteouts (0:0 character devices) become `.wh.NAME` files, opaque directories
//! (`trusted.overlay.opaque=y`) get a `.wh..wh..opq` entry, and modes, ownership, mtimes,
//! xattrs (`SCHILY.xattr.*`), symlinks, devices and hard links are kept. Entries come in sorted
//! walk order (parents first), as Go's `filepath.Walk` gives them to dockerd.
//!
//! Two kinds of entries are left out: the mount points the engine creates (dockerd's init layer:
//! `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`, `/.dockerenv`, and everything under
//! `/dev`, `/proc`, `/sys`), and directories that were only copied up — present in a lower layer
//! with the same mode and owner, with nothing kept inside them — so a step that changed nothing
//! writes an empty diff.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use berth_sys::file::{lgetxattr, llistxattr};

/// Paths (relative, no leading `/`) the engine creates as mount points; never committed.
const INIT_FILES: &[&str] = &["etc/hosts", "etc/hostname", "etc/resolv.conf", ".dockerenv"];
/// Directories whose whole subtree is mounted over in a running container; never committed.
const INIT_TREES: &[&str] = &["dev", "proc", "sys"];

/// What a diff wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffStats {
    /// Tar entries written (0: nothing changed).
    pub entries: usize,
}

/// Reads the names of `path`'s extended attributes (not following a final symlink).
fn list_xattrs(path: &Path) -> io::Result<Vec<String>> {
    let p = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut buf = vec![0u8; 4096];
    loop {
        let e = match llistxattr(&p, &mut buf) {
            Ok(n) => {
                buf.truncate(n);
                break;
            }
            Err(e) => e,
        };
        match e.raw_os_error() {
            Some(libc::ERANGE) if buf.len() < (1 << 20) => buf.resize(buf.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(e),
        }
    }
    Ok(buf
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect())
}

/// Reads one extended attribute of `path` (not following a final symlink).
fn get_xattr(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let p = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let n = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut buf = vec![0u8; 256];
    loop {
        let e = match lgetxattr(&p, &n, &mut buf) {
            Ok(r) => {
                buf.truncate(r);
                return Ok(Some(buf));
            }
            Err(e) => e,
        };
        match e.raw_os_error() {
            Some(libc::ERANGE) if buf.len() < (1 << 20) => buf.resize(buf.len() * 4, 0),
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => return Ok(None),
            _ => return Err(e),
        }
    }
}

fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(path: &Path) -> bool {
    matches!(get_xattr(path, "trusted.overlay.opaque"), Ok(Some(v)) if v == b"y")
}

/// The entry at `rel` as the lower layers (top-most first) show it, or `None` when absent or
/// whited out.
fn lower_entry(lowers: &[PathBuf], rel: &str) -> Option<Metadata> {
    for l in lowers {
        if let Ok(m) = fs::symlink_metadata(l.join(rel)) {
            return if is_whiteout(&m) { None } else { Some(m) };
        }
    }
    None
}

/// One entry to write, gathered by the walk.
enum Planned {
    /// A file system object of the upper dir at `path`, named `name` in the tar.
    Node { path: PathBuf, name: String },
    /// A `.wh.*` marker file named `name`.
    Marker { name: String },
}

/// Walks `upper` and returns the entries to write, in order.
fn plan(upper: &Path, lowers: &[PathBuf], exclude_init: bool) -> io::Result<Vec<Planned>> {
    let mut out = Vec::new();
    walk_dir(upper, "", lowers, exclude_init, &mut out)?;
    Ok(out)
}

fn walk_dir(
    dir: &Path,
    rel_dir: &str,
    lowers: &[PathBuf],
    exclude_init: bool,
    out: &mut Vec<Planned>,
) -> io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let name = name.to_string_lossy().into_owned();
        let rel = if rel_dir.is_empty() {
            name.clone()
        } else {
            format!("{rel_dir}/{name}")
        };
        if exclude_init
            && (INIT_FILES.contains(&rel.as_str()) || INIT_TREES.contains(&rel.as_str()))
        {
            continue;
        }
        let path = dir.join(&name);
        let m = fs::symlink_metadata(&path)?;
        if is_whiteout(&m) {
            let marker = if rel_dir.is_empty() {
                format!(".wh.{name}")
            } else {
                format!("{rel_dir}/.wh.{name}")
            };
            out.push(Planned::Marker { name: marker });
            continue;
        }
        if m.is_dir() {
            let opaque = is_opaque(&path);
            let mark = out.len();
            out.push(Planned::Node {
                path: path.clone(),
                name: format!("{rel}/"),
            });
            if opaque {
                out.push(Planned::Marker {
                    name: format!("{rel}/.wh..wh..opq"),
                });
            }
            walk_dir(&path, &rel, lowers, exclude_init, out)?;
            let only_copied_up = !opaque
                && out.len() == mark + 1
                && lower_entry(lowers, &rel).is_some_and(|l| {
                    l.is_dir() && l.mode() == m.mode() && l.uid() == m.uid() && l.gid() == m.gid()
                });
            if only_copied_up {
                out.truncate(mark);
            }
            continue;
        }
        out.push(Planned::Node { path, name: rel });
    }
    Ok(())
}

fn base_header(m: &Metadata, kind: EntryType) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(m.mode() & 0o7777);
    h.set_uid(u64::from(m.uid()));
    h.set_gid(u64::from(m.gid()));
    h.set_mtime(m.mtime().max(0) as u64);
    h.set_size(0);
    h
}

/// Writes the diff of `upper` over `lowers` (top-most first) as a tar to `out`. With
/// `exclude_init`, the engine's mount points are left out (see the module docs).
pub fn write_diff(
    upper: &Path,
    lowers: &[PathBuf],
    exclude_init: bool,
    out: &mut dyn Write,
) -> io::Result<DiffStats> {
    let planned = plan(upper, lowers, exclude_init)?;
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let mut links: HashMap<(u64, u64), String> = HashMap::new();
    for p in &planned {
        match p {
            Planned::Marker { name } => {
                let mut h = Header::new_gnu();
                h.set_entry_type(EntryType::Regular);
                h.set_mode(0o600);
                h.set_size(0);
                h.set_mtime(0);
                b.append_data(&mut h, name, io::empty())?;
            }
            Planned::Node { path, name } => append_node(&mut b, path, name, &mut links)?,
        }
    }
    b.into_inner()?.flush()?;
    Ok(DiffStats {
        entries: planned.len(),
    })
}

fn append_node(
    b: &mut tar::Builder<&mut dyn Write>,
    path: &Path,
    name: &str,
    links: &mut HashMap<(u64, u64), String>,
) -> io::Result<()> {
    let m = fs::symlink_metadata(path)?;
    let xattrs: Vec<(String, Vec<u8>)> = list_xattrs(path)?
        .into_iter()
        .filter(|n| !n.starts_with("trusted.overlay."))
        .filter_map(|n| match get_xattr(path, &n) {
            Ok(Some(v)) => Some(Ok((n, v))),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<io::Result<_>>()?;
    if !xattrs.is_empty() {
        let keys: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
            .collect();
        b.append_pax_extensions(keys.iter().map(|(k, v)| (k.as_str(), *v)))?;
    }
    let ft = m.file_type();
    if ft.is_dir() {
        let mut h = base_header(&m, EntryType::Directory);
        b.append_data(&mut h, name, io::empty())?;
    } else if ft.is_symlink() {
        let target = fs::read_link(path)?;
        let mut h = base_header(&m, EntryType::Symlink);
        b.append_link(&mut h, name, &target)?;
    } else if ft.is_file() {
        if m.nlink() > 1 {
            let key = (m.dev(), m.ino());
            if let Some(first) = links.get(&key) {
                let mut h = base_header(&m, EntryType::Link);
                b.append_link(&mut h, name, first)?;
                return Ok(());
            }
            links.insert(key, name.to_string());
        }
        let f = File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        let mut h = base_header(&m, EntryType::Regular);
        h.set_size(m.len());
        b.append_data(&mut h, name, f)?;
    } else {
        let kind = if ft.is_char_device() {
            EntryType::Char
        } else if ft.is_block_device() {
            EntryType::Block
        } else if ft.is_fifo() {
            EntryType::Fifo
        } else {
            // Sockets have no tar form; dockerd skips them too.
            return Ok(());
        };
        let mut h = base_header(&m, kind);
        let rdev = m.rdev();
        h.set_device_major(libc::major(rdev))?;
        h.set_device_minor(libc::minor(rdev))?;
        b.append_data(&mut h, name, io::empty())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn names(tar_bytes: &[u8]) -> Vec<(String, EntryType)> {
        let mut ar = tar::Archive::new(tar_bytes);
        ar.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().entry_type(),
                )
            })
            .collect()
    }

    fn diff(upper: &Path, lowers: &[PathBuf]) -> (DiffStats, Vec<u8>) {
        let mut out = Vec::new();
        let stats = write_diff(upper, lowers, true, &mut out).unwrap();
        (stats, out)
    }

    #[test]
    fn files_links_and_init_paths() {
        let upper = tempfile::tempdir().unwrap();
        let u = upper.path();
        fs::create_dir_all(u.join("app/sub")).unwrap();
        fs::write(u.join("app/sub/a.txt"), b"hello").unwrap();
        fs::set_permissions(u.join("app/sub/a.txt"), fs::Permissions::from_mode(0o640)).unwrap();
        fs::hard_link(u.join("app/sub/a.txt"), u.join("app/b.txt")).unwrap();
        std::os::unix::fs::symlink("sub/a.txt", u.join("app/l")).unwrap();
        fs::create_dir_all(u.join("etc")).unwrap();
        fs::write(u.join("etc/hosts"), b"").unwrap();
        fs::create_dir_all(u.join("proc/x")).unwrap();
        let (stats, bytes) = diff(u, &[]);
        let got = names(&bytes);
        assert_eq!(stats.entries, got.len());
        assert_eq!(
            got,
            vec![
                ("app/".into(), EntryType::Directory),
                ("app/b.txt".into(), EntryType::Regular),
                ("app/l".into(), EntryType::Symlink),
                ("app/sub/".into(), EntryType::Directory),
                ("app/sub/a.txt".into(), EntryType::Link),
                ("etc/".into(), EntryType::Directory),
            ]
        );
        let mut ar = tar::Archive::new(bytes.as_slice());
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            if e.path().unwrap().to_str() == Some("app/b.txt") {
                assert_eq!(e.header().mode().unwrap(), 0o640);
                assert_eq!(e.header().size().unwrap(), 5);
            }
        }
    }

    #[test]
    fn copied_up_directories_are_pruned() {
        let lower = tempfile::tempdir().unwrap();
        let upper = tempfile::tempdir().unwrap();
        fs::create_dir_all(lower.path().join("etc")).unwrap();
        fs::create_dir_all(upper.path().join("etc")).unwrap();
        fs::set_permissions(lower.path().join("etc"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(upper.path().join("etc"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(upper.path().join("etc/hostname"), b"").unwrap();
        let (stats, _) = diff(upper.path(), &[lower.path().to_path_buf()]);
        assert_eq!(stats.entries, 0);
        fs::write(upper.path().join("etc/new"), b"x").unwrap();
        let (_, bytes) = diff(upper.path(), &[lower.path().to_path_buf()]);
        assert_eq!(
            names(&bytes),
            vec![
                ("etc/".into(), EntryType::Directory),
                ("etc/new".into(), EntryType::Regular)
            ]
        );
    }

    #[test]
    fn whiteouts_become_markers() {
        if !nix::unistd::geteuid().is_root() {
            return; // mknod of a whiteout needs root
        }
        let upper = tempfile::tempdir().unwrap();
        let u = upper.path();
        fs::create_dir_all(u.join("d")).unwrap();
        nix::sys::stat::mknod(
            &u.join("d/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        fs::create_dir_all(u.join("opq")).unwrap();
        crate::layer_tar::lsetxattr(&u.join("opq"), "trusted.overlay.opaque", b"y").unwrap();
        let (_, bytes) = diff(u, &[]);
        assert_eq!(
            names(&bytes),
            vec![
                ("d/".into(), EntryType::Directory),
                ("d/.wh.gone".into(), EntryType::Regular),
                ("opq/".into(), EntryType::Directory),
                ("opq/.wh..wh..opq".into(), EntryType::Regular),
            ]
        );
    }
}
