//! A container as the engine holds it: its persisted record, its output subscribers and stdin
//! queue, the waiters on its exit, and the exit signal.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_api::{ContainerConfig, ExecConfig, HostConfig, WaitResponse};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use crate::lifecycle::{IllegalTransition, Lifecycle, Transition};
use crate::{Output, StreamKind, WaitCondition};

/// The record format this release writes (`version` in the record). Records without one were
/// written by releases that stored the Docker wire state; they load unchanged
/// ([`crate::lifecycle::StoredLifecycle`]).
pub const RECORD_VERSION: u32 = 2;

fn first_record_version() -> u32 {
    1
}

/// What is persisted in `<data-root>/containers/<id>/config.v2.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// The record format ([`RECORD_VERSION`]); 1 for records written before it existed.
    #[serde(default = "first_record_version")]
    pub version: u32,
    pub id: String,
    /// With Docker's leading slash.
    pub name: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// `sha256:…`
    pub image_id: String,
    /// Where the container is in its life: changed only through [`Container::apply`].
    pub state: Lifecycle,
    pub restart_count: i64,
    pub log_path: String,
    /// The runc-compatible binary for this container.
    pub runtime_path: PathBuf,
    /// Networks the container joins when it starts (bridge or user networks), with the
    /// endpoint settings asked for (aliases, fixed address).
    #[serde(default)]
    pub networks: std::collections::BTreeMap<String, berth_api::EndpointSettings>,
    /// Volumes it mounts, resolved at create.
    #[serde(default)]
    pub volumes: Vec<crate::VolumeMount>,
    /// Stopped or killed by the user: its restart policy does not bring it back (dockerd's
    /// `HasBeenManuallyStopped`).
    #[serde(default)]
    pub manually_stopped: bool,
}

/// A live output subscriber (an attach session).
pub struct Subscriber {
    pub tx: mpsc::Sender<Output>,
    pub stdout: bool,
    pub stderr: bool,
}

/// Frames to send to the current shim (stdin, resize, close, start).
pub type ShimFrame = berth_shim::protocol::Frame<bytes::Bytes>;

pub struct Container {
    pub id: String,
    pub rec: Mutex<ContainerRecord>,
    /// Serialises lifecycle operations (start, stop, remove).
    pub op: tokio::sync::Mutex<()>,
    pub subscribers: Mutex<Vec<Subscriber>>,
    /// Stdin and resize frames, queued until a shim takes them.
    pub to_shim: mpsc::UnboundedSender<ShimFrame>,
    pub to_shim_rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<ShimFrame>>>,
    /// Waiters for exit / removal.
    pub waiters: Mutex<Vec<(WaitCondition, oneshot::Sender<WaitResponse>)>>,
    /// Counts exits; `changed()` wakes stoppers.
    pub exits: watch::Sender<u64>,
    /// The answer to a START frame in flight.
    pub start_reply: Mutex<Option<oneshot::Sender<Result<(), String>>>>,
    /// Set once removed.
    pub removed: std::sync::atomic::AtomicBool,
    /// Set while an exit is being recorded: the container still reads as running until its
    /// networks and rootfs are released, so whoever waits for the exit sees them released.
    pub finishing: std::sync::atomic::AtomicBool,
    /// Set while `docker restart` stops the container: the exit does not remove an `--rm`
    /// container (dockerd's HasBeenManuallyRestarted). Not the policy's `Restarting` status.
    pub restarting_by_user: std::sync::atomic::AtomicBool,
    /// The restart policy's current back-off.
    pub restart_delay: Mutex<std::time::Duration>,
    /// Serialises writes of the record, so the last write holds the newest state.
    pub persisting: Mutex<()>,
    /// Set when the container is being stopped, killed or removed; cleared at start. Output
    /// then waits at most [`RELEASE_GRACE`] for a slow attach client, so that a client that
    /// stopped reading cannot hold the container's exit back.
    pub output_release: watch::Sender<bool>,
}

/// How long output waits for a slow attach client once the container is being stopped.
pub const RELEASE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

