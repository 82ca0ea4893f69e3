//! The shim's wire protocol, shared by the shim and the engine: frames exchanged over the shim's
//! unix socket (`<state-dir>/shim.sock`) and the exit record (`exit.json`).
//!
//! Every frame is `[kind: u8][len: u32 big-endian][payload: len bytes]` ([`Kind`] lists the
//! kinds). A client that connects receives every output frame produced from then on.
//!
//! | kind | frame                  | direction      | payload                                     |
//! |------|------------------------|----------------|---------------------------------------------|
//! | 0    | [`Frame::Stdin`]       | client to shim | bytes for the process's stdin               |
//! | 1    | [`Frame::Stdout`]      | shim to client | process output                              |
//! | 2    | [`Frame::Stderr`]      | shim to client | process output                              |
//! | 3    | [`Frame::Exit`]        | shim to client | the JSON of an [`ExitRecord`]               |
//! | 4    | [`Frame::Reply`]       | shim to client | `ok` or `error: <message>` (answers START)  |
//! | 5    | [`Frame::StdinClose`]  | client to shim | empty                                       |
//! | 6    | [`Frame::Resize`]      | client to shim | rows u16 BE, cols u16 BE                    |
//! | 7    | [`Frame::Start`]       | client to shim | empty                                       |
//!
//! START makes the shim run `runtime start` (or, for an exec shim, `runtime exec`); it answers
//! with a REPLY. The EXIT payload is byte for byte the content of `exit.json`:
//! `{"exit_code":N,"finished_at":"RFC3339","oom_killed":bool}`.
//!
//! The format is fixed: a shim keeps running across a daemon upgrade, so a newer engine must read
//! what an older shim writes and the other way round. Only the Rust types around it may change.
//!
//! Reading is split in two so a reader (blocking here, async in the engine) can keep the framing
//! apart from the meaning: [`Header::parse`] checks a header, [`Frame::decode`] turns a kind and
//! its complete payload into a frame. A [`ProtocolError`] that [`is_fatal`](ProtocolError::is_fatal)
//! leaves the stream unusable; any other one only concerns the frame it names, whose payload has
//! been consumed, so the next frame can still be read.

use std::io::{self, Read, Write};
use std::path::Path;

/// Largest payload accepted in one frame.
pub const MAX_FRAME: usize = 1 << 20;
/// Length of a frame header: the kind and the payload length.
pub const HEADER_LEN: usize = 5;

/// File, in the shim's state directory, holding the exit record once the process exited.
pub const EXIT_FILE: &str = "exit.json";
/// File, in the shim's state directory, holding the shim's own pid.
pub const SHIM_PID_FILE: &str = "shim.pid";
/// File, in the shim's state directory, holding the container (or exec) process pid.
pub const PID_FILE: &str = "pid";
/// The shim's socket, in its state directory.
pub const SOCKET: &str = "shim.sock";

/// Why a frame (or the stream it came from) could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// Reading from the connection failed.
    #[error("reading a shim frame: {0}")]
    Io(#[from] io::Error),
    /// The connection ended inside a frame.
    #[error("shim connection closed inside a frame")]
    Truncated,
    /// A header announced a payload over [`MAX_FRAME`].
    #[error("shim frame of {0} bytes is over the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    /// A kind this version does not know.
    #[error("unknown shim frame kind {0}")]
    UnknownKind(u8),
    /// A known kind whose payload does not fit it.
    #[error("malformed shim {kind:?} frame: {detail}")]
    Malformed { kind: Kind, detail: String },
}

impl ProtocolError {
    /// Whether the stream is unusable after this error (an I/O error, a truncated or oversized
    /// frame); `false` when only the one frame was bad and the next can be read.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ProtocolError::Io(_) | ProtocolError::Truncated | ProtocolError::TooLarge(_)
        )
    }

    fn malformed(kind: Kind, detail: impl Into<String>) -> Self {
        ProtocolError::Malformed {
            kind,
            detail: detail.into(),
        }
    }
}

/// The kind byte of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
    Exit = 3,
    Reply = 4,
    StdinClose = 5,
    Resize = 6,
    Start = 7,
}

impl TryFrom<u8> for Kind {
    type Error = ProtocolError;

