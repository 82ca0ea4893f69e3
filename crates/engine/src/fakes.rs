//! In-memory fakes of the engine's host ([`crate::host`]) for root-free unit tests: a kernel
//! that records mounts, shims that are tasks speaking the real shim protocol over a Unix
//! socket in the state directory, and an OCI runtime whose `kill` makes the fake shim report
//! the exit. The shims run on their own runtime, so that an engine can be dropped (a daemon
//! restart) while its containers' shims live on.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_shim::protocol::{self, ExitRecord, Frame};
use tokio::net::UnixListener;
use tokio::sync::watch;

use crate::host::{BoxFuture, Clock, Host, Kernel, RuntimeCli, ShimLauncher};
use crate::shim_client::{self, ShimLaunch};
use crate::Result;

/// Records what is mounted where.
#[derive(Default)]
pub(crate) struct FakeKernel {
    pub(crate) mounts: Mutex<BTreeSet<PathBuf>>,
}

impl Kernel for FakeKernel {
    fn mount(&self, _: &str, _: &str, target: &Path, _: &[String]) -> std::io::Result<()> {
        self.mounts.lock().unwrap().insert(target.to_path_buf());
        Ok(())
    }

    fn unmount(&self, target: &Path) -> std::io::Result<()> {
        self.mounts.lock().unwrap().remove(target);
        Ok(())
    }

    fn is_mounted(&self, target: &Path) -> bool {
        self.mounts.lock().unwrap().contains(target)
    }

    fn loopback_up(&self, _: i32) -> std::io::Result<()> {
        Ok(())
    }
}

/// One fake shim: its exit, once the test (or a kill) decides it.
struct FakeShim {
    exit: watch::Sender<Option<i64>>,
    /// Output the container "writes", sent to the engine in order.
    output: tokio::sync::mpsc::UnboundedSender<bytes::Bytes>,
    alive: Arc<std::sync::atomic::AtomicBool>,
}

/// Shims as tasks on their own runtime.
pub(crate) struct FakeShims {
    runtime: tokio::runtime::Runtime,
    /// By container id; exec shims are not listed (they exit at once).
    shims: Mutex<BTreeMap<String, FakeShim>>,
    by_dir: Mutex<BTreeMap<PathBuf, Arc<std::sync::atomic::AtomicBool>>>,
    /// The error the next container launch fails with.
    pub(crate) fail_next: Mutex<Option<String>>,
    pub(crate) launches: std::sync::atomic::AtomicUsize,
    /// Stamps exits, as the shim does with the host's clock.
    clock: Arc<FakeClock>,
}

impl FakeShims {
    fn new(clock: Arc<FakeClock>) -> Self {
        FakeShims {
            clock,
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime for the fake shims"),
            shims: Default::default(),
            by_dir: Default::default(),
            fail_next: Default::default(),
            launches: Default::default(),
        }
    }
}

impl FakeShims {
    /// Makes the shim of container `id` report an exit with `code`; false if none runs.
    pub(crate) fn exit(&self, id: &str, code: i64) -> bool {
        match self.shims.lock().unwrap().get(id) {
            Some(s) if s.alive.load(std::sync::atomic::Ordering::SeqCst) => {
                s.exit.send_replace(Some(code));
                true
            }
            _ => false,
        }
    }

    /// Makes the container of `id` write `data` to its stdout.
    pub(crate) fn stdout(&self, id: &str, data: &[u8]) {
        if let Some(s) = self.shims.lock().unwrap().get(id) {
            let _ = s.output.send(bytes::Bytes::copy_from_slice(data));
        }
    }

    fn start(&self, l: &ShimLaunch) -> std::io::Result<i64> {
        std::fs::create_dir_all(&l.state_dir)?;
        let sock = berth_shim::sockpath::SocketPath::new(&l.state_dir, protocol::SOCKET)?;
        let _guard = self.runtime.enter();
        let listener = UnixListener::bind(sock.path())?;
        let alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (exit_tx, exit_rx) = watch::channel(None);
        let (output, output_rx) = tokio::sync::mpsc::unbounded_channel();
        if l.exec_process.is_some() {
            exit_tx.send_replace(Some(0));
        } else {
            self.shims.lock().unwrap().insert(
                l.id.clone(),
                FakeShim {
                    exit: exit_tx,
                    output,
                    alive: alive.clone(),
                },
            );
        }
        self.by_dir
            .lock()
            .unwrap()
            .insert(l.state_dir.clone(), alive.clone());
        let state_dir = l.state_dir.clone();
        self.runtime.spawn(serve(
            listener,
            sock,
            state_dir,
            exit_rx,
            output_rx,
            alive,
            self.clock.clone(),
        ));
        Ok(4242)
    }
}

/// The fake shim: answers START, and reports the exit when it comes (at once to a connected
/// engine; otherwise in `exit.json` only, as a shim whose daemon is down).
async fn serve(
    listener: UnixListener,
    sock: berth_shim::sockpath::SocketPath,
    state_dir: PathBuf,
    mut exit_rx: watch::Receiver<Option<i64>>,
    mut output: tokio::sync::mpsc::UnboundedReceiver<bytes::Bytes>,
    alive: Arc<std::sync::atomic::AtomicBool>,
    clock: Arc<FakeClock>,
) {
    loop {
        let conn = tokio::select! {
            conn = listener.accept() => conn.ok(),
            code = exit_code(&mut exit_rx) => {
                record_exit(&state_dir, code, &alive, &clock);
                break;
            }
        };
        let Some((stream, _)) = conn else { break };
        if talk(
            stream,
            &mut exit_rx,
            &mut output,
            &state_dir,
            &alive,
            &clock,
        )
        .await
        {
            break;
        }
    }
    drop(sock);
}

