//! Docker's stream multiplexing, and the hijacked-connection pump of attach and exec start.

use berth_engine::{Input, IoSession, StreamKind};
use berth_sys::detach::{Scanned, Scanner};
use bytes::{BufMut, Bytes, BytesMut};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, UPGRADE};
use hyper::upgrade::OnUpgrade;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::body::{self, Resp, MULTIPLEXED, RAW};

/// One multiplexed frame: `[stream, 0, 0, 0, len u32 BE]` then the data.
pub fn frame(stream: StreamKind, data: &[u8]) -> Bytes {
    let kind = match stream {
        StreamKind::Stdin => 0u8,
        StreamKind::Stdout => 1,
        StreamKind::Stderr => 2,
    };
    let mut b = BytesMut::with_capacity(8 + data.len());
    b.put_u8(kind);
    b.put_slice(&[0, 0, 0]);
    b.put_u32(data.len() as u32);
    b.put_slice(data);
    b.freeze()
}

/// Output as it goes on the wire: framed without a tty, raw with one.
pub fn encode(tty: bool, stream: StreamKind, data: Bytes) -> Bytes {
    if tty {
        data
    } else {
        frame(stream, &data)
    }
}

pub fn content_type(tty: bool) -> &'static str {
    if tty {
        RAW
    } else {
        MULTIPLEXED
    }
}

/// Whether the client asked to hijack the connection (`Upgrade: tcp`).
pub fn wants_upgrade<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"))
}

/// The pending upgrade when the client asked to hijack; take it before reading the body.
pub fn take_upgrade(req: &mut Request<Incoming>) -> Option<OnUpgrade> {
    wants_upgrade(req).then(|| hyper::upgrade::on(req))
}

/// Answers attach/exec-start: `101` and a pump over the upgraded connection when asked for,
/// else `200` streaming the output as the body (stdin ignored).
pub fn respond(upgrade: Option<OnUpgrade>, session: IoSession, stdin: bool) -> Resp {
    let tty = session.tty;
    if let Some(on) = upgrade {
        tokio::spawn(async move {
            match on.await {
                Ok(up) => pump(TokioIo::new(up), session, stdin).await,
                Err(e) => tracing::warn!("connection upgrade failed: {e}"),
            }
        });
        return switching(tty);
    }
    let IoSession {
        tty,
        mut output,
        input,
        detach_keys: _,
    } = session;
    drop(input);
    let (resp, tx) = body::streaming(StatusCode::OK, content_type(tty));
    tokio::spawn(async move {
        while let Some(o) = output.recv().await {
            if tx.send(encode(tty, o.stream, o.data)).await.is_err() {
                break;
            }
        }
    });
    resp
}

/// Like [`respond`] with an upgrade, but the session is started only once the `101` has gone
/// out (as dockerd starts an exec after hijacking), so no output can arrive in the same read as
/// the response head; a failure to start is written to the stream.
pub fn respond_deferred<F>(upgrade: OnUpgrade, tty: bool, start: F) -> Resp
where
    F: std::future::Future<Output = Result<IoSession, berth_engine::EngineError>> + Send + 'static,
{
    tokio::spawn(async move {
        let up = match upgrade.await {
            Ok(up) => up,
            Err(e) => {
                tracing::warn!("connection upgrade failed: {e}");
                return;
            }
        };
        let mut io = TokioIo::new(up);
        match start.await {
            Ok(session) => pump(io, session, true).await,
            Err(e) => {
                let msg = Bytes::from(format!("{e}\r\n"));
                let _ = io.write_all(&encode(tty, StreamKind::Stdout, msg)).await;
                let _ = io.shutdown().await;
            }
        }
    });
    switching(tty)
}

fn switching(tty: bool) -> Resp {
    let mut r = body::empty(StatusCode::SWITCHING_PROTOCOLS);
    let h = r.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(tty)));
    r
}

