//! Entering the rootfs: pivot_root (or MS_MOVE + chroot with `--no-pivot`, or a plain chroot
//! when the spec lists no mount namespace), the rootfs' parent mount made non-shared before
//! the rootfs bind, and `linux.rootfsPropagation` applied to the new `/` afterwards.
//!
//! The order is runc's (libcontainer/rootfs_linux.go, prepareRoot and
//! rootfsParentMountPropagation, ≥ 1.4): the propagation asked for goes on `/` of the new
//! mount namespace first; the mount the rootfs sits on is then made private (slave when the
//! propagation asked for is a slave one), because pivot_root fails with EINVAL under a shared
//! parent and a shared parent would leak the rootfs bind to the host. After pivot_root a
//! shared or unbindable propagation is applied again to the new `/` (the bind of the rootfs
//! came out private from its private parent).
//!
//! Without a mount namespace the container shares the host's: nothing of the host's
//! propagation is changed (runc makes the host's `/` rslave), the mounts of the spec are made
//! under the rootfs in the host's namespace (as runc does) and [`unmount_under`] takes them
//! away again on delete (runc leaves them).

use crate::{Error, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

fn remount(target: &Path, flags: MsFlags, what: &str) -> Result<()> {
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
        .map_err(|e| Error::sys(format!("{what} ({})", target.display()), e))
}

/// What a spec without a mount namespace (the host's is shared) cannot have. runc refuses
/// masked and read-only paths ("unable to restrict sys entries without a private MNT
/// namespace") and silently leaves a read-only root writable and makes the host's `/`
/// take the root propagation; berth refuses all three, naming the setting.
pub fn check_without_mntns(spec: &Spec) -> Result<()> {
    let linux = spec.linux().clone().unwrap_or_default();
    let why = "needs a mount namespace of the container's own (linux.namespaces lists none)";
    if linux.masked_paths().as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(Error::invalid(format!("linux.maskedPaths: {why}")));
    }
    if linux
        .readonly_paths()
        .as_ref()
        .is_some_and(|v| !v.is_empty())
    {
        return Err(Error::invalid(format!("linux.readonlyPaths: {why}")));
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        return Err(Error::invalid(format!("root.readonly: {why}")));
    }
    if linux
        .rootfs_propagation()
        .as_deref()
        .is_some_and(|p| !p.is_empty())
    {
        return Err(Error::invalid(format!("linux.rootfsPropagation: {why}")));
    }
    Ok(())
}

/// Makes the mount that `path` is on private (or slave, when `root_prop` is a slave one) so
/// that the rootfs bind neither propagates out nor makes pivot_root fail. `path` is absolute;
/// EINVAL means "not a mount point", so the walk goes up until one takes the change.
pub fn parent_mount_propagation(path: &Path, root_prop: Option<MsFlags>) -> Result<()> {
    let flags = match root_prop {
        Some(p) if p.contains(MsFlags::MS_SLAVE) => MsFlags::MS_SLAVE,
        _ => MsFlags::MS_PRIVATE,
    };
    let mut p = path.to_path_buf();
    loop {
        match mount(None::<&str>, &p, None::<&str>, flags, None::<&str>) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EINVAL) if p != Path::new("/") => {
                p = p
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| "/".into());
            }
            Err(e) => {
                return Err(Error::sys(
                    format!("make the rootfs' parent mount {} non-shared", p.display()),
                    e,
                ))
            }
        }
    }
}

/// Whether a propagation is applied again to `/` after pivot_root (shared and unbindable
/// ones; private and slave ones were already taken care of by [`parent_mount_propagation`]).
pub fn reapplied_after_pivot(prop: Option<MsFlags>) -> Option<MsFlags> {
    prop.filter(|p| !p.intersects(MsFlags::MS_PRIVATE | MsFlags::MS_SLAVE) && !p.is_empty())
}

/// Makes `rootfs` the process's `/`: pivot_root with the old root detached, MS_MOVE + chroot
/// with `no_pivot`, a plain chroot without a mount namespace of its own (`mntns` false). Then
/// `linux.rootfsPropagation` (`prop`) is applied to the new `/` where it must be.
pub fn enter(rootfs: &Path, no_pivot: bool, mntns: bool, prop: Option<MsFlags>) -> Result<()> {
    std::env::set_current_dir(rootfs).map_err(|e| Error::io(rootfs, e))?;
    if !mntns {
        nix::unistd::chroot(".").map_err(|e| Error::sys("chroot", e))?;
    } else if no_pivot {
        remount_move(rootfs)?;
        nix::unistd::chroot(".").map_err(|e| Error::sys("chroot", e))?;
    } else {
        pivot()?;
    }
    std::env::set_current_dir("/").map_err(|e| Error::io("/", e))?;
    if let Some(p) = reapplied_after_pivot(prop).filter(|_| mntns) {
        remount(Path::new("/"), p, "apply linux.rootfsPropagation to /")?;
    }
    Ok(())
}