/// One engine connection; true once the exit was reported on it.
async fn talk(
    stream: tokio::net::UnixStream,
    exit_rx: &mut watch::Receiver<Option<i64>>,
    output: &mut tokio::sync::mpsc::UnboundedReceiver<bytes::Bytes>,
    state_dir: &Path,
    alive: &std::sync::atomic::AtomicBool,
    clock: &FakeClock,
) -> bool {
    let (mut r, mut w) = stream.into_split();
    loop {
        tokio::select! {
            biased;
            Some(data) = output.recv() => {
                if shim_client::write_frame(&mut w, &Frame::Stdout(data)).await.is_err() {
                    return false;
                }
            }
            frame = shim_client::next_frame(&mut r, "fake shim") => match frame {
                Some(Frame::Start) => {
                    let _ = shim_client::write_frame(&mut w, &Frame::Reply(Ok(()))).await;
                }
                Some(_) => {}
                None => return false,
            },
            code = exit_code(exit_rx) => {
                let record = record_exit(state_dir, code, alive, clock);
                let _ = shim_client::write_frame(&mut w, &Frame::Exit(record)).await;
                return true;
            }
        }
    }
}

async fn exit_code(rx: &mut watch::Receiver<Option<i64>>) -> i64 {
    let code = rx
        .wait_for(Option::is_some)
        .await
        .map(|code| code.unwrap_or(0));
    match code {
        Ok(code) => code,
        Err(_) => std::future::pending().await,
    }
}

/// Writes `exit.json` as a shim does, and marks the shim gone.
fn record_exit(
    state_dir: &Path,
    code: i64,
    alive: &std::sync::atomic::AtomicBool,
    clock: &FakeClock,
) -> ExitRecord {
    let record = ExitRecord {
        exit_code: code,
        finished_at: clock.now_rfc3339(),
        oom_killed: false,
    };
    let _ = record.write_file(state_dir);
    alive.store(false, std::sync::atomic::Ordering::SeqCst);
    record
}

impl ShimLauncher for FakeShims {
    fn launch<'a>(&'a self, l: &'a ShimLaunch) -> BoxFuture<'a, Result<i64>> {
        Box::pin(async move {
            self.launches
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if l.exec_process.is_none() {
                if let Some(msg) = self.fail_next.lock().unwrap().take() {
                    return Err(shim_client::classify_start_error(msg));
                }
            }
            self.start(l)
                .map_err(|e| crate::EngineError::Internal(format!("fake shim: {e}")))
        })
    }

    fn alive(&self, state_dir: &Path) -> bool {
        self.by_dir
            .lock()
            .unwrap()
            .get(state_dir)
            .is_some_and(|a| a.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// The runtime's command line: `kill ID SIG` ends the fake shim with 128+SIG; the rest succeed.
pub(crate) struct FakeRuntime {
    shims: Arc<FakeShims>,
    pub(crate) calls: Mutex<Vec<Vec<String>>>,
    /// `pause ID` finds the container exiting: its shim ends (status 0) and the pause fails.
    pub(crate) pause_finds_it_exiting: std::sync::atomic::AtomicBool,
}

impl RuntimeCli for FakeRuntime {
    fn run<'a>(
        &'a self,
        _: &'a Path,
        args: Vec<OsString>,
        _: Option<Vec<u8>>,
    ) -> BoxFuture<'a, std::io::Result<std::process::Output>> {
        let args: Vec<String> = args
            .iter()
            .skip(2) // --root R
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        self.calls.lock().unwrap().push(args.clone());
        let ok = match args.first().map(String::as_str) {
            Some("kill") => {
                let sig: i64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(15);
                self.shims.exit(&args[1], 128 + sig)
            }
            Some("pause")
                if self
                    .pause_finds_it_exiting
                    .load(std::sync::atomic::Ordering::SeqCst) =>
            {
                self.shims.exit(&args[1], 0);
                false
            }
            _ => true,
        };
        Box::pin(async move {
            Ok(std::process::Output {
                status: std::process::ExitStatus::from_raw(if ok { 0 } else { 1 << 8 }),
                stdout: Vec::new(),
                stderr: if ok {
                    Vec::new()
                } else {
                    b"container not running".to_vec()
                },
            })
        })
    }
}

/// A clock that moves only when told.
pub(crate) struct FakeClock(Mutex<i64>);

impl FakeClock {
    /// Moves the clock on by `secs`.
    pub(crate) fn advance(&self, secs: i64) {
        *self.0.lock().unwrap() += secs;
    }
}

impl Clock for FakeClock {
    fn now_unix(&self) -> (i64, u32) {
        (*self.0.lock().unwrap(), 0)
    }
}

/// An engine's host made of fakes, and handles on each.
pub(crate) struct FakeHost {
    pub(crate) kernel: Arc<FakeKernel>,
    pub(crate) clock: Arc<FakeClock>,
    pub(crate) shims: Arc<FakeShims>,
    pub(crate) runtime: Arc<FakeRuntime>,
}

impl FakeHost {
    pub(crate) fn new() -> FakeHost {
        // 2027-01-15T08:00:00Z.
        let clock = Arc::new(FakeClock(Mutex::new(1_800_000_000)));
        let shims = Arc::new(FakeShims::new(clock.clone()));
        FakeHost {
            kernel: Arc::default(),
            clock,
            runtime: Arc::new(FakeRuntime {
                shims: shims.clone(),
                calls: Default::default(),
                pause_finds_it_exiting: Default::default(),
            }),
            shims,
        }
    }

    pub(crate) fn host(&self) -> Host {
        Host {
            kernel: self.kernel.clone(),
            shims: self.shims.clone(),
            runtime: self.runtime.clone(),
            clock: self.clock.clone(),
        }
    }
}
