//! The supervising (forked) half of the shim.
//!
//! Threads: the main thread reaps (waits for the container or exec process and finishes up);
//! one accept thread on `shim.sock`; one reader thread per output descriptor (stdout and stderr
//! pipes, or the pty master) that writes the json-file log and relays frames; per client a
//! reader thread (frames from the client) and a writer thread fed by a bounded queue, so a slow
//! or vanished client never blocks the container.

use crate::args::{Args, Mode};
use crate::{jsonlog, sys};
use berth_shim::protocol::{self, ExitRecord, Frame};
use berth_shim::sockpath::SocketPath;
use std::collections::VecDeque;
use std::fmt::Display;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Stack size of every thread the shim starts; they only need a few KiB.
const STACK: usize = 128 * 1024;
/// Output queued for one client beyond which output waits for it (see [`STALL`]).
const MAX_BACKLOG: usize = 4 << 20;
/// How long a client with a full backlog may go without reading before it is dropped.
const STALL: Duration = Duration::from_secs(2);
/// Largest chunk read from the container's output at once.
const CHUNK: usize = 32 * 1024;
/// Output relayed by one reader after which a pause in the output trims the heap.
const TRIM_AFTER: usize = 64 * 1024;
/// How long the output must pause before the heap is trimmed.
const TRIM_PAUSE: Duration = Duration::from_secs(1);
/// The console socket runc sends the pty master to, in the state directory.
const CONSOLE_SOCKET: &str = "console.sock";
/// runc's own log (JSON lines), in the state directory.
const RUNC_LOG: &str = "runc.log";
/// The shim's debug log, in the state directory.
const DEBUG_LOG_FILE: &str = "shim.log";

static DEBUG_LOG: OnceLock<File> = OnceLock::new();

/// Appends a line to `<state-dir>/shim.log`.
fn debug(msg: impl Display) {
    if let Some(mut f) = DEBUG_LOG.get() {
        let _ = writeln!(f, "{} {msg}", jsonlog::now_rfc3339());
    }
}

/// Locks a mutex, ignoring poisoning (a panicked thread leaves plain data behind).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts a named thread with a small stack.
fn spawn(name: &str, f: impl FnOnce() + Send + 'static) {
    if let Err(e) = thread::Builder::new()
        .name(name.into())
        .stack_size(STACK)
        .spawn(f)
    {
        debug(format_args!("cannot start thread {name}: {e}"));
    }
}

