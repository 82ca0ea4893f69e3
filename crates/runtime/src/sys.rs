//! The system calls that need `unsafe`: clone/fork, capset, prctl, ioctls on terminals,
//! rlimits, setdomainname, seccomp filter loading, bpf(2) for cgroup device programs.
//! Everything else goes through `nix`'s safe wrappers.

use std::io;
use std::os::fd::RawFd;

/// clone(2) with fork semantics (no new stack: the child runs on a copy of the parent's), with
/// the namespace `flags` added. Returns `Ok(0)` in the child, the child's pid in the parent.
///
/// The runtime is single-threaded when it calls this, so the child holds no lock another thread
/// could have taken.
pub fn clone_fork(flags: libc::c_int) -> io::Result<libc::pid_t> {
    // SAFETY: SYS_clone with a null stack duplicates the calling thread like fork(2); the raw
    // arguments are (flags, stack=0, parent_tid=NULL, child_tid=NULL, tls=0), none of which
    // the kernel dereferences without the matching CLONE_* flag, which we never pass.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as libc::pid_t)
    }
}

/// Ends the (forked) process at once, without running atexit handlers or flushing stdio
/// buffers that belong to the parent.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no memory of ours.
    unsafe { libc::_exit(code) }
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn prctl(op: libc::c_int, a: libc::c_ulong, b: libc::c_ulong) -> io::Result<()> {
    // SAFETY: every prctl option used here takes plain integer arguments (no pointers).
    check(unsafe { libc::prctl(op, a, b, 0 as libc::c_ulong, 0 as libc::c_ulong) })
}

/// PR_SET_DUMPABLE: a non-dumpable process cannot be ptraced or have its /proc/<pid>/exe opened
/// by a process of the container.
pub fn set_dumpable(on: bool) -> io::Result<()> {
    prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong, 0)
}

/// PR_SET_KEEPCAPS: keep permitted capabilities across setresuid from 0.
pub fn set_keepcaps(on: bool) -> io::Result<()> {
    prctl(libc::PR_SET_KEEPCAPS, on as libc::c_ulong, 0)
}

/// PR_SET_NO_NEW_PRIVS.
pub fn set_no_new_privs() -> io::Result<()> {
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0)
}

/// PR_SET_CHILD_SUBREAPER.
pub fn set_child_subreaper() -> io::Result<()> {
    prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0)
}

/// PR_CAPBSET_DROP for one capability.
pub fn capbset_drop(cap: u32) -> io::Result<()> {
    prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0)
}

/// Clears the ambient set.
pub fn ambient_clear() -> io::Result<()> {
    // SAFETY: PR_CAP_AMBIENT takes integer arguments only.
    check(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    })
}

/// Raises one capability in the ambient set.
pub fn ambient_raise(cap: u32) -> io::Result<()> {
    // SAFETY: PR_CAP_AMBIENT takes integer arguments only.
    check(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            cap as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    })
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// capset(2) for the calling thread with 64-bit masks.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: hdr and data are valid, properly laid out (repr(C)) and live for the call;
    // version 3 takes exactly two CapData entries.
    check(unsafe {
        libc::syscall(
            libc::SYS_capset,
            std::ptr::from_mut(&mut hdr),
            data.as_ptr(),
        ) as libc::c_int
    })
}

/// setrlimit(2) by resource number.
pub fn setrlimit(resource: libc::c_int, soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: lim is a valid rlimit for the duration of the call.
    check(unsafe { libc::setrlimit(resource as _, &lim) })
}

/// getrlimit(2) by resource number: (soft, hard).
pub fn getrlimit(resource: libc::c_int) -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is valid writable memory for the call.
    check(unsafe { libc::getrlimit(resource as _, &mut lim) })?;
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// setdomainname(2).
pub fn setdomainname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer/length pair describes `name`'s bytes, valid for the call.
    check(unsafe { libc::setdomainname(name.as_ptr().cast::<libc::c_char>(), name.len()) })
}

/// TIOCSCTTY: make `fd`'s terminal the controlling terminal of this session.
pub fn set_controlling_tty(fd: RawFd) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument.
    check(unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) })
}

/// TIOCSWINSZ: set a terminal's size.
pub fn set_winsize(fd: RawFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: ws is a valid winsize for the duration of the call.
    check(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) })
}

