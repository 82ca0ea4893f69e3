//! Driving the OCI runtime: `create`, `start`, `exec`, `delete` with runc's log read back for
//! errors, the stdio pipes and console socket handed to it, and marking runtime invocations in
//! flight so the reaper never steals their exit status.

use super::{debug, lock, Shim};
use crate::args::Mode;
use crate::{jsonlog, sys};
use berth_shim::protocol;
use berth_shim::sockpath::SocketPath;
use std::fs::{self, File};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// The console socket runc sends the pty master to, in the state directory.
const CONSOLE_SOCKET: &str = "console.sock";

/// runc's own log (JSON lines), in the state directory.
const RUNC_LOG: &str = "runc.log";

/// The container's end of its stdio pipes and the shim's ends, until the runtime gets them.
pub(super) struct Pipes {
    stdin: File,
    stdout: OwnedFd,
    stderr: OwnedFd,
    stdout_r: File,
    stderr_r: File,
}

impl Pipes {
    pub(super) fn new(with_stdin: bool) -> io::Result<(Pipes, Option<File>)> {
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
pub(super) struct ConsoleSocket {
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
    pub(super) fn receive(&self) -> Result<File, String> {
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

/// Marks a runtime invocation in flight (see [`super::ProcState::busy`]) until dropped.
struct Busy<'a>(&'a Shim);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        lock(&self.0.proc_state).busy -= 1;
        self.0.proc_cv.notify_all();
    }
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
    pub(super) fn create(
        self: &Arc<Self>,
        bundle: &Path,
        pipes: Option<Pipes>,
    ) -> Result<(), String> {
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
    pub(super) fn delete(&self) {
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

    /// Handles START: `runtime start` (init) or `runtime exec` (exec).
    pub(super) fn start(self: &Arc<Self>) -> Result<(), String> {
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
    pub(super) fn abandon(&self, msg: &str) {
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
