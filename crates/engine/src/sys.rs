//! The engine's few direct system calls: mounting the container root filesystem (through nix's
//! safe wrappers), and bringing up the loopback interface inside a container's network
//! namespace (a safe function of berth-sys, where the raw calls live).

use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// Mounts `fstype` from `source` on `target` with comma-joined `options`.
pub fn mount_fs(
    fstype: &str,
    source: &str,
    target: &Path,
    options: &[String],
) -> std::io::Result<()> {
    let data = options.join(",");
    match mount(
        Some(source),
        target,
        Some(fstype),
        MsFlags::empty(),
        Some(data.as_str()),
    ) {
        // overlayfs's `volatile` is an optimisation that kernels before 5.10 do not know.
        Err(nix::errno::Errno::EINVAL) if options.iter().any(|o| o == "volatile") => {
            let fewer: Vec<String> = options
                .iter()
                .filter(|o| *o != "volatile")
                .cloned()
                .collect();
            mount_fs(fstype, source, target, &fewer)
        }
        r => r.map_err(std::io::Error::from),
    }
}

/// Unmounts `target` (lazily when busy); a path that is not mounted is fine.
pub fn unmount(target: &Path) -> std::io::Result<()> {
    match umount2(target, MntFlags::empty()) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(nix::errno::Errno::EBUSY) => {
            umount2(target, MntFlags::MNT_DETACH).map_err(std::io::Error::from)
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether `target` is a mount point (per /proc/self/mountinfo).
pub fn is_mounted(target: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| berth_sys::mountinfo::is_mount_point(&m, &target.to_string_lossy()))
        .unwrap_or(false)
}

/// Sets `lo` up in the network namespace of process `pid` ([`berth_sys::netns::loopback_up`]).
pub fn loopback_up(pid: i32) -> std::io::Result<()> {
    berth_sys::netns::loopback_up(pid)
}