/// The kernel's highest capability number (/proc/sys/kernel/cap_last_cap), 40 if unreadable.
pub fn cap_last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Installs a classic-BPF seccomp filter (`program`: `struct sock_filter` records, 8 bytes
/// each) on the calling thread with `seccomp(SECCOMP_SET_MODE_FILTER, flags, …)`.
pub fn seccomp_set_filter(program: &[u8], flags: libc::c_uint) -> io::Result<()> {
    const FILTER_LEN: usize = std::mem::size_of::<libc::sock_filter>();
    if program.is_empty()
        || !program.len().is_multiple_of(FILTER_LEN)
        || program.len() / FILTER_LEN > 4096
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "seccomp program: not a whole number of BPF instructions (or too long)",
        ));
    }
    // Copy into properly aligned storage: the byte buffer need not be aligned for sock_filter.
    let filters: Vec<libc::sock_filter> = program
        .chunks_exact(FILTER_LEN)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    let prog = libc::sock_fprog {
        len: filters.len() as libc::c_ushort,
        filter: filters.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `filters`, which outlives the call; the kernel copies the
    // program and keeps no pointer into our memory.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            flags as libc::c_ulong,
            std::ptr::from_ref(&prog),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `bpf(2)` commands, program and attach types and flags used for cgroup device programs
/// (`include/uapi/linux/bpf.h`).
pub mod bpf {
    /// `BPF_PROG_LOAD`.
    pub const PROG_LOAD: libc::c_int = 5;
    /// `BPF_PROG_ATTACH`.
    pub const PROG_ATTACH: libc::c_int = 8;
    /// `BPF_PROG_DETACH`.
    pub const PROG_DETACH: libc::c_int = 9;
    /// `BPF_PROG_GET_FD_BY_ID`.
    pub const PROG_GET_FD_BY_ID: libc::c_int = 13;
    /// `BPF_PROG_QUERY`.
    pub const PROG_QUERY: libc::c_int = 16;
    /// `BPF_PROG_TYPE_CGROUP_DEVICE`.
    pub const PROG_TYPE_CGROUP_DEVICE: u32 = 15;
    /// `BPF_CGROUP_DEVICE` (attach type).
    pub const CGROUP_DEVICE: u32 = 6;
    /// `BPF_F_ALLOW_MULTI`.
    pub const F_ALLOW_MULTI: u32 = 2;
}

#[repr(C)]
#[derive(Default)]
struct BpfProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct BpfAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct BpfQueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct BpfGetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// bpf(2) with `attr` (a `union bpf_attr` member, zero-padded).
///
/// # Safety
/// `attr` must be the member the kernel reads for `cmd`, and every pointer stored in it must
/// be valid (for reading, or writing where the kernel writes) for the duration of the call.
unsafe fn bpf_call<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: the caller upholds the contract above; the size passed is that of `attr`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_mut(attr),
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned_fd(raw: libc::c_long) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: `raw` is a descriptor the kernel just returned to us; nothing else owns it.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(raw as RawFd) }
}

/// `BPF_PROG_LOAD` of a `BPF_PROG_TYPE_CGROUP_DEVICE` program (`insns`: `struct bpf_insn`
/// each as one u64) named `name` (at most 15 bytes). With `log`, the verifier writes its
/// log there (NUL-terminated).
pub fn bpf_load_cgroup_device_prog(
    insns: &[u64],
    license: &std::ffi::CStr,
    name: &str,
    log: Option<&mut [u8]>,
) -> io::Result<std::os::fd::OwnedFd> {
    let mut attr = BpfProgLoadAttr {
        prog_type: bpf::PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(insns.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "program too long"))?,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        expected_attach_type: bpf::CGROUP_DEVICE,
        ..Default::default()
    };
    let n = name.len().min(attr.prog_name.len() - 1);
    attr.prog_name[..n].copy_from_slice(&name.as_bytes()[..n]);
    if let Some(buf) = log {
        attr.log_level = 1;
        attr.log_size = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        attr.log_buf = buf.as_mut_ptr() as u64;
    }
    // SAFETY: `insns`, `license` and the log buffer (writable, `log_size` bytes) outlive the
    // call; the kernel copies the program and writes at most `log_size` bytes of log.
    let fd = unsafe { bpf_call(bpf::PROG_LOAD, &mut attr) }?;
    Ok(owned_fd(fd))
}