    fn try_from(b: u8) -> Result<Self, ProtocolError> {
        Ok(match b {
            0 => Kind::Stdin,
            1 => Kind::Stdout,
            2 => Kind::Stderr,
            3 => Kind::Exit,
            4 => Kind::Reply,
            5 => Kind::StdinClose,
            6 => Kind::Resize,
            7 => Kind::Start,
            other => return Err(ProtocolError::UnknownKind(other)),
        })
    }
}

/// How a process ended, as the shim records it in `exit.json` and sends it in the EXIT frame.
///
/// Fields serialize in this order, so the JSON is exactly what shims have always written;
/// fields a record lacks take their defaults and unknown fields are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExitRecord {
    /// The exit status, or 128 + the signal that killed the process.
    pub exit_code: i64,
    /// When the process exited, RFC 3339 UTC with nanoseconds.
    #[serde(default)]
    pub finished_at: String,
    /// Whether the container's memory cgroup recorded an OOM kill.
    #[serde(default)]
    pub oom_killed: bool,
}

impl ExitRecord {
    /// The record's JSON (`exit.json`, the EXIT payload).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        self.write_json(&mut out);
        out
    }

    /// Appends the record's JSON to `out`.
    fn write_json(&self, out: &mut Vec<u8>) {
        // Serializing an integer, a string and a bool into memory does no I/O and has no map
        // keys that could fail to serialize: this cannot fail.
        serde_json::to_writer(out, self).expect("serializing an ExitRecord into memory");
    }

    /// Parses a record's JSON.
    pub fn from_json(data: &[u8]) -> Result<Self, ProtocolError> {
        serde_json::from_slice(data)
            .map_err(|e| ProtocolError::malformed(Kind::Exit, e.to_string()))
    }

    /// Writes `<state_dir>/exit.json` atomically (a temporary file renamed over it). Not fsynced:
    /// it must outlive the daemon, not the host (a host crash ends the process anyway).
    pub fn write_file(&self, state_dir: &Path) -> io::Result<()> {
        let tmp = state_dir.join(format!("{EXIT_FILE}.tmp"));
        std::fs::write(&tmp, self.to_json())?;
        std::fs::rename(&tmp, state_dir.join(EXIT_FILE))
    }

    /// Reads `<state_dir>/exit.json`.
    pub fn read_file(state_dir: &Path) -> Result<Self, ProtocolError> {
        Self::from_json(&std::fs::read(state_dir.join(EXIT_FILE))?)
    }
}

/// One frame. `B` holds the data of STDIN / STDOUT / STDERR frames: `Vec<u8>` when decoded (or
/// anything built from one without copying, such as `bytes::Bytes`), a borrowed `&[u8]` to
/// encode output without copying it first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<B = Vec<u8>> {
    /// Bytes for the process's stdin.
    Stdin(B),
    /// Output the process wrote to stdout (or to its terminal).
    Stdout(B),
    /// Output the process wrote to stderr.
    Stderr(B),
    /// The process exited; the shim closes the connection after this frame.
    Exit(ExitRecord),
    /// The answer to [`Frame::Start`]: `Err` holds the runtime's message.
    Reply(Result<(), String>),
    /// Close the process's stdin (ignored with a terminal).
    StdinClose,
    /// Set the terminal size (remembered until there is a terminal).
    Resize { rows: u16, cols: u16 },
    /// Start the process.
    Start,
}

impl<B> Frame<B> {
    /// The frame's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Frame::Stdin(_) => Kind::Stdin,
            Frame::Stdout(_) => Kind::Stdout,
            Frame::Stderr(_) => Kind::Stderr,
            Frame::Exit(_) => Kind::Exit,
            Frame::Reply(_) => Kind::Reply,
            Frame::StdinClose => Kind::StdinClose,
            Frame::Resize { .. } => Kind::Resize,
            Frame::Start => Kind::Start,
        }
    }
}