/// One line for the readiness pipe / a REPLY frame.
fn one_line(msg: &str) -> String {
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The process the shim waits for.
#[derive(Default)]
struct ProcState {
    /// The container (or exec) process, once known.
    pid: Option<libc::pid_t>,
    /// Runtime invocations in flight: while non-zero, only `pid` is reaped, so the exit status
    /// of a runtime command (or of a process whose pid is not recorded yet) is never stolen.
    busy: u32,
    /// Set when START failed: the process never ran and this is its exit code.
    failed: Option<i32>,
}

/// An encoded frame ready to be written, shared between client queues.
type Encoded = Arc<[u8]>;

/// Frames waiting to be written to one client.
#[derive(Default)]
struct Queue {
    frames: VecDeque<Encoded>,
    bytes: usize,
    writing: bool,
    /// Frames written so far: the client's progress.
    written: u64,
    dead: bool,
}

/// One connection on `shim.sock`.
struct Client {
    stream: UnixStream,
    queue: Mutex<Queue>,
    cv: Condvar,
}

impl Client {
    /// Queues a frame; `false` once the client is gone (or was dropped for falling behind).
    fn push(&self, frame: &Encoded) -> bool {
        let mut q = lock(&self.queue);
        // Over the backlog, wait for the writer as long as the client keeps reading; one that
        // makes no progress for STALL is dropped, so it holds the container up at most that long.
        let mut mark = (q.written, Instant::now());
        while !q.dead && q.bytes > 0 && q.bytes + frame.len() > MAX_BACKLOG {
            if q.written != mark.0 {
                mark = (q.written, Instant::now());
            } else if mark.1.elapsed() >= STALL {
                drop(q);
                debug("dropping a client that stopped reading");
                self.kill();
                return false;
            }
            q = self
                .cv
                .wait_timeout(q, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if q.dead {
            return false;
        }
        q.bytes += frame.len();
        q.frames.push_back(frame.clone());
        drop(q);
        self.cv.notify_all();
        true
    }

    /// Marks the client dead and wakes its writer.
    fn kill(&self) {
        lock(&self.queue).dead = true;
        let _ = self.stream.shutdown(Shutdown::Both);
        self.cv.notify_all();
    }

    /// Whether everything queued was written (or the client is gone).
    fn drained(&self) -> bool {
        let q = lock(&self.queue);
        q.dead || (q.frames.is_empty() && !q.writing)
    }

    /// The writer thread: writes queued frames until the client is gone.
    fn write_loop(&self) {
        loop {
            let frame = {
                let mut q = lock(&self.queue);
                loop {
                    if q.dead {
                        return;
                    }
                    if let Some(f) = q.frames.pop_front() {
                        q.writing = true;
                        break f;
                    }
                    q = self.cv.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            };
            let ok = (&self.stream).write_all(&frame).is_ok();
            let mut q = lock(&self.queue);
            q.writing = false;
            q.bytes -= frame.len();
            q.written += 1;
            if q.frames.is_empty() {
                q.frames = VecDeque::new();
            }
            drop(q);
            self.cv.notify_all();
            if !ok {
                self.kill();
                return;
            }
        }
    }
}

/// Connected clients, and the EXIT frame once there is one (sent to late clients too).
#[derive(Default)]
struct Clients {
    list: Vec<Arc<Client>>,
    exit: Option<Encoded>,
}

/// One of the process's output streams (a terminal counts as stdout).
#[derive(Clone, Copy)]
enum Output {
    Stdout,
    Stderr,
}

impl Output {
    /// The stream's name in the json-file log.
    fn name(self) -> &'static str {
        match self {
            Output::Stdout => "stdout",
            Output::Stderr => "stderr",
        }
    }

    /// An output frame of this stream, borrowing `data`.
    fn frame(self, data: &[u8]) -> Frame<&[u8]> {
        match self {
            Output::Stdout => Frame::Stdout(data),
            Output::Stderr => Frame::Stderr(data),
        }
    }
}

/// The container's end of its stdio pipes and the shim's ends, until the runtime gets them.
struct Pipes {
    stdin: File,
    stdout: OwnedFd,
    stderr: OwnedFd,
    stdout_r: File,
    stderr_r: File,
}

impl Pipes {
    fn new(with_stdin: bool) -> io::Result<(Pipes, Option<File>)> {
        let (out_r, out_w) = sys::pipe()?;
        let (err_r, err_w) = sys::pipe()?;
        let (stdin, stdin_w) = if with_stdin {
            let (r, w) = sys::pipe()?;
            (File::from(r), Some(File::from(w)))
        } else {
            (File::open("/dev/null")?, None)
        };
        let pipes = Pipes {
            stdin,
            stdout: out_w,
            stderr: err_w,
            stdout_r: File::from(out_r),
            stderr_r: File::from(err_r),
        };
        Ok((pipes, stdin_w))
    }
}

/// stdio for a runtime command.
struct RuntimeStdio {
    stdin: Stdio,
    stdout: Stdio,
    stderr: Stdio,
}

impl RuntimeStdio {
    fn null() -> Self {
        RuntimeStdio {
            stdin: Stdio::null(),
            stdout: Stdio::null(),
            stderr: Stdio::null(),
        }
    }
}

/// The listening `--console-socket`; removed when dropped.
struct ConsoleSocket {
    listener: UnixListener,
    sock: SocketPath,
    /// The path the runtime connects to.
    path: PathBuf,
}

impl ConsoleSocket {
    fn bind(dir: &Path) -> Result<Self, String> {
        let shown = dir.join(CONSOLE_SOCKET);
        let sock = SocketPath::new(dir, CONSOLE_SOCKET)
            .map_err(|e| format!("binding console socket {}: {e}", shown.display()))?;
        let _ = fs::remove_file(sock.path());
        let listener = UnixListener::bind(sock.path())
            .map_err(|e| format!("binding console socket {}: {e}", shown.display()))?;
        let path = sock.path_for_others();
        Ok(ConsoleSocket {
            listener,
            sock,
            path,
        })
    }

    /// Accepts the runtime's connection (already queued: the runtime has exited) and receives
    /// the pty master.
    fn receive(&self) -> Result<File, String> {
        let err = |e: io::Error| format!("receiving the console from the runtime: {e}");
        self.listener.set_nonblocking(true).map_err(err)?;
        let deadline = Instant::now() + Duration::from_secs(2);
        let conn = loop {
            match self.listener.accept() {
                Ok((c, _)) => break c,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(err(e)),
            }
        };
        conn.set_nonblocking(false).map_err(err)?;
        conn.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(err)?;
        Ok(File::from(sys::recv_fd(&conn).map_err(err)?))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(self.sock.path());
    }
}

/// Marks a runtime invocation in flight (see [`ProcState::busy`]) until dropped.
struct Busy<'a>(&'a Shim);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        lock(&self.0.proc_state).busy -= 1;
        self.0.proc_cv.notify_all();
    }
}

