//! The runtime's side of each verb: create (state dir, exec FIFO, cgroup, clone of the init),
//! start, state, kill, delete, exec, pause/resume, update.
//!
//! Bad input leaves nothing behind: everything `create` makes is registered with a [`Cleanup`]
//! guard that undoes it (kills the init, removes the cgroup and the state dir) unless the
//! creation succeeded.

use crate::cgroups::{self, Manager};
use crate::init::{self, ExecCtx, InitCtx};
use crate::msg::{Chan, Msg};
use crate::spec::{self, Bundle};
use crate::state::{self, Saved, Status};
use crate::timens;
use crate::{hooks, sys, Error, Result};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, LinuxResources, Process, Spec};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Options of `create` (and `run`).
#[derive(Debug, Clone, Default)]
pub struct CreateOpts {
    /// Container ID.
    pub id: String,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// Where to write the init's pid.
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the pty master to.
    pub console_socket: Option<PathBuf>,
    /// MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Extra fds to pass (3..3+n).
    pub preserve_fds: i32,
}

/// Undoes a half-made container.
struct Cleanup {
    state_dir: Option<PathBuf>,
    cgroup: Vec<PathBuf>,
    pid: Option<i32>,
    /// The rootfs whose mounts are the host's (no mount namespace): unmounted.
    host_mounts: Option<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        let _ = cgroups::remove(&self.cgroup);
        if let Some(r) = &self.host_mounts {
            let _ = crate::jail::unmount_under(r);
        }
        if let Some(d) = &self.state_dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl Cleanup {
    fn disarm(mut self) {
        self.state_dir = None;
        self.cgroup.clear();
        self.pid = None;
        self.host_mounts = None;
    }
}

fn open_ns(path: &Path, what: &str) -> Result<OwnedFd> {
    File::open(path)
        .map(OwnedFd::from)
        .map_err(|e| Error::invalid(format!("{what}: open {}: {e}", path.display())))
}

/// The cgroup path of a spec (`<id>`, relative to the runtime's own cgroup, when none is
/// given, as runc does).
pub fn cgroups_path(spec: &Spec, id: &str) -> PathBuf {
    spec.linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from(id))
}

use berth_sys::time::now_rfc3339;

fn write_id_map(pid: i32, file: &str, maps: &[oci_spec::runtime::LinuxIdMapping]) -> Result<()> {
    let text: String = maps
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect();
    let p = format!("/proc/{pid}/{file}");
    std::fs::write(&p, text).map_err(|e| {
        Error::invalid(format!(
            "linux.{}: write {p}: {e}",
            if file == "uid_map" {
                "uidMappings"
            } else {
                "gidMappings"
            }
        ))
    })
}

/// A created container: its init pid and saved state.
pub struct Created {
    /// The init's pid.
    pub pid: i32,
    /// The saved state.
    pub saved: Saved,
}

