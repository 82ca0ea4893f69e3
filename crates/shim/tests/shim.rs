//! End-to-end tests of `berth-shim` against the real runtime: a busybox bundle run by runc.
//!
//! They need root, `runc` in PATH and a static busybox at /bin/busybox (Debian's
//! `busybox-static`). Without those they FAIL with a message saying so; they never skip.

use berth_shim::protocol::{self, Frame, Kind};
use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const SHIM: &str = env!("CARGO_BIN_EXE_berth-shim");
const BUSYBOX: &str = "/bin/busybox";

fn require_environment() {
    let status = fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    assert_eq!(
        euid, "0",
        "the berth-shim integration tests must run as root (they run containers with runc)"
    );
    let runc = Command::new("runc").arg("--version").output();
    assert!(
        runc.map(|o| o.status.success()).unwrap_or(false),
        "runc is required in PATH for the berth-shim integration tests (apt-get install -y runc)"
    );
    assert!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} is required for the berth-shim integration tests (apt-get install -y busybox-static)"
    );
}

/// A bundle, a runc root and a state directory in a scratch directory; cleaned up on drop.
struct Fixture {
    dir: PathBuf,
    id: String,
}

impl Fixture {
    fn new(name: &str, args: &[&str], terminal: bool) -> Fixture {
        require_environment();
        let id = format!("shimtest-{name}-{}", std::process::id());
        let dir = std::env::temp_dir().join(&id);
        let _ = fs::remove_dir_all(&dir);
        let bin = dir.join("bundle/rootfs/bin");
        fs::create_dir_all(&bin).unwrap();
        fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
        for tool in ["sh", "echo", "cat", "sleep", "stty", "true"] {
            symlink("busybox", bin.join(tool)).unwrap();
        }
        let bundle = dir.join("bundle");
        let spec = Command::new("runc")
            .arg("spec")
            .current_dir(&bundle)
            .status()
            .unwrap();
        assert!(spec.success(), "runc spec failed");
        let config = fs::read_to_string(bundle.join("config.json")).unwrap();
        let args_json = args
            .iter()
            .map(|a| json_str(a))
            .collect::<Vec<_>>()
            .join(", ");
        let edited = replace_once(
            &config,
            "\"args\": [\n\t\t\t\"sh\"\n\t\t]",
            &format!("\"args\": [{args_json}]"),
        );
        let edited = replace_once(
            &edited,
            "\"terminal\": true",
            &format!("\"terminal\": {terminal}"),
        );
        let edited = replace_once(&edited, "\"readonly\": true", "\"readonly\": false");
        fs::write(bundle.join("config.json"), edited).unwrap();
        Fixture { dir, id }
    }

    fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    fn runc_root(&self) -> PathBuf {
        self.dir.join("runc-root")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("container-json.log")
    }

    /// Starts an init shim; returns its output (the parent's readiness line and status).
    fn start_shim(&self, extra: &[&str]) -> Output {
        let mut cmd = Command::new(SHIM);
        cmd.arg("--id").arg(&self.id);
        cmd.arg("--state-dir").arg(self.state());
        cmd.arg("--runtime").arg("runc");
        cmd.arg("--runtime-root").arg(self.runc_root());
        cmd.arg("--bundle").arg(self.dir.join("bundle"));
        cmd.arg("--log-path").arg(self.log());
        cmd.args(extra);
        cmd.output().expect("running berth-shim")
    }

    /// Starts an init shim and expects it ready; returns the container pid.
    fn start_ready(&self, extra: &[&str]) -> i32 {
        let out = self.start_shim(extra);
        let line = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "shim failed: {line} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pid: i32 = line
            .trim()
            .strip_prefix("ok ")
            .expect(&line)
            .parse()
            .unwrap();
        assert!(pid > 0, "{line}");
        pid
    }