/// Engine output → client until the output ends; client → engine stdin when `stdin`; the
/// client's EOF drops the input sender, which closes the process's stdin. When the session has
/// detach keys (a TTY's stdin), the client typing them ends the session as dockerd does: the
/// bytes before them go in, the engine is told ([`Input::Detach`]: stdin stays open), and the
/// client's stream ends cleanly while the process goes on.
pub async fn pump<IO>(io: IO, session: IoSession, stdin: bool)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let IoSession {
        tty,
        mut output,
        input,
        detach_keys,
    } = session;
    let (detached_tx, mut detached) = tokio::sync::oneshot::channel::<()>();
    let reader = input.filter(|_| stdin).map(|tx| {
        tokio::spawn(async move {
            let mut scanner = detach_keys.map(Scanner::new);
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let n = match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let (data, detach) = match scanner.as_mut().map(|s| s.feed(&buf[..n])) {
                    None => (buf[..n].to_vec(), false),
                    Some(Scanned::Pass(d)) => (d, false),
                    Some(Scanned::Detach(d)) => (d, true),
                };
                if !data.is_empty() && tx.send(Input::Data(Bytes::from(data))).await.is_err() {
                    break;
                }
                if detach {
                    let _ = tx.send(Input::Detach).await;
                    let _ = detached_tx.send(());
                    return;
                }
            }
        })
    });
    let mut armed = true;
    loop {
        let o = tokio::select! {
            o = output.recv() => o,
            d = &mut detached, if armed => {
                armed = false;
                if d.is_ok() {
                    break;
                }
                continue;
            }
        };
        let Some(o) = o else { break };
        if wr.write_all(&encode(tty, o.stream, o.data)).await.is_err() {
            break;
        }
        if wr.flush().await.is_err() {
            break;
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
    if let Some(r) = reader {
        r.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_engine::Output;
    use tokio::sync::mpsc;

    #[test]
    fn frames() {
        let f = frame(StreamKind::Stdout, b"hi\n");
        assert_eq!(&f[..], &[1, 0, 0, 0, 0, 0, 0, 3, b'h', b'i', b'\n']);
        let f = frame(StreamKind::Stderr, &[0u8; 300]);
        assert_eq!(&f[..8], &[2, 0, 0, 0, 0, 0, 1, 44]);
        assert_eq!(f.len(), 308);
        assert_eq!(
            encode(true, StreamKind::Stderr, Bytes::from_static(b"x")),
            Bytes::from_static(b"x")
        );
    }

    #[tokio::test]
    async fn pump_relays_both_ways() {
        let (client, server) = tokio::io::duplex(1024);
        let (out_tx, out_rx) = mpsc::channel(4);
        let (in_tx, mut in_rx) = mpsc::channel(4);
        let session = IoSession {
            tty: false,
            output: out_rx,
            input: Some(in_tx),
            detach_keys: None,
        };
        let task = tokio::spawn(pump(server, session, true));
        let (mut crd, mut cwr) = tokio::io::split(client);
        cwr.write_all(b"input").await.unwrap();
        assert_eq!(
            in_rx.recv().await,
            Some(Input::Data(Bytes::from_static(b"input")))
        );
        cwr.shutdown().await.unwrap();
        assert_eq!(in_rx.recv().await, None, "client EOF closes stdin");
        out_tx
            .send(Output {
                stream: StreamKind::Stdout,
                data: Bytes::from_static(b"ok"),
            })
            .await
            .unwrap();
        drop(out_tx);
        let mut got = Vec::new();
        crd.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, vec![1, 0, 0, 0, 0, 0, 0, 2, b'o', b'k']);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn detach_keys_end_the_session_and_keep_stdin_open() {
        let (client, server) = tokio::io::duplex(1024);
        let (out_tx, out_rx) = mpsc::channel(4);
        let (in_tx, mut in_rx) = mpsc::channel(4);
        let session = IoSession {
            tty: true,
            output: out_rx,
            input: Some(in_tx),
            detach_keys: Some(vec![0x10, 0x11]),
        };
        let task = tokio::spawn(pump(server, session, true));
        let (mut crd, mut cwr) = tokio::io::split(client);
        cwr.write_all(b"ls\x10\x11after").await.unwrap();
        assert_eq!(
            in_rx.recv().await,
            Some(Input::Data(Bytes::from_static(b"ls")))
        );
        assert_eq!(in_rx.recv().await, Some(Input::Detach));
        assert_eq!(in_rx.recv().await, None, "nothing after the keys");
        let mut got = Vec::new();
        crd.read_to_end(&mut got).await.unwrap();
        assert!(got.is_empty(), "the stream ends: {got:?}");
        task.await.unwrap();
        assert!(out_tx.is_closed(), "the session let go of the output");
    }

    #[tokio::test]
    async fn without_detach_keys_the_bytes_pass() {
        let (client, server) = tokio::io::duplex(1024);
        let (_out_tx, out_rx) = mpsc::channel::<Output>(4);
        let (in_tx, mut in_rx) = mpsc::channel(4);
        let session = IoSession {
            tty: false,
            output: out_rx,
            input: Some(in_tx),
            detach_keys: None,
        };
        tokio::spawn(pump(server, session, true));
        let (_crd, mut cwr) = tokio::io::split(client);
        cwr.write_all(b"\x10\x11").await.unwrap();
        assert_eq!(
            in_rx.recv().await,
            Some(Input::Data(Bytes::from_static(b"\x10\x11")))
        );
    }
}