/// `create`: sets the container up and leaves its init blocked on the exec FIFO.
pub fn create(root: &Path, o: &CreateOpts) -> Result<Created> {
    state::check_id(&o.id)?;
    let Bundle { dir, spec, rootfs } = spec::load_bundle(&o.bundle)?;
    let linux = spec.linux().clone().unwrap_or_default();
    let process = spec.process().clone().unwrap_or_default();
    // namespaces: fds of the ones to join, flags of the ones to create
    let mut flags = 0;
    let mut join = Vec::new();
    let mut has_mnt = false;
    let mut new_cgroupns = false;
    let mut userns = false;
    let mut pidns_path = None;
    let mut new_timens = false;
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        let t = ns.typ();
        if t == LinuxNamespaceType::Mount {
            has_mnt = true;
        }
        match ns.path() {
            Some(p) if !p.as_os_str().is_empty() => {
                let fd = open_ns(p, &format!("linux.namespaces[{i}].path"))?;
                if t == LinuxNamespaceType::Pid {
                    pidns_path = Some(fd);
                } else {
                    join.push((t, fd));
                }
            }
            _ => match t {
                LinuxNamespaceType::Cgroup => new_cgroupns = true,
                LinuxNamespaceType::Time => new_timens = true,
                _ => {
                    if t == LinuxNamespaceType::User {
                        userns = true;
                    }
                    flags |= spec::ns_flag(t);
                }
            },
        }
    }
    let timens_offsets = match new_timens {
        true => Some(timens::offsets_file(
            &linux.time_offsets().clone().unwrap_or_default(),
        )?),
        false => None,
    };
    if !has_mnt {
        crate::jail::check_without_mntns(&spec)?;
    }
    if process.terminal() == Some(true) && o.console_socket.is_none() {
        return Err(Error::invalid(
            "process.terminal is true: --console-socket is required",
        ));
    }
    let seccomp = compile_seccomp(root, &spec)?;
    let console = match &o.console_socket {
        Some(p) if process.terminal() == Some(true) => Some(
            UnixStream::connect(p)
                .map_err(|e| Error::invalid(format!("--console-socket {}: {e}", p.display())))?,
        ),
        _ => None,
    };
    std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    let sdir = Saved::dir(root, &o.id);
    match std::fs::create_dir(&sdir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Exists(o.id.clone()))
        }
        Err(e) => return Err(Error::io(&sdir, e)),
    }
    let mut guard = Cleanup {
        state_dir: Some(sdir.clone()),
        cgroup: Vec::new(),
        pid: None,
        host_mounts: (!has_mnt).then(|| rootfs.clone()),
    };
    let fifo_path = sdir.join("exec.fifo");
    nix::unistd::mkfifo(&fifo_path, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .map_err(|e| Error::sys(format!("mkfifo {}", fifo_path.display()), e))?;
    // the umask must not narrow it: a non-root container user opens it for writing
    std::fs::set_permissions(
        &fifo_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o622),
    )
    .map_err(|e| Error::io(&fifo_path, e))?;
    let fifo: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(&fifo_path)
        .map_err(|e| Error::io(&fifo_path, e))?
        .into();
    let cgpath = cgroups_path(&spec, &o.id);
    let mgr = Manager::new(&cgroups::detect(), &cgpath, &cgroups::own());
    // The cgroup denies every device but the spec's `linux.resources.devices` rules and the
    // default allowed devices, as runc's specconv. `linux.devices` only makes nodes: a FIFO
    // (`p`) there is no device-cgroup rule at all, and the engine adds the rules a `--device`
    // needs itself.
    let resources = linux.resources().clone().unwrap_or_default();
    mgr.create(Some(&resources))?;
    guard.cgroup = mgr.paths();
    let hooks = spec.hooks().clone().unwrap_or_default();
    #[allow(deprecated)]
    let nonempty =
        |h: &Option<Vec<oci_spec::runtime::Hook>>| h.as_ref().is_some_and(|h| !h.is_empty());
    let runtime_hooks = nonempty(hooks.prestart())
        || nonempty(hooks.create_runtime())
        || nonempty(hooks.create_container())
        || nonempty(hooks.start_container());
    let (parent_sock, child_sock) = UnixStream::pair().map_err(|e| Error::sys("socketpair", e))?;
    let mut chan = Chan::new(parent_sock)?;
    sys::set_dumpable(false).map_err(|e| Error::sys("prctl dumpable", e))?;
    if let Some(fd) = &pidns_path {
        nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWPID)
            .map_err(|e| Error::sys("setns pid", e))?;
    }
    let own_timens = match &timens_offsets {
        Some(offsets) => Some(timens::new_for_children(offsets)?),
        None => None,
    };
    // Without a new user namespace the init joins its cgroups itself: the v2 one at birth
    // (clone3 into it) and the v1 ones by moving its single thread (see cgroups::join_self_v1);
    // both avoid the slow migration of a pid written by the parent. In a new user namespace
    // the init has no rights on the host's cgroup files, so the parent moves it.
    let self_join = !userns;
    let (v1_dirs, v2_dir) = cgroups::split_v1_v2(&mgr.paths());
    let (pid, born_in_v2) = clone_init(flags, self_join.then_some(v2_dir.as_deref()).flatten());
    let pid = pid.map_err(|e| Error::sys("clone the container init", e));
    if !matches!(pid, Ok(0)) {
        if let Some(own) = &own_timens {
            // (the parent only) hooks and anything else the runtime starts later stay in the
            // host's time namespace
            timens::restore_for_children(own)?;
        }
    }
    let pid = pid?;
    if pid == 0 {
        drop(chan);
        let ctx = InitCtx {
            spec: spec.clone(),
            rootfs: rootfs.clone(),
            bundle: dir.clone(),
            chan: match Chan::new(child_sock) {
                Ok(c) => c,
                Err(_) => sys::exit_now(1),
            },
            fifo,
            console,
            join,
            new_cgroupns,
            userns,
            no_pivot: o.no_pivot,
            mntns: has_mnt,
            preserve_fds: o.preserve_fds,
            cgroup_paths: mgr.paths(),
            runtime_hooks,
            seccomp,
            join_cgroups_v1: if self_join { v1_dirs } else { Vec::new() },
        };
        init::run(ctx);
    }
    drop(child_sock);
    drop(fifo);
    drop(console);
    guard.pid = Some(pid);
    if userns {
        write_id_map(
            pid,
            "uid_map",
            linux.uid_mappings().as_deref().unwrap_or(&[]),
        )?;
        write_id_map(
            pid,
            "gid_map",
            linux.gid_mappings().as_deref().unwrap_or(&[]),
        )?;
    }
    if !self_join {
        mgr.add(pid)?;
    } else if let (Some(v2), false) = (&v2_dir, born_in_v2) {
        cgroups::join(std::slice::from_ref(v2), pid)?;
    }
    if let Some(adj) = process.oom_score_adj() {
        set_oom_score_adj(pid, adj)?;
    }
    let start_time = state::proc_stat(pid).map(|s| s.1).unwrap_or(0);
    let saved = Saved {
        id: o.id.clone(),
        pid,
        start_time,
        bundle: dir.clone(),
        rootfs: rootfs.clone(),
        created: now_rfc3339(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup_paths: mgr.paths(),
        cgroups_path: cgpath,
        config: spec.clone(),
    };
    chan.send(&Msg::Go)?;
    loop {
        match chan.recv()? {
            Some(Msg::RunHooks) => {
                let mut st = saved.oci(root);
                st.status = "creating".into();
                #[allow(deprecated)]
                let r = hooks::run("prestart", hooks.prestart().as_ref(), &st).and_then(|_| {
                    hooks::run("createRuntime", hooks.create_runtime().as_ref(), &st)
                });
                match r {
                    Ok(()) => chan.send(&Msg::HooksDone(
                        serde_json::to_string(&st).map_err(|e| Error::invalid(e.to_string()))?,
                    ))?,
                    Err(e) => {
                        let _ = chan.send(&Msg::Error(e.to_string()));
                        return Err(e);
                    }
                }
            }
            Some(Msg::Ready) => break,
            Some(Msg::Error(m)) => return Err(Error::Start(m)),
            Some(m) => return Err(Error::Start(format!("unexpected sync message {m:?}"))),
            None => {
                return Err(Error::Start(
                    "container init exited before it was ready".into(),
                ))
            }
        }
    }
    saved.save(root)?;
    if let Some(p) = &o.pid_file {
        state::write_atomic(p, pid.to_string().as_bytes())?;
    }
    guard.disarm();
    Ok(Created { pid, saved })
}

