//! Frames exchanged over the shim's unix socket (`<state-dir>/shim.sock`).
//!
//! Every frame is `[kind: u8][len: u32 big-endian][payload: len bytes]`. A client that connects
//! receives every output frame produced from then on. Frames from shim to client:
//! [`STDOUT`], [`STDERR`], [`EXIT`] (payload: the JSON of [`ExitStatus`]-like object
//! `{"exit_code":N,"finished_at":"RFC3339","oom_killed":bool}`), [`REPLY`] (payload `ok` or
//! `error: <message>`, the answer to a [`START`]). Frames from client to shim: [`STDIN`],
//! [`STDIN_CLOSE`], [`RESIZE`] (payload: rows u16 BE, cols u16 BE), [`START`] (the shim runs
//! `runtime start` — or, for an exec shim, `runtime exec` — and answers with a [`REPLY`]).

use std::io::{self, Read, Write};

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const EXIT: u8 = 3;
pub const REPLY: u8 = 4;
pub const STDIN_CLOSE: u8 = 5;
pub const RESIZE: u8 = 6;
pub const START: u8 = 7;

/// Largest payload accepted in one frame.
pub const MAX_FRAME: usize = 1 << 20;

/// File, in the shim's state directory, holding the exit status JSON once the process exited.
pub const EXIT_FILE: &str = "exit.json";
/// File, in the shim's state directory, holding the shim's own pid.
pub const SHIM_PID_FILE: &str = "shim.pid";
/// File, in the shim's state directory, holding the container (or exec) process pid.
pub const PID_FILE: &str = "pid";
/// The shim's socket, in its state directory.
pub const SOCKET: &str = "shim.sock";

/// Encodes one frame.
pub fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(5 + payload.len());
    buf.push(kind);
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(payload);
    buf
}

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    w.write_all(&encode(kind, payload))
}

/// Reads one frame; `Ok(None)` on a clean EOF before a frame starts.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "shim frame too large",
        ));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((head[0], payload)))
}

/// Parses a frame header from the first 5 bytes of `buf`: `(kind, payload length)`.
pub fn parse_header(buf: &[u8; 5]) -> (u8, usize) {
    (
        buf[0],
        u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, STDOUT, b"hello").unwrap();
        write_frame(&mut buf, EXIT, b"{}").unwrap();
        let mut r = &buf[..];
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some((STDOUT, b"hello".to_vec()))
        );
        assert_eq!(read_frame(&mut r).unwrap(), Some((EXIT, b"{}".to_vec())));
        assert_eq!(read_frame(&mut r).unwrap(), None);
    }

    #[test]
    fn truncated_frame_is_an_error() {
        let buf = encode(STDOUT, b"hello");
        let mut r = &buf[..3];
        assert!(read_frame(&mut r).is_err());
    }

    #[test]
    fn oversized_frame_is_refused() {
        let mut buf = vec![STDOUT];
        buf.extend_from_slice(&(MAX_FRAME as u32 + 1).to_be_bytes());
        assert!(read_frame(&mut &buf[..]).is_err());
    }
}
