//! Thin wrappers over the few libc calls the shim needs that std does not offer: fork, setsid,
//! the child-subreaper flag, close-on-exec pipes, waitid/waitpid, receiving a descriptor over a
//! unix socket (the pty master runc sends to `--console-socket`), the terminal size ioctl, and
//! what keeps an idle shim small: malloc arena limits and trimming, reads that touch only the
//! bytes that arrive, and a poll to notice that output has paused.
//!
//! This is the only module of the shim with `unsafe` code.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Turns a `-1` return into the current `errno`.
fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Which side of a [`fork`] this process is.
pub enum Forked {
    /// The original process.
    Parent,
    /// The new process.
    Child,
}

/// Forks the process. Must be called while the process is still single-threaded.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: the shim forks before it spawns any thread, so the child gets a consistent copy of
    // the whole process (no lock can be held by a thread that does not exist in the child).
    let pid = cvt(unsafe { libc::fork() })?;
    Ok(if pid == 0 {
        Forked::Child
    } else {
        Forked::Parent
    })
}

/// Starts a new session, detaching from the caller's controlling terminal and process group.
pub fn setsid() -> io::Result<()> {
    // SAFETY: setsid takes no arguments and touches no memory of ours.
    cvt(unsafe { libc::setsid() }).map(drop)
}

/// Makes this process a child subreaper: orphaned descendants (the container process once runc
/// exits) are reparented to it, so it can wait for them.
pub fn set_child_subreaper() -> io::Result<()> {
    let one: libc::c_ulong = 1;
    let zero: libc::c_ulong = 0;
    // SAFETY: PR_SET_CHILD_SUBREAPER only reads its integer argument; no pointers are passed.
    cvt(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, one, zero, zero, zero) }).map(drop)
}

/// Keeps glibc from creating one malloc arena per thread, which would cost resident memory.
pub fn limit_malloc_arenas() {
    // SAFETY: mallopt only adjusts allocator tuning parameters; M_ARENA_MAX with 1 is valid.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Hands the heap's free pages back to the kernel (`malloc_trim(0)`): what start-up allocated
/// and freed (runtime command lines, paths, formatting) would otherwise stay resident for the
/// container's whole life.
pub fn release_free_heap() {
    // SAFETY: malloc_trim only walks and trims the allocator's own free lists; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Reads once from `fd` into `buf`'s spare capacity, replacing its contents; returns the number
/// of bytes read (0 at end of file). Unlike reading into a zero-filled buffer, this writes only
/// the bytes that arrive, so untouched capacity never becomes resident.
pub fn read_into(fd: &impl AsRawFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    buf.clear();
    let spare = buf.spare_capacity_mut();
    // SAFETY: `spare` is writable memory of `spare.len()` bytes owned by `buf`; read writes at
    // most that many bytes into it.
    let n = unsafe { libc::read(fd.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: the kernel initialised the first `n` bytes (n <= capacity).
    unsafe { buf.set_len(n) };
    Ok(n)
}

/// Whether `fd` becomes readable (data, end of file or an error to report) within `timeout`.
/// A failing poll counts as readable, so the caller goes on to read and sees the error.
pub fn wait_readable(fd: &impl AsRawFd, timeout: std::time::Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pfd` is one valid pollfd and the count passed is 1.
    let r = unsafe { libc::poll(&mut pfd, 1, ms) };
    r != 0
}

/// Creates a pipe whose both ends are close-on-exec: `(read end, write end)`.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a writable array of two ints, as pipe2 requires.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Points descriptors 0, 1 and 2 at `target` (normally `/dev/null`).
pub fn redirect_stdio(target: &impl AsRawFd) -> io::Result<()> {
    for fd in 0..3 {
        // SAFETY: dup2 on a valid open descriptor; replacing 0-2 keeps std's stdio handles valid
        // (they now refer to `target`).
        cvt(unsafe { libc::dup2(target.as_raw_fd(), fd) })?;
    }
    Ok(())
}

/// Pid of a child that has exited, without reaping it (`waitid(P_ALL, WEXITED|WNOWAIT)`).
/// `Ok(None)` when the process has no children, or (with `block == false`) none has exited.
pub fn peek_exited(block: bool) -> io::Result<Option<libc::pid_t>> {
    // SAFETY: siginfo_t is plain data for which all-zero bytes are a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOWAIT | if block { 0 } else { libc::WNOHANG };
    // SAFETY: `info` is a valid, writable siginfo_t for the duration of the call.
    let r = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, flags) };
    if r == -1 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ECHILD) => Ok(None),
            _ => Err(e),
        };
    }
    // SAFETY: waitid succeeded for WEXITED, so the kernel filled si_pid (0 with WNOHANG and no
    // exited child, because the struct was zeroed).
    let pid = unsafe { info.si_pid() };
    Ok((pid > 0).then_some(pid))
}

/// Waits for (and reaps) the child `pid`; returns its exit code as Docker reports it: the exit
/// status, or 128 + the signal number when a signal killed it.
pub fn wait_exit_code(pid: libc::pid_t) -> io::Result<i32> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a valid writable int.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == -1 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        break;
    }
    Ok(exit_code(status))
}

/// Reaps the exited child `pid` if it is a zombie, ignoring its status.
pub fn reap(pid: libc::pid_t) {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a valid writable int; WNOHANG never blocks.
    unsafe {
        libc::waitpid(pid, &mut status, libc::WNOHANG);
    }
}

/// Docker's exit code for a wait status.
pub fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

/// Whether a process with this pid exists (`kill(pid, 0)`).
pub fn process_exists(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks for existence and permission; nothing is delivered.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Receives one descriptor passed with SCM_RIGHTS on the connected unix socket `sock`.
pub fn recv_fd(sock: &impl AsRawFd) -> io::Result<OwnedFd> {
    let mut data = [0u8; 512];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // u64 elements keep the control buffer aligned for cmsghdr; 128 bytes is far more than
    // CMSG_SPACE(sizeof(int)).
    let mut control = [0u64; 16];
    // SAFETY: msghdr is plain data for which all-zero bytes are a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    loop {
        // SAFETY: `msg` points at `iov`/`data` and `control`, which all outlive the call and
        // whose lengths are given correctly.
        let r = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if r == -1 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        break;
    }
    // SAFETY: `msg` was filled by a successful recvmsg; CMSG_FIRSTHDR/CMSG_NXTHDR stay within
    // the control buffer, and CMSG_DATA of an SCM_RIGHTS message holds at least one int.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::c_int);
                return Ok(OwnedFd::from_raw_fd(fd));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "no descriptor received on the console socket",
    ))
}

/// Sets the window size of the terminal `fd` (TIOCSWINSZ).
pub fn set_winsize(fd: &impl AsRawFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` struct, which `ws` is, from a valid pointer.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) }).map(drop)
}
