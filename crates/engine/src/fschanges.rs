//! `docker diff` (`GET /containers/{id}/changes`): the container's writable overlay layer
//! compared with its image layers, as dockerd's overlay differ does: a 0:0 character device is a
//! deletion, a path present in a lower layer is a modification, anything else an addition, and
//! the parent directory of a change is reported modified. The mount points the
//! engine itself creates in the layer (`/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`,
//! `/dev`, `/proc`, `/sys`: dockerd's init layer) are not reported.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde::Serialize;

use crate::context::Context;
use crate::{EngineError, Result};
use std::sync::Arc;

/// One change; `Kind` is 0 modified, 1 added, 2 deleted (Docker's numbering).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FsChange {
    #[serde(rename = "Path")]
    pub path: String,
    #[serde(rename = "Kind")]
    pub kind: u8,
}

pub const MODIFIED: u8 = 0;
pub const ADDED: u8 = 1;
pub const DELETED: u8 = 2;

/// Paths the engine creates as mount points, hidden as dockerd's init layer hides them.
const INIT_PATHS: &[&str] = &[
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/dev",
    "/proc",
    "/sys",
    "/.dockerenv",
];

fn in_lower(lowers: &[&Path], rel: &str) -> Option<fs::Metadata> {
    for l in lowers {
        let p = l.join(rel.trim_start_matches('/'));
        if let Ok(m) = fs::symlink_metadata(&p) {
            if m.file_type().is_char_device() && m.rdev() == 0 {
                return None; // whited out in a higher lower layer
            }
            return Some(m);
        }
    }
    None
}

/// Walks `upper` against the lower layer directories (top first).
pub fn changes(upper: &Path, lowers: &[&Path]) -> std::io::Result<Vec<FsChange>> {
    let mut out = Vec::new();
    let mut changed_dirs = BTreeSet::new();
    walk(upper, "", lowers, &mut out, &mut changed_dirs)?;
    Ok(out)
}

fn walk(
    dir: &Path,
    rel: &str,
    lowers: &[&Path],
    out: &mut Vec<FsChange>,
    changed_dirs: &mut BTreeSet<String>,
) -> std::io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let path = format!("{rel}/{name}");
        if INIT_PATHS.contains(&path.as_str()) {
            continue;
        }
        let host = dir.join(&name);
        let Ok(meta) = fs::symlink_metadata(&host) else {
            continue;
        };
        let is_dir = meta.is_dir();
        let kind = if meta.file_type().is_char_device() && meta.rdev() == 0 {
            DELETED
        } else {
            match in_lower(lowers, &path) {
                None => ADDED,
                Some(lm) if lm.is_dir() && is_dir => {
                    // A directory copied up only because something under it changed is
                    // reported through its children.
                    if lm.mode() == meta.mode() && lm.uid() == meta.uid() && lm.gid() == meta.gid()
                    {
                        walk(&host, &path, lowers, out, changed_dirs)?;
                        continue;
                    }
                    MODIFIED
                }
                Some(_) => MODIFIED,
            }
        };
        {
            let parent = rel.to_string();
            if !parent.is_empty() && !changed_dirs.contains(&parent) {
                out.push(FsChange {
                    path: parent.clone(),
                    kind: MODIFIED,
                });
            }
            if !parent.is_empty() {
                changed_dirs.insert(parent);
            }
        }
        if is_dir {
            changed_dirs.insert(path.clone());
        }
        out.push(FsChange {
            path: path.clone(),
            kind,
        });
        if is_dir && kind != DELETED {
            walk(&host, &path, lowers, out, changed_dirs)?;
        }
    }
    Ok(())
}

/// `GET /containers/{id}/changes`.
pub(crate) async fn container_changes(ctx: &Arc<Context>, key: &str) -> Result<Vec<FsChange>> {
    let c = ctx.lookup(key)?;
    let rw = ctx.config.data_root.join("image/rw").join(&c.id);
    tokio::task::spawn_blocking(move || {
        let lower = fs::read_to_string(rw.join("lower"))
            .map_err(|_| EngineError::Internal("the container has no writable layer".into()))?;
        let lowers: Vec<&Path> = lower.split(':').map(Path::new).collect();
        changes(&rw.join("upper"), &lowers)
            .map_err(|e| EngineError::Internal(format!("reading changes: {e}")))
    })
    .await
    .map_err(|e| EngineError::Internal(format!("task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_modified_deleted_like_dockerd() {
        let t = tempfile::tempdir().unwrap();
        let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::create_dir_all(lower.join("usr/bin")).unwrap();
        fs::write(lower.join("etc/passwd"), "x").unwrap();
        fs::write(lower.join("usr/bin/tool"), "x").unwrap();
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::create_dir_all(upper.join("usr/bin")).unwrap();
        fs::create_dir_all(upper.join("newdir")).unwrap();
        fs::write(upper.join("newdir/f"), "x").unwrap();
        fs::write(upper.join("etc/passwd"), "y").unwrap();
        fs::write(upper.join("etc/hosts"), "").unwrap();
        nix::sys::stat::mknod(
            &upper.join("usr/bin/tool"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .ok();
        let got = changes(&upper, &[&lower]).unwrap();
        let shown: Vec<String> = got
            .iter()
            .map(|c| format!("{} {}", ["C", "A", "D"][c.kind as usize], c.path))
            .collect();
        assert!(shown.contains(&"C /etc/passwd".to_string()), "{shown:?}");
        let etc = shown.iter().position(|s| s == "C /etc").unwrap();
        assert!(etc < shown.iter().position(|s| s == "C /etc/passwd").unwrap());
        assert!(shown.contains(&"A /newdir".to_string()));
        assert!(shown.contains(&"A /newdir/f".to_string()));
        assert!(!shown.iter().any(|s| s.contains("/etc/hosts")));
        assert!(!shown.contains(&"C /newdir".to_string()));
        if nix::unistd::geteuid().is_root() {
            assert!(shown.contains(&"D /usr/bin/tool".to_string()), "{shown:?}");
            assert!(shown.contains(&"C /usr/bin".to_string()), "{shown:?}");
        }
        let json = serde_json::to_value(&got[0]).unwrap();
        assert!(json.get("Path").is_some() && json.get("Kind").is_some());
    }
}
