//! The one privileged operation volumes need, behind a trait so the store is testable
//! without root.

use std::path::Path;

/// Mounts and unmounts a volume's device on its `_data` directory.
pub trait Mounter: Send + Sync {
    /// `mount -t fstype -o data device target`; `bind` in the options makes a bind mount.
    fn mount(&self, device: &str, target: &Path, fstype: &str, data: &str) -> std::io::Result<()>;
    fn unmount(&self, target: &Path) -> std::io::Result<()>;
    /// Whether something is mounted on `target` (a mount left by an earlier daemon).
    fn is_mounted(&self, target: &Path) -> bool;
}

/// The kernel's mount(2) and umount2(2).
pub struct SystemMounter;

impl Mounter for SystemMounter {
    fn mount(&self, device: &str, target: &Path, fstype: &str, data: &str) -> std::io::Result<()> {
        use nix::mount::{mount, MsFlags};
        let mut flags = MsFlags::empty();
        let mut rest = Vec::new();
        for o in data.split(',').filter(|o| !o.is_empty()) {
            match o {
                "bind" => flags |= MsFlags::MS_BIND,
                "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
                "ro" => flags |= MsFlags::MS_RDONLY,
                "nosuid" => flags |= MsFlags::MS_NOSUID,
                "nodev" => flags |= MsFlags::MS_NODEV,
                "noexec" => flags |= MsFlags::MS_NOEXEC,
                other => rest.push(other),
            }
        }
        let rest = rest.join(",");
        let fstype = if fstype == "none" || flags.contains(MsFlags::MS_BIND) {
            None
        } else {
            Some(fstype)
        };
        mount(
            Some(device),
            target,
            fstype,
            flags,
            (!rest.is_empty()).then_some(rest.as_str()),
        )
        .map_err(std::io::Error::from)
    }

    fn is_mounted(&self, target: &Path) -> bool {
        std::fs::read_to_string("/proc/self/mountinfo")
            .map(|m| berth_sys::mountinfo::is_mount_point(&m, &target.to_string_lossy()))
            .unwrap_or(false)
    }

    fn unmount(&self, target: &Path) -> std::io::Result<()> {
        use nix::mount::{umount2, MntFlags};
        match umount2(target, MntFlags::empty()) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
            Err(nix::errno::Errno::EBUSY) => {
                umount2(target, MntFlags::MNT_DETACH).map_err(std::io::Error::from)
            }
            Err(e) => Err(e.into()),
        }
    }
}