/// `BPF_PROG_ATTACH` of `prog` to the cgroup directory `cgroup`.
pub fn bpf_prog_attach(
    cgroup: std::os::fd::BorrowedFd<'_>,
    prog: std::os::fd::BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut attr = BpfAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        attach_flags: flags,
    };
    // SAFETY: the attach member holds no pointers; both descriptors are borrowed for the call.
    unsafe { bpf_call(bpf::PROG_ATTACH, &mut attr) }.map(|_| ())
}

/// `BPF_PROG_DETACH` of `prog` from the cgroup directory `cgroup`.
pub fn bpf_prog_detach(
    cgroup: std::os::fd::BorrowedFd<'_>,
    prog: std::os::fd::BorrowedFd<'_>,
    attach_type: u32,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut attr = BpfAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        attach_flags: 0,
    };
    // SAFETY: the detach member holds no pointers; both descriptors are borrowed for the call.
    unsafe { bpf_call(bpf::PROG_DETACH, &mut attr) }.map(|_| ())
}

/// `BPF_PROG_QUERY`: the ids of the programs attached to `cgroup` itself with `attach_type`.
pub fn bpf_prog_query(
    cgroup: std::os::fd::BorrowedFd<'_>,
    attach_type: u32,
) -> io::Result<Vec<u32>> {
    use std::os::fd::AsRawFd;
    let mut ids = vec![0u32; 64];
    loop {
        let mut attr = BpfQueryAttr {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_type,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..Default::default()
        };
        // SAFETY: `prog_ids` points at `prog_cnt` writable u32s that outlive the call; the
        // kernel writes at most that many.
        match unsafe { bpf_call(bpf::PROG_QUERY, &mut attr) } {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            Err(e)
                if e.raw_os_error() == Some(libc::ENOSPC) && attr.prog_cnt as usize > ids.len() =>
            {
                ids = vec![0u32; attr.prog_cnt as usize];
            }
            Err(e) => return Err(e),
        }
    }
}

/// `BPF_PROG_GET_FD_BY_ID`: a descriptor of the loaded program with this id.
pub fn bpf_prog_get_fd_by_id(id: u32) -> io::Result<std::os::fd::OwnedFd> {
    let mut attr = BpfGetFdAttr {
        prog_id: id,
        ..Default::default()
    };
    // SAFETY: the get-fd member holds no pointers.
    let fd = unsafe { bpf_call(bpf::PROG_GET_FD_BY_ID, &mut attr) }?;
    Ok(owned_fd(fd))
}

/// `CLONE_INTO_CGROUP` (Linux 5.7+).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of clone3(2), up to `cgroup` (`CLONE_ARGS_SIZE_VER2`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// [`clone_fork`] through clone3(2) with `CLONE_INTO_CGROUP`: the child starts inside the cgroup
/// v2 directory open at `cgroup_dir`, so it never has to be migrated there (a migration takes
/// the kernel's global threadgroup lock for writing, which waits for an RCU grace period).
pub fn clone_into_cgroup(flags: libc::c_int, cgroup_dir: RawFd) -> io::Result<libc::pid_t> {
    let args = CloneArgs {
        flags: u64::from(flags as u32) | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup_dir as u64,
        ..Default::default()
    };
    // SAFETY: clone3 with a zero stack and stack_size duplicates the calling thread like
    // fork(2); `args` is a valid clone_args of the size passed, none of its pointer fields are
    // set (no CLONE_PIDFD/SETTLS/*_SETTID flags), and the kernel only reads it during the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            std::ptr::from_ref(&args),
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as libc::pid_t)
    }
}

/// openat2(2) of `path` below the directory `dir` with `RESOLVE_IN_ROOT |
/// RESOLVE_NO_MAGICLINKS`: the kernel resolves every component (symlinks and `..` included)
/// as if `dir` were `/`, atomically, so nothing swapped in concurrently can lead outside it.
pub fn openat2_in_root(
    dir: RawFd,
    path: &std::ffi::CStr,
    flags: libc::c_int,
) -> io::Result<std::os::fd::OwnedFd> {
    berth_sys::root::openat2_c(
        dir,
        path,
        flags,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    )
}