/// `start`: lets the init exec the container's process.
pub fn start(root: &Path, id: &str) -> Result<()> {
    let saved = Saved::load(root, id)?;
    match saved.status(root) {
        Status::Created => {}
        Status::Stopped => {
            return Err(Error::State(
                "cannot start a container that has stopped".into(),
            ))
        }
        _ => {
            return Err(Error::State(
                "cannot start an already running container".into(),
            ))
        }
    }
    let fifo_path = Saved::dir(root, id).join("exec.fifo");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo_path)
        .map_err(|e| Error::io(&fifo_path, e))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 1];
    loop {
        match std::io::Read::read(&mut f, &mut buf) {
            Ok(1) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(Error::io(&fifo_path, e)),
        }
        if !saved.alive() {
            return Err(Error::State("container init exited before start".into()));
        }
        if Instant::now() > deadline {
            return Err(Error::State(
                "timed out waiting for the container init".into(),
            ));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let _ = std::fs::remove_file(&fifo_path);
    let hooks = saved.config.hooks().clone().unwrap_or_default();
    let mut st = saved.oci(root);
    // runc 1.1 hands poststart hooks the state as it was before start
    st.status = "created".into();
    if let Err(e) = hooks::run("poststart", hooks.poststart().as_ref(), &st) {
        // as runc: a failed poststart hook stops the container
        let _ = kill(Pid::from_raw(saved.pid), Signal::SIGKILL);
        return Err(e);
    }
    Ok(())
}

/// Parses a signal: "KILL", "SIGKILL", "9".
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::invalid(format!("unknown signal {s:?}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map_err(|_| Error::invalid(format!("unknown signal {s:?}")))
}

/// `kill`: signals the init (or, with `all`, every process of the container).
pub fn kill_container(root: &Path, id: &str, sig: Signal, all: bool) -> Result<()> {
    let saved = Saved::load(root, id)?;
    if saved.status(root) == Status::Stopped {
        return Err(Error::State("container not running".into()));
    }
    if all {
        for p in cgroups::pids(&saved.cgroup_paths) {
            let _ = kill(Pid::from_raw(p), sig);
        }
        return Ok(());
    }
    kill(Pid::from_raw(saved.pid), sig).map_err(|e| Error::sys("kill", e))
}

fn wait_gone(saved: &Saved) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while saved.alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Removes what remains of a stopped container (processes in its cgroup, the cgroup, the state
/// dir) and runs the poststop hooks.
pub fn destroy(root: &Path, saved: &Saved) -> Result<()> {
    if saved.alive() {
        let _ = kill(Pid::from_raw(saved.pid), Signal::SIGKILL);
    }
    if cgroups::is_frozen(&saved.cgroup_paths) {
        let _ = cgroups::freeze(&saved.cgroup_paths, false);
    }
    for p in cgroups::pids(&saved.cgroup_paths) {
        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
    }
    wait_gone(saved);
    let r = cgroups::remove(&saved.cgroup_paths);
    let shared_mntns = !saved
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Mount));
    // without a mount namespace the init's mounts are the host's: take them away again
    let r = match shared_mntns {
        true => r.and(crate::jail::unmount_under(&saved.rootfs)),
        false => r,
    };
    std::fs::remove_dir_all(Saved::dir(root, &saved.id))
        .map_err(|e| Error::io(Saved::dir(root, &saved.id), e))?;
    let hooks = saved.config.hooks().clone().unwrap_or_default();
    let mut st = saved.oci(root);
    st.status = "stopped".into();
    st.pid = 0;
    if let Err(e) = hooks::run("poststop", hooks.poststop().as_ref(), &st) {
        eprintln!("warning: {e}");
    }
    r
}

/// `delete`.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let saved = match Saved::load(root, id) {
        Ok(s) => s,
        Err(Error::NotExist) if force => {
            let _ = std::fs::remove_dir_all(Saved::dir(root, id));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    match saved.status(root) {
        Status::Stopped | Status::Created => destroy(root, &saved),
        s if force => {
            let _ = s;
            destroy(root, &saved)
        }
        s => Err(Error::State(format!(
            "cannot delete container {id} that is not stopped: {s}"
        ))),
    }
}

/// All containers under `root`.
pub fn list(root: &Path) -> Vec<Saved> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd.flatten() {
            if let Some(id) = e.file_name().to_str() {
                if let Ok(s) = Saved::load(root, id) {
                    v.push(s);
                }
            }
        }
    }
    v.sort_by(|a, b| a.id.cmp(&b.id));
    v
}

