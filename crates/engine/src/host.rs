//! The engine's privileged collaborators, behind traits: the kernel calls it makes itself
//! (mounting a container's root filesystem, bringing up `lo`), the shims it launches, and
//! the OCI runtime's command line, and the clock. [`Host::system`] is the real machine; the engine's unit
//! tests open an engine over in-memory fakes (`crate::fakes`) and drive the whole lifecycle
//! without root, as berth-network does with its `Netlink` and `Firewall`.

use std::ffi::OsString;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use crate::shim_client::{self, ShimLaunch};
use crate::{sys, Result};

/// A boxed future, so that the traits below can be used as trait objects.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The system calls the engine makes directly.
pub(crate) trait Kernel: Send + Sync {
    /// Mounts `fstype` from `source` on `target` with `options` (comma-joined as data).
    fn mount(
        &self,
        fstype: &str,
        source: &str,
        target: &Path,
        options: &[String],
    ) -> std::io::Result<()>;
    /// Unmounts `target`; a path that is not mounted is fine.
    fn unmount(&self, target: &Path) -> std::io::Result<()>;
    /// Whether `target` is a mount point.
    fn is_mounted(&self, target: &Path) -> bool;
    /// Sets `lo` up in the network namespace of process `pid`.
    fn loopback_up(&self, pid: i32) -> std::io::Result<()>;
}

/// Starts the shims that supervise containers and execs, and tells whether one still runs.
/// The engine talks to a shim over the Unix socket in its state directory
/// ([`shim_client::connect`]), whoever started it.
pub(crate) trait ShimLauncher: Send + Sync {
    /// Starts a shim and waits for its readiness; returns the pid of the process it runs.
    fn launch<'a>(&'a self, launch: &'a ShimLaunch) -> BoxFuture<'a, Result<i64>>;
    /// Whether the shim of `state_dir` is still running.
    fn alive(&self, state_dir: &Path) -> bool;
}

/// Runs the OCI runtime's command line (`runc --root R kill ID 9`).
pub(crate) trait RuntimeCli: Send + Sync {
    /// Runs `runtime args…`, writing `stdin` to it when given; returns its output.
    fn run<'a>(
        &'a self,
        runtime: &'a Path,
        args: Vec<OsString>,
        stdin: Option<Vec<u8>>,
    ) -> BoxFuture<'a, std::io::Result<std::process::Output>>;
}

/// The wall clock the engine stamps a container's life with (created, started, finished) and
/// measures ages by (`docker ps`'s "Up 2 hours").
pub(crate) trait Clock: Send + Sync {
    /// Now, as seconds and nanoseconds since the Unix epoch.
    fn now_unix(&self) -> (i64, u32);

    /// Now, as a record stamps it (RFC 3339, nanoseconds).
    fn now_rfc3339(&self) -> String {
        let (secs, nanos) = self.now_unix();
        berth_sys::time::format_rfc3339(secs, nanos, berth_sys::time::Precision::Nanos)
    }
}

/// The collaborators an engine is opened with.
#[derive(Clone)]
pub(crate) struct Host {
    pub(crate) kernel: Arc<dyn Kernel>,
    pub(crate) shims: Arc<dyn ShimLauncher>,
    pub(crate) runtime: Arc<dyn RuntimeCli>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Host {
    /// The real machine: mount(2), the `berth-shim` binary, the runtime binaries.
    pub(crate) fn system() -> Host {
        Host {
            kernel: Arc::new(SystemKernel),
            shims: Arc::new(SystemShims),
            runtime: Arc::new(SystemRuntime),
            clock: Arc::new(SystemClock),
        }
    }

    /// Waits (at most `limit`) until the shim of `state_dir`, if any, has exited.
    pub(crate) async fn wait_shim_gone(&self, state_dir: &Path, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.shims.alive(state_dir) {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!("shim in {} still running", state_dir.display());
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }
}

struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> (i64, u32) {
        berth_sys::time::now_unix()
    }
}

struct SystemKernel;

impl Kernel for SystemKernel {
    fn mount(
        &self,
        fstype: &str,
        source: &str,
        target: &Path,
        options: &[String],
    ) -> std::io::Result<()> {
        sys::mount_fs(fstype, source, target, options)
    }

    fn unmount(&self, target: &Path) -> std::io::Result<()> {
        sys::unmount(target)
    }

    fn is_mounted(&self, target: &Path) -> bool {
        sys::is_mounted(target)
    }

    fn loopback_up(&self, pid: i32) -> std::io::Result<()> {
        sys::loopback_up(pid)
    }
}

struct SystemShims;

impl ShimLauncher for SystemShims {
    fn launch<'a>(&'a self, launch: &'a ShimLaunch) -> BoxFuture<'a, Result<i64>> {
        Box::pin(shim_client::launch(launch))
    }

    fn alive(&self, state_dir: &Path) -> bool {
        shim_client::shim_alive(state_dir)
    }
}

struct SystemRuntime;

impl RuntimeCli for SystemRuntime {
    fn run<'a>(
        &'a self,
        runtime: &'a Path,
        args: Vec<OsString>,
        stdin: Option<Vec<u8>>,
    ) -> BoxFuture<'a, std::io::Result<std::process::Output>> {
        Box::pin(async move {
            use tokio::io::AsyncWriteExt;
            let mut child = tokio::process::Command::new(runtime)
                .args(&args)
                .stdin(if stdin.is_some() {
                    std::process::Stdio::piped()
                } else {
                    std::process::Stdio::null()
                })
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()?;
            if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
                let _ = pipe.write_all(&data).await;
            }
            child.wait_with_output().await
        })
    }
}
