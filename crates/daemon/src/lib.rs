//! berth-daemon: the Docker Engine API served over HTTP on top of berth-engine.
//!
//! `config` merges flags and daemon.json (`hosts` parses `-H`, `tls` builds the rustls
//! server configuration); `server` does start-up and shutdown; `listeners` binds unix, tcp
//! (TLS) and systemd-passed sockets and runs the accept loops;
//! `router` turns paths into typed routes; `handlers` call the engine; `error` maps engine
//! errors to statuses (the one place); `stream` multiplexes output and pumps hijacked
//! connections; `body` builds whole and streaming bodies; `authz` decides, per role, what a
//! client may do (the daemon.json `authorization` section).
#![forbid(unsafe_code)]

pub mod authz;
pub mod body;
pub mod config;
pub mod error;
pub mod handlers;
pub mod hosts;
pub mod listeners;
pub mod peer;
pub mod registry_config;
pub mod router;
pub mod sealed_runtime;
pub mod server;
pub mod stream;
pub mod tls;

use std::process::ExitCode;

pub use config::DaemonArgs;

/// `berth daemon`: serves until SIGTERM/SIGINT. Exit 0 after a clean shutdown, 1 on a
/// configuration or start-up error.
pub fn run(args: DaemonArgs) -> ExitCode {
    let cfg = match config::load(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth daemon: {e}");
            return ExitCode::from(1);
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(cfg.log_level)
        .with_target(false)
        .try_init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth daemon: starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(server::run(cfg));
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth daemon: {e}");
            ExitCode::from(1)
        }
    }
}
