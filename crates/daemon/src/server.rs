//! Start-up (directories, lock, pid file, engine, sockets), the accept loop, and shutdown.

use std::convert::Infallible;
use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_engine::Engine;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use nix::fcntl::{Flock, FlockArg};
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

use crate::config::{DaemonConfig, Host};
use crate::handlers::{handle, Ctx};

/// How long SIGTERM waits for the engine (stopping containers without live restore).
const SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Takes `<data-root>/berth.lock`; held until the returned value is dropped.
pub fn lock_data_root(data_root: &Path) -> Result<Flock<File>, String> {
    let path = data_root.join("berth.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        if errno == nix::errno::Errno::EWOULDBLOCK {
            format!(
                "another daemon is already running with data root {}",
                data_root.display()
            )
        } else {
            format!("locking {}: {errno}", path.display())
        }
    })
}

fn mkdir(path: &Path, mode: u32) -> Result<(), String> {
    DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|e| format!("creating {}: {e}", path.display()))
}

/// Binds a unix socket: a stale file is removed, mode 0660, group `group` when it exists.
pub fn bind_unix(path: &Path, group: &str) -> Result<UnixListener, String> {
    if let Some(parent) = path.parent() {
        mkdir(parent, 0o755)?;
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

/// Accepts connections on `listener` until `stop` is cancelled.
pub async fn serve(listener: UnixListener, ctx: Arc<Ctx>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    let ctx = ctx.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| {
                            let ctx = ctx.clone();
                            async move { Ok::<_, Infallible>(handle(ctx, req).await) }
                        });
                        let conn = http1::Builder::new()
                            .title_case_headers(true)
                            .serve_connection(TokioIo::new(stream), svc)
                            .with_upgrades();
                        if let Err(e) = conn.await {
                            tracing::debug!("connection: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// The daemon's life: start-up, serving until SIGTERM/SIGINT, shutdown.
pub async fn run(cfg: DaemonConfig) -> Result<(), String> {
    let data_root = cfg.engine.data_root.clone();
    let exec_root = cfg.engine.exec_root.clone();
    mkdir(&data_root, 0o711)?;
    let _lock = lock_data_root(&data_root)?;
    mkdir(&exec_root, 0o700)?;
    let _ = std::fs::set_permissions(&exec_root, std::fs::Permissions::from_mode(0o700));

    let pid_file = exec_root.join("berth.pid");
    std::fs::write(&pid_file, format!("{}\n", std::process::id()))
        .map_err(|e| format!("writing {}: {e}", pid_file.display()))?;

    let mut sigterm =
        signal(SignalKind::terminate()).map_err(|e| format!("signal handler: {e}"))?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| format!("signal handler: {e}"))?;

    let mut engine_cfg = cfg.engine.clone();
    engine_cfg.registry = cfg.registry.clone();
    // Held for the daemon's life: shims open the copies through /proc/<daemon>/fd/<n>.
    let _sealed = crate::sealed_runtime::seal_own_runtime(&mut engine_cfg);
    let engine = match Engine::open(engine_cfg).await {
        Ok(e) => e,
        Err(e) => {
            let _ = std::fs::remove_file(&pid_file);
            return Err(format!("starting the engine: {e}"));
        }
    };
    let ctx = Arc::new(Ctx {
        engine: Some(engine.clone()),
        tmp_dir: data_root.join("tmp"),
        max_json_body: cfg.max_json_body,
    });

    let stop = CancellationToken::new();
    let mut sockets: Vec<PathBuf> = Vec::new();
    let mut bind_err = None;
    for host in &cfg.hosts {
        let Host::Unix(path) = host;
        match bind_unix(path, &cfg.group) {
            Ok(l) => {
                tracing::info!("API listening on {}", path.display());
                sockets.push(path.clone());
                tokio::spawn(serve(l, ctx.clone(), stop.clone()));
            }
            Err(e) => {
                bind_err = Some(e);
                break;
            }
        }
    }

    if bind_err.is_none() {
        tracing::info!("berth daemon started (pid {})", std::process::id());
        tokio::select! {
            _ = sigterm.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = sigint.recv() => tracing::info!("SIGINT: shutting down"),
        }
    }
    stop.cancel();
    if tokio::time::timeout(SHUTDOWN_TIMEOUT, engine.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("the engine did not shut down within {SHUTDOWN_TIMEOUT:?}; exiting anyway");
    }
    for s in &sockets {
        let _ = std::fs::remove_file(s);
    }
    let _ = std::fs::remove_file(&pid_file);
    match bind_err {
        Some(e) => Err(e),
        None => {
            tracing::info!("berth daemon stopped");
            Ok(())
        }
    }
}
