//! Attach/exec/logs streams: the multiplexed-frame demuxer and the stdin/stdout pumps.

use std::io::Write;

use anyhow::Result;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Incremental decoder of docker's multiplexed stream:
/// `[stream, 0, 0, 0, len (u32 BE)]` followed by `len` bytes.
#[derive(Default)]
pub struct Demuxer {
    buf: Vec<u8>,
}

impl Demuxer {
    /// Feeds bytes; returns the complete (stream, payload) pieces decoded so far.
    /// Payloads of a frame are returned as soon as they arrive (a frame may span reads).
    pub fn feed(&mut self, data: &[u8]) -> Vec<(u8, Vec<u8>)> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            if self.buf.len() < 8 {
                break;
            }
            let stream = self.buf[0];
            let len =
                u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
            if self.buf.len() < 8 + len {
                break;
            }
            let payload = self.buf[8..8 + len].to_vec();
            self.buf.drain(..8 + len);
            out.push((stream, payload));
        }
        out
    }
}

/// Copies a (multiplexed unless `tty`) stream to our stdout/stderr until EOF.
pub async fn copy_output<R: AsyncRead + Unpin>(mut r: R, tty: bool) -> Result<()> {
    let mut buf = vec![0u8; 32 * 1024];
    let mut demux = Demuxer::default();
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => {
                // a reset at the end of the stream is not worth reporting
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) {
                    break;
                }
                return Err(e.into());
            }
        };
        if tty {
            let mut o = std::io::stdout().lock();
            o.write_all(&buf[..n])?;
            o.flush()?;
        } else {
            for (s, p) in demux.feed(&buf[..n]) {
                if s == 2 {
                    let mut e = std::io::stderr().lock();
                    e.write_all(&p)?;
                    e.flush()?;
                } else {
                    let mut o = std::io::stdout().lock();
                    o.write_all(&p)?;
                    o.flush()?;
                }
            }
        }
    }
    Ok(())
}

/// Reads our stdin on a plain thread (so exiting never waits on it) into a channel.
pub fn stdin_channel() -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        use std::io::Read;
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    });
    rx
}

/// Copies stdin to the stream, then half-closes it (EOF for the container's stdin). With
/// `detach` (a terminal session's detach keys), typing the sequence stops the copy without
/// closing: the bytes before it go out, then `true` is returned (the container's stdin stays
/// open, as the docker CLI leaves it).
pub async fn copy_input<W: AsyncWrite + Unpin>(
    mut w: W,
    detach: Option<berth_sys::detach::Scanner>,
) -> Result<bool> {
    use berth_sys::detach::Scanned;
    let mut rx = stdin_channel();
    let mut scanner = detach;
    while let Some(chunk) = rx.recv().await {
        let (data, detached) = match scanner.as_mut().map(|s| s.feed(&chunk)) {
            None => (chunk, false),
            Some(Scanned::Pass(d)) => (d, false),
            Some(Scanned::Detach(d)) => (d, true),
        };
        if !data.is_empty() && w.write_all(&data).await.is_err() {
            return Ok(false);
        }
        let _ = w.flush().await;
        if detached {
            return Ok(true);
        }
    }
    let _ = w.shutdown().await;
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(s: u8, p: &[u8]) -> Vec<u8> {
        let mut v = vec![s, 0, 0, 0];
        v.extend_from_slice(&(p.len() as u32).to_be_bytes());
        v.extend_from_slice(p);
        v
    }

    #[test]
    fn whole_frames() {
        let mut d = Demuxer::default();
        let mut data = frame(1, b"hello\n");
        data.extend(frame(2, b"oops\n"));
        assert_eq!(
            d.feed(&data),
            vec![(1, b"hello\n".to_vec()), (2, b"oops\n".to_vec())]
        );
    }

    #[test]
    fn split_across_reads() {
        let mut data = frame(1, b"abc");
        data.extend(frame(2, b""));
        data.extend(frame(1, b"defgh"));
        // every possible split point, and byte by byte
        for cut in 0..data.len() {
            let mut d = Demuxer::default();
            let mut got = d.feed(&data[..cut]);
            got.extend(d.feed(&data[cut..]));
            assert_eq!(
                got,
                vec![(1, b"abc".to_vec()), (2, vec![]), (1, b"defgh".to_vec())]
            );
        }
        let mut d = Demuxer::default();
        let mut got = Vec::new();
        for b in &data {
            got.extend(d.feed(std::slice::from_ref(b)));
        }
        assert_eq!(got.len(), 3);
    }

    #[tokio::test]
    async fn copy_output_reads_all() {
        let data = frame(1, b"x");
        copy_output(&data[..], false).await.unwrap();
    }
}
