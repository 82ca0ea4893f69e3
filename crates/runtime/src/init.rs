//! What runs inside the container between clone and execve: the init of `create`/`run`, and the
//! process of `exec` after it joined the container's namespaces.
//!
//! Every failure before execve goes back to the runtime over the sync socket as
//! [`Msg::Error`]; the runtime reports it and cleans up.

use crate::caps::{self, CapSets};
use crate::msg::{Chan, Msg};
use crate::rootfs;
use crate::seccomp::CompiledFilter;
use crate::state::OciState;
use crate::{spec, sys};
use crate::{Error, Result};
use nix::fcntl::{fcntl, open, FcntlArg, FdFlag, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// Everything the container's init needs, prepared by the runtime before clone.
pub struct InitCtx {
    /// The spec.
    pub spec: Spec,
    /// The rootfs (host path).
    pub rootfs: PathBuf,
    /// The bundle (host path).
    pub bundle: PathBuf,
    /// The sync socket.
    pub chan: Chan,
    /// The exec FIFO, opened O_PATH.
    pub fifo: OwnedFd,
    /// The console socket, when the process wants a terminal.
    pub console: Option<UnixStream>,
    /// Namespaces to join (type, fd), in order.
    pub join: Vec<(LinuxNamespaceType, OwnedFd)>,
    /// Unshare a cgroup namespace after the runtime put us in our cgroup.
    pub new_cgroupns: bool,
    /// A new user namespace was created.
    pub userns: bool,
    /// MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The spec lists a mount namespace (new or joined); false: the host's is shared.
    pub mntns: bool,
    /// Extra fds kept open (3..3+n).
    pub preserve_fds: i32,
    /// The container's cgroup directories.
    pub cgroup_paths: Vec<PathBuf>,
    /// Whether the runtime has prestart/createRuntime hooks to run.
    pub runtime_hooks: bool,
    /// The container's seccomp filter, compiled by the runtime before the clone.
    pub seccomp: Option<CompiledFilter>,
    /// The cgroup v1 directories the init moves itself into first thing.
    pub join_cgroups_v1: Vec<PathBuf>,
}

/// Runs the init; never returns.
pub fn run(mut ctx: InitCtx) -> ! {
    let r = init(&mut ctx);
    let msg = match r {
        Ok(never) => match never {},
        Err(e) => e.to_string(),
    };
    let _ = ctx.chan.send(&Msg::Error(msg));
    sys::exit_now(1)
}

fn setns_all(join: &[(LinuxNamespaceType, OwnedFd)]) -> Result<()> {
    use nix::sched::{setns, CloneFlags};
    // the user namespace first (it grants the rights for the others), the mount one last
    let order = |t: &LinuxNamespaceType| match t {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Mount => 2,
        _ => 1,
    };
    let mut v: Vec<&(LinuxNamespaceType, OwnedFd)> = join.iter().collect();
    v.sort_by_key(|(t, _)| order(t));
    for (t, fd) in v {
        if *t == LinuxNamespaceType::Pid {
            continue; // joined by the runtime before fork
        }
        setns(fd, CloneFlags::from_bits_truncate(spec::ns_flag(*t)))
            .map_err(|e| Error::sys(format!("setns {}", spec::ns_file(*t)), e))?;
    }
    Ok(())
}

fn init(ctx: &mut InitCtx) -> Result<std::convert::Infallible> {
    crate::cgroups::join_self_v1(&ctx.join_cgroups_v1)?;
    match ctx.chan.recv()? {
        Some(Msg::Go) => {}
        other => return Err(Error::invalid(format!("unexpected sync message {other:?}"))),
    }
    setns_all(&ctx.join)?;
    if ctx.new_cgroupns {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| Error::sys("unshare cgroup namespace", e))?;
    }
    nix::unistd::setsid().map_err(|e| Error::sys("setsid", e))?;
    if ctx.userns {
        nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .map_err(|e| Error::sys("setresgid 0 in the user namespace", e))?;
        nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .map_err(|e| Error::sys("setresuid 0 in the user namespace", e))?;
    }
    if let Some(h) = ctx.spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(|e| Error::sys("sethostname", e))?;
    }
    if let Some(d) = ctx.spec.domainname().as_deref().filter(|h| !h.is_empty()) {
        sys::setdomainname(d).map_err(|e| Error::sys("setdomainname", e))?;
    }
    let rctx = rootfs::Ctx {
        rootfs: &ctx.rootfs,
        bundle: &ctx.bundle,
        userns: ctx.userns,
        cgroup_paths: &ctx.cgroup_paths,
        mntns: ctx.mntns,
    };
    rootfs::prepare(&ctx.spec, &rctx)?;
    let hooks = ctx.spec.hooks().clone().unwrap_or_default();
    let mut hook_state = None;
    if ctx.runtime_hooks {
        ctx.chan.send(&Msg::RunHooks)?;
        match ctx.chan.recv()? {
            Some(Msg::HooksDone(st)) => {
                let st: OciState = serde_json::from_str(&st)
                    .map_err(|e| Error::invalid(format!("hook state: {e}")))?;
                // in the container's namespaces, before pivot_root (paths are the host's)
                crate::hooks::run("createContainer", hooks.create_container().as_ref(), &st)?;
                hook_state = Some(st);
            }
            Some(Msg::Error(m)) => return Err(Error::Hook(m)),
            other => return Err(Error::invalid(format!("unexpected sync message {other:?}"))),
        }
    }
    let prop = rootfs::root_propagation(&ctx.spec)?;
    crate::jail::enter(&ctx.rootfs, ctx.no_pivot, ctx.mntns, prop)?;
    let process = ctx
        .spec
        .process()
        .clone()
        .ok_or_else(|| Error::invalid("process: missing"))?;
    if process.terminal() == Some(true) {
        let sock = ctx.console.take().ok_or_else(|| {
            Error::invalid("process.terminal is true but no --console-socket was given")
        })?;
        console(&sock, &process, true)?;
    }
    rootfs::finalize(&ctx.spec)?;
    let prepared = prepare_process(&process, ctx.seccomp.as_ref())?;
    ctx.chan.send(&Msg::Ready)?;
    // wait for `start`: opening the FIFO for writing blocks until it is opened for reading
    let path = format!("/proc/self/fd/{}", ctx.fifo.as_raw_fd());
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| Error::sys("open exec fifo", e))?;
    std::io::Write::write_all(&mut fifo, b"0").map_err(|e| Error::sys("write exec fifo", e))?;
    drop(fifo);
    if let Some(mut st) = hook_state {
        // inside the container, after start, as the container's user, before execve
        st.status = "created".into();
        st.pid = std::process::id() as i32;
        if let Err(e) = crate::hooks::run("startContainer", hooks.start_container().as_ref(), &st) {
            eprintln!("{e}");
            sys::exit_now(1);
        }
    }
    exec(prepared, ctx.preserve_fds, &[])
}