/// Options of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOpts {
    /// The process.
    pub process: Option<Process>,
    /// Return once the process runs.
    pub detach: bool,
    /// Where to write its pid.
    pub pid_file: Option<PathBuf>,
    /// Console socket.
    pub console_socket: Option<PathBuf>,
    /// Extra fds.
    pub preserve_fds: i32,
}

/// Clones the container's first process (fork semantics, namespace `flags`), straight into the
/// cgroup v2 directory `v2` when given and the kernel can (clone3 `CLONE_INTO_CGROUP`, Linux
/// 5.7+). Returns the clone's result and whether the child was born in `v2`.
fn clone_init(flags: libc::c_int, v2: Option<&Path>) -> (std::io::Result<libc::pid_t>, bool) {
    let dir = v2.and_then(|d| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(d)
            .ok()
    });
    if let Some(dir) = &dir {
        match sys::clone_into_cgroup(flags, dir.as_raw_fd()) {
            Ok(pid) => return (Ok(pid), true),
            // an older kernel (no clone3 / CLONE_INTO_CGROUP): fork, then migrate
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOSYS) | Some(libc::EINVAL) | Some(libc::E2BIG)
                ) => {}
            Err(e) => return (Err(e), false),
        }
    }
    (sys::clone_fork(flags), false)
}

