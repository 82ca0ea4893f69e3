//! Network-namespace work that needs a system call the standard library lacks.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Sets `lo` up in the network namespace of process `pid` (Docker's `none` network has a
/// working loopback): `setns(CLONE_NEWNET)` on `/proc/<pid>/ns/net`, then `SIOCGIFFLAGS` and
/// `SIOCSIFFLAGS` with `IFF_UP` added on an `AF_INET` datagram socket made there. Runs on a
/// short-lived thread, since setns changes the namespace of the calling thread only; the
/// caller's thread is left as it was. A failure is the `errno` of the step that failed.
pub fn loopback_up(pid: i32) -> io::Result<()> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    std::thread::spawn(move || -> io::Result<()> {
        // SAFETY: setns takes a descriptor (open for as long as `ns` lives, across the call)
        // and a flag; it touches no memory of this process, and the namespace it changes is
        // this short-lived thread's alone.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: socket takes only integers.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel returned a new descriptor that nothing else owns.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: ifreq is plain old data; zeroed is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS writes into the ifreq we own, valid and writable across the
        // call; the descriptor is a socket, as the request needs.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the union field ifru_flags is the one SIOCGIFFLAGS filled.
        unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
        // SAFETY: SIOCSIFFLAGS reads the ifreq we own, valid across the call.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    })
    .join()
    .map_err(|_| io::Error::other("loopback thread panicked"))?
}
