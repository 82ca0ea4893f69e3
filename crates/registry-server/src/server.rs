//! Listening (plain TCP or TLS with rustls), access logs, `/metrics`, and graceful shutdown: on SIGTERM/SIGINT the listener
//! closes and the server waits for uploads and manifest pushes in flight before exiting.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

use tokio_rustls::TlsAcceptor;

use crate::api::{full, handle, Resp};
use crate::config::TlsFiles;
use crate::Registry;

/// How long shutdown waits for writes in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// The size of everything under `dir` (blocking).
fn tree_size(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

async fn metrics(reg: &Arc<Registry>) -> Resp {
    let blobs = reg.store.root().join("blobs");
    let used = tokio::task::spawn_blocking(move || tree_size(&blobs))
        .await
        .unwrap_or(0);
    full(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        reg.metrics.render(used),
    )
}

/// One request, with its access-log line and request counter.
async fn serve_one(
    reg: Arc<Registry>,
    peer: std::net::SocketAddr,
    req: hyper::Request<hyper::body::Incoming>,
) -> Resp {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = if path == "/metrics" && method == Method::GET {
        metrics(&reg).await
    } else {
        handle(reg.clone(), req).await
    };
    let status = resp.status().as_u16();
    reg.metrics.request(method.as_str(), status);
    tracing::info!(
        target: "access",
        remote = %peer,
        method = %method,
        path = %path,
        status,
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    resp
}

fn serve_connection<S>(stream: S, peer: std::net::SocketAddr, reg: Arc<Registry>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let svc = service_fn(move |req| {
            let reg = reg.clone();
            async move { Ok::<_, Infallible>(serve_one(reg, peer, req).await) }
        });
        if let Err(e) = http1::Builder::new()
            .serve_connection(TokioIo::new(stream), svc)
            .await
        {
            tracing::debug!("connection from {peer}: {e}");
        }
    });
}

/// Loads the TLS certificate chain and key into an acceptor.
pub fn tls_acceptor(tls: &TlsFiles) -> Result<TlsAcceptor, String> {
    let open = |p: &std::path::Path| {
        std::fs::File::open(p)
            .map(std::io::BufReader::new)
            .map_err(|e| format!("reading {}: {e}", p.display()))
    };
    let certs = rustls_pemfile::certs(&mut open(&tls.certificate)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", tls.certificate.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no certificate in it",
            tls.certificate.display()
        ));
    }
    let key = rustls_pemfile::private_key(&mut open(&tls.key)?)
        .map_err(|e| format!("{}: {e}", tls.key.display()))?
        .ok_or_else(|| format!("{}: no private key in it", tls.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate and key: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// Accepts connections until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    reg: Arc<Registry>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    match &tls {
                        None => serve_connection(stream, peer, reg.clone()),
                        Some(acceptor) => {
                            let (acceptor, reg) = (acceptor.clone(), reg.clone());
                            tokio::spawn(async move {
                                match acceptor.accept(stream).await {
                                    Ok(s) => serve_connection(s, peer, reg),
                                    Err(e) => tracing::info!("TLS handshake with {peer}: {e}"),
                                }
                            });
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// Serves until SIGTERM/SIGINT, then drains writes in flight.
pub async fn run(reg: Arc<Registry>) -> Result<(), String> {
    let tls = reg.config.tls.as_ref().map(tls_acceptor).transpose()?;
    let listener = TcpListener::bind(reg.config.addr)
        .await
        .map_err(|e| format!("listening on {}: {e}", reg.config.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        "berth registry listening on {addr} ({}), storage {}",
        if tls.is_some() { "https" } else { "http" },
        reg.config.root.display()
    );
    let stop = CancellationToken::new();
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let server = tokio::spawn(serve(listener, tls, reg.clone(), stop.clone()));
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    stop.cancel();
    let _ = server.await;
    let n = reg.inflight.count();
    if n > 0 {
        tracing::info!("shutting down: waiting for {n} upload(s) in flight");
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, reg.inflight.drained())
        .await
        .is_err()
    {
        tracing::warn!("shutting down with uploads still in flight after {DRAIN_TIMEOUT:?}");
    }
    tracing::info!("berth registry stopped");
    Ok(())
}
