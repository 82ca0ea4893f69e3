//! Start-up (directories, lock, pid file, TLS, listeners, engine) and shutdown.

use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_engine::Engine;
use nix::fcntl::{Flock, FlockArg};
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

use crate::config::DaemonConfig;
use crate::handlers::Ctx;

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

/// The daemon's life: start-up, serving until SIGTERM/SIGINT, shutdown.
pub async fn run(cfg: DaemonConfig) -> Result<(), String> {
    // TLS files are read before anything is created, so a bad path changes nothing.
    let tls = cfg
        .tls
        .as_ref()
        .map(crate::tls::server_config)
        .transpose()?;
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
    // Listeners are bound before the engine opens, so a refused host (clear text on a
    // public address, a missing systemd socket) stops the start before any state is touched;
    // connections wait in the backlog until the accept loops start.
    let listeners = match crate::listeners::open(&cfg.hosts, tls, &cfg.group) {
        Ok(l) => l,
        Err(e) => {
            let _ = std::fs::remove_file(&pid_file);
            return Err(e);
        }
    };
    let sockets: Vec<PathBuf> = listeners
        .iter()
        .filter_map(|l| l.socket_file().cloned())
        .collect();
    let engine = match Engine::open(engine_cfg).await {
        Ok(e) => e,
        Err(e) => {
            for s in &sockets {
                let _ = std::fs::remove_file(s);
            }
            let _ = std::fs::remove_file(&pid_file);
            return Err(format!("starting the engine: {e}"));
        }
    };
    let ctx = Arc::new(Ctx {
        engine: Some(engine.clone()),
        tmp_dir: data_root.join("tmp"),
        max_json_body: cfg.max_json_body,
        authz: cfg.authz.clone().map(std::sync::Arc::new),
    });

    let stop = CancellationToken::new();
    for l in listeners {
        tracing::info!("API listening on {}", l.shown());
        tokio::spawn(crate::listeners::serve(l, ctx.clone(), stop.clone()));
    }
    tracing::info!("berth daemon started (pid {})", std::process::id());
    tokio::select! {
        _ = sigterm.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = sigint.recv() => tracing::info!("SIGINT: shutting down"),
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
    tracing::info!("berth daemon stopped");
    Ok(())
}
