//! The [`Engine`]: every operation the API layer calls.

use std::fs::File;
use std::sync::Arc;

use berth_api::*;
use tokio::sync::{mpsc, oneshot};

use crate::{AttachOptions, EngineConfig, Filters, IoSession, ListOptions, LogEntry, LogsOptions, RemoveOptions, Result, WaitCondition};

pub struct Engine {
    config: EngineConfig,
}

#[allow(unused_variables)]
impl Engine {
    /// Opens the state under the configured roots, takes the data-root lock (a second engine on
    /// the same data root is refused), and reconnects to running containers' shims.
    pub async fn open(config: EngineConfig) -> Result<Arc<Engine>> {
        todo!()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Stops background work; running containers keep running (live restore) unless
    /// `live_restore` is off, when they are stopped.
    pub async fn shutdown(&self) {
        todo!()
    }

    // ---- system
    pub async fn version(&self) -> SystemVersion {
        todo!()
    }
    pub async fn info(&self) -> SystemInfo {
        todo!()
    }

    // ---- images
    pub async fn image_list(&self, all: bool, filters: Filters, digests: bool) -> Result<Vec<ImageSummary>> {
        todo!()
    }
    pub async fn image_inspect(&self, name: &str) -> Result<ImageInspect> {
        todo!()
    }
    pub async fn image_history(&self, name: &str) -> Result<Vec<HistoryItem>> {
        todo!()
    }
    /// `repo` may hold a tag (`repo:tag`); `tag` empty means `latest` unless `repo` has one.
    pub async fn image_tag(&self, name: &str, repo: &str, tag: &str) -> Result<()> {
        todo!()
    }
    pub async fn image_remove(&self, name: &str, force: bool, noprune: bool) -> Result<Vec<ImageDeleteItem>> {
        todo!()
    }
    pub async fn image_prune(&self, filters: Filters) -> Result<ImagePruneResponse> {
        todo!()
    }
    /// Loads an archive (read from `archive`); returns the lines to report, e.g.
    /// `Loaded image: busybox:latest` or `Loaded image ID: sha256:…`.
    pub async fn image_load(&self, archive: File) -> Result<Vec<String>> {
        todo!()
    }
    /// Saves `names` into an anonymous temporary file, rewound, for the caller to stream.
    pub async fn image_save(&self, names: Vec<String>) -> Result<File> {
        todo!()
    }
    /// Imports a rootfs tarball; `changes` are Dockerfile instructions (`CMD ["sh"]`, `ENV a=b`).
    pub async fn image_import(&self, tarball: File, repo: &str, tag: &str, changes: Vec<String>, message: &str) -> Result<String> {
        todo!()
    }

    // ---- containers
    pub async fn container_create(&self, name: Option<String>, req: ContainerCreateRequest) -> Result<ContainerCreateResponse> {
        todo!()
    }
    pub async fn container_start(&self, id: &str) -> Result<()> {
        todo!()
    }
    /// `signal`: overrides the stop signal; `timeout`: seconds before SIGKILL (None: the
    /// container's StopTimeout or 10). NotModified when it was not running.
    pub async fn container_stop(&self, id: &str, signal: Option<String>, timeout: Option<i64>) -> Result<()> {
        todo!()
    }
    pub async fn container_restart(&self, id: &str, signal: Option<String>, timeout: Option<i64>) -> Result<()> {
        todo!()
    }
    /// `signal`: name (`KILL`, `SIGKILL`) or number; default KILL. Conflict when not running.
    pub async fn container_kill(&self, id: &str, signal: Option<String>) -> Result<()> {
        todo!()
    }
    pub async fn container_remove(&self, id: &str, opts: RemoveOptions) -> Result<()> {
        todo!()
    }
    pub async fn container_list(&self, opts: ListOptions) -> Result<Vec<ContainerSummary>> {
        todo!()
    }
    pub async fn container_inspect(&self, id: &str) -> Result<ContainerInspect> {
        todo!()
    }
    /// Validates at once (NotFound, bad condition); the receiver yields when the condition is met.
    pub async fn container_wait(&self, id: &str, condition: WaitCondition) -> Result<oneshot::Receiver<WaitResponse>> {
        todo!()
    }
    /// Attaches; works before `start` (output produced after start is delivered).
    pub async fn container_attach(&self, id: &str, opts: AttachOptions) -> Result<IoSession> {
        todo!()
    }
    /// Log entries; with `follow` the channel stays open until the container stops.
    /// Returns whether the container has a TTY with the receiver.
    pub async fn container_logs(&self, id: &str, opts: LogsOptions) -> Result<(bool, mpsc::Receiver<LogEntry>)> {
        todo!()
    }
    pub async fn container_resize(&self, id: &str, rows: u16, cols: u16) -> Result<()> {
        todo!()
    }
    pub async fn container_prune(&self, filters: Filters) -> Result<ContainerPruneResponse> {
        todo!()
    }

    // ---- exec
    pub async fn exec_create(&self, container: &str, cfg: ExecConfig) -> Result<String> {
        todo!()
    }
    /// Starts an exec. With `detach`, the returned session's output is already closed.
    pub async fn exec_start(&self, exec_id: &str, detach: bool) -> Result<IoSession> {
        todo!()
    }
    pub async fn exec_inspect(&self, exec_id: &str) -> Result<ExecInspect> {
        todo!()
    }
    pub async fn exec_resize(&self, exec_id: &str, rows: u16, cols: u16) -> Result<()> {
        todo!()
    }
}
