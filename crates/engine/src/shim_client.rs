//! Starting a `berth-shim` and talking to it over its socket. The frames and the exit record
//! are `berth_shim::protocol`'s, shared with the shim; this module only reads and writes them
//! on tokio's sockets.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_shim::protocol::{self, ExitRecord, Frame, Header, ProtocolError};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use crate::container::ShimFrame;
use crate::{EngineError, Result};

/// How to start one shim.
#[derive(Debug, Clone)]
pub struct ShimLaunch {
    pub shim_path: PathBuf,
    pub id: String,
    pub state_dir: PathBuf,
    pub runtime: PathBuf,
    pub runtime_root: PathBuf,
    pub bundle: Option<PathBuf>,
    pub exec_process: Option<PathBuf>,
    pub log_path: Option<PathBuf>,
    /// `max-size` bytes and `max-file` count of the log.
    pub log_rotation: Option<(u64, u32)>,
    pub tty: bool,
    pub stdin: bool,
    /// The container's cgroup, for the shim's OOM check.
    pub cgroup: Option<String>,
}

/// Runs the shim and waits for its readiness line; returns the process pid it reported.
pub async fn launch(l: &ShimLaunch) -> Result<i64> {
    let mut cmd = tokio::process::Command::new(&l.shim_path);
    cmd.arg("--id")
        .arg(&l.id)
        .arg("--state-dir")
        .arg(&l.state_dir)
        .arg("--runtime")
        .arg(&l.runtime)
        .arg("--runtime-root")
        .arg(&l.runtime_root);
    if let Some(b) = &l.bundle {
        cmd.arg("--bundle").arg(b);
    }
    if let Some(p) = &l.exec_process {
        cmd.arg("--exec-process").arg(p);
    }
    if let Some(p) = &l.log_path {
        cmd.arg("--log-path").arg(p);
    }
    if let Some(c) = &l.cgroup {
        cmd.arg("--cgroup").arg(c);
    }
    if let Some((size, files)) = l.log_rotation {
        cmd.arg("--log-max-size")
            .arg(size.to_string())
            .arg("--log-max-files")
            .arg(files.to_string());
    }
    if l.tty {
        cmd.arg("--tty");
    }
    if l.stdin {
        cmd.arg("--stdin");
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = cmd.output().await.map_err(|e| {
        EngineError::Internal(format!("starting shim {}: {e}", l.shim_path.display()))
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or("").trim();
    if let Some(pid) = line.strip_prefix("ok") {
        return Ok(pid.trim().parse().unwrap_or(0));
    }
    let msg = line
        .strip_prefix("error:")
        .map(|m| m.trim().to_string())
        .unwrap_or_else(|| {
            let err = String::from_utf8_lossy(&out.stderr);
            format!(
                "shim failed: {}",
                if err.trim().is_empty() {
                    line
                } else {
                    err.trim()
                }
            )
        });
    Err(classify_start_error(msg))
}

/// Docker reports a missing or non-executable command as a bad request; the CLI maps the
/// message to exit 127 / 126.
pub fn classify_start_error(msg: String) -> EngineError {
    let m =
        format!("failed to create task for container: OCI runtime create failed: {msg}: unknown");
    if msg.contains("executable file not found")
        || msg.contains("no such file or directory")
        || msg.contains("permission denied")
    {
        EngineError::InvalidArgument(m)
    } else {
        EngineError::Internal(m)
    }
}

/// Connects to a shim's socket.
pub async fn connect(state_dir: &Path) -> std::io::Result<UnixStream> {
    let sock = berth_shim::sockpath::SocketPath::new(state_dir, protocol::SOCKET)?;
    UnixStream::connect(sock.path()).await
}

/// Reads one frame; `Ok(None)` on a clean end of stream before a frame starts. Data payloads
/// become [`Bytes`] without a copy.
pub async fn read_frame(
    r: &mut OwnedReadHalf,
) -> std::result::Result<Option<Frame<Bytes>>, ProtocolError> {
    let mut head = [0u8; protocol::HEADER_LEN];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]).await? {
            0 if got == 0 => return Ok(None),
            0 => return Err(ProtocolError::Truncated),
            n => got += n,
        }
    }
    let header = Header::parse(&head)?;
    let mut payload = vec![0u8; header.len];
    r.read_exact(&mut payload)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => ProtocolError::Truncated,
            _ => e.into(),
        })?;
    Frame::decode(header.kind, payload).map(Some)
}

/// The next frame from a shim, skipping (with a warning) frames that are unknown or malformed;
/// `None` once the connection ends or cannot be read any further. `who` names the container or
/// exec in the log.
pub async fn next_frame(r: &mut OwnedReadHalf, who: &str) -> Option<Frame<Bytes>> {
    loop {
        match read_frame(r).await {
            Ok(frame) => return frame,
            Err(e) if !e.is_fatal() => tracing::warn!("shim of {who}: skipping a frame: {e}"),
            Err(ProtocolError::Io(e)) => {
                tracing::debug!("shim of {who}: {e}");
                return None;
            }
            Err(e) => {
                tracing::warn!("shim of {who}: {e}");
                return None;
            }
        }
    }
}