/// Everything the shim's threads share.
struct Shim {
    args: Args,
    proc_state: Mutex<ProcState>,
    proc_cv: Condvar,
    clients: Mutex<Clients>,
    /// Write end of the container's stdin pipe (`--stdin` without `--tty`).
    stdin: Mutex<Option<Arc<File>>>,
    /// The pty master (`--tty`), once received.
    pty: Mutex<Option<Arc<File>>>,
    /// Last requested terminal size, applied when the pty arrives.
    winsize: Mutex<Option<(u16, u16)>>,
    started: AtomicBool,
    /// Exec mode without a tty: the pipes, until START hands them to the runtime.
    pending_pipes: Mutex<Option<Pipes>>,
    /// Output readers still running.
    readers: Mutex<usize>,
    readers_cv: Condvar,
    /// The json-file log.
    log: Option<Mutex<crate::logfile::RotatingLog>>,
    /// Held while broadcasting, and by START until its REPLY is queued.
    gate: Mutex<()>,
}

/// Runs the supervising process; never returns.
pub fn run(args: Args, mut ready: File) -> ! {
    let state_dir = args.state_dir.clone();
    match prepare(args) {
        Err(msg) => {
            debug(format_args!("not ready: {msg}"));
            for f in [
                protocol::SOCKET,
                protocol::SHIM_PID_FILE,
                protocol::PID_FILE,
            ] {
                let _ = fs::remove_file(state_dir.join(f));
            }
            let _ = writeln!(ready, "error: {}", one_line(&msg));
            std::process::exit(1);
        }
        Ok((shim, listener)) => {
            let pid = lock(&shim.proc_state).pid.unwrap_or(0);
            let accepting = shim.clone();
            spawn("accept", move || accepting.accept_loop(listener));
            debug(format_args!("ready, pid {pid}"));
            let _ = writeln!(ready, "ok {pid}");
            drop(ready);
            sys::release_free_heap();
            let code = shim.reap();
            shim.finish(code)
        }
    }
}