impl Container {
    pub fn new(rec: ContainerRecord) -> Arc<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        Arc::new(Container {
            id: rec.id.clone(),
            rec: Mutex::new(rec),
            op: tokio::sync::Mutex::new(()),
            subscribers: Mutex::new(Vec::new()),
            to_shim: tx,
            to_shim_rx: Arc::new(tokio::sync::Mutex::new(rx)),
            waiters: Mutex::new(Vec::new()),
            exits: watch::channel(0).0,
            start_reply: Mutex::new(None),
            removed: std::sync::atomic::AtomicBool::new(false),
            finishing: std::sync::atomic::AtomicBool::new(false),
            restarting_by_user: std::sync::atomic::AtomicBool::new(false),
            restart_delay: Mutex::new(std::time::Duration::ZERO),
            persisting: Mutex::new(()),
            output_release: watch::channel(false).0,
        })
    }

    pub fn record(&self) -> ContainerRecord {
        self.rec.lock().unwrap().clone()
    }

    pub fn name(&self) -> String {
        self.rec.lock().unwrap().name.clone()
    }

    /// Whether its process exists (running or paused).
    pub fn running(&self) -> bool {
        self.rec.lock().unwrap().state.running()
    }

    /// Moves the container's life on by `t`, the only way its status changes; an illegal
    /// transition changes nothing.
    pub fn apply(&self, t: Transition) -> Result<(), IllegalTransition> {
        self.rec.lock().unwrap().state.apply(t)
    }

    /// Where the container is.
    pub fn status(&self) -> crate::lifecycle::Status {
        self.rec.lock().unwrap().state.status
    }

    /// Delivers output to every subscriber that wants that stream, in order, waiting for a
    /// slow one as dockerd does (the shim, then the container, wait in turn: nothing is
    /// dropped, and memory stays bounded by the subscribers' channels). Subscribers that are
    /// gone are dropped, and so is one still not reading [`RELEASE_GRACE`] after the container
    /// began to be stopped.
    pub async fn publish(&self, stream: StreamKind, data: bytes::Bytes) {
        let targets: Vec<mpsc::Sender<Output>> = {
            let mut subs = self.subscribers.lock().unwrap();
            subs.retain(|s| !s.tx.is_closed());
            subs.iter()
                .filter(|s| match stream {
                    StreamKind::Stdout => s.stdout,
                    StreamKind::Stderr => s.stderr,
                    StreamKind::Stdin => false,
                })
                .map(|s| s.tx.clone())
                .collect()
        };
        for tx in targets {
            let out = Output {
                stream,
                data: data.clone(),
            };
            let sent = match tx.try_send(out) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Closed(_)) => false,
                // Only a full channel waits (and watches for the container being stopped).
                Err(mpsc::error::TrySendError::Full(out)) => {
                    let mut release = self.output_release.subscribe();
                    tokio::select! {
                        sent = tx.send(out) => sent.is_ok(),
                        _ = async {
                            let _ = release.wait_for(|r| *r).await;
                            tokio::time::sleep(RELEASE_GRACE).await;
                        } => false,
                    }
                }
            };
            if !sent {
                self.subscribers
                    .lock()
                    .unwrap()
                    .retain(|s| !s.tx.same_channel(&tx));
            }
        }
    }

    /// Ends every attach session.
    pub fn close_subscribers(&self) {
        self.subscribers.lock().unwrap().clear();
    }

    /// Answers the waiters whose condition `event` satisfies.
    pub fn notify_waiters(&self, removed: bool, resp: &WaitResponse) {
        let mut ws = self.waiters.lock().unwrap();
        let mut keep = Vec::new();
        for (cond, tx) in ws.drain(..) {
            if removed || cond != WaitCondition::Removed {
                let _ = tx.send(resp.clone());
            } else {
                keep.push((cond, tx));
            }
        }
        *ws = keep;
    }
}

/// A volume (or, from `--volumes-from`, a host path) a container mounts; persisted in its
/// record.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct VolumeMount {
    /// The volume's name; empty for a host path inherited with `--volumes-from`.
    #[serde(default)]
    pub name: String,
    /// The host path of an inherited bind mount.
    #[serde(default)]
    pub source: String,
    pub destination: String,
    #[serde(default)]
    pub read_only: bool,
    /// Made for this container (`-v /dst`, image `VOLUME`): `rm -v` and `--rm` remove it.
    #[serde(default)]
    pub anonymous: bool,
    /// `nocopy`: no copy-up of the image's content.
    #[serde(default)]
    pub no_copy: bool,
    /// Docker's `Mode` in `Mounts` (`z` for `-v NAME:/dst`).
    #[serde(default)]
    pub mode: String,
}

/// One exec session.
pub(crate) struct Exec {
    pub(crate) id: String,
    pub(crate) container_id: String,
    pub(crate) config: ExecConfig,
    pub(crate) state: Mutex<ExecState>,
}

#[derive(Default)]
pub(crate) struct ExecState {
    pub(crate) started: bool,
    pub(crate) running: bool,
    pub(crate) exit_code: Option<i64>,
    pub(crate) pid: i64,
    pub(crate) to_shim: Option<mpsc::UnboundedSender<ShimFrame>>,
}