/// Writes one frame.
pub async fn write_frame(w: &mut OwnedWriteHalf, frame: &ShimFrame) -> std::io::Result<()> {
    w.write_all(&frame.encode()).await
}

/// Forwards queued frames to the shim until the connection or the queue ends. Holding the
/// queue's lock for the connection's lifetime keeps one shim connection the writer at a time.
pub async fn pump_to_shim(
    mut w: OwnedWriteHalf,
    queue: Arc<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<ShimFrame>>>,
    mut first: Option<ShimFrame>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut q = queue.lock().await;
    if let Some(f) = first.take() {
        if write_frame(&mut w, &f).await.is_err() {
            return;
        }
    }
    loop {
        tokio::select! {
            f = q.recv() => match f {
                Some(f) => {
                    if write_frame(&mut w, &f).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            _ = stop.changed() => return,
        }
    }
}

/// Reads `exit.json` from a shim's state dir; `None` when it is missing or unreadable.
pub fn read_exit(state_dir: &Path) -> Option<ExitRecord> {
    ExitRecord::read_file(state_dir).ok()
}

/// Whether the shim whose pid file is in `state_dir` is alive.
pub fn shim_alive(state_dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(state_dir.join(protocol::SHIM_PID_FILE)) else {
        return false;
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return false;
    };
    // The pid must still be this shim's: a shim killed outright leaves its pid file behind,
    // and the pid may have been reused since.
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let mut want = b"--state-dir\0".to_vec();
    want.extend_from_slice(state_dir.as_os_str().as_encoded_bytes());
    want.push(0);
    cmdline.windows(want.len()).any(|w| w == want.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connected pair: the write end and the engine's read half.
    fn pair() -> (UnixStream, OwnedReadHalf) {
        let (a, b) = UnixStream::pair().unwrap();
        (a, b.into_split().0)
    }

    /// A header followed by `payload`, built by hand as an older shim would.
    fn raw(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![kind];
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[tokio::test]
    async fn reads_an_old_shims_frames_and_skips_unknown_ones() {
        let (mut w, mut r) = pair();
        let exit =
            br#"{"exit_code":3,"finished_at":"2026-11-25T22:01:02.123456789Z","oom_killed":false}"#;
        let mut bytes = raw(4, b"ok");
        bytes.extend(raw(1, b"out"));
        bytes.extend(raw(42, b"from the future"));
        bytes.extend(raw(6, b"\x00")); // malformed: a resize the shim never sends
        bytes.extend(raw(2, b"err"));
        bytes.extend(raw(3, exit));
        w.write_all(&bytes).await.unwrap();
        drop(w);
        let mut got = Vec::new();
        while let Some(f) = next_frame(&mut r, "test").await {
            got.push(f);
        }
        assert_eq!(
            got,
            vec![
                Frame::Reply(Ok(())),
                Frame::Stdout(Bytes::from_static(b"out")),
                Frame::Stderr(Bytes::from_static(b"err")),
                Frame::Exit(ExitRecord {
                    exit_code: 3,
                    finished_at: "2026-11-25T22:01:02.123456789Z".into(),
                    oom_killed: false,
                }),
            ]
        );
    }

    #[tokio::test]
    async fn truncated_and_oversized_frames_end_the_stream() {
        let (mut w, mut r) = pair();
        w.write_all(&raw(1, b"hello")[..7]).await.unwrap();
        drop(w);
        assert!(matches!(
            read_frame(&mut r).await,
            Err(ProtocolError::Truncated)
        ));

        let (mut w, mut r) = pair();
        w.write_all(&[1, 0x00, 0x10, 0x00, 0x01]).await.unwrap();
        assert!(matches!(
            read_frame(&mut r).await,
            Err(ProtocolError::TooLarge(_))
        ));

        let (w, mut r) = pair();
        drop(w);
        assert!(read_frame(&mut r).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn writes_the_bytes_an_old_shim_reads() {
        let (a, b) = UnixStream::pair().unwrap();
        let (_, mut w) = a.into_split();
        for f in [
            Frame::Resize { rows: 24, cols: 80 },
            Frame::Start,
            Frame::Stdin(Bytes::from_static(b"in")),
            Frame::StdinClose,
        ] {
            write_frame(&mut w, &f).await.unwrap();
        }
        drop(w);
        let mut got = Vec::new();
        let mut b = b;
        b.read_to_end(&mut got).await.unwrap();
        let mut want = raw(6, &[0, 24, 0, 80]);
        want.extend(raw(7, b""));
        want.extend(raw(0, b"in"));
        want.extend(raw(5, b""));
        assert_eq!(got, want);
    }
}