impl<B: AsRef<[u8]>> Frame<B> {
    /// The frame's bytes, header included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the frame's bytes, header included, to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let data_len = match self {
            Frame::Stdin(d) | Frame::Stdout(d) | Frame::Stderr(d) => d.as_ref().len(),
            _ => 0,
        };
        out.reserve(HEADER_LEN + data_len);
        out.push(self.kind() as u8);
        out.extend_from_slice(&[0; 4]);
        match self {
            Frame::Stdin(d) | Frame::Stdout(d) | Frame::Stderr(d) => {
                out.extend_from_slice(d.as_ref())
            }
            Frame::Exit(rec) => rec.write_json(out),
            Frame::Reply(Ok(())) => out.extend_from_slice(b"ok"),
            Frame::Reply(Err(msg)) => {
                out.extend_from_slice(b"error: ");
                out.extend_from_slice(msg.as_bytes());
            }
            Frame::Resize { rows, cols } => {
                out.extend_from_slice(&rows.to_be_bytes());
                out.extend_from_slice(&cols.to_be_bytes());
            }
            Frame::StdinClose | Frame::Start => {}
        }
        // Payloads are at most a read chunk or a short message; a length over u32 cannot occur.
        let len = (out.len() - start - HEADER_LEN) as u32;
        out[start + 1..start + HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    }

    /// Writes the frame.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(&self.encode())
    }
}

impl<B: From<Vec<u8>>> Frame<B> {
    /// Decodes a frame from its kind byte and its complete payload (the payload is moved into
    /// data frames, not copied). Unknown kinds and payloads that do not fit their kind are
    /// errors that leave the stream usable.
    pub fn decode(kind: u8, payload: Vec<u8>) -> Result<Self, ProtocolError> {
        let kind = Kind::try_from(kind)?;
        let empty = |frame: Self| {
            if payload.is_empty() {
                Ok(frame)
            } else {
                Err(ProtocolError::malformed(
                    kind,
                    format!("{} bytes of payload, expected none", payload.len()),
                ))
            }
        };
        match kind {
            Kind::Stdin => Ok(Frame::Stdin(payload.into())),
            Kind::Stdout => Ok(Frame::Stdout(payload.into())),
            Kind::Stderr => Ok(Frame::Stderr(payload.into())),
            Kind::Exit => Ok(Frame::Exit(ExitRecord::from_json(&payload)?)),
            Kind::Reply => decode_reply(&payload).map(Frame::Reply),
            Kind::StdinClose => empty(Frame::StdinClose),
            Kind::Start => empty(Frame::Start),
            Kind::Resize => match payload[..] {
                [r0, r1, c0, c1] => Ok(Frame::Resize {
                    rows: u16::from_be_bytes([r0, r1]),
                    cols: u16::from_be_bytes([c0, c1]),
                }),
                _ => Err(ProtocolError::malformed(
                    kind,
                    format!("{} bytes of payload, expected 4", payload.len()),
                )),
            },
        }
    }
}

/// A REPLY payload: `ok`, or `error:` and the message (surrounding whitespace trimmed).
fn decode_reply(payload: &[u8]) -> Result<Result<(), String>, ProtocolError> {
    let text = std::str::from_utf8(payload)
        .map_err(|_| ProtocolError::malformed(Kind::Reply, "not UTF-8"))?;
    if text == "ok" {
        return Ok(Ok(()));
    }
    match text.strip_prefix("error:") {
        Some(msg) => Ok(Err(msg.trim().to_owned())),
        None => Err(ProtocolError::malformed(
            Kind::Reply,
            "neither `ok` nor `error: <message>`",
        )),
    }
}

/// A checked frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The kind byte, checked by [`Frame::decode`] once the payload is read.
    pub kind: u8,
    /// The payload's length, at most [`MAX_FRAME`].
    pub len: usize,
}

impl Header {
    /// Parses a header; a payload length over [`MAX_FRAME`] is a (fatal) error.
    pub fn parse(buf: &[u8; HEADER_LEN]) -> Result<Self, ProtocolError> {
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if len > MAX_FRAME {
            return Err(ProtocolError::TooLarge(len));
        }
        Ok(Header { kind: buf[0], len })
    }
}

/// Reads one frame (blocking); `Ok(None)` on a clean end of stream before a frame starts.
pub fn read_frame(r: &mut impl Read) -> Result<Option<Frame>, ProtocolError> {
    let mut head = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(ProtocolError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let header = Header::parse(&head)?;
    let mut payload = vec![0u8; header.len];
    r.read_exact(&mut payload).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => ProtocolError::Truncated,
        _ => e.into(),
    })?;
    Frame::decode(header.kind, payload).map(Some)
}

#[cfg(test)]
mod tests;
