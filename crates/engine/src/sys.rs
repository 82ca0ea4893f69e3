//! The engine's few direct system calls: mounting the container root filesystem, and bringing
//! up the loopback interface inside a container's network namespace.

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

/// Sets `lo` up in the network namespace of process `pid` (Docker's `none` network has a
/// working loopback). Runs on a short-lived thread, since setns changes the calling thread.
pub fn loopback_up(pid: i32) -> std::io::Result<()> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    std::thread::spawn(move || -> std::io::Result<()> {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
        let sock = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Datagram,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        use std::os::fd::AsRawFd;
        // SAFETY: ifreq is plain old data; zeroed is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS reads into the ifreq we own; the fd is a valid socket.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the union field ifru_flags is the one SIOCGIFFLAGS filled.
        unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
        // SAFETY: SIOCSIFFLAGS reads the ifreq we own; the fd is a valid socket.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    })
    .join()
    .map_err(|_| std::io::Error::other("loopback thread panicked"))?
}