/// Detaches, creates the state files and the socket and, in init mode, the container.
fn prepare(args: Args) -> Result<(Arc<Shim>, UnixListener), String> {
    sys::setsid().map_err(|e| format!("setsid: {e}"))?;
    let _ = std::env::set_current_dir("/");
    let devnull = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("/dev/null: {e}"))?;
    sys::redirect_stdio(&devnull).map_err(|e| format!("redirecting stdio: {e}"))?;
    drop(devnull);
    sys::set_child_subreaper().map_err(|e| format!("becoming a subreaper: {e}"))?;
    sys::limit_malloc_arenas();
    if let Ok(f) = OpenOptions::new()
        .create(true)
        .append(true)
        .open(args.state_file(DEBUG_LOG_FILE))
    {
        let _ = DEBUG_LOG.set(f);
    }
    debug(format_args!(
        "shim {} starting for {}",
        std::process::id(),
        args.id
    ));

    let pid_file = args.state_file(protocol::SHIM_PID_FILE);
    fs::write(&pid_file, format!("{}\n", std::process::id()))
        .map_err(|e| format!("writing {}: {e}", pid_file.display()))?;
    let _ = fs::remove_file(args.state_file(protocol::EXIT_FILE));
    let sock = args.state_file(protocol::SOCKET);
    let _ = fs::remove_file(&sock);
    let listener = SocketPath::new(&args.state_dir, protocol::SOCKET)
        .and_then(|short| UnixListener::bind(short.path()))
        .map_err(|e| format!("binding {}: {e}", sock.display()))?;
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("chmod {}: {e}", sock.display()))?;

    let log = match &args.log_path {
        None => None,
        Some(p) => {
            if let Some(dir) = p.parent() {
                let _ = fs::create_dir_all(dir);
            }
            let f = crate::logfile::RotatingLog::open(p, args.log_max_size, args.log_max_files)
                .map_err(|e| format!("opening log {}: {e}", p.display()))?;
            Some(Mutex::new(f))
        }
    };

    let (pipes, stdin_w) = if args.tty {
        (None, None)
    } else {
        let (p, w) = Pipes::new(args.stdin).map_err(|e| format!("creating stdio pipes: {e}"))?;
        (Some(p), w)
    };
    let shim = Arc::new(Shim {
        proc_state: Mutex::new(ProcState::default()),
        proc_cv: Condvar::new(),
        clients: Mutex::new(Clients::default()),
        stdin: Mutex::new(stdin_w.map(Arc::new)),
        pty: Mutex::new(None),
        winsize: Mutex::new(None),
        started: AtomicBool::new(false),
        pending_pipes: Mutex::new(None),
        readers: Mutex::new(0),
        readers_cv: Condvar::new(),
        log,
        gate: Mutex::new(()),
        args,
    });

    match shim.args.mode.clone() {
        Mode::Init { bundle } => {
            if let Err(msg) = shim.create(&bundle, pipes) {
                shim.delete();
                return Err(msg);
            }
        }
        Mode::Exec { .. } => *lock(&shim.pending_pipes) = pipes,
    }
    Ok((shim, listener))
}

