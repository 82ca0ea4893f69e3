//! The API's listeners: unix sockets, tcp (TLS, or clear text on loopback only) and sockets
//! passed by systemd (`fd://`); the accept loops, the TLS handshake (refusals logged with the
//! peer and the reason) and the [`Peer`] each request carries in its extensions.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::handlers::{handle, Ctx};
use crate::hosts::{plain_tcp_refusal, resolve, Host};
pub use crate::peer::Peer;
use crate::tls::client_identity;

/// A TLS handshake that takes longer than this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// One bound listener.
pub enum Listener {
    Unix {
        listener: UnixListener,
        /// The socket file to remove at shutdown (none for a socket systemd owns).
        path: Option<PathBuf>,
        shown: String,
    },
    Tcp {
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        shown: String,
    },
}

impl Listener {
    pub fn shown(&self) -> &str {
        match self {
            Listener::Unix { shown, .. } | Listener::Tcp { shown, .. } => shown,
        }
    }

    pub fn socket_file(&self) -> Option<&PathBuf> {
        match self {
            Listener::Unix { path, .. } => path.as_ref(),
            Listener::Tcp { .. } => None,
        }
    }
}

/// Binds a unix socket: a stale file is removed, mode 0660, group `group` when it exists.
pub fn bind_unix(path: &Path, group: &str) -> Result<UnixListener, String> {
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("removing stale socket {}: {e}", path.display())),
    }
    let l =
        UnixListener::bind(path).map_err(|e| format!("listening on {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("chmod {}: {e}", path.display()))?;
    let gid = match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => g.gid,
        _ => {
            if group != "berth" {
                tracing::warn!("group {group} not found; the socket stays root:root");
            }
            nix::unistd::Gid::from_raw(0)
        }
    };
    if let Err(e) = nix::unistd::chown(path, Some(nix::unistd::Uid::from_raw(0)), Some(gid)) {
        tracing::warn!("chown {}: {e}", path.display());
    }
    Ok(l)
}

