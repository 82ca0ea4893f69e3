//! The supervising (forked) half of the shim.
//!
//! Threads: the main thread reaps (waits for the container or exec process and finishes up);
//! one accept thread on `shim.sock`; one reader thread per output descriptor (stdout and stderr
//! pipes, or the pty master) that writes the json-file log and relays frames; per client a
//! reader thread (frames from the client) and a writer thread fed by a bounded queue: a vanished
//! client never blocks the container, and a slow one holds its output back (nothing is dropped).
//!
//! Split by concern: [`runtime`] (the OCI runtime and the stdio handed to it), [`output`] (the
//! output readers), [`clients`] (`shim.sock` and its clients) and [`exit`] (reaping and
//! finishing up); the shared state ([`Shim`]) and the start-up ([`run`]) live here.

mod clients;
mod exit;
mod output;
mod runtime;

use self::clients::Client;
use self::runtime::Pipes;
use crate::args::{Args, Mode};
use crate::{jsonlog, sys};
use berth_shim::protocol;
use berth_shim::sockpath::SocketPath;
use std::fmt::Display;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;

/// Stack size of every thread the shim starts; they only need a few KiB.
const STACK: usize = 128 * 1024;

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

/// Connected clients, and the EXIT frame once there is one (sent to late clients too).
#[derive(Default)]
struct Clients {
    list: Vec<Arc<Client>>,
    exit: Option<Encoded>,
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
