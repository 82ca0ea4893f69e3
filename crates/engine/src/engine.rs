//! The [`Engine`]: the facade the API layer calls. Each operation is one line that hands the
//! shared [`Context`] to the service that owns it (see `docs/architecture.md`, "The engine's
//! services"); the engine itself only opens the state, runs the follow-ups the exit path asks
//! for, and shuts down.

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::{Arc, Mutex, Weak};

use berth_api::*;
use berth_image::ImageStore;
use tokio::sync::{mpsc, oneshot};

use crate::build::{BuildFailure, BuildRequest};
use crate::context::{blocking, internal, Context, Followup};
use crate::events::EventBus;
use crate::host::Host;
use crate::registry::AuthConfig;
use crate::registry::{Progress, PullPlans};
use crate::update::{UpdateRequest, UpdateResponse};
use crate::{
    AttachOptions, CommitOptions, EngineConfig, EngineError, Filters, FsChange, IoSession,
    ListOptions, LogEntry, LogsOptions, PathStat, RemoveOptions, Result, TopResponse,
    WaitCondition,
};
use berth_build::BuildResult;
use berth_image::Reference;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

/// berth's engine: every container, image, volume and network operation, typed.
pub struct Engine {
    ctx: Arc<Context>,
}

impl Engine {
    /// Opens the state under the configured roots and reconnects to running containers' shims.
    pub async fn open(config: EngineConfig) -> Result<Arc<Engine>> {
        Engine::open_on(config, Host::system()).await
    }