/// The process after all set-up: what to execve.
pub struct Prepared {
    path: CString,
    args: Vec<CString>,
    env: Vec<CString>,
    seccomp_late: Option<CompiledFilter>,
}

fn cstr(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid(format!("{what}: contains a NUL byte")))
}

/// Finds the executable like Go's exec.LookPath does with the container's PATH.
pub fn lookup(arg0: &str, env: &[String]) -> Result<PathBuf> {
    let is_exec = |p: &Path| -> std::result::Result<(), String> {
        let md =
            std::fs::metadata(p).map_err(|e| format!("stat {}: {}", p.display(), os_msg(&e)))?;
        if md.is_dir() || md.permissions().mode() & 0o111 == 0 {
            return Err(format!("stat {}: permission denied", p.display()));
        }
        Ok(())
    };
    if arg0.contains('/') {
        is_exec(Path::new(arg0)).map_err(|m| Error::invalid(format!("exec: {arg0:?}: {m}")))?;
        return Ok(PathBuf::from(arg0));
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let p = Path::new(dir).join(arg0);
        if is_exec(&p).is_ok() {
            return Ok(p);
        }
    }
    Err(Error::invalid(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    )))
}

fn os_msg(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Sets up the process's credentials, limits and seccomp (all but the late seccomp), and
/// resolves its executable. Runs inside the container, after pivot_root / setns.
pub fn prepare_process(p: &Process, seccomp: Option<&CompiledFilter>) -> Result<Prepared> {
    for rl in p.rlimits().iter().flatten() {
        let name = serde_json::to_value(rl.typ())
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let res = spec::rlimit_number(&name)
            .ok_or_else(|| Error::invalid(format!("process.rlimits: unknown rlimit {name:?}")))?;
        sys::setrlimit(res, rl.soft(), rl.hard()).map_err(|e| {
            let host = sys::getrlimit(res).map(|(_, h)| h).unwrap_or(0);
            Error::invalid(format!(
                "process.rlimits: setrlimit {name} (soft {}, hard {}): {e} (the host's hard limit is {host}; raising it is refused)",
                rl.soft(),
                rl.hard()
            ))
        })?;
    }
    let env: Vec<String> = p.env().clone().unwrap_or_default();
    let args = p.args().clone().unwrap_or_default();
    let arg0 = args
        .first()
        .ok_or_else(|| Error::invalid("process.args must not be empty"))?;
    let path = lookup(arg0, &env)?;
    let nnp = p.no_new_privileges() == Some(true);
    if let Some(s) = seccomp.filter(|_| !nnp) {
        s.load()?;
    }
    let sets = CapSets::from_oci(p.capabilities().as_ref());
    caps::drop_bounding(sets.bounding)?;
    let user = p.user();
    sys::set_keepcaps(true).map_err(|e| Error::sys("prctl keepcaps", e))?;
    let mut groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    groups.dedup();
    let setgroups_allowed = std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true);
    // As runc: a missing cwd is created (inside the container's root, still as root); a
    // failure shows up as the chdir error below.
    let _ = std::fs::create_dir_all(p.cwd());
    if setgroups_allowed {
        nix::unistd::setgroups(&groups).map_err(|e| Error::sys("setgroups", e))?;
    }
    let (uid, gid) = (Uid::from_raw(user.uid()), Gid::from_raw(user.gid()));
    nix::unistd::setresgid(gid, gid, gid)
        .map_err(|e| Error::sys(format!("setresgid {}", user.gid()), e))?;
    nix::unistd::setresuid(uid, uid, uid)
        .map_err(|e| Error::sys(format!("setresuid {}", user.uid()), e))?;
    sys::set_keepcaps(false).map_err(|e| Error::sys("prctl keepcaps", e))?;
    caps::apply(&sets)?;
    nix::sys::stat::umask(Mode::from_bits_truncate(user.umask().unwrap_or(0o022) as _));
    let cwd = p.cwd();
    std::env::set_current_dir(cwd).map_err(|e| {
        Error::invalid(format!(
            "chdir to cwd ({:?}) set in config.json failed: {}",
            cwd.display().to_string(),
            os_msg(&e)
        ))
    })?;
    if nnp {
        sys::set_no_new_privs().map_err(|e| Error::sys("prctl no_new_privs", e))?;
    }
    Ok(Prepared {
        path: cstr(&path.to_string_lossy(), "process.args[0]")?,
        args: args
            .iter()
            .map(|a| cstr(a, "process.args"))
            .collect::<Result<_>>()?,
        env: env
            .iter()
            .map(|a| cstr(a, "process.env"))
            .collect::<Result<_>>()?,
        seccomp_late: seccomp.filter(|_| nnp).cloned(),
    })
}