/// The container's seccomp filter, generated once per distinct profile and then taken from
/// the cache under `root` (in `@seccomp-cache`: `@` is not allowed in container ids, so the
/// directory can never be taken for a container's).
fn compile_seccomp(root: &Path, spec: &Spec) -> Result<Option<crate::seccomp::CompiledFilter>> {
    let profile = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    profile
        .map(|s| crate::seccomp::compile_cached(&root.join("@seccomp-cache"), s))
        .transpose()
}

/// `exec`: runs a process in a created or running container. Returns its exit code (0 when
/// detached).
pub fn exec(root: &Path, id: &str, o: &ExecOpts) -> Result<i32> {
    let saved = Saved::load(root, id)?;
    let st = saved.status(root);
    if st == Status::Stopped {
        return Err(Error::State("cannot exec in a stopped container".into()));
    }
    if st == Status::Paused {
        return Err(Error::State("cannot exec in a paused container".into()));
    }
    let process = o
        .process
        .clone()
        .ok_or_else(|| Error::invalid("exec: no process given"))?;
    if process.terminal() == Some(true) && o.console_socket.is_none() {
        return Err(Error::invalid(
            "process.terminal is true: --console-socket is required",
        ));
    }
    let console = match &o.console_socket {
        Some(p) if process.terminal() == Some(true) => Some(
            UnixStream::connect(p)
                .map_err(|e| Error::invalid(format!("--console-socket {}: {e}", p.display())))?,
        ),
        _ => None,
    };
    let linux = saved.config.linux().clone().unwrap_or_default();
    let seccomp = compile_seccomp(root, &saved.config)?;
    let mut join = Vec::new();
    let mut pidns = None;
    for ns in linux.namespaces().iter().flatten() {
        let t = ns.typ();
        let p = PathBuf::from(format!("/proc/{}/ns/{}", saved.pid, spec::ns_file(t)));
        let fd = open_ns(&p, "join the container")?;
        if t == LinuxNamespaceType::Pid {
            pidns = Some(fd);
        } else {
            join.push((t, fd));
        }
    }
    // without a mount namespace the init chroot'ed into the rootfs in the host's: so does exec
    let chroot = match linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::Mount)
    {
        true => None,
        false => {
            let p = format!("/proc/{}/root", saved.pid);
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
                .open(&p)
                .map_err(|e| Error::io(&p, e))?;
            Some(std::os::fd::OwnedFd::from(f))
        }
    };
    let (parent_sock, child_sock) = UnixStream::pair().map_err(|e| Error::sys("socketpair", e))?;
    let mut chan = Chan::new(parent_sock)?;
    sys::set_dumpable(false).map_err(|e| Error::sys("prctl dumpable", e))?;
    if let Some(fd) = &pidns {
        nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWPID)
            .map_err(|e| Error::sys("setns pid", e))?;
    }
    let (v1_dirs, v2_dir) = cgroups::split_v1_v2(&saved.cgroup_paths);
    let v2_dir = v2_dir.filter(|d| d.exists());
    let (pid, born_in_v2) = clone_init(0, v2_dir.as_deref());
    let pid = pid.map_err(|e| Error::sys("fork", e))?;
    if pid == 0 {
        drop(chan);
        let ctx = ExecCtx {
            join_cgroups_v1: v1_dirs.into_iter().filter(|d| d.exists()).collect(),
            process,
            seccomp,
            chan: match Chan::new(child_sock) {
                Ok(c) => c,
                Err(_) => sys::exit_now(1),
            },
            join,
            chroot,
            console,
            preserve_fds: o.preserve_fds,
        };
        init::run_exec(ctx);
    }
    drop(child_sock);
    drop(console);
    let fail = |e: Error| -> Error {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
        e
    };
    if let (Some(v2), false) = (&v2_dir, born_in_v2) {
        if let Err(e) = cgroups::join(std::slice::from_ref(v2), pid) {
            return Err(fail(e));
        }
    }
    if let Err(e) = chan.send(&Msg::Go) {
        return Err(fail(e));
    }
    match chan.recv() {
        Ok(None) => {}
        Ok(Some(Msg::Error(m))) => return Err(fail(Error::Start(m))),
        Ok(Some(m)) => return Err(fail(Error::Start(format!("unexpected sync message {m:?}")))),
        Err(e) => return Err(fail(e)),
    }
    if let Some(p) = &o.pid_file {
        state::write_atomic(p, pid.to_string().as_bytes())?;
    }
    if o.detach {
        return Ok(0);
    }
    Ok(wait_forwarding(pid))
}