impl Shim {
    fn busy(&self) -> Busy<'_> {
        lock(&self.proc_state).busy += 1;
        Busy(self)
    }

    /// Runs the runtime with `--root`, `--log` and `--log-format json` and then `args`; on
    /// failure returns runc's last logged error.
    fn runtime(&self, args: &[&std::ffi::OsStr], stdio: RuntimeStdio) -> Result<(), String> {
        let _busy = self.busy();
        let log = self.args.state_file(RUNC_LOG);
        let offset = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let status = {
            let mut cmd = Command::new(&self.args.runtime);
            cmd.arg("--root")
                .arg(&self.args.runtime_root)
                .arg("--log")
                .arg(&log)
                .arg("--log-format")
                .arg("json")
                .args(args)
                .stdin(stdio.stdin)
                .stdout(stdio.stdout)
                .stderr(stdio.stderr);
            // `cmd` (holding the container's ends of the pipes) is dropped right after.
            cmd.status()
        };
        let what = args
            .first()
            .map(|a| a.to_string_lossy())
            .unwrap_or_default();
        let status =
            status.map_err(|e| format!("running {} {what}: {e}", self.args.runtime.display()))?;
        if status.success() {
            return Ok(());
        }
        let msg = runtime_error(&log, offset)
            .unwrap_or_else(|| format!("{} {what} failed ({status})", self.args.runtime.display()));
        debug(format_args!("runtime {what} failed: {msg}"));
        Err(msg)
    }

    /// `runtime create`: the container's process exists (waiting for `start`) afterwards.
    fn create(self: &Arc<Self>, bundle: &Path, pipes: Option<Pipes>) -> Result<(), String> {
        let pid_path = self.args.state_file(protocol::PID_FILE);
        let _ = fs::remove_file(&pid_path);
        let console = self.console_socket()?;
        let mut a: Vec<&std::ffi::OsStr> = vec![
            "create".as_ref(),
            "--bundle".as_ref(),
            bundle.as_os_str(),
            "--pid-file".as_ref(),
            pid_path.as_os_str(),
        ];
        if let Some(c) = &console {
            a.extend(["--console-socket".as_ref(), c.path.as_os_str()]);
        }
        a.push(self.args.id.as_ref());
        let (stdio, readers) = split_pipes(pipes);
        self.runtime(&a, stdio)?;
        self.attach_output(console, readers)?;
        let pid = read_pid(&pid_path)?;
        lock(&self.proc_state).pid = Some(pid);
        Ok(())
    }

    /// `runtime exec --detach` (exec mode, on START).
    fn exec(self: &Arc<Self>, process: &Path) -> Result<(), String> {
        // Held until the pid is recorded, so an early exit of the process is not reaped blindly.
        let _busy = self.busy();
        let pid_path = self.args.state_file(protocol::PID_FILE);
        let _ = fs::remove_file(&pid_path);
        let console = self.console_socket()?;
        let mut a: Vec<&std::ffi::OsStr> = vec![
            "exec".as_ref(),
            "--detach".as_ref(),
            "--pid-file".as_ref(),
            pid_path.as_os_str(),
        ];
        a.extend(["--process".as_ref(), process.as_os_str()]);
        if let Some(c) = &console {
            a.extend([
                "--tty".as_ref(),
                "--console-socket".as_ref(),
                c.path.as_os_str(),
            ]);
        }
        a.push(self.args.id.as_ref());
        let pipes = lock(&self.pending_pipes).take();
        let (stdio, readers) = split_pipes(pipes);
        self.runtime(&a, stdio)?;
        self.attach_output(console, readers)?;
        let pid = read_pid(&pid_path)?;
        lock(&self.proc_state).pid = Some(pid);
        self.proc_cv.notify_all();
        Ok(())
    }

    /// `runtime delete --force`, errors only logged.
    fn delete(&self) {
        let _ = self.runtime(
            &["delete".as_ref(), "--force".as_ref(), self.args.id.as_ref()],
            RuntimeStdio::null(),
        );
    }

    fn console_socket(&self) -> Result<Option<ConsoleSocket>, String> {
        if self.args.tty {
            ConsoleSocket::bind(&self.args.state_dir).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Starts the output readers: on the pty master received on `console`, or on the pipes.
    fn attach_output(
        self: &Arc<Self>,
        console: Option<ConsoleSocket>,
        readers: Option<(File, File)>,
    ) -> Result<(), String> {
        if let Some(console) = console {
            let master = Arc::new(console.receive()?);
            if let Some((rows, cols)) = *lock(&self.winsize) {
                let _ = sys::set_winsize(&*master, rows, cols);
            }
            *lock(&self.pty) = Some(master.clone());
            self.spawn_reader(master, Output::Stdout);
        }
        if let Some((out, err)) = readers {
            self.spawn_reader(Arc::new(out), Output::Stdout);
            self.spawn_reader(Arc::new(err), Output::Stderr);
        }
        Ok(())
    }

    /// Handles START: `runtime start` (init) or `runtime exec` (exec).
    fn start(self: &Arc<Self>) -> Result<(), String> {
        match &self.args.mode {
            Mode::Init { .. } => self.runtime(
                &["start".as_ref(), self.args.id.as_ref()],
                RuntimeStdio::null(),
            ),
            Mode::Exec { process } => self.exec(process),
        }
    }

    /// After a failed START: the process never ran; the shim finishes with 127 (not found) or
    /// 126, like Docker.
    fn abandon(&self, msg: &str) {
        let lower = msg.to_lowercase();
        let code = if lower.contains("not found") || lower.contains("no such file") {
            127
        } else {
            126
        };
        lock(&self.proc_state).failed = Some(code);
        self.proc_cv.notify_all();
        if !self.args.is_exec() {
            // Kills the waiting init process; the reaper then reports `code`.
            self.delete();
        }
    }

    /// Waits for the supervised process to exit; returns its exit code.
    fn reap(&self) -> i32 {
        loop {
            let (pid, busy, failed) = {
                let st = lock(&self.proc_state);
                (st.pid, st.busy > 0, st.failed)
            };
            if let (None, Some(code)) = (pid, failed) {
                return code;
            }
            let block = pid.is_some() && !busy;
            match sys::peek_exited(block) {
                Ok(Some(z)) if Some(z) == pid => {
                    let code = sys::wait_exit_code(z).unwrap_or_else(|e| {
                        debug(format_args!("waitpid {z}: {e}"));
                        255
                    });
                    debug(format_args!("process {z} exited with {code}"));
                    return lock(&self.proc_state).failed.unwrap_or(code);
                }
                // Another child. `busy` is re-read: the snapshot above predates a blocking wait.
                // A runtime command is only reaped by its own waiter, which ends `busy` after.
                Ok(Some(z)) => {
                    if lock(&self.proc_state).busy == 0 {
                        sys::reap(z);
                    } else {
                        self.pause(Duration::from_millis(10));
                    }
                }
                Ok(None) => match pid {
                    Some(p) if block => {
                        // No children at all while the process is known: it is not ours to wait
                        // for (should not happen); poll for it to disappear.
                        if !sys::process_exists(p) {
                            debug(format_args!("process {p} vanished without being reaped"));
                            return lock(&self.proc_state).failed.unwrap_or(255);
                        }
                        self.pause(Duration::from_millis(100));
                    }
                    Some(_) => self.pause(Duration::from_millis(10)),
                    None => self.pause(Duration::from_secs(1)),
                },
                Err(e) => {
                    debug(format_args!("waitid: {e}"));
                    self.pause(Duration::from_millis(100));
                }
            }
        }
    }

    /// Sleeps up to `d`, waking early when the process state changes.
    fn pause(&self, d: Duration) {
        let st = lock(&self.proc_state);
        let _ = self.proc_cv.wait_timeout(st, d);
    }

    /// Records the exit, tells clients, cleans up and exits the process.
    fn finish(&self, code: i32) -> ! {
        let finished_at = jsonlog::now_rfc3339();
        // Let the readers drain what the process wrote (EOF), for at most 2 s.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut n = lock(&self.readers);
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                debug(format_args!("{} output readers still open after 2s", *n));
                break;
            }
            n = self
                .readers_cv
                .wait_timeout(n, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(n);
        let record = ExitRecord {
            exit_code: code.into(),
            finished_at,
            oom_killed: self.args.cgroup.as_deref().is_some_and(oom_killed),
        };
        if let Err(e) = record.write_file(&self.args.state_dir) {
            debug(format_args!("writing {}: {e}", protocol::EXIT_FILE));
        }
        if !self.args.is_exec() {
            // Before EXIT goes out, so runtime state is gone by the time anyone acts on it.
            self.delete();
        }
        let exit = Frame::<&[u8]>::Exit(record);
        let frame: Encoded = exit.encode().into();
        let clients = {
            let _gate = lock(&self.gate);
            let mut c = lock(&self.clients);
            c.list.retain(|cl| cl.push(&frame));
            c.exit = Some(frame);
            c.list.clone()
        };
        // Short polls: the engine waits for this shim to be gone before it starts the
        // container again.
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline && !clients.iter().all(|c| c.drained()) {
            thread::sleep(Duration::from_millis(1));
        }
        let _ = fs::remove_file(self.args.state_file(protocol::SOCKET));
        let _ = fs::remove_file(self.args.state_file(protocol::SHIM_PID_FILE));
        debug(format_args!("exiting: {exit:?}"));
        std::process::exit(0)
    }

    /// Sends a frame to every client, dropping the ones that are gone or too far behind.
    fn broadcast(&self, frame: Encoded) {
        let _gate = lock(&self.gate);
        lock(&self.clients).list.retain(|c| c.push(&frame));
    }

    fn accept_loop(self: Arc<Self>, listener: UnixListener) {
        for conn in listener.incoming() {
            match conn {
                Ok(stream) => self.add_client(stream),
                Err(e) => {
                    debug(format_args!("accept: {e}"));
                    thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    fn add_client(self: &Arc<Self>, stream: UnixStream) {
        let client = Arc::new(Client {
            stream,
            queue: Mutex::default(),
            cv: Condvar::new(),
        });
        {
            let mut c = lock(&self.clients);
            if let Some(exit) = &c.exit {
                client.push(exit);
            }
            c.list.push(client.clone());
        }
        let writer = client.clone();
        spawn("client-w", move || writer.write_loop());
        let shim = self.clone();
        spawn("client-r", move || shim.client_loop(&client));
    }

    /// Handles the frames one client sends, until it closes its side.
    fn client_loop(self: &Arc<Self>, client: &Client) {
        let mut r = &client.stream;
        loop {
            match protocol::read_frame(&mut r) {
                Ok(Some(frame)) => self.handle(client, frame),
                Ok(None) => return,
                // An unknown or malformed frame was consumed whole: skip it.
                Err(e) if !e.is_fatal() => debug(format_args!("ignoring a frame: {e}")),
                Err(e) => {
                    debug(format_args!("client read: {e}"));
                    client.kill();
                    return;
                }
            }
        }
    }

    fn handle(self: &Arc<Self>, client: &Client, frame: Frame) {
        match frame {
            Frame::Stdin(payload) => {
                let target = if self.args.tty {
                    if self.args.stdin {
                        lock(&self.pty).clone()
                    } else {
                        None
                    }
                } else {
                    lock(&self.stdin).clone()
                };
                if let Some(f) = target {
                    if let Err(e) = (&*f).write_all(&payload) {
                        debug(format_args!("writing stdin: {e}"));
                        if !self.args.tty {
                            *lock(&self.stdin) = None;
                        }
                    }
                }
            }
            Frame::StdinClose => {
                if !self.args.tty {
                    *lock(&self.stdin) = None;
                }
            }
            Frame::Resize { rows, cols } => {
                *lock(&self.winsize) = Some((rows, cols));
                if let Some(pty) = lock(&self.pty).clone() {
                    if let Err(e) = sys::set_winsize(&*pty, rows, cols) {
                        debug(format_args!("resize: {e}"));
                    }
                }
            }
            Frame::Start => {
                if self.started.swap(true, Ordering::SeqCst) {
                    client.push(&reply_frame(Err("already started")));
                    return;
                }
                // Output is held back until the answer is queued, so the client sees REPLY
                // before the process's first output (and before EXIT).
                let gate = lock(&self.gate);
                let r = self.start();
                client.push(&reply_frame(r.as_ref().map(|_| ()).map_err(String::as_str)));
                drop(gate);
                if let Err(msg) = r {
                    self.abandon(&msg);
                }
                sys::release_free_heap();
            }
            other => debug(format_args!(
                "ignoring a {:?} frame from a client",
                other.kind()
            )),
        }
    }

    fn spawn_reader(self: &Arc<Self>, src: Arc<File>, stream: Output) {
        *lock(&self.readers) += 1;
        let shim = self.clone();
        spawn("output", move || {
            shim.pump(&src, stream);
            *lock(&shim.readers) -= 1;
            shim.readers_cv.notify_all();
        });
    }

    /// Copies one output descriptor to the log and to clients until EOF (or EIO: the pty's
    /// other side is closed).
    fn pump(&self, src: &File, output: Output) {
        let stream = output.name();
        // Not zero-filled: only the pages a read actually fills become resident, so an idle
        // container's readers hold no buffer memory.
        let mut buf = Vec::with_capacity(CHUNK);
        let mut lines = jsonlog::LineSplitter::default();
        let mut records = Vec::new();
        let mut relayed_since_trim = 0usize;
        loop {
            // After a burst of output, once the container pauses, give the buffers' and frames'
            // pages back so the shim shrinks to its idle size again.
            if relayed_since_trim >= TRIM_AFTER && !sys::wait_readable(src, TRIM_PAUSE) {
                buf = Vec::new();
                records = Vec::new();
                sys::release_free_heap();
                buf.reserve_exact(CHUNK);
                relayed_since_trim = 0;
            }
            let n = match sys::read_into(src, &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if e.raw_os_error() != Some(libc::EIO) {
                        debug(format_args!("reading {stream}: {e}"));
                    }
                    break;
                }
            };
            relayed_since_trim += n;
            let data = &buf[..n];
            if self.log.is_some() {
                let time = jsonlog::now_rfc3339();
                lines.push(data, |l| {
                    jsonlog::record_into(&mut records, l, stream, &time)
                });
                self.write_log(&mut records);
            }
            self.broadcast(output.frame(data).encode().into());
        }
        if self.log.is_some() {
            let time = jsonlog::now_rfc3339();
            lines.finish(|l| jsonlog::record_into(&mut records, l, stream, &time));
            self.write_log(&mut records);
        }
    }

    /// Appends finished records to the json-file log and empties `records`.
    fn write_log(&self, records: &mut Vec<u8>) {
        if records.is_empty() {
            return;
        }
        if let Some(log) = &self.log {
            if let Err(e) = lock(log).write_records(records) {
                debug(format_args!("writing the log: {e}"));
            }
        }
        records.clear();
        if records.capacity() > 4 * CHUNK {
            *records = Vec::new();
        }
    }
}

/// A REPLY frame: `ok` or `error: <message>` (on one line).
fn reply_frame(r: Result<(), &str>) -> Encoded {
    Frame::<&[u8]>::Reply(r.map_err(one_line)).encode().into()
}

/// Splits pipes into the runtime's stdio and the shim's read ends; `/dev/null` without pipes.
fn split_pipes(pipes: Option<Pipes>) -> (RuntimeStdio, Option<(File, File)>) {
    match pipes {
        None => (RuntimeStdio::null(), None),
        Some(p) => (
            RuntimeStdio {
                stdin: p.stdin.into(),
                stdout: p.stdout.into(),
                stderr: p.stderr.into(),
            },
            Some((p.stdout_r, p.stderr_r)),
        ),
    }
}

fn read_pid(path: &Path) -> Result<libc::pid_t, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    text.trim()
        .parse()
        .ok()
        .filter(|&p: &libc::pid_t| p > 0)
        .ok_or_else(|| format!("bad pid {:?} in {}", text.trim(), path.display()))
}

/// The last error runc logged (JSON lines) after byte `offset` of its log.
fn runtime_error(log: &Path, offset: u64) -> Option<String> {
    let data = fs::read(log).ok()?;
    let tail = data.get(offset as usize..)?;
    let text = String::from_utf8_lossy(tail);
    text.lines()
        .rev()
        .filter(|l| {
            matches!(
                jsonlog::json_string_field(l, "level").as_deref(),
                Some("error" | "fatal")
            )
        })
        .filter_map(|l| jsonlog::json_string_field(l, "msg"))
        .map(|m| m.trim().to_owned())
        .find(|m| !m.is_empty())
}

/// Whether the memory controller of cgroup `path` recorded an OOM kill (v1 `memory.oom_control`,
/// v2 `memory.events`). Read before the runtime's delete removes the cgroup.
fn oom_killed(path: &str) -> bool {
    let path = path.trim_start_matches('/');
    [
        format!("/sys/fs/cgroup/memory/{path}/memory.oom_control"),
        format!("/sys/fs/cgroup/{path}/memory.events"),
    ]
    .iter()
    .filter_map(|f| fs::read_to_string(f).ok())
    .any(|s| {
        s.lines()
            .any(|l| l.strip_prefix("oom_kill ").is_some_and(|n| n.trim() != "0"))
    })
}