/// Loads the late seccomp filter, marks every fd above the kept ones close-on-exec and execs.
pub fn exec(p: Prepared, preserve_fds: i32, keep: &[RawFd]) -> Result<std::convert::Infallible> {
    if let Some(s) = &p.seccomp_late {
        s.load()?;
    }
    cloexec_from(3 + preserve_fds.max(0), keep)?;
    let e = nix::unistd::execve(&p.path, &p.args, &p.env).unwrap_err();
    Err(Error::invalid(format!(
        "exec {:?}: {}",
        p.path.to_string_lossy(),
        std::io::Error::from(e)
    )))
}

/// Marks every open fd >= `min` (except `keep`) close-on-exec, so nothing of the runtime's
/// (least of all a host directory) leaks into the container (CVE-2024-21626).
pub fn cloexec_from(min: RawFd, keep: &[RawFd]) -> Result<()> {
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| Error::io("/proc/self/fd", e))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds {
        if fd >= min && !keep.contains(&fd) {
            let _ = fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
        }
    }
    Ok(())
}

/// Creates a pty in the container's devpts, makes its slave the controlling terminal and
/// fds 0-2, and sends the master over `sock` (one fd, named "/dev/ptmx", as runc does).
pub fn console(sock: &UnixStream, p: &Process, mount_console: bool) -> Result<()> {
    use nix::pty::{posix_openpt, ptsname_r, unlockpt};
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| Error::sys("open /dev/ptmx", e))?;
    unlockpt(&master).map_err(|e| Error::sys("unlockpt", e))?;
    let name = ptsname_r(&master).map_err(|e| Error::sys("ptsname", e))?;
    if let Some(sz) = p.console_size() {
        sys::set_winsize(master.as_raw_fd(), sz.height() as u16, sz.width() as u16)
            .map_err(|e| Error::sys("set console size", e))?;
    }
    let slave = open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("open {name}"), e))?;
    if mount_console {
        let c = Path::new("/dev/console");
        if std::fs::symlink_metadata(c).is_err() {
            let _ = std::fs::File::create(c);
        }
        nix::mount::mount(
            Some(name.as_str()),
            c,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| Error::sys("bind the console to /dev/console", e))?;
    }
    let iov = [std::io::IoSlice::new(b"/dev/ptmx")];
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| Error::sys("send the console master over --console-socket", e))?;
    drop(master);
    for fd in 0..3 {
        nix::unistd::dup2(slave, fd).map_err(|e| Error::sys("dup2 console", e))?;
    }
    let _ = nix::unistd::close(slave);
    sys::set_controlling_tty(0)
        .map_err(|e| Error::sys("make the console the controlling terminal", e))?;
    Ok(())
}

