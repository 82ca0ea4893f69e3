//! Listening, access logs, `/metrics`, and graceful shutdown: on SIGTERM/SIGINT the listener
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

use crate::api::{full, handle, Resp};
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

/// Accepts connections until `stop` is cancelled.
pub async fn serve(listener: TcpListener, reg: Arc<Registry>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let reg = reg.clone();
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
    let listener = TcpListener::bind(reg.config.addr)
        .await
        .map_err(|e| format!("listening on {}: {e}", reg.config.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        "berth registry listening on {addr}, storage {}",
        reg.config.root.display()
    );
    let stop = CancellationToken::new();
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let server = tokio::spawn(serve(listener, reg.clone(), stop.clone()));
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