/// Binds every host; the first failure is returned (listeners already bound are dropped,
/// their socket files removed). `tls` wraps tcp listeners (and inet sockets from systemd).
pub fn open(
    hosts: &[Host],
    tls: Option<Arc<rustls::ServerConfig>>,
    group: &str,
) -> Result<Vec<Listener>, String> {
    let mut out: Vec<Listener> = Vec::new();
    let mut activated: Option<Vec<berth_sys::activation::ActivatedSocket>> = None;
    let result = (|| {
        for host in hosts {
            match host {
                Host::Unix(path) => {
                    let listener = bind_unix(path, group)?;
                    out.push(Listener::Unix {
                        listener,
                        path: Some(path.clone()),
                        shown: host.to_string(),
                    });
                }
                Host::Tcp { host: h, port } => {
                    out.push(bind_tcp(h, *port, tls.clone(), &host.to_string())?);
                }
                Host::Fd(which) => {
                    if activated.is_none() {
                        activated = Some(
                            berth_sys::activation::take_listen_fds()
                                .map_err(|e| format!("{host}: {e}"))?,
                        );
                    }
                    let all = activated.as_mut().expect("taken above");
                    let picked = pick_activated(all, which.as_deref())
                        .map_err(|e| format!("{host}: {e}"))?;
                    for s in picked {
                        out.push(from_activated(s, tls.clone())?);
                    }
                }
            }
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(out),
        Err(e) => {
            for l in &out {
                if let Some(p) = l.socket_file() {
                    let _ = std::fs::remove_file(p);
                }
            }
            Err(e)
        }
    }
}

/// The sockets `fd://` (all that are left), `fd://N` (descriptor N) or `fd://NAME` names.
fn pick_activated(
    all: &mut Vec<berth_sys::activation::ActivatedSocket>,
    which: Option<&str>,
) -> Result<Vec<berth_sys::activation::ActivatedSocket>, String> {
    let Some(which) = which else {
        return Ok(std::mem::take(all));
    };
    let pos = match which.parse::<i32>() {
        Ok(n) => all.iter().position(|s| s.number == n).ok_or_else(|| {
            format!("too few socket activated files passed in by systemd (no descriptor {n})")
        })?,
        Err(_) => all
            .iter()
            .position(|s| s.name.as_deref() == Some(which))
            .ok_or_else(|| format!("no socket named {which:?} passed in by systemd"))?,
    };
    Ok(vec![all.remove(pos)])
}

fn from_activated(
    s: berth_sys::activation::ActivatedSocket,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<Listener, String> {
    let shown = match &s.name {
        Some(n) => format!("fd://{} ({n})", s.number),
        None => format!("fd://{}", s.number),
    };
    let fd: OwnedFd = s.fd;
    let local = nix::sys::socket::getsockname::<nix::sys::socket::SockaddrStorage>(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
    )
    .map_err(|e| format!("{shown}: getsockname: {e}"))?;
    if local.as_unix_addr().is_some() {
        let std = std::os::unix::net::UnixListener::from(fd);
        std.set_nonblocking(true)
            .map_err(|e| format!("{shown}: {e}"))?;
        let listener = UnixListener::from_std(std).map_err(|e| format!("{shown}: {e}"))?;
        return Ok(Listener::Unix {
            listener,
            path: None,
            shown,
        });
    }
    let std = std::net::TcpListener::from(fd);
    std.set_nonblocking(true)
        .map_err(|e| format!("{shown}: {e}"))?;
    let addr = std.local_addr().map_err(|e| format!("{shown}: {e}"))?;
    let shown = format!("{shown} on {addr}");
    check_plain(&[addr], tls.is_some(), &shown)?;
    let listener = TcpListener::from_std(std).map_err(|e| format!("{shown}: {e}"))?;
    Ok(Listener::Tcp {
        listener,
        tls: tls.map(TlsAcceptor::from),
        shown,
    })
}

/// Clear text is refused unless every address is loopback, where it is allowed with a warning.
fn check_plain(addrs: &[SocketAddr], tls: bool, shown: &str) -> Result<(), String> {
    if tls {
        return Ok(());
    }
    if addrs.iter().all(|a| a.ip().is_loopback()) {
        tracing::warn!(
            "API listening on {shown} without TLS: anyone who can reach it, even scripts \
             in a browser on this host, has root access on this machine"
        );
        return Ok(());
    }
    Err(plain_tcp_refusal(shown))
}

fn bind_tcp(
    host: &str,
    port: u16,
    tls: Option<Arc<rustls::ServerConfig>>,
    shown: &str,
) -> Result<Listener, String> {
    let addrs = resolve(host, port)?;
    check_plain(&addrs, tls.is_some(), shown)?;
    let std = std::net::TcpListener::bind(addrs.as_slice())
        .map_err(|e| format!("listening on {shown}: {e}"))?;
    std.set_nonblocking(true)
        .map_err(|e| format!("listening on {shown}: {e}"))?;
    let listener = TcpListener::from_std(std).map_err(|e| format!("listening on {shown}: {e}"))?;
    Ok(Listener::Tcp {
        listener,
        tls: tls.map(TlsAcceptor::from),
        shown: shown.to_string(),
    })
}

/// Serves HTTP/1.1 (with upgrades, for attach and exec) on one connection.
fn serve_connection<IO>(io: IO, peer: Peer, ctx: Arc<Ctx>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let svc = service_fn(move |mut req| {
            let ctx = ctx.clone();
            req.extensions_mut().insert(peer.clone());
            async move { Ok::<_, Infallible>(handle(ctx, req).await) }
        });
        let conn = http1::Builder::new()
            .title_case_headers(true)
            .serve_connection(TokioIo::new(io), svc)
            .with_upgrades();
        if let Err(e) = conn.await {
            tracing::debug!("connection: {e}");
        }
    });
}

/// Accepts connections on `listener` until `stop` is cancelled.
pub async fn serve(listener: Listener, ctx: Arc<Ctx>, stop: CancellationToken) {
    match listener {
        Listener::Unix { listener, .. } => loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                r = listener.accept() => match r {
                    Ok((stream, _)) => {
                        let peer = match stream.peer_cred() {
                            Ok(c) => Peer::Unix { uid: c.uid(), gid: c.gid() },
                            Err(e) => {
                                tracing::warn!("unix peer credentials: {e}; connection dropped");
                                continue;
                            }
                        };
                        serve_connection(stream, peer, ctx.clone());
                    }
                    Err(e) => accept_failed(e).await,
                },
            }
        },
        Listener::Tcp {
            listener,
            tls,
            shown,
        } => loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                r = listener.accept() => match r {
                    Ok((stream, addr)) => {
                        let _ = stream.set_nodelay(true);
                        match &tls {
                            None => serve_connection(stream, Peer::Tcp { addr }, ctx.clone()),
                            Some(acceptor) => {
                                tokio::spawn(handshake(acceptor.clone(), stream, addr, shown.clone(), ctx.clone()));
                            }
                        }
                    }
                    Err(e) => accept_failed(e).await,
                },
            }
        },
    }
}

async fn accept_failed(e: std::io::Error) {
    tracing::warn!("accept: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn handshake(
    acceptor: TlsAcceptor,
    stream: tokio::net::TcpStream,
    addr: SocketAddr,
    shown: String,
    ctx: Arc<Ctx>,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!("TLS handshake from {addr} on {shown} refused: {e}");
            return;
        }
        Err(_) => {
            tracing::warn!(
                "TLS handshake from {addr} on {shown} refused: no handshake within {HANDSHAKE_TIMEOUT:?}"
            );
            return;
        }
    };
    let cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| client_identity(c));
    serve_connection(tls, Peer::Tls { addr, cert }, ctx);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_tcp_only_on_loopback() {
        let lo: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let lo6: SocketAddr = "[::1]:1".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:1".parse().unwrap();
        assert!(check_plain(&[lo, lo6], false, "tcp://localhost:1").is_ok());
        let e = check_plain(&[lo, any], false, "tcp://x:1").unwrap_err();
        assert!(e.contains("without TLS"), "{e}");
        assert!(e.contains("root access"), "{e}");
        assert!(check_plain(&[any], true, "tcp://0.0.0.0:1").is_ok());
    }
}