/// What the `exec` child needs.
pub struct ExecCtx {
    /// The process to run.
    pub process: Process,
    /// The container's seccomp filter, compiled before the fork.
    pub seccomp: Option<CompiledFilter>,
    /// The container's cgroup v1 directories, joined first thing (before any setns).
    pub join_cgroups_v1: Vec<PathBuf>,
    /// Sync socket.
    pub chan: Chan,
    /// Namespaces to join.
    pub join: Vec<(LinuxNamespaceType, OwnedFd)>,
    /// The init's root (`/proc/<pid>/root`) to chroot into, when the container has no mount
    /// namespace of its own (joining its namespaces doesn't change the root then).
    pub chroot: Option<OwnedFd>,
    /// Console socket for a terminal.
    pub console: Option<UnixStream>,
    /// Extra fds kept.
    pub preserve_fds: i32,
}

/// The `exec` child: joins the namespaces, sets the process up and execs; never returns.
pub fn run_exec(mut ctx: ExecCtx) -> ! {
    let r = (|| -> Result<std::convert::Infallible> {
        crate::cgroups::join_self_v1(&ctx.join_cgroups_v1)?;
        match ctx.chan.recv()? {
            Some(Msg::Go) => {}
            other => return Err(Error::invalid(format!("unexpected sync message {other:?}"))),
        }
        setns_all(&ctx.join)?;
        if let Some(fd) = ctx.chroot.take() {
            nix::unistd::fchdir(fd.as_raw_fd())
                .map_err(|e| Error::sys("fchdir container root", e))?;
            nix::unistd::chroot(".").map_err(|e| Error::sys("chroot", e))?;
            std::env::set_current_dir("/").map_err(|e| Error::io("/", e))?;
        }
        if ctx.process.terminal() == Some(true) {
            nix::unistd::setsid().map_err(|e| Error::sys("setsid", e))?;
            let sock = ctx.console.take().ok_or_else(|| {
                Error::invalid("process.terminal is true but no --console-socket was given")
            })?;
            console(&sock, &ctx.process, false)?;
        }
        let prepared = prepare_process(&ctx.process, ctx.seccomp.as_ref())?;
        let keep = ctx.chan.fds();
        // the sync socket is close-on-exec: the runtime sees EOF when execve succeeded
        exec(prepared, ctx.preserve_fds, &keep)
    })();
    let msg = match r {
        Ok(never) => match never {},
        Err(e) => e.to_string(),
    };
    let _ = ctx.chan.send(&Msg::Error(msg));
    sys::exit_now(1)
}