fn remount_move(rootfs: &Path) -> Result<()> {
    mount(
        Some(rootfs),
        "/",
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .map_err(|e| Error::sys("move the rootfs onto /", e))
}

/// pivot_root(".", "."), the old root made rslave (so its unmount doesn't reach the host)
/// and detached.
fn pivot() -> Result<()> {
    let old = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys("open old root", e))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| Error::sys("pivot_root", e))?;
    nix::unistd::fchdir(old).map_err(|e| Error::sys("fchdir old root", e))?;
    remount(
        Path::new("."),
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "make the old root rslave",
    )?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| Error::sys("unmount old root", e))?;
    let _ = nix::unistd::close(old);
    Ok(())
}

/// Undoes mountinfo's octal escapes (`\040` for a space) in a mount point.
fn unescape(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// The mount points strictly below `rootfs` in mountinfo `text`, deepest (latest) first.
pub fn mounts_under(text: &str, rootfs: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = berth_sys::mountinfo::entries(text)
        .map(|e| unescape(e.mount_point))
        .filter(|p| p.starts_with(rootfs) && p != rootfs)
        .collect();
    v.reverse();
    v
}

/// On delete of a container without a mount namespace: detaches what its init mounted under
/// the rootfs in the host's namespace. Errors are returned after trying every mount.
pub fn unmount_under(rootfs: &Path) -> Result<()> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("/proc/self/mountinfo", e))?;
    let mut first = None;
    for p in mounts_under(&text, rootfs) {
        match umount2(&p, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => {
                first.get_or_insert(Error::sys(format!("unmount {}", p.display()), e));
            }
        }
    }
    first.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_mount_namespace_what_needs_one_is_named() {
        let spec = |extra: serde_json::Value| -> Spec {
            let mut v = serde_json::json!({
                "ociVersion": "1.0.2",
                "root": {"path": "rootfs", "readonly": false},
                "linux": {"namespaces": [{"type": "pid"}]}
            });
            for (k, x) in extra.as_object().unwrap() {
                match k.as_str() {
                    "readonly" => v["root"]["readonly"] = x.clone(),
                    _ => v["linux"][k] = x.clone(),
                }
            }
            serde_json::from_value(v).unwrap()
        };
        check_without_mntns(&spec(serde_json::json!({"maskedPaths": []}))).unwrap();
        for (extra, name) in [
            (
                serde_json::json!({"maskedPaths": ["/proc/kcore"]}),
                "linux.maskedPaths",
            ),
            (
                serde_json::json!({"readonlyPaths": ["/proc/sys"]}),
                "linux.readonlyPaths",
            ),
            (serde_json::json!({"readonly": true}), "root.readonly"),
            (
                serde_json::json!({"rootfsPropagation": "shared"}),
                "linux.rootfsPropagation",
            ),
        ] {
            let e = check_without_mntns(&spec(extra)).unwrap_err().to_string();
            assert!(e.starts_with(name) && e.contains("mount namespace"), "{e}");
        }
    }

    #[test]
    fn only_shared_and_unbindable_are_reapplied() {
        assert_eq!(reapplied_after_pivot(None), None);
        for p in [
            MsFlags::MS_PRIVATE,
            MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
        ] {
            assert_eq!(reapplied_after_pivot(Some(p)), None);
        }
        let rshared = MsFlags::MS_SHARED | MsFlags::MS_REC;
        assert_eq!(reapplied_after_pivot(Some(rshared)), Some(rshared));
        let u = MsFlags::MS_UNBINDABLE;
        assert_eq!(reapplied_after_pivot(Some(u)), Some(u));
    }

    #[test]
    fn mounts_under_the_rootfs_deepest_first() {
        let text = "\
27 1 254:0 / / rw - ext4 /dev/vda rw
47 27 254:0 /b /b/root rw - ext4 /dev/vda rw
48 47 0:41 / /b/root/proc rw - proc proc rw
49 47 0:42 / /b/root/dev rw - tmpfs tmpfs rw
50 49 0:43 / /b/root/dev/pts rw - devpts devpts rw
51 27 0:44 / /b/rootfs2 rw - tmpfs tmpfs rw
52 47 0:45 / /b/root/my\\040dir rw - tmpfs tmpfs rw
";
        let v = mounts_under(text, Path::new("/b/root"));
        let want: Vec<PathBuf> = [
            "/b/root/my dir",
            "/b/root/dev/pts",
            "/b/root/dev",
            "/b/root/proc",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(v, want);
    }
}