    fn runc_list(&self) -> String {
        let out = Command::new("runc")
            .arg("--root")
            .arg(self.runc_root())
            .args(["list", "-q"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(self.runc_root())
            .args(["delete", "--force", &self.id])
            .output();
        if let Ok(pid) = fs::read_to_string(self.state().join(protocol::SHIM_PID_FILE)) {
            let _ = Command::new("kill").arg(pid.trim()).output();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn replace_once(s: &str, from: &str, to: &str) -> String {
    assert!(s.contains(from), "runc spec output lacks {from:?}:\n{s}");
    s.replacen(from, to, 1)
}

fn json_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn connect(state: &Path) -> UnixStream {
    let s = UnixStream::connect(state.join(protocol::SOCKET)).expect("connecting to shim.sock");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

fn send(s: &mut UnixStream, frame: Frame<&[u8]>) {
    frame.write_to(s).unwrap();
}

/// Everything a client received until EXIT.
#[derive(Default, Debug)]
struct Session {
    /// Kind of the first frame received.
    first: Option<Kind>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// As on the wire: `ok` or `error: <message>`.
    replies: Vec<String>,
    exit: String,
}

impl Session {
    fn exit_code(&self) -> i64 {
        let rest = self.exit.split("\"exit_code\":").nth(1).expect(&self.exit);
        rest.split(',').next().unwrap().parse().unwrap()
    }
}

/// Reads frames until EXIT (or until `until_reply` replies arrived, when given).
fn read_session(s: &mut UnixStream, until_reply: Option<usize>) -> Session {
    let mut out = Session::default();
    loop {
        if until_reply.is_some_and(|n| out.replies.len() >= n) {
            return out;
        }
        let frame = protocol::read_frame(s)
            .expect("reading a frame")
            .expect("shim closed before EXIT");
        out.first.get_or_insert(frame.kind());
        match frame {
            Frame::Stdout(data) => out.stdout.extend_from_slice(&data),
            Frame::Stderr(data) => out.stderr.extend_from_slice(&data),
            Frame::Reply(Ok(())) => out.replies.push("ok".into()),
            Frame::Reply(Err(msg)) => out.replies.push(format!("error: {msg}")),
            Frame::Exit(record) => {
                out.exit = String::from_utf8(record.to_json()).unwrap();
                return out;
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Waits for the shim to finish (its socket disappears) and returns exit.json.
fn wait_gone(state: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    while state.join(protocol::SOCKET).exists() {
        assert!(Instant::now() < deadline, "shim.sock still there after 10s");
        std::thread::sleep(Duration::from_millis(20));
    }
    fs::read_to_string(state.join(protocol::EXIT_FILE)).expect("exit.json")
}

fn assert_rfc3339_nanos(t: &str) {
    let b = t.as_bytes();
    assert_eq!(b.len(), 30, "{t}");
    assert!(
        t.ends_with('Z') && b[4] == b'-' && b[10] == b'T' && b[19] == b'.',
        "{t}"
    );
}

#[test]
fn echo_runs_logs_and_exits_zero() {
    let fx = Fixture::new("echo", &["echo", "hi"], false);
    fx.start_ready(&[]);
    assert!(fx.state().join(protocol::SHIM_PID_FILE).exists());
    assert_eq!(fx.runc_list(), fx.id, "runc create ran before ready");
    let mut c = connect(&fx.state());
    send(&mut c, Frame::Start);
    let s = read_session(&mut c, None);
    assert_eq!(s.replies, ["ok"]);
    assert_eq!(s.first, Some(Kind::Reply), "REPLY comes before output");
    assert_eq!(s.stdout, b"hi\n");
    assert!(s.stderr.is_empty());
    assert_eq!(s.exit_code(), 0, "{}", s.exit);
    assert!(s.exit.contains("\"oom_killed\":false"), "{}", s.exit);

    let exit = wait_gone(&fx.state());
    assert_eq!(exit, s.exit);
    let finished = exit
        .split("\"finished_at\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert_rfc3339_nanos(finished);
    assert_eq!(fx.runc_list(), "", "runc delete after exit");

    let log = fs::read_to_string(fx.log()).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 1, "{log}");
    let prefix = "{\"log\":\"hi\\n\",\"stream\":\"stdout\",\"time\":\"";
    assert!(
        lines[0].starts_with(prefix) && lines[0].ends_with("\"}"),
        "{log}"
    );
    assert_rfc3339_nanos(&lines[0][prefix.len()..lines[0].len() - 2]);
    assert!(log.ends_with('\n'));
}

#[test]
fn nonzero_exit_and_stderr() {
    let fx = Fixture::new(
        "exit3",
        &[
            "sh",
            "-c",
            "echo out; echo err >&2; printf 'no newline'; exit 3",
        ],
        false,
    );
    fx.start_ready(&[]);
    let mut c = connect(&fx.state());
    send(&mut c, Frame::Start);
    let s = read_session(&mut c, None);
    assert_eq!(s.stdout, b"out\nno newline");
    assert_eq!(s.stderr, b"err\n");
    assert_eq!(s.exit_code(), 3, "{}", s.exit);
    wait_gone(&fx.state());
    let log = fs::read_to_string(fx.log()).unwrap();
    assert!(
        log.contains("{\"log\":\"out\\n\",\"stream\":\"stdout\""),
        "{log}"
    );
    assert!(
        log.contains("{\"log\":\"err\\n\",\"stream\":\"stderr\""),
        "{log}"
    );
    assert!(
        log.contains("{\"log\":\"no newline\",\"stream\":\"stdout\""),
        "{log}"
    );
    assert_eq!(log.lines().count(), 3, "{log}");
}

#[test]
fn stdin_round_trip() {
    let fx = Fixture::new("cat", &["cat"], false);
    fx.start_ready(&["--stdin"]);
    let mut c = connect(&fx.state());
    send(&mut c, Frame::Start);
    send(&mut c, Frame::Stdin(b"abc"));
    send(&mut c, Frame::StdinClose);
    let s = read_session(&mut c, None);
    assert_eq!(s.replies, ["ok"]);
    assert_eq!(s.stdout, b"abc");
    assert_eq!(s.exit_code(), 0, "{}", s.exit);
    wait_gone(&fx.state());
}

#[test]
fn tty_output_resize_and_exit() {
    let fx = Fixture::new(
        "tty",
        &["sh", "-c", "stty size; echo tty-out; exit 2"],
        true,
    );
    fx.start_ready(&["--tty"]);
    let mut c = connect(&fx.state());
    send(
        &mut c,
        Frame::Resize {
            rows: 30,
            cols: 100,
        },
    );
    send(&mut c, Frame::Start);
    let s = read_session(&mut c, None);
    let out = String::from_utf8_lossy(&s.stdout);
    assert!(out.contains("30 100\r\n"), "{out:?}");
    assert!(out.contains("tty-out\r\n"), "{out:?}");
    assert!(s.stderr.is_empty());
    assert_eq!(s.exit_code(), 2, "{}", s.exit);
    wait_gone(&fx.state());
    let log = fs::read_to_string(fx.log()).unwrap();
    assert!(
        log.contains("{\"log\":\"tty-out\\r\\n\",\"stream\":\"stdout\""),
        "{log}"
    );
    assert!(!fx.state().join("console.sock").exists());
}

#[test]
fn create_failure_reports_error_and_leaves_nothing() {
    let fx = Fixture::new("missing", &["nosuchcmd"], false);
    let out = fx.start_shim(&[]);
    let line = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{line}");
    assert!(line.starts_with("error: "), "{line}");
    assert!(
        line.contains("exec: \"nosuchcmd\": executable file not found in $PATH"),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1, "{line}");
    assert_eq!(fx.runc_list(), "", "the failed container must be deleted");
    assert!(!fx.state().join(protocol::SOCKET).exists());
    assert!(!fx.state().join(protocol::SHIM_PID_FILE).exists());
}

#[test]
fn bad_arguments_are_an_error() {
    let out = Command::new(SHIM).args(["--id", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("error: "));
}

#[test]
fn exec_session_and_signal_exit() {
    let fx = Fixture::new("exec", &["sleep", "100"], false);
    fx.start_ready(&[]);
    let mut init = connect(&fx.state());
    send(&mut init, Frame::Start);
    assert_eq!(read_session(&mut init, Some(1)).replies, ["ok"]);
    send(&mut init, Frame::Start);
    assert_eq!(
        read_session(&mut init, Some(1)).replies,
        ["error: already started"]
    );

    // An exec session in the running container.
    let process = fx.dir.join("process.json");
    let mut f = fs::File::create(&process).unwrap();
    write!(
        f,
        r#"{{"terminal":false,"user":{{"uid":0,"gid":0}},"args":["sh","-c","read x; echo got $x; echo e >&2; exit 5"],"env":["PATH=/bin"],"cwd":"/"}}"#
    )
    .unwrap();
    drop(f);
    let exec_state = fx.dir.join("exec-state");
    let out = Command::new(SHIM)
        .arg("--id")
        .arg(&fx.id)
        .arg("--state-dir")
        .arg(&exec_state)
        .args(["--runtime", "runc", "--runtime-root"])
        .arg(fx.runc_root())
        .arg("--exec-process")
        .arg(&process)
        .arg("--stdin")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok 0\n");
    let mut c = connect(&exec_state);
    send(&mut c, Frame::Start);
    send(&mut c, Frame::Stdin(b"line\n"));
    let s = read_session(&mut c, None);
    assert_eq!(s.replies, ["ok"]);
    assert_eq!(s.stdout, b"got line\n");
    assert_eq!(s.stderr, b"e\n");
    assert_eq!(s.exit_code(), 5, "{}", s.exit);
    let pid: i32 = fs::read_to_string(exec_state.join(protocol::PID_FILE))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid > 0);
    wait_gone(&exec_state);
    assert_eq!(
        fx.runc_list(),
        fx.id,
        "an exec shim must not delete the container"
    );

    // A failing exec reports the error and records 127.
    fs::write(&process, r#"{"terminal":false,"user":{"uid":0,"gid":0},"args":["nosuchcmd"],"env":["PATH=/bin"],"cwd":"/"}"#).unwrap();
    let bad_state = fx.dir.join("exec-bad");
    let out = Command::new(SHIM)
        .arg("--id")
        .arg(&fx.id)
        .arg("--state-dir")
        .arg(&bad_state)
        .args(["--runtime", "runc", "--runtime-root"])
        .arg(fx.runc_root())
        .arg("--exec-process")
        .arg(&process)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok 0\n");
    let mut c = connect(&bad_state);
    send(&mut c, Frame::Start);
    let s = read_session(&mut c, None);
    assert_eq!(s.replies.len(), 1);
    assert!(
        s.replies[0].starts_with("error: ") && s.replies[0].contains("nosuchcmd"),
        "{:?}",
        s.replies
    );
    assert_eq!(s.exit_code(), 127, "{}", s.exit);
    wait_gone(&bad_state);

    // An exec session with a terminal.
    fs::write(
        &process,
        // The initial size comes from consoleSize: an exec process runs before runc hands
        // over the pty, so a RESIZE sent before START can only apply afterwards.
        r#"{"terminal":true,"consoleSize":{"height":24,"width":81},"user":{"uid":0,"gid":0},"args":["sh","-c","stty size; echo tty-exec"],"env":["PATH=/bin"],"cwd":"/"}"#,
    )
    .unwrap();
    let tty_state = fx.dir.join("exec-tty");
    let out = Command::new(SHIM)
        .arg("--id")
        .arg(&fx.id)
        .arg("--state-dir")
        .arg(&tty_state)
        .args(["--runtime", "runc", "--runtime-root"])
        .arg(fx.runc_root())
        .arg("--exec-process")
        .arg(&process)
        .args(["--tty", "--stdin"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok 0\n");
    let mut c = connect(&tty_state);
    send(&mut c, Frame::Resize { rows: 24, cols: 81 });
    send(&mut c, Frame::Start);
    let s = read_session(&mut c, None);
    assert_eq!(s.replies, ["ok"]);
    let text = String::from_utf8_lossy(&s.stdout);
    assert!(
        text.contains("24 81\r\n") && text.contains("tty-exec\r\n"),
        "{text:?}"
    );
    assert_eq!(s.exit_code(), 0, "{}", s.exit);
    wait_gone(&tty_state);

    // Killing the container: the init shim reports 128 + SIGKILL.
    let kill = Command::new("runc")
        .arg("--root")
        .arg(fx.runc_root())
        .args(["kill", &fx.id, "KILL"])
        .status()
        .unwrap();
    assert!(kill.success());
    let s = read_session(&mut init, None);
    assert_eq!(s.exit_code(), 137, "{}", s.exit);
    wait_gone(&fx.state());
    assert_eq!(fx.runc_list(), "");
}

#[test]
fn late_client_and_idle_memory() {
    let fx = Fixture::new("idle", &["sleep", "100"], false);
    fx.start_ready(&[]);
    let mut c = connect(&fx.state());
    send(&mut c, Frame::Start);
    assert_eq!(read_session(&mut c, Some(1)).replies, ["ok"]);
    std::thread::sleep(Duration::from_millis(300));
    let shim_pid = fs::read_to_string(fx.state().join(protocol::SHIM_PID_FILE)).unwrap();
    let status = fs::read_to_string(format!("/proc/{}/status", shim_pid.trim())).unwrap();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap()
        .to_owned();
    println!("idle shim {rss}");
    let kib: u64 = rss.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(kib < 8 * 1024, "idle shim uses {rss}");

    // A second client sees the same output and the exit.
    let mut late = connect(&fx.state());
    drop(c); // a vanished client must not matter
    let kill = Command::new("runc")
        .arg("--root")
        .arg(fx.runc_root())
        .args(["kill", &fx.id, "KILL"])
        .status()
        .unwrap();
    assert!(kill.success());
    let s = read_session(&mut late, None);
    assert_eq!(s.exit_code(), 137, "{}", s.exit);
    wait_gone(&fx.state());
}