/// Waits for the init of `run`, forwarding the signals a terminal or a supervisor sends (INT,
/// TERM, HUP, QUIT, USR1, USR2, WINCH) to it, as runc does; returns its exit code.
pub fn wait_forwarding(pid: i32) -> i32 {
    use nix::sys::signal::{SigSet, SigmaskHow};
    use nix::sys::wait::WaitPidFlag;
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        set.add(s);
    }
    if nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).is_err() {
        return wait_exit(pid);
    }
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Err(nix::Error::ECHILD) => return 255,
            _ => {}
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => {}
            Ok(sig) => {
                let _ = kill(Pid::from_raw(pid), sig);
            }
        }
    }
}

/// Waits for a child and returns its exit code (128+signal when killed).
pub fn wait_exit(pid: i32) -> i32 {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            Err(_) => return 255,
        }
    }
}

/// `pause` / `resume`.
pub fn pause(root: &Path, id: &str, on: bool) -> Result<()> {
    let saved = Saved::load(root, id)?;
    let st = saved.status(root);
    if on && st != Status::Running && st != Status::Created {
        return Err(Error::State(format!("container not running: {st}")));
    }
    if !on && st != Status::Paused {
        return Err(Error::State("container not paused".into()));
    }
    cgroups::freeze(&saved.cgroup_paths, on)
}

/// `update`: writes new resources into the container's cgroup.
pub fn update(root: &Path, id: &str, r: &LinuxResources) -> Result<()> {
    let saved = Saved::load(root, id)?;
    if saved.status(root) == Status::Stopped {
        return Err(Error::State("container not running".into()));
    }
    Manager::from_paths(&cgroups::detect(), &saved.cgroup_paths).apply(r)
}

/// Writes the container's `oom_score_adj`. Lowering it below the runtime's own needs
/// `CAP_SYS_RESOURCE`, which root lacks on some hosts: there the value is clamped to the
/// runtime's own (what the kernel allows), with a warning, as containerd's
/// `restrict_oom_score_adj` does; any other failure is an error naming the setting.
fn set_oom_score_adj(pid: i32, adj: i32) -> Result<()> {
    let path = format!("/proc/{pid}/oom_score_adj");
    match std::fs::write(&path, adj.to_string()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let own: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            if adj >= own {
                return Err(Error::invalid(format!("process.oomScoreAdj: {e}")));
            }
            eprintln!(
                "berth-runtime: warning: process.oomScoreAdj {adj} is below the runtime's own \
                 ({own}) and this host does not allow lowering it: clamped to {own}"
            );
            std::fs::write(&path, own.to_string())
                .map_err(|e| Error::invalid(format!("process.oomScoreAdj: {e}")))
        }
        Err(e) => Err(Error::invalid(format!("process.oomScoreAdj: {e}"))),
    }
}