    /// [`Engine::open`] over the given collaborators (the unit tests' fakes).
    pub(crate) async fn open_on(config: EngineConfig, host: Host) -> Result<Arc<Engine>> {
        for d in [
            config.data_root.join("containers"),
            config.exec_root.join("containers"),
            config.exec_root.join("shims"),
            config.exec_root.join("runc"),
        ] {
            std::fs::create_dir_all(&d).map_err(internal("creating state directories"))?;
        }
        let image_root = config.data_root.join("image");
        let layer_limits = config.layer_limits;
        let images = blocking(move || {
            let mut store = ImageStore::open(&image_root)?;
            store.set_layer_limits(layer_limits);
            Ok(store)
        })
        .await?;
        let volume_root = config.data_root.join("volumes");
        let volumes = blocking(move || {
            Ok(berth_volume::VolumeStore::open(
                &volume_root,
                Arc::new(berth_volume::SystemMounter),
            )?)
        })
        .await?;
        let net_config = config.clone();
        let network =
            tokio::task::spawn_blocking(move || crate::networks::open_manager(&net_config))
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))?;
        let (followups, requests) = mpsc::unbounded_channel();
        let ctx = Arc::new(Context {
            config,
            images: Arc::new(images),
            containers: Mutex::new(BTreeMap::new()),
            execs: Mutex::new(BTreeMap::new()),
            reserved_names: Mutex::new(Vec::new()),
            kernel: crate::seccomp::host_kernel(),
            cap_bounding: crate::defaults::host_bounding_set(),
            network,
            dns: Mutex::new(BTreeMap::new()),
            volumes: Arc::new(volumes),
            events: Default::default(),
            followups,
            host,
            build_cache: Default::default(),
            build_scratch: Default::default(),
            build_secrets: Default::default(),
        });
        tokio::spawn(run_followups(Arc::downgrade(&ctx), requests));
        crate::recovery::restore(&ctx).await;
        crate::recovery::finish_interrupted(&ctx).await;
        crate::networks::reconcile_networks(&ctx).await;
        crate::recovery::restart_on_boot(&ctx).await;
        Ok(Arc::new(Engine { ctx }))
    }

    /// The configuration the engine was opened with.
    pub fn config(&self) -> &EngineConfig {
        &self.ctx.config
    }

    /// The daemon's event stream.
    pub fn events(&self) -> &EventBus {
        &self.ctx.events
    }

    /// Stops background work. Running containers keep running (live restore) unless
    /// `live_restore` is off, when they are stopped.
    pub async fn shutdown(&self) {
        if !self.ctx.config.live_restore {
            let all: Vec<_> = self
                .ctx
                .containers
                .lock()
                .unwrap()
                .values()
                .cloned()
                .collect();
            for c in all {
                if c.running() {
                    let _ = crate::control::container_stop(&self.ctx, &c.id, None, None).await;
                }
            }
        }
    }

    /// Runs a build of the context tar `context` (optionally gzip'd), sending progress to
    /// `progress`. When the receiver goes away the build is cancelled.
    pub async fn build(
        &self,
        context: std::fs::File,
        req: BuildRequest,
        progress: UnboundedSender<crate::build::Progress>,
    ) -> std::result::Result<BuildResult, BuildFailure> {
        crate::build::build(&self.ctx, context, req, progress).await
    }

    /// `POST /build/prune`: forgets every build cache entry (and the cache mounts). Returns the
    /// number of entries removed.
    pub async fn build_prune(&self) -> Result<usize> {
        crate::build::build_prune(&self.ctx).await
    }

    /// `docker commit`: returns the new image's id (`sha256:…`).
    pub async fn container_commit(&self, key: &str, opts: CommitOptions) -> Result<String> {
        crate::commit::container_commit(&self.ctx, key, opts).await
    }

    /// `HEAD /containers/{id}/archive?path=`.
    pub async fn container_stat_path(&self, key: &str, path: &str) -> Result<PathStat> {
        crate::copy::container_stat_path(&self.ctx, key, path).await
    }

    /// `GET /containers/{id}/archive?path=`: the stat and a spooled tar of the path, its
    /// entries named after the path's last element.
    pub async fn container_archive(&self, key: &str, path: &str) -> Result<(PathStat, File)> {
        crate::copy::container_archive(&self.ctx, key, path).await
    }

    /// `PUT /containers/{id}/archive?path=`: extracts `archive` into the directory `path`
    /// (a final symlink followed inside the container).
    pub async fn container_extract(
        &self,
        key: &str,
        path: &str,
        archive: File,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
    ) -> Result<()> {
        crate::copy::container_extract(
            &self.ctx,
            key,
            path,
            archive,
            no_overwrite_dir_non_dir,
            copy_uid_gid,
        )
        .await
    }

    /// `GET /containers/{id}/export`: the container's flattened root filesystem as a tar.
    pub async fn container_export(&self, key: &str) -> Result<File> {
        crate::copy::container_export(&self.ctx, key).await
    }

    /// `docker container prune`: stopped containers matching `until` / `label` filters.
    pub async fn container_prune(&self, filters: Filters) -> Result<ContainerPruneResponse> {
        crate::disk::container_prune(&self.ctx, filters).await
    }

    /// `GET /system/df`; `kinds` narrows it (`image`, `container`, `volume`, `build-cache`).
    pub async fn system_df(&self, kinds: &[String]) -> Result<SystemDf> {
        crate::disk::system_df(&self.ctx, kinds).await
    }

    pub async fn version(&self) -> SystemVersion {
        crate::system::version().await
    }

    pub async fn info(&self) -> SystemInfo {
        crate::system::info(&self.ctx).await
    }

    pub async fn image_list(
        &self,
        all: bool,
        filters: Filters,
        digests: bool,
    ) -> Result<Vec<ImageSummary>> {
        crate::images::image_list(&self.ctx, all, filters, digests).await
    }

    pub async fn image_inspect(&self, name: &str) -> Result<ImageInspect> {
        crate::images::image_inspect(&self.ctx, name).await
    }

    pub async fn image_history(&self, name: &str) -> Result<Vec<HistoryItem>> {
        crate::images::image_history(&self.ctx, name).await
    }

    /// `repo` may hold a tag (`repo:tag`); `tag` empty means `latest` unless `repo` has one.
    pub async fn image_tag(&self, name: &str, repo: &str, tag: &str) -> Result<()> {
        crate::images::image_tag(&self.ctx, name, repo, tag).await
    }

    pub async fn image_remove(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> Result<Vec<ImageDeleteItem>> {
        crate::images::image_remove(&self.ctx, name, force, noprune).await
    }

    pub async fn image_prune(&self, filters: Filters) -> Result<ImagePruneResponse> {
        crate::images::image_prune(&self.ctx, filters).await
    }

    /// Loads an archive; returns the lines to report.
    pub async fn image_load(&self, archive: File) -> Result<Vec<String>> {
        crate::images::image_load(&self.ctx, archive).await
    }

    /// Saves `names` into an anonymous temporary file, rewound, for the caller to stream.
    pub async fn image_save(&self, names: Vec<String>) -> Result<File> {
        crate::images::image_save(&self.ctx, names).await
    }

    /// Imports a rootfs tarball; `changes` are Dockerfile instructions (`CMD ["sh"]`, `ENV a=b`).
    pub async fn image_import(
        &self,
        tarball: File,
        repo: &str,
        tag: &str,
        changes: Vec<String>,
        message: &str,
    ) -> Result<String> {
        crate::images::image_import(&self.ctx, tarball, repo, tag, changes, message).await
    }

    pub async fn container_create(
        &self,
        name: Option<String>,
        req: ContainerCreateRequest,
    ) -> Result<ContainerCreateResponse> {
        crate::create::container_create(&self.ctx, name, req).await
    }

    pub async fn container_start(&self, key: &str) -> Result<()> {
        crate::start::container_start(&self.ctx, key).await
    }

    /// `docker pause`: freezes every process of the container (the runtime's freezer).
    pub async fn container_pause(&self, key: &str) -> Result<()> {
        crate::control::container_pause(&self.ctx, key).await
    }

    /// `docker unpause`.
    pub async fn container_unpause(&self, key: &str) -> Result<()> {
        crate::control::container_unpause(&self.ctx, key).await
    }

    pub async fn container_stop(
        &self,
        key: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<()> {
        crate::control::container_stop(&self.ctx, key, signal, timeout).await
    }

    pub async fn container_restart(
        &self,
        key: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<()> {
        crate::control::container_restart(&self.ctx, key, signal, timeout).await
    }

    /// `signal`: name (`KILL`, `SIGKILL`) or number; default KILL. Conflict when not running.
    pub async fn container_kill(&self, key: &str, signal: Option<String>) -> Result<()> {
        crate::control::container_kill(&self.ctx, key, signal).await
    }

    pub async fn container_remove(&self, key: &str, opts: RemoveOptions) -> Result<()> {
        crate::remove::container_remove(&self.ctx, key, opts).await
    }

    pub async fn container_list(&self, opts: ListOptions) -> Result<Vec<ContainerSummary>> {
        crate::query::container_list(&self.ctx, opts).await
    }

    pub async fn container_inspect(&self, key: &str) -> Result<ContainerInspect> {
        crate::query::container_inspect(&self.ctx, key).await
    }

    /// Validates at once (NotFound); the receiver yields when the condition is met.
    pub async fn container_wait(
        &self,
        key: &str,
        condition: WaitCondition,
    ) -> Result<oneshot::Receiver<WaitResponse>> {
        crate::query::container_wait(&self.ctx, key, condition).await
    }

    /// Attaches; works before `start` (output produced after start is delivered).
    pub async fn container_attach(&self, key: &str, opts: AttachOptions) -> Result<IoSession> {
        crate::io::container_attach(&self.ctx, key, opts).await
    }

    /// Log entries; with `follow` the channel stays open until the container stops.
    pub async fn container_logs(
        &self,
        key: &str,
        opts: LogsOptions,
    ) -> Result<(bool, mpsc::Receiver<LogEntry>)> {
        crate::io::container_logs(&self.ctx, key, opts).await
    }

    pub async fn container_resize(&self, key: &str, rows: u16, cols: u16) -> Result<()> {
        crate::io::container_resize(&self.ctx, key, rows, cols).await
    }

    pub async fn exec_create(&self, key: &str, cfg: ExecConfig) -> Result<String> {
        crate::exec::exec_create(&self.ctx, key, cfg).await
    }

    /// Starts an exec. With `detach`, the returned session's output is already closed;
    /// `detach_keys` overrides the exec's own.
    pub async fn exec_start(
        &self,
        exec_id: &str,
        detach: bool,
        detach_keys: Option<&str>,
    ) -> Result<IoSession> {
        crate::exec::exec_start(&self.ctx, exec_id, detach, detach_keys).await
    }

    pub async fn exec_inspect(&self, exec_id: &str) -> Result<ExecInspect> {
        crate::exec::exec_inspect(&self.ctx, exec_id).await
    }

    pub async fn exec_resize(&self, exec_id: &str, rows: u16, cols: u16) -> Result<()> {
        crate::exec::exec_resize(&self.ctx, exec_id, rows, cols).await
    }

    /// `GET /containers/{id}/changes`.
    pub async fn container_changes(&self, key: &str) -> Result<Vec<FsChange>> {
        crate::fschanges::container_changes(&self.ctx, key).await
    }

    pub async fn network_list(&self, filters: Filters) -> Result<Vec<Value>> {
        crate::networks::network_list(&self.ctx, filters).await
    }

    pub async fn network_inspect(&self, name: &str) -> Result<Value> {
        crate::networks::network_inspect(&self.ctx, name).await
    }

    pub async fn network_create(&self, req: NetworkCreateRequest) -> Result<NetworkCreateResponse> {
        crate::networks::network_create(&self.ctx, req).await
    }

    pub async fn network_remove(&self, name: &str) -> Result<()> {
        crate::networks::network_remove(&self.ctx, name).await
    }

    pub async fn network_prune(&self, _filters: Filters) -> Result<NetworkPruneResponse> {
        crate::networks::network_prune(&self.ctx, _filters).await
    }

    pub async fn network_connect(&self, network: &str, req: NetworkConnectRequest) -> Result<()> {
        crate::networks::network_connect(&self.ctx, network, req).await
    }

    pub async fn network_disconnect(
        &self,
        network: &str,
        req: NetworkConnectRequest,
    ) -> Result<()> {
        crate::networks::network_disconnect(&self.ctx, network, req).await
    }

    /// `GET /containers/{id}/top?ps_args=`.
    pub async fn container_top(&self, key: &str, ps_args: &str) -> Result<TopResponse> {
        crate::observe::container_top(&self.ctx, key, ps_args).await
    }

    /// One stats sample of the container (`precpu_stats` left empty).
    pub async fn container_stats_sample(&self, key: &str) -> Result<Value> {
        crate::observe::container_stats_sample(&self.ctx, key).await
    }

    /// Phase one of `POST /images/create?fromImage=`: connects, authenticates and fetches the
    /// manifest (choosing the platform in an index). Errors here are HTTP errors.
    pub async fn image_pull_resolve(
        &self,
        from_image: &str,
        tag: &str,
        platform: &str,
        auth: Option<AuthConfig>,
    ) -> Result<PullPlans> {
        crate::registry::image_pull_resolve(&self.ctx, from_image, tag, platform, auth).await
    }

    /// Phase two: downloads and commits, reporting progress. The last messages are Docker's
    /// `Digest:` and `Status:` lines.
    pub async fn image_pull_run(&self, plans: PullPlans, progress: Progress) -> Result<()> {
        crate::registry::image_pull_run(&self.ctx, plans, progress).await
    }

    /// `POST /images/{name}/signatures` (berth's own): adds a client's signature (payload and
    /// base64 signature) to the image's sigstore attachment in `name`'s repository.
    pub async fn image_add_signature(
        &self,
        name: &str,
        payload: Vec<u8>,
        signature: String,
        auth: Option<AuthConfig>,
    ) -> Result<Value> {
        crate::registry::add_signature(&self.ctx, name, payload, signature, auth).await
    }

    /// Checks that the image exists before a push stream starts, and resolves the tags to push.
    pub async fn image_push_resolve(&self, name: &str, tag: &str) -> Result<Vec<Reference>> {
        crate::registry::image_push_resolve(&self.ctx, name, tag).await
    }

    /// `POST /images/{name}/push`: uploads what the registry lacks, then the manifest.
    pub async fn image_push_run(
        &self,
        refs: Vec<Reference>,
        auth: Option<AuthConfig>,
        progress: Progress,
    ) -> Result<()> {
        crate::registry::image_push_run(&self.ctx, refs, auth, progress).await
    }

    /// `POST /auth`: checks credentials against the registry.
    pub async fn registry_login(&self, auth: AuthConfig) -> Result<()> {
        crate::registry::registry_login(&self.ctx, auth).await
    }

    /// `GET /distribution/{name}/json`: the descriptor the reference points to, and platforms.
    pub async fn distribution_inspect(
        &self,
        name: &str,
        auth: Option<AuthConfig>,
    ) -> Result<Value> {
        crate::registry::distribution_inspect(&self.ctx, name, auth).await
    }

    /// The moves of tag `name` (`busybox` = `busybox:latest`), newest first.
    pub async fn image_tag_log(&self, name: &str) -> Result<Vec<TagLogItem>> {
        crate::taglog::image_tag_log(&self.ctx, name).await
    }

    /// Points tag `name` back at its previous image and emits an `image tag` event for it.
    pub async fn image_rollback(&self, name: &str) -> Result<TagRollback> {
        crate::taglog::image_rollback(&self.ctx, name).await
    }

    pub async fn container_update(&self, key: &str, u: UpdateRequest) -> Result<UpdateResponse> {
        crate::update::container_update(&self.ctx, key, u).await
    }

    /// `docker rename`.
    pub async fn container_rename(&self, key: &str, new_name: &str) -> Result<()> {
        crate::update::container_rename(&self.ctx, key, new_name).await
    }

    pub async fn volume_create(&self, req: VolumeCreateRequest) -> Result<Volume> {
        crate::volumes::volume_create(&self.ctx, req).await
    }

    pub fn volume_inspect(&self, name: &str) -> Result<Volume> {
        crate::volumes::volume_inspect(&self.ctx, name)
    }

    pub fn volume_list(&self, filters: &Filters) -> Result<VolumeListResponse> {
        crate::volumes::volume_list(&self.ctx, filters)
    }

    /// Refused while any container, running or not, uses it (unless `force`, which Docker
    /// also refuses for a volume in use).
    pub async fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        crate::volumes::volume_remove(&self.ctx, name, force).await
    }

    /// Unused volumes go: only anonymous ones unless `all=true` (Docker 23+); `label`
    /// filters narrow it.
    pub async fn volume_prune(&self, filters: &Filters) -> Result<VolumePruneResponse> {
        crate::volumes::volume_prune(&self.ctx, filters).await
    }

    /// Every volume with its size and reference count (`system df`).
    pub fn volume_usage(&self) -> Vec<Volume> {
        crate::volumes::volume_usage(&self.ctx)
    }
}

/// Runs what the exit path hands back (restarts, auto-removes), each as its own task, until
/// the engine is gone.
async fn run_followups(ctx: Weak<Context>, mut requests: mpsc::UnboundedReceiver<Followup>) {
    while let Some(request) = requests.recv().await {
        let Some(ctx) = ctx.upgrade() else { return };
        match request {
            Followup::Restart(c) => {
                tokio::spawn(async move { crate::start::restart_by_policy(&ctx, &c).await });
            }
            Followup::AutoRemove(id) => {
                tokio::spawn(async move { crate::remove::auto_remove(&ctx, &id).await });
            }
        }
    }
}
