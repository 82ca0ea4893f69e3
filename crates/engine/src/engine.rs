//! The [`Engine`]: every operation the API layer calls.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_api::*;
use berth_image::ImageStore;
use berth_shim::protocol::{self, ExitRecord, Frame};
use tokio::sync::{mpsc, oneshot};

use crate::container::{Container, ContainerRecord, ShimFrame, Subscriber};
use crate::lifecycle::{Lifecycle, Status, Transition};
use crate::shim_client::{self, ShimLaunch};
use crate::util::{self, now_rfc3339, ZERO_TIME};
use crate::{
    logs, spec, sys, user, AttachOptions, EngineConfig, EngineError, Filters, Input, IoSession,
    ListOptions, LogEntry, LogsOptions, Output, RemoveOptions, Result, StreamKind, WaitCondition,
};

/// One exec session.
struct Exec {
    id: String,
    container_id: String,
    config: ExecConfig,
    state: Mutex<ExecState>,
}

#[derive(Default)]
struct ExecState {
    started: bool,
    running: bool,
    exit_code: Option<i64>,
    pid: i64,
    to_shim: Option<mpsc::UnboundedSender<ShimFrame>>,
}

pub struct Engine {
    config: EngineConfig,
    pub(crate) images: Arc<ImageStore>,
    pub(crate) containers: Mutex<BTreeMap<String, Arc<Container>>>,
    execs: Mutex<BTreeMap<String, Arc<Exec>>>,
    /// Names being created, reserved before the record exists.
    reserved_names: Mutex<Vec<String>>,
    kernel: (u32, u32),
    cap_bounding: u64,
    /// Bridge networking; `None` when off or unavailable.
    pub(crate) network: Option<berth_network::NetworkManager>,
    /// Embedded DNS servers of running containers on user networks.
    pub(crate) dns: Mutex<BTreeMap<String, berth_network::dns::DnsServer>>,
    pub(crate) volumes: Arc<berth_volume::VolumeStore>,
    pub(crate) events: crate::events::EventBus,
    me: std::sync::Weak<Engine>,
}

fn internal(context: &str) -> impl Fn(std::io::Error) -> EngineError + '_ {
    move |e| EngineError::Internal(format!("{context}: {e}"))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Internal(format!("task failed: {e}")))?
}

fn rlimit_hard(name: &str) -> Option<u64> {
    let res = match name {
        "RLIMIT_NOFILE" => nix::sys::resource::Resource::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => nix::sys::resource::Resource::RLIMIT_NPROC,
        "RLIMIT_MEMLOCK" => nix::sys::resource::Resource::RLIMIT_MEMLOCK,
        "RLIMIT_STACK" => nix::sys::resource::Resource::RLIMIT_STACK,
        "RLIMIT_CORE" => nix::sys::resource::Resource::RLIMIT_CORE,
        _ => return None,
    };
    nix::sys::resource::getrlimit(res)
        .ok()
        .map(|(_, hard)| hard)
}

impl Engine {
    /// Opens the state under the configured roots and reconnects to running containers' shims.
    pub async fn open(config: EngineConfig) -> Result<Arc<Engine>> {
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
        let engine = Arc::new_cyclic(|me| Engine {
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
            me: me.clone(),
        });
        engine.restore().await;
        engine.reconcile_networks().await;
        engine.restart_on_boot().await;
        Ok(engine)
    }

    pub(crate) fn arc(&self) -> Arc<Engine> {
        self.me.upgrade().expect("engine alive")
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Stops background work. Running containers keep running (live restore) unless
    /// `live_restore` is off, when they are stopped.
    pub async fn shutdown(&self) {
        if !self.config.live_restore {
            let all: Vec<Arc<Container>> =
                self.containers.lock().unwrap().values().cloned().collect();
            for c in all {
                if c.running() {
                    let _ = self.container_stop(&c.id, None, None).await;
                }
            }
        }
    }

    // ---- paths
    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.config.data_root.join("containers").join(id)
    }
    fn rootfs(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("rootfs")
    }
    fn bundle_dir(&self, id: &str) -> PathBuf {
        self.config.exec_root.join("containers").join(id)
    }
    fn shim_dir(&self, id: &str) -> PathBuf {
        self.config.exec_root.join("shims").join(id)
    }
    fn runc_root(&self) -> PathBuf {
        self.config.exec_root.join("runc")
    }

    pub(crate) fn persist(&self, c: &Container) -> Result<()> {
        let _serial = c.persisting.lock().unwrap();
        let rec = c.record();
        let data = serde_json::to_vec(&rec).map_err(|e| EngineError::Internal(e.to_string()))?;
        // An `--rm` container does not outlive a host crash (restore removes it), so its record
        // need not be durable, only atomic.
        let durability = if rec.host_config.auto_remove {
            util::Durability::Atomic
        } else {
            util::Durability::Durable
        };
        util::write_atomic(
            &self.container_dir(&c.id).join("config.v2.json"),
            &data,
            durability,
        )
        .map_err(internal("writing container record"))
    }

    /// Loads container records and reconciles them with what the shims say.
    async fn restore(&self) {
        let dir = self.config.data_root.join("containers");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let mut gone_auto_remove = Vec::new();
        for e in entries.flatten() {
            let path = e.path().join("config.v2.json");
            // A directory without a record (or with an empty one: an `--rm` container's record
            // is not fsynced) is a create that never finished.
            let Some(data) = std::fs::read(&path).ok().filter(|d| !d.is_empty()) else {
                let _ = sys::unmount(&e.path().join("rootfs"));
                let _ = std::fs::remove_dir_all(e.path());
                continue;
            };
            let Ok(mut rec) = serde_json::from_slice::<ContainerRecord>(&data) else {
                tracing::warn!("skipping unreadable container record {}", path.display());
                continue;
            };
            // Older records were read into the current form; the next write stores it so.
            rec.version = crate::container::RECORD_VERSION;
            let c = Container::new(rec);
            self.containers
                .lock()
                .unwrap()
                .insert(c.id.clone(), c.clone());
            if c.running() {
                let sdir = self.shim_dir(&c.id);
                match shim_client::connect(&sdir).await {
                    Ok(stream) if shim_client::shim_alive(&sdir) => {
                        tracing::info!("reconnected to running container {}", c.id);
                        self.adopt_volumes(&c.record());
                        self.spawn_shim_reader(c.clone(), stream, None);
                    }
                    _ => {
                        let exit = shim_client::read_exit(&sdir).unwrap_or(ExitRecord {
                            exit_code: 255,
                            finished_at: now_rfc3339(),
                            oom_killed: false,
                        });
                        tracing::info!(
                            "container {} exited ({}) while the daemon was down",
                            c.id,
                            exit.exit_code
                        );
                        self.finish(&c, exit, false).await;
                    }
                }
            } else if sys::is_mounted(&self.rootfs(&c.id)) {
                let _ = sys::unmount(&self.rootfs(&c.id));
            }
            if !c.running() && c.rec.lock().unwrap().host_config.auto_remove {
                gone_auto_remove.push(c.id.clone());
            }
        }
        // As dockerd does: an `--rm` container that is not running when the daemon starts
        // (it exited, or was never started, while the daemon was down) is removed.
        for id in gone_auto_remove {
            tracing::info!("removing --rm container {id}, not running at start-up");
            self.auto_remove(&id).await;
        }
    }

    // ---- system
    pub async fn version(&self) -> SystemVersion {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string();
        let arch = crate::seccomp::Target::host_arch().to_string();
        SystemVersion {
            platform: serde_json::json!({"Name": "berth"}),
            components: vec![ComponentVersion {
                name: "Engine".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                details: None,
            }],
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: API_VERSION.into(),
            min_api_version: MIN_API_VERSION.into(),
            git_commit: "berth".into(),
            go_version: "rust".into(),
            os: "linux".into(),
            arch,
            kernel_version: kernel,
            build_time: String::new(),
        }
    }

    pub async fn info(&self) -> SystemInfo {
        let (mut running, mut stopped) = (0, 0);
        let all: Vec<Arc<Container>> = self.containers.lock().unwrap().values().cloned().collect();
        for c in &all {
            if c.running() {
                running += 1
            } else {
                stopped += 1
            }
        }
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let mem_total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .next()
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|k| k.parse::<i64>().ok())
            })
            .unwrap_or(0)
            * 1024;
        let os = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix("PRETTY_NAME=")
                        .map(|v| v.trim_matches('"').to_string())
                })
            })
            .unwrap_or_default();
        let runtimes: serde_json::Map<String, serde_json::Value> = self
            .config
            .runtimes
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::json!({"path": v})))
            .collect();
        SystemInfo {
            id: String::new(),
            containers: all.len() as i64,
            containers_running: running,
            containers_stopped: stopped,
            images: self.images.count() as i64,
            driver: "overlay2".into(),
            driver_status: vec![vec!["Backing Filesystem".into(), "extfs".into()]],
            memory_limit: true,
            swap_limit: true,
            cpu_cfs_period: true,
            cpu_cfs_quota: true,
            cpu_shares: true,
            cpu_set: true,
            pids_limit: true,
            ipv4_forwarding: true,
            logging_driver: self.config.log_driver.clone(),
            cgroup_driver: "cgroupfs".into(),
            cgroup_version: if v2 { "2" } else { "1" }.into(),
            kernel_version: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .into(),
            operating_system: os,
            os_version: String::new(),
            os_type: "linux".into(),
            architecture: std::env::consts::ARCH.into(),
            ncpu: std::thread::available_parallelism()
                .map(|n| n.get() as i64)
                .unwrap_or(1),
            mem_total,
            docker_root_dir: self.config.data_root.display().to_string(),
            name: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default(),
            server_version: env!("CARGO_PKG_VERSION").into(),
            runtimes: serde_json::Value::Object(runtimes),
            default_runtime: self.config.default_runtime.clone(),
            live_restore_enabled: self.config.live_restore,
            isolation: String::new(),
            init_binary: self.config.init_path.display().to_string(),
            security_options: vec!["name=seccomp,profile=builtin".into()],
            system_time: now_rfc3339(),
            ..Default::default()
        }
    }

    // ---- images
    fn images_in_use(&self) -> Vec<String> {
        self.containers
            .lock()
            .unwrap()
            .values()
            .map(|c| c.rec.lock().unwrap().image_id.clone())
            .collect()
    }

    pub async fn image_list(
        &self,
        all: bool,
        filters: Filters,
        digests: bool,
    ) -> Result<Vec<ImageSummary>> {
        let _ = digests;
        for k in filters.keys() {
            if !["dangling", "reference", "label", "before", "since"].contains(&k.as_str()) {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filter '{k}'"
                )));
            }
        }
        let images = self.images.clone();
        let mut list = blocking(move || Ok(images.list(all)?)).await?;
        let in_use = self.images_in_use();
        for i in &mut list {
            i.containers = in_use.iter().filter(|id| **id == i.id).count() as i64;
        }
        if let Some(d) = filters.get("dangling") {
            let want = match d.first().map(|s| s.as_str()) {
                Some("true") | Some("1") => true,
                Some("false") | Some("0") => false,
                Some(v) => {
                    return Err(EngineError::InvalidArgument(format!(
                        "Invalid filter 'dangling={v}'"
                    )))
                }
                None => true,
            };
            list.retain(|i| i.repo_tags.is_empty() == want);
        }
        if let Some(refs) = filters.get("reference") {
            list.retain(|i| {
                i.repo_tags
                    .iter()
                    .any(|t| refs.iter().any(|r| reference_matches(r, t)))
            });
            for i in &mut list {
                i.repo_tags
                    .retain(|t| refs.iter().any(|r| reference_matches(r, t)));
            }
        }
        if let Some(labels) = filters.get("label") {
            list.retain(|i| labels.iter().all(|l| label_matches(l, &i.labels)));
        }
        Ok(list)
    }

    pub async fn image_inspect(&self, name: &str) -> Result<ImageInspect> {
        let (images, name) = (self.images.clone(), name.to_string());
        blocking(move || Ok(images.inspect(&name)?)).await
    }

    pub async fn image_history(&self, name: &str) -> Result<Vec<HistoryItem>> {
        let (images, name) = (self.images.clone(), name.to_string());
        blocking(move || Ok(images.history(&name)?)).await
    }

    /// `repo` may hold a tag (`repo:tag`); `tag` empty means `latest` unless `repo` has one.
    pub async fn image_tag(&self, name: &str, repo: &str, tag: &str) -> Result<()> {
        if repo.is_empty() {
            return Err(EngineError::InvalidArgument(
                "repository name must have at least one component".into(),
            ));
        }
        let target = if tag.is_empty() {
            repo.to_string()
        } else {
            format!("{repo}:{tag}")
        };
        let (images, name, t) = (self.images.clone(), name.to_string(), target.clone());
        let id = blocking(move || {
            images.tag(&name, &t)?;
            Ok(images.resolve(&t)?.id)
        })
        .await?;
        let target = berth_image::Reference::parse(&target)
            .map(|r| r.familiar())
            .unwrap_or(target);
        self.event("image", "tag", &id, &[("name", target)]);
        Ok(())
    }

    pub async fn image_remove(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> Result<Vec<ImageDeleteItem>> {
        let _ = noprune;
        let in_use = self.images_in_use();
        let (images, name) = (self.images.clone(), name.to_string());
        let items =
            blocking(
                move || Ok(images.remove(&name, force, &|id| in_use.iter().any(|u| u == id))?),
            )
            .await?;
        self.image_delete_events(&items);
        Ok(items)
    }

    fn image_delete_events(&self, items: &[ImageDeleteItem]) {
        for it in items {
            if let Some(u) = &it.untagged {
                self.event("image", "untag", u, &[("name", u.clone())]);
            }
            if let Some(d) = &it.deleted {
                self.event("image", "delete", d, &[("name", d.clone())]);
            }
        }
    }

    pub async fn image_prune(&self, filters: Filters) -> Result<ImagePruneResponse> {
        let dangling_only = !matches!(
            filters
                .get("dangling")
                .and_then(|v| v.first())
                .map(|s| s.as_str()),
            Some("false") | Some("0")
        );
        let in_use = self.images_in_use();
        let images = self.images.clone();
        let resp =
            blocking(
                move || Ok(images.prune(dangling_only, &|id| in_use.iter().any(|u| u == id))?),
            )
            .await?;
        self.image_delete_events(resp.images_deleted.as_deref().unwrap_or_default());
        Ok(resp)
    }

    /// Loads an archive; returns the lines to report.
    pub async fn image_load(&self, archive: File) -> Result<Vec<String>> {
        let images = self.images.clone();
        let loaded = blocking(move || {
            let mut f = archive;
            Ok(images.load(&mut f)?)
        })
        .await?;
        let mut lines = Vec::new();
        for l in loaded {
            let name = l.tags.first().cloned().unwrap_or_else(|| l.id.clone());
            self.event("image", "load", &l.id, &[("name", name)]);
            if l.tags.is_empty() {
                lines.push(format!("Loaded image ID: {}", l.id));
            }
            for t in l.tags {
                lines.push(format!("Loaded image: {t}"));
            }
        }
        Ok(lines)
    }

    /// Saves `names` into an anonymous temporary file, rewound, for the caller to stream.
    pub async fn image_save(&self, names: Vec<String>) -> Result<File> {
        for n in &names {
            self.event("image", "save", n, &[("name", n.clone())]);
        }
        let images = self.images.clone();
        let tmpdir = self.config.data_root.join("tmp");
        blocking(move || {
            std::fs::create_dir_all(&tmpdir).map_err(internal("creating tmp"))?;
            let mut f =
                tempfile::tempfile_in(&tmpdir).map_err(internal("creating temporary file"))?;
            images.save(&names, &mut f)?;
            use std::io::Seek;
            f.rewind().map_err(internal("rewinding"))?;
            Ok(f)
        })
        .await
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
        let mut config = ContainerConfig::default();
        for ch in &changes {
            crate::changes::apply(&mut config, ch).map_err(EngineError::InvalidArgument)?;
        }
        let reference = if repo.is_empty() {
            None
        } else if tag.is_empty() {
            Some(repo.to_string())
        } else {
            Some(format!("{repo}:{tag}"))
        };
        let (images, message) = (self.images.clone(), message.to_string());
        let id = blocking(move || {
            let mut f = tarball;
            Ok(images.import(&mut f, reference.as_deref(), config, &message)?)
        })
        .await?;
        self.event("image", "import", &id, &[("name", id.clone())]);
        Ok(id)
    }

    // ---- containers
    /// Finds a container by full ID, name, or unique ID prefix.
    pub(crate) fn lookup(&self, key: &str) -> Result<Arc<Container>> {
        let map = self.containers.lock().unwrap();
        if let Some(c) = map.get(key) {
            return Ok(c.clone());
        }
        let name = format!("/{}", key.trim_start_matches('/'));
        if let Some(c) = map.values().find(|c| c.rec.lock().unwrap().name == name) {
            return Ok(c.clone());
        }
        if !key.is_empty() {
            let matches: Vec<&Arc<Container>> = map
                .iter()
                .filter(|(id, _)| id.starts_with(key))
                .map(|(_, c)| c)
                .collect();
            if matches.len() == 1 {
                return Ok(matches[0].clone());
            }
            if matches.len() > 1 {
                return Err(EngineError::InvalidArgument(format!(
                    "multiple IDs found with provided prefix: {key}"
                )));
            }
        }
        Err(EngineError::NotFound(format!("No such container: {key}")))
    }

    /// The path a shim runs `runtime` by (see `EngineConfig::shim_runtime_paths`).
    fn shim_runtime(&self, runtime: &Path) -> PathBuf {
        self.config
            .shim_runtime_paths
            .get(runtime)
            .cloned()
            .unwrap_or_else(|| runtime.to_path_buf())
    }

    fn runtime_path(&self, name: &str) -> Result<PathBuf> {
        let name = if name.is_empty() {
            self.config.default_runtime.as_str()
        } else {
            name
        };
        self.config.runtimes.get(name).cloned().ok_or_else(|| {
            EngineError::InvalidArgument(format!("unknown or invalid runtime name: {name}"))
        })
    }

    pub async fn container_create(
        &self,
        name: Option<String>,
        req: ContainerCreateRequest,
    ) -> Result<ContainerCreateResponse> {
        let ContainerCreateRequest {
            config: mut cfg,
            host_config: mut host,
            networking_config,
        } = req;
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                if !util::valid_name(&n) {
                    return Err(EngineError::InvalidArgument(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                format!("/{}", n.trim_start_matches('/'))
            }
            None => String::new(),
        };
        if cfg.image.is_empty() {
            return Err(EngineError::InvalidArgument(
                "config cannot be empty in order to create a container".into(),
            ));
        }
        let endpoints = networking_config
            .map(|n| n.endpoints_config)
            .unwrap_or_default();
        let networks = self.plan_networks(&mut host, &endpoints)?;
        if host.log_config.kind.is_empty() {
            host.log_config.kind = self.config.log_driver.clone();
        }
        if !["json-file", "local", "none"].contains(&host.log_config.kind.as_str()) {
            return Err(EngineError::InvalidArgument(format!(
                "logging driver {:?} is not supported",
                host.log_config.kind
            )));
        }
        crate::logs::rotation(&host.log_config).map_err(EngineError::InvalidArgument)?;
        crate::restart::validate(&host.restart_policy)?;
        if !host.restart_policy.name.is_empty()
            && host.restart_policy.name != "no"
            && host.auto_remove
        {
            return Err(EngineError::InvalidArgument(
                "conflicting options: cannot specify both --restart and --rm".into(),
            ));
        }
        let runtime_path = self.runtime_path(&host.runtime)?;
        if host.runtime.is_empty() {
            host.runtime = self.config.default_runtime.clone();
        }

        let image_name = cfg.image.clone();
        let images = self.images.clone();
        let img = blocking(move || Ok(images.resolve(&image_name)?)).await?;
        merge_image_config(&mut cfg, &img.config);
        let mut args: Vec<String> = cfg
            .entrypoint
            .0
            .iter()
            .chain(cfg.cmd.0.iter())
            .cloned()
            .collect();
        if args.is_empty() {
            return Err(EngineError::InvalidArgument("No command specified".into()));
        }
        let path = args.remove(0);

        let id = util::new_id();
        // Validate the whole runtime spec now: bad input is refused before anything is made.
        let probe_user = user::ResolvedUser::default();
        let hard = rlimit_hard;
        spec::build(&spec::SpecInput {
            id: &id,
            netns_path: None,
            config: &cfg,
            host: &host,
            rootfs: Path::new("/"),
            args: vec![path.clone()],
            user: probe_user,
            etc_files: vec![],
            volumes: vec![],
            init_path: None,
            default_ulimits: &self.config.default_ulimits,
            rlimit_hard: &hard,
            kernel: self.kernel,
            cap_bounding: self.cap_bounding,
        })
        .map_err(EngineError::InvalidArgument)?;

        let name = if name.is_empty() {
            self.reserve_random_name()
        } else {
            let mut reserved = self.reserved_names.lock().unwrap();
            if let Ok(other) = self.lookup(&name) {
                if other.name() == name {
                    return Err(name_conflict(&name, &other.id));
                }
            }
            if reserved.contains(&name) {
                return Err(name_conflict(&name, "(being created)"));
            }
            reserved.push(name.clone());
            name
        };
        let result = match self.create_volumes(&cfg, &host) {
            Ok((volumes, made)) => {
                let r = self
                    .create_on_disk(
                        &id,
                        &name,
                        &path,
                        args,
                        cfg,
                        host,
                        img.id.clone(),
                        runtime_path,
                        networks,
                        volumes,
                    )
                    .await;
                if r.is_err() {
                    self.remove_volumes_quietly(&made);
                }
                r
            }
            Err(e) => Err(e),
        };
        self.reserved_names.lock().unwrap().retain(|n| *n != name);
        result?;
        Ok(ContainerCreateResponse {
            id,
            warnings: vec![],
        })
    }

    /// Reserves a random name in use by no container and by no create in flight; after a few
    /// collisions a digit is appended, as dockerd does.
    fn reserve_random_name(&self) -> String {
        let mut reserved = self.reserved_names.lock().unwrap();
        for attempt in 0.. {
            let mut n = format!("/{}", util::random_name());
            if attempt >= 5 {
                n.push_str(&(attempt % 10).to_string());
            }
            if !reserved.contains(&n) && self.lookup(&n).map(|c| c.name() != n).unwrap_or(true) {
                reserved.push(n.clone());
                return n;
            }
        }
        unreachable!("the loop returns")
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_on_disk(
        &self,
        id: &str,
        name: &str,
        path: &str,
        args: Vec<String>,
        cfg: ContainerConfig,
        host: HostConfig,
        image_id: String,
        runtime_path: PathBuf,
        networks: BTreeMap<String, EndpointSettings>,
        volumes: Vec<crate::VolumeMount>,
    ) -> Result<()> {
        let dir = self.container_dir(id);
        std::fs::create_dir_all(dir.join("rootfs"))
            .map_err(internal("creating container directory"))?;
        let (images, cid, iid) = (self.images.clone(), id.to_string(), image_id.clone());
        // An `--rm` container's layer goes with it: no fsyncs, a volatile overlay.
        let scratch = host.auto_remove;
        let made = blocking(move || {
            Ok(if scratch {
                images.create_scratch_rw_layer(&cid, &iid)?
            } else {
                images.create_rw_layer(&cid, &iid)?
            })
        });
        if let Err(e) = made.await {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        let log_path = if host.log_config.kind == "json-file" || host.log_config.kind == "local" {
            dir.join(format!("{id}-json.log")).display().to_string()
        } else {
            String::new()
        };
        let rec = ContainerRecord {
            id: id.to_string(),
            name: name.to_string(),
            created: now_rfc3339(),
            path: path.to_string(),
            args,
            config: cfg,
            host_config: host,
            image_id,
            version: crate::container::RECORD_VERSION,
            state: Lifecycle::created(),
            restart_count: 0,
            log_path,
            runtime_path,
            networks,
            volumes,
            manually_stopped: false,
        };
        let c = Container::new(rec);
        if let Err(e) = self.persist(&c) {
            let _ = self.images.remove_rw_layer(id);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        self.containers
            .lock()
            .unwrap()
            .insert(id.to_string(), c.clone());
        self.container_event(&c, "create", &[]);
        Ok(())
    }

    pub async fn container_start(&self, key: &str) -> Result<()> {
        let c = self.lookup(key)?;
        let _op = c.op.lock().await;
        if c.removed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(EngineError::NotFound(format!("No such container: {key}")));
        }
        if c.running() {
            return Err(EngineError::NotModified("container already started".into()));
        }
        c.rec.lock().unwrap().manually_stopped = false;
        match self.start_locked(&c).await {
            Ok(()) => {
                self.container_event(&c, "start", &[]);
                self.start_health_monitor(&c);
                Ok(())
            }
            Err(e) => {
                if c.running() {
                    // The shim ran the container and will report its exit; finish() records it.
                    let rx = c.exits.subscribe();
                    self.wait_exit(&c, rx, Some(std::time::Duration::from_secs(10)))
                        .await;
                }
                let _ = sys::unmount(&self.rootfs(&c.id));
                if !c.running() {
                    self.release_volumes(&c.record());
                }
                let code = match &e {
                    EngineError::InvalidArgument(m) if m.contains("permission denied") => 126,
                    EngineError::InvalidArgument(_) => 127,
                    _ => 128,
                };
                let auto_remove = {
                    let mut r = c.rec.lock().unwrap();
                    let failed = Transition::StartFailed {
                        exit_code: code,
                        error: e.to_string(),
                    };
                    if let Err(illegal) = r.state.apply(failed) {
                        tracing::warn!("container {}: {illegal}", c.id);
                    }
                    r.host_config.auto_remove
                };
                let _ = self.persist(&c);
                // As dockerd: a failed start ends attach sessions and answers waiters.
                c.close_subscribers();
                c.notify_waiters(
                    false,
                    &WaitResponse {
                        status_code: code,
                        error: None,
                    },
                );
                if auto_remove {
                    let engine = self.arc();
                    let id = c.id.clone();
                    tokio::spawn(async move { engine.auto_remove(&id).await });
                }
                Err(e)
            }
        }
    }

    async fn start_locked(&self, c: &Arc<Container>) -> Result<()> {
        let rec = c.record();
        let id = rec.id.clone();
        let rootfs = self.rootfs(&id);
        // Root filesystem.
        let (images, cid) = (self.images.clone(), id.clone());
        let m = blocking(move || Ok(images.rw_layer_mount(&cid)?)).await?;
        std::fs::create_dir_all(&rootfs).map_err(internal("creating rootfs mount point"))?;
        if sys::is_mounted(&rootfs) {
            let _ = sys::unmount(&rootfs);
        }
        sys::mount_fs(&m.fstype, &m.source, &rootfs, &m.options)
            .map_err(internal("mounting container root filesystem"))?;
        // Identity and the per-container /etc files.
        let u = user::lookup_in_container(&rec.config.user, rootfs.clone()).await?;
        let dir = self.container_dir(&id);
        let host_net = rec.host_config.network_mode == "host";
        let hostname = spec::hostname(&id, &rec.config);
        let etc_files = self.write_etc_files(&dir, &hostname, host_net, &rec.host_config)?;
        let init_path = if rec.host_config.init == Some(true) {
            Some(self.config.init_path.as_path())
        } else {
            None
        };
        if let Some(p) = init_path {
            if !p.exists() {
                return Err(EngineError::Internal(format!(
                    "init binary {} not found",
                    p.display()
                )));
            }
        }
        let mut args = vec![rec.path.clone()];
        args.extend(rec.args.iter().cloned());
        let hard = rlimit_hard;
        let shared_netns = self.shared_netns(&rec.host_config.network_mode)?;
        let volume_binds = self.mount_volumes(&rec, &rootfs)?;
        let spec = spec::build(&spec::SpecInput {
            id: &id,
            netns_path: shared_netns.clone(),
            config: &rec.config,
            host: &rec.host_config,
            rootfs: &rootfs,
            args,
            user: u,
            etc_files,
            volumes: volume_binds,
            init_path,
            default_ulimits: &self.config.default_ulimits,
            rlimit_hard: &hard,
            kernel: self.kernel,
            cap_bounding: self.cap_bounding,
        })
        .map_err(EngineError::InvalidArgument)?;
        // Docker creates missing bind-mount sources (`-v /new/dir:/x`).
        for b in &rec.host_config.binds {
            if let Ok(b) = spec::parse_bind(b) {
                if !Path::new(&b.source).exists() {
                    std::fs::create_dir_all(&b.source)
                        .map_err(internal("creating bind mount source"))?;
                }
            }
        }
        let bundle = self.bundle_dir(&id);
        std::fs::create_dir_all(&bundle).map_err(internal("creating bundle"))?;
        std::fs::write(bundle.join("config.json"), spec::to_json(&spec))
            .map_err(internal("writing config.json"))?;
        // The shim.
        let sdir = self.shim_dir(&id);
        // The previous run's shim reports the exit before it runs `runtime delete` and removes
        // its socket; a restart must not start the next one under its feet.
        shim_client::wait_shim_gone(&sdir, std::time::Duration::from_secs(10)).await;
        let _ = std::fs::remove_dir_all(&sdir);
        let launch = ShimLaunch {
            shim_path: self.config.shim_path.clone(),
            id: id.clone(),
            state_dir: sdir.clone(),
            runtime: self.shim_runtime(&rec.runtime_path),
            runtime_root: self.runc_root(),
            bundle: Some(bundle),
            exec_process: None,
            log_path: if rec.log_path.is_empty() {
                None
            } else {
                Some(PathBuf::from(&rec.log_path))
            },
            log_rotation: crate::logs::rotation(&rec.host_config.log_config)
                .ok()
                .flatten(),
            tty: rec.config.tty,
            stdin: rec.config.open_stdin,
            cgroup: Some(format!("/berth/{id}")),
        };
        let pid = shim_client::launch(&launch).await?;
        // Joining a network brings `lo` up too.
        if !host_net && shared_netns.is_none() && rec.networks.is_empty() && pid > 0 {
            if let Err(e) = sys::loopback_up(pid as i32) {
                tracing::warn!("bringing up lo in {id}: {e}");
            }
        }
        if let Err(e) = self.connect_container(c, pid).await {
            self.runtime_delete(&rec.runtime_path, &id).await;
            return Err(e);
        }
        let stream = match shim_client::connect(&sdir).await {
            Ok(s) => s,
            Err(e) => {
                self.disconnect_container(&id).await;
                self.runtime_delete(&rec.runtime_path, &id).await;
                return Err(EngineError::Internal(format!("connecting to shim: {e}")));
            }
        };
        // Running from here on: the container may exit before START's reply is read, and
        // finish() must then see it as running to record that exit.
        {
            let started = c.apply(Transition::Start {
                pid,
                at: now_rfc3339(),
            });
            if let Err(illegal) = started {
                self.disconnect_container(&id).await;
                self.runtime_delete(&rec.runtime_path, &id).await;
                return Err(EngineError::Conflict(illegal.to_string()));
            }
        }
        let (tx, rx) = oneshot::channel();
        *c.start_reply.lock().unwrap() = Some(tx);
        self.spawn_shim_reader(c.clone(), stream, Some(Frame::Start));
        match rx.await {
            Ok(Ok(())) => {}
            Ok(Err(m)) => return Err(shim_client::classify_start_error(m)),
            Err(_) if !c.running() => {}
            Err(_) => {
                return Err(EngineError::Internal(
                    "shim exited before starting the container".into(),
                ))
            }
        }
        self.persist(c)?;
        Ok(())
    }

    fn write_etc_files(
        &self,
        dir: &Path,
        hostname: &str,
        host_net: bool,
        host: &HostConfig,
    ) -> Result<Vec<(PathBuf, &'static str)>> {
        let hosts_path = dir.join("hosts");
        let hn_path = dir.join("hostname");
        let resolv_path = dir.join("resolv.conf");
        let mut hosts = if host_net {
            std::fs::read_to_string("/etc/hosts").unwrap_or_default()
        } else {
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
                .to_string()
        };
        for h in &host.extra_hosts {
            if let Some((name, ip)) = h.split_once(':') {
                hosts.push_str(&format!("{ip}\t{name}\n"));
            }
        }
        std::fs::write(&hosts_path, hosts).map_err(internal("writing hosts"))?;
        std::fs::write(&hn_path, format!("{hostname}\n")).map_err(internal("writing hostname"))?;
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let want = crate::etc::DnsSettings {
            servers: &host.dns,
            search: &host.dns_search,
            options: &host.dns_options,
        };
        let resolv = if host_net
            && host.dns.is_empty()
            && host.dns_search.is_empty()
            && host.dns_options.is_empty()
        {
            host_resolv // the host's own resolvers, loopback ones included, work in its namespace
        } else {
            crate::etc::resolv_conf(&host_resolv, &want, false)
        };
        std::fs::write(&resolv_path, resolv).map_err(internal("writing resolv.conf"))?;
        Ok(vec![
            (hn_path, "/etc/hostname"),
            (hosts_path, "/etc/hosts"),
            (resolv_path, "/etc/resolv.conf"),
        ])
    }

    async fn runtime_delete(&self, runtime: &Path, id: &str) {
        let _ = tokio::process::Command::new(runtime)
            .arg("--root")
            .arg(self.runc_root())
            .args(["delete", "--force", id])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await;
    }

    /// Runs `runtime --root R ARGS…` for container `c`; the runtime's stderr is the error.
    /// `runtime update --resources -` with the OCI `linux.resources` JSON.
    pub(crate) async fn runtime_update(
        &self,
        c: &Container,
        resources: &serde_json::Value,
    ) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        let runtime = c.rec.lock().unwrap().runtime_path.clone();
        let mut child = tokio::process::Command::new(&runtime)
            .arg("--root")
            .arg(self.runc_root())
            .args(["update", "--resources", "-", &c.id])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| EngineError::Internal(format!("running {}: {e}", runtime.display())))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin
                .write_all(&serde_json::to_vec(resources).unwrap_or_default())
                .await;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| EngineError::Internal(format!("running {}: {e}", runtime.display())))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(EngineError::Internal(format!(
                "Cannot update container {}: {}",
                c.id,
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    async fn runtime_command(&self, c: &Container, args: &[&str]) -> Result<()> {
        let runtime = c.rec.lock().unwrap().runtime_path.clone();
        let out = tokio::process::Command::new(&runtime)
            .arg("--root")
            .arg(self.runc_root())
            .args(args)
            .output()
            .await
            .map_err(|e| EngineError::Internal(format!("running {}: {e}", runtime.display())))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(EngineError::Internal(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ))
        }
    }

    /// `docker pause`: freezes every process of the container (the runtime's freezer).
    pub async fn container_pause(&self, key: &str) -> Result<()> {
        let c = self.lookup(key)?;
        let _op = c.op.lock().await;
        let (running, paused) = {
            let r = c.rec.lock().unwrap();
            (r.state.running(), r.state.paused())
        };
        if !running {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        if paused {
            return Err(EngineError::Conflict(format!(
                "Container {} is already paused",
                c.id
            )));
        }
        self.runtime_command(&c, &["pause", &c.id]).await?;
        c.apply(Transition::Pause)
            .map_err(|e| EngineError::Conflict(e.to_string()))?;
        self.container_event(&c, "pause", &[]);
        self.persist(&c)
    }

    /// `docker unpause`.
    pub async fn container_unpause(&self, key: &str) -> Result<()> {
        let c = self.lookup(key)?;
        let _op = c.op.lock().await;
        if c.status() != Status::Paused {
            return Err(EngineError::Conflict(format!(
                "Container {} is not paused",
                c.id
            )));
        }
        self.resume_if_paused(&c).await?;
        self.container_event(&c, "unpause", &[]);
        Ok(())
    }

    /// Thaws a paused container (a frozen process cannot act on a signal).
    async fn resume_if_paused(&self, c: &Container) -> Result<()> {
        if c.status() != Status::Paused {
            return Ok(());
        }
        self.runtime_command(c, &["resume", &c.id]).await?;
        c.apply(Transition::Unpause)
            .map_err(|e| EngineError::Conflict(e.to_string()))?;
        self.persist(c)
    }

    async fn runtime_kill(&self, c: &Container, signal: i32) -> Result<()> {
        self.resume_if_paused(c).await?;
        let runtime = c.rec.lock().unwrap().runtime_path.clone();
        let out = tokio::process::Command::new(&runtime)
            .arg("--root")
            .arg(self.runc_root())
            .args(["kill", &c.id, &signal.to_string()])
            .output()
            .await
            .map_err(|e| EngineError::Internal(format!("running {}: {e}", runtime.display())))?;
        if !out.status.success() {
            let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if !c.running() || msg.contains("not running") || msg.contains("does not exist") {
                return Ok(());
            }
            return Err(EngineError::Internal(format!(
                "Cannot kill container: {}: {msg}",
                c.id
            )));
        }
        Ok(())
    }

    /// Reads frames from a container's shim until it goes away.
    fn spawn_shim_reader(
        &self,
        c: Arc<Container>,
        stream: tokio::net::UnixStream,
        first: Option<ShimFrame>,
    ) {
        let engine = self.arc();
        tokio::spawn(async move {
            let (mut r, w) = stream.into_split();
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            tokio::spawn(shim_client::pump_to_shim(
                w,
                c.to_shim_rx.clone(),
                first,
                stop_rx,
            ));
            let mut exit: Option<ExitRecord> = None;
            while let Some(frame) = shim_client::next_frame(&mut r, &c.id).await {
                match frame {
                    Frame::Stdout(data) => c.publish(StreamKind::Stdout, data),
                    Frame::Stderr(data) => c.publish(StreamKind::Stderr, data),
                    Frame::Reply(res) => {
                        if let Some(tx) = c.start_reply.lock().unwrap().take() {
                            let _ = tx.send(res);
                        }
                    }
                    Frame::Exit(record) => {
                        exit = Some(record);
                        break;
                    }
                    other => tracing::debug!(
                        "ignoring a {:?} frame from the shim of {}",
                        other.kind(),
                        c.id
                    ),
                }
            }
            let _ = stop_tx.send(true);
            c.start_reply.lock().unwrap().take();
            let sdir = engine.shim_dir(&c.id);
            let exit = match exit {
                Some(e) => e,
                None => {
                    // The shim closed without an EXIT frame: give it a moment to write exit.json.
                    let mut found = None;
                    for _ in 0..50 {
                        if let Some(e) = shim_client::read_exit(&sdir) {
                            found = Some(e);
                            break;
                        }
                        if !shim_client::shim_alive(&sdir) {
                            break;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                    match found.or_else(|| shim_client::read_exit(&sdir)) {
                        Some(e) => e,
                        None if !c.running() => return,
                        None => ExitRecord {
                            exit_code: 255,
                            finished_at: now_rfc3339(),
                            oom_killed: false,
                        },
                    }
                }
            };
            engine.finish(&c, exit, true).await;
        });
    }

    /// Records a container's exit and cleans up after it.
    async fn finish(&self, c: &Arc<Container>, exit: ExitRecord, auto_remove_allowed: bool) {
        use std::sync::atomic::Ordering;
        if !c.running() || c.finishing.swap(true, Ordering::SeqCst) {
            return;
        }
        // Release what the container held before it reads as exited, as dockerd does: a
        // `stop` or `rm -f` that returns has its networks and rootfs released.
        c.close_subscribers();
        self.release_networks_of_exited(&c.id).await;
        let _ = sys::unmount(&self.rootfs(&c.id));
        self.release_volumes(&c.record());
        let exited = c.apply(Transition::Exit {
            exit_code: exit.exit_code,
            oom_killed: exit.oom_killed,
            at: if exit.finished_at.is_empty() {
                now_rfc3339()
            } else {
                exit.finished_at.clone()
            },
        });
        if let Err(illegal) = exited {
            // finish() runs only for a running container: nothing else can move it meanwhile.
            tracing::error!("container {}: {illegal}", c.id);
        }
        c.finishing.store(false, Ordering::SeqCst);
        // Published before anyone waiting on the exit wakes: `die` precedes `stop`.
        if exit.oom_killed {
            self.container_event(c, "oom", &[]);
        }
        let ran = {
            let r = c.rec.lock().unwrap();
            let started = util::parse_time(&r.state.started_at).unwrap_or(0.0);
            let finished = util::parse_time(&r.state.finished_at).unwrap_or(started);
            std::time::Duration::from_secs_f64((finished - started).max(0.0))
        };
        self.container_event(
            c,
            "die",
            &[
                ("exitCode", exit.exit_code.to_string()),
                ("execDuration", ran.as_secs().to_string()),
            ],
        );
        let _ = self.persist(c);
        c.exits.send_modify(|n| *n += 1);
        let resp = WaitResponse {
            status_code: exit.exit_code,
            error: None,
        };
        c.notify_waiters(false, &resp);
        if auto_remove_allowed && self.maybe_schedule_restart(c, ran) {
            return;
        }
        let auto_remove = c.rec.lock().unwrap().host_config.auto_remove
            && !c.restarting_by_user.load(Ordering::SeqCst);
        if auto_remove && auto_remove_allowed {
            let engine = self.arc();
            let id = c.id.clone();
            tokio::spawn(async move { engine.auto_remove(&id).await });
        }
    }

    /// Removes an `--rm` container and its anonymous volumes, as `docker run --rm` does once
    /// the container is done; a failure is logged (nobody waits on it).
    async fn auto_remove(&self, id: &str) {
        let opts = RemoveOptions {
            force: true,
            volumes: true,
            ..Default::default()
        };
        if let Err(e) = self.container_remove(id, opts).await {
            tracing::warn!("auto-removing {id}: {e}");
        }
    }

    /// Waits until the container's exit counter passes `seen`, or `timeout` elapses.
    async fn wait_exit(
        &self,
        c: &Container,
        mut rx: tokio::sync::watch::Receiver<u64>,
        timeout: Option<std::time::Duration>,
    ) -> bool {
        let fut = async {
            while c.running() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, fut).await.is_ok(),
            None => {
                fut.await;
                true
            }
        }
    }

    pub async fn container_stop(
        &self,
        key: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let c = self.lookup(key)?;
        if self.cancel_restart(&c) {
            return Ok(());
        }
        if !c.running() {
            return Err(EngineError::NotModified("container already stopped".into()));
        }
        self.mark_manually_stopped(&c);
        let (stop_signal, stop_timeout) = {
            let r = c.rec.lock().unwrap();
            (r.config.stop_signal.clone(), r.config.stop_timeout)
        };
        let sig_name = signal
            .filter(|s| !s.is_empty())
            .or(stop_signal)
            .unwrap_or_else(|| "SIGTERM".into());
        let sig = util::parse_signal(&sig_name)
            .ok_or_else(|| EngineError::InvalidArgument(format!("Invalid signal: {sig_name}")))?;
        let t = timeout.or(stop_timeout).unwrap_or(10);
        let rx = c.exits.subscribe();
        self.runtime_kill(&c, sig).await?;
        self.container_event(&c, "kill", &[("signal", sig.to_string())]);
        let limit = if t < 0 {
            None
        } else {
            Some(std::time::Duration::from_secs(t as u64))
        };
        if !self.wait_exit(&c, rx.clone(), limit).await {
            self.runtime_kill(&c, 9).await?;
            if !self
                .wait_exit(&c, rx, Some(std::time::Duration::from_secs(30)))
                .await
            {
                return Err(EngineError::Internal(format!(
                    "container {} did not exit after SIGKILL",
                    c.id
                )));
            }
        }
        self.container_event(&c, "stop", &[]);
        Ok(())
    }

    /// A container waiting out its restart back-off stays stopped; `true` if it was one.
    fn cancel_restart(&self, c: &Container) -> bool {
        let mut r = c.rec.lock().unwrap();
        if r.state.apply(Transition::CancelRestart).is_err() {
            return false;
        }
        r.manually_stopped = true;
        drop(r);
        let _ = self.persist(c);
        true
    }

    fn mark_manually_stopped(&self, c: &Container) {
        c.rec.lock().unwrap().manually_stopped = true;
        let _ = self.persist(c);
    }

    /// A start made by the restart policy (back-off over, or the daemon started).
    pub(crate) async fn start_by_policy(&self, c: &Arc<Container>) -> Result<()> {
        match self.container_start(&c.id).await {
            Ok(()) | Err(EngineError::NotModified(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn container_restart(
        &self,
        key: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<()> {
        use std::sync::atomic::Ordering;
        let c = self.lookup(key)?;
        c.restarting_by_user.store(true, Ordering::SeqCst);
        let restarted = async {
            match self.container_stop(key, signal, timeout).await {
                Ok(()) | Err(EngineError::NotModified(_)) => {}
                Err(e) => return Err(e),
            }
            self.container_start(key).await
        }
        .await;
        c.restarting_by_user.store(false, Ordering::SeqCst);
        restarted?;
        self.container_event(&c, "restart", &[]);
        Ok(())
    }

    /// `signal`: name (`KILL`, `SIGKILL`) or number; default KILL. Conflict when not running.
    pub async fn container_kill(&self, key: &str, signal: Option<String>) -> Result<()> {
        let c = self.lookup(key)?;
        let sig_name = signal
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "KILL".into());
        let sig = util::parse_signal(&sig_name)
            .ok_or_else(|| EngineError::InvalidArgument(format!("Invalid signal: {sig_name}")))?;
        if self.cancel_restart(&c) {
            return Ok(());
        }
        if !c.running() {
            return Err(EngineError::Conflict(format!(
                "Cannot kill container: {key}: Container {} is not running",
                c.id
            )));
        }
        self.mark_manually_stopped(&c);
        self.runtime_kill(&c, sig).await?;
        self.container_event(&c, "kill", &[("signal", sig.to_string())]);
        Ok(())
    }

    pub async fn container_remove(&self, key: &str, opts: RemoveOptions) -> Result<()> {
        let c = self.lookup(key)?;
        if c.status() == Status::Restarting {
            if !opts.force {
                return Err(EngineError::Conflict(format!(
                    "cannot remove container \"{}\": container is restarting: stop the container before removing or force remove",
                    c.name()
                )));
            }
            self.cancel_restart(&c);
        }
        if c.running() {
            if !opts.force {
                return Err(EngineError::Conflict(format!(
                    "cannot remove container \"{}\": container is running: stop the container before removing or force remove",
                    c.name()
                )));
            }
            let rx = c.exits.subscribe();
            self.runtime_kill(&c, 9).await?;
            if !self
                .wait_exit(&c, rx, Some(std::time::Duration::from_secs(30)))
                .await
            {
                return Err(EngineError::Internal(format!(
                    "could not kill container {}",
                    c.id
                )));
            }
        }
        let _op = c.op.lock().await;
        if c.removed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        if let Err(illegal) = c.apply(Transition::Remove) {
            c.removed.store(false, std::sync::atomic::Ordering::SeqCst);
            return Err(EngineError::Conflict(illegal.to_string()));
        }
        let id = c.id.clone();
        let rootfs = self.rootfs(&id);
        let _ = sys::unmount(&rootfs);
        let runtime = c.rec.lock().unwrap().runtime_path.clone();
        let (images, cid) = (self.images.clone(), id.clone());
        let remove_layer = blocking(move || Ok(images.remove_rw_layer(&cid)?));
        let delete_runtime_state = async {
            // The shim runs `runtime delete` before it reports the exit; the state is left only
            // when the shim died first.
            if self.runc_root().join(&id).exists() {
                self.runtime_delete(&runtime, &id).await;
            }
        };
        let (layer_removed, ()) = tokio::join!(remove_layer, delete_runtime_state);
        if let Err(e) = layer_removed {
            // As dockerd: a removal that failed half way leaves the container dead; another
            // removal may try again.
            let _ = c.apply(Transition::RemoveFailed);
            let _ = self.persist(&c);
            c.removed.store(false, std::sync::atomic::Ordering::SeqCst);
            return Err(e);
        }
        let _ = std::fs::remove_dir_all(self.container_dir(&id));
        let _ = std::fs::remove_dir_all(self.bundle_dir(&id));
        let _ = std::fs::remove_dir_all(self.shim_dir(&id));
        self.containers.lock().unwrap().remove(&id);
        if opts.volumes {
            self.remove_anonymous_volumes(&c.record());
        }
        self.container_event(&c, "destroy", &[]);
        self.execs
            .lock()
            .unwrap()
            .retain(|_, e| e.container_id != id);
        let code = c.rec.lock().unwrap().state.exit_code;
        c.notify_waiters(
            true,
            &WaitResponse {
                status_code: code,
                error: None,
            },
        );
        Ok(())
    }

    fn summary(&self, c: &Container) -> ContainerSummary {
        let r = c.rec.lock().unwrap();
        let now = chrono::Utc::now().timestamp();
        let (net_settings, ports) = self.network_settings(&r);
        let status = if r.state.status == Status::Restarting {
            format!(
                "Restarting ({}) {} ago",
                r.state.exit_code,
                util::human_duration(
                    now - util::parse_time(&r.state.finished_at).unwrap_or(now as f64) as i64
                )
            )
        } else if r.state.running() {
            format!(
                "Up {}{}",
                util::human_duration(
                    now - util::parse_time(&r.state.started_at).unwrap_or(now as f64) as i64
                ),
                if r.state.status == Status::Paused {
                    " (Paused)"
                } else {
                    match r.state.health.as_ref().map(|h| h.status.as_str()) {
                        Some("starting") => " (health: starting)",
                        Some("healthy") => " (healthy)",
                        Some("unhealthy") => " (unhealthy)",
                        _ => "",
                    }
                }
            )
        } else if r.state.status == Status::Exited || r.state.finished_at != ZERO_TIME {
            format!(
                "Exited ({}) {} ago",
                r.state.exit_code,
                util::human_duration(
                    now - util::parse_time(&r.state.finished_at).unwrap_or(now as f64) as i64
                )
            )
        } else {
            "Created".into()
        };
        let mut command = r.path.clone();
        for a in &r.args {
            command.push(' ');
            command.push_str(a);
        }
        ContainerSummary {
            id: r.id.clone(),
            names: vec![r.name.clone()],
            image: r.config.image.clone(),
            image_id: r.image_id.clone(),
            command,
            created: util::parse_time(&r.created).unwrap_or(0.0) as i64,
            ports,
            labels: r.config.labels.clone(),
            state: r.state.status.as_str().into(),
            status,
            host_config: serde_json::json!({"NetworkMode": r.host_config.network_mode}),
            network_settings: serde_json::json!({"Networks": net_settings["Networks"]}),
            mounts: self.mount_points(&r),
            ..Default::default()
        }
    }

    pub async fn container_list(&self, opts: ListOptions) -> Result<Vec<ContainerSummary>> {
        for k in opts.filters.keys() {
            if ![
                "status",
                "name",
                "label",
                "ancestor",
                "id",
                "exited",
                "before",
                "since",
                "network",
                "volume",
                "health",
                "isolation",
                "is-task",
            ]
            .contains(&k.as_str())
            {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filter '{k}'"
                )));
            }
        }
        if let Some(st) = opts.filters.get("status") {
            for s in st {
                if ![
                    "created",
                    "restarting",
                    "running",
                    "removing",
                    "paused",
                    "exited",
                    "dead",
                ]
                .contains(&s.as_str())
                {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid filter 'status={s}'"
                    )));
                }
            }
        }
        let mut all: Vec<Arc<Container>> =
            self.containers.lock().unwrap().values().cloned().collect();
        all.sort_by_key(|c| std::cmp::Reverse(c.rec.lock().unwrap().created.clone()));
        let show_all = opts.all
            || opts.limit.is_some()
            || opts.filters.contains_key("status")
            || opts.filters.contains_key("exited");
        let mut ancestors: Vec<String> = Vec::new();
        if let Some(a) = opts.filters.get("ancestor") {
            for name in a {
                let (images, n) = (self.images.clone(), name.clone());
                if let Ok(img) = blocking(move || Ok(images.resolve(&n)?)).await {
                    ancestors.push(img.id);
                }
            }
        }
        let mut out = Vec::new();
        for c in all {
            let r = c.record();
            if !show_all && !r.state.running() {
                continue;
            }
            let f = &opts.filters;
            if let Some(v) = f.get("status") {
                if !v.iter().any(|s| s == r.state.status.as_str()) {
                    continue;
                }
            }
            if let Some(v) = f.get("name") {
                if !v.iter().any(|n| {
                    r.name
                        .trim_start_matches('/')
                        .contains(n.trim_start_matches('/'))
                }) {
                    continue;
                }
            }
            if let Some(v) = f.get("id") {
                if !v.iter().any(|p| r.id.starts_with(p.as_str())) {
                    continue;
                }
            }
            if let Some(v) = f.get("label") {
                if !v.iter().all(|l| label_matches(l, &r.config.labels)) {
                    continue;
                }
            }
            if let Some(v) = f.get("exited") {
                if r.state.running()
                    || r.state.status != Status::Exited
                    || !v
                        .iter()
                        .any(|e| e.parse::<i64>().ok() == Some(r.state.exit_code))
                {
                    continue;
                }
            }
            if f.contains_key("ancestor")
                && !ancestors.contains(&r.image_id)
                && !f["ancestor"].contains(&r.config.image)
            {
                continue;
            }
            out.push(self.summary(&c));
        }
        if let Some(n) = opts.limit {
            out.truncate(n);
        }
        Ok(out)
    }

    pub async fn container_inspect(&self, key: &str) -> Result<ContainerInspect> {
        let c = self.lookup(key)?;
        let r = c.record();
        let dir = self.container_dir(&r.id);
        let execs: Vec<String> = self
            .execs
            .lock()
            .unwrap()
            .values()
            .filter(|e| e.container_id == r.id)
            .map(|e| e.id.clone())
            .collect();
        let (images, cid) = (self.images.clone(), r.id.clone());
        let m = blocking(move || Ok(images.rw_layer_mount(&cid)?))
            .await
            .ok();
        let mut gd = BTreeMap::new();
        if let Some(m) = m {
            for o in m.options {
                if let Some((k, v)) = o.split_once('=') {
                    let key = match k {
                        "lowerdir" => "LowerDir",
                        "upperdir" => "UpperDir",
                        "workdir" => "WorkDir",
                        _ => continue,
                    };
                    gd.insert(key.to_string(), v.to_string());
                }
            }
            gd.insert("MergedDir".into(), self.rootfs(&r.id).display().to_string());
        }
        let state = r.state.to_wire();
        Ok(ContainerInspect {
            id: r.id.clone(),
            created: r.created.clone(),
            path: r.path.clone(),
            args: r.args.clone(),
            state,
            image: r.image_id.clone(),
            resolv_conf_path: dir.join("resolv.conf").display().to_string(),
            hostname_path: dir.join("hostname").display().to_string(),
            hosts_path: dir.join("hosts").display().to_string(),
            log_path: r.log_path.clone(),
            name: r.name.clone(),
            restart_count: r.restart_count,
            driver: "overlay2".into(),
            platform: "linux".into(),
            exec_ids: if execs.is_empty() { None } else { Some(execs) },
            host_config: r.host_config.clone(),
            graph_driver: GraphDriver {
                name: "overlay2".into(),
                data: gd,
            },
            mounts: self.mount_points(&r),
            config: r.config.clone(),
            network_settings: self.network_settings(&r).0,
            ..Default::default()
        })
    }

    /// Validates at once (NotFound); the receiver yields when the condition is met.
    pub async fn container_wait(
        &self,
        key: &str,
        condition: WaitCondition,
    ) -> Result<oneshot::Receiver<WaitResponse>> {
        let c = self.lookup(key)?;
        let (tx, rx) = oneshot::channel();
        let running = c.running();
        if condition == WaitCondition::NotRunning && !running {
            let code = c.rec.lock().unwrap().state.exit_code;
            let _ = tx.send(WaitResponse {
                status_code: code,
                error: None,
            });
        } else {
            c.waiters.lock().unwrap().push((condition, tx));
        }
        Ok(rx)
    }

    /// Attaches; works before `start` (output produced after start is delivered).
    pub async fn container_attach(&self, key: &str, opts: AttachOptions) -> Result<IoSession> {
        let c = self.lookup(key)?;
        let (tty, open_stdin, stdin_once, log_path) = {
            let r = c.rec.lock().unwrap();
            (
                r.config.tty,
                r.config.open_stdin,
                r.config.stdin_once,
                r.log_path.clone(),
            )
        };
        let (tx, rx) = mpsc::channel(1024);
        if opts.logs && !log_path.is_empty() {
            let lo = LogsOptions {
                stdout: opts.stdout,
                stderr: opts.stderr,
                ..Default::default()
            };
            let (entries, _) =
                logs::read_all(Path::new(&log_path), &lo).map_err(internal("reading logs"))?;
            for e in entries {
                let _ = tx.try_send(Output {
                    stream: e.stream,
                    data: e.data,
                });
            }
        }
        if opts.stream && (c.running() || !opts.logs) {
            c.subscribers.lock().unwrap().push(Subscriber {
                tx,
                stdout: opts.stdout,
                stderr: opts.stderr,
            });
        }
        let input = if opts.stdin && open_stdin && opts.stream {
            Some(input_to_shim(c.to_shim.clone(), stdin_once))
        } else {
            None
        };
        Ok(IoSession {
            tty,
            output: rx,
            input,
        })
    }

    /// Log entries; with `follow` the channel stays open until the container stops.
    pub async fn container_logs(
        &self,
        key: &str,
        opts: LogsOptions,
    ) -> Result<(bool, mpsc::Receiver<LogEntry>)> {
        let c = self.lookup(key)?;
        let (tty, log_path, driver) = {
            let r = c.rec.lock().unwrap();
            (
                r.config.tty,
                r.log_path.clone(),
                r.host_config.log_config.kind.clone(),
            )
        };
        if driver == "none" || log_path.is_empty() {
            return Err(EngineError::InvalidArgument(format!(
                "configured logging driver does not support reading: \"{driver}\""
            )));
        }
        let path = PathBuf::from(log_path);
        let (tx, rx) = mpsc::channel(256);
        let o = opts.clone();
        let p = path.clone();
        let (entries, offset) =
            blocking(move || logs::read_all(&p, &o).map_err(internal("reading logs"))).await?;
        let mut exits = c.exits.subscribe();
        tokio::spawn(async move {
            for e in entries {
                if tx.send(e).await.is_err() {
                    return;
                }
            }
            if !opts.follow {
                return;
            }
            let mut offset = offset;
            loop {
                let running = c.running();
                let (p, o) = (path.clone(), opts.clone());
                let Ok(Ok((entries, off))) =
                    tokio::task::spawn_blocking(move || logs::read_from(&p, offset, &o)).await
                else {
                    return;
                };
                offset = off;
                for e in entries {
                    if opts
                        .until
                        .is_some_and(|u| util::parse_time(&e.time).unwrap_or(0.0) > u)
                    {
                        return;
                    }
                    if tx.send(e).await.is_err() {
                        return;
                    }
                }
                if !running || c.removed.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                tokio::select! {
                    _ = exits.changed() => {}
                    _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                    _ = tx.closed() => return,
                }
            }
        });
        Ok((tty, rx))
    }

    pub async fn container_resize(&self, key: &str, rows: u16, cols: u16) -> Result<()> {
        let c = self.lookup(key)?;
        if !c.running() {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let _ = c.to_shim.send(Frame::Resize { rows, cols });
        Ok(())
    }

    // ---- exec
    pub async fn exec_create(&self, key: &str, cfg: ExecConfig) -> Result<String> {
        let c = self.lookup(key)?;
        if !c.running() {
            return Err(EngineError::Conflict(format!(
                "container {} is not running",
                c.id
            )));
        }
        if cfg.cmd.is_empty() {
            return Err(EngineError::InvalidArgument(
                "No exec command specified".into(),
            ));
        }
        let id = util::new_id();
        self.container_event(
            &c,
            &format!("exec_create: {}", cfg.cmd.join(" ")),
            &[("execID", id.clone())],
        );
        let e = Arc::new(Exec {
            id: id.clone(),
            container_id: c.id.clone(),
            config: cfg,
            state: Mutex::new(ExecState::default()),
        });
        self.execs.lock().unwrap().insert(id.clone(), e);
        Ok(id)
    }

    /// Drops an exec record (health probes do not keep theirs).
    pub(crate) fn forget_exec(&self, id: &str) {
        self.execs.lock().unwrap().remove(id);
    }

    fn exec_lookup(&self, id: &str) -> Result<Arc<Exec>> {
        self.execs
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::NotFound(format!("No such exec instance: {id}")))
    }

    /// Starts an exec. With `detach`, the returned session's output is already closed.
    pub async fn exec_start(&self, exec_id: &str, detach: bool) -> Result<IoSession> {
        let e = self.exec_lookup(exec_id)?;
        let c = self.lookup(&e.container_id)?;
        {
            let mut st = e.state.lock().unwrap();
            if st.started {
                return Err(EngineError::Conflict(format!(
                    "Error: Exec command {exec_id} has already run"
                )));
            }
            st.started = true;
        }
        let launched = self.exec_launch(&e, &c, detach).await;
        if launched.is_err() {
            // As dockerd: an exec that could not start reads as exited with 126, so that
            // `docker exec` (which inspects the exit code after the stream) fails.
            let mut st = e.state.lock().unwrap();
            st.running = false;
            st.exit_code.get_or_insert(126);
        }
        launched
    }

    async fn exec_launch(
        &self,
        e: &Arc<Exec>,
        c: &Arc<Container>,
        detach: bool,
    ) -> Result<IoSession> {
        let exec_id = e.id.as_str();
        if !c.running() {
            return Err(EngineError::Conflict(format!(
                "container {} is not running",
                c.id
            )));
        }
        let rec = c.record();
        self.container_event(
            c,
            &format!("exec_start: {}", e.config.cmd.join(" ")),
            &[("execID", e.id.clone())],
        );
        // The exec's process: the container's, with the exec's command, env, user and cwd.
        let base = std::fs::read(self.bundle_dir(&c.id).join("config.json"))
            .map_err(|e| format!("reading the container's bundle: {e}"))
            .and_then(|d| spec::bundle_process(&d))
            .map_err(EngineError::Internal)?;
        let cfg = &e.config;
        let user = match cfg.user.as_str() {
            "" => None,
            u => Some(user::lookup_in_container(u, self.rootfs(&c.id)).await?),
        };
        let input = spec::ExecProcessInput {
            config: cfg,
            user,
            cap_bounding: self.cap_bounding,
        };
        let process = spec::exec_process(&base, &input).map_err(EngineError::Internal)?;
        let sdir = self
            .config
            .exec_root
            .join("shims")
            .join(format!("exec-{exec_id}"));
        let _ = std::fs::remove_dir_all(&sdir);
        std::fs::create_dir_all(&sdir).map_err(internal("creating exec state"))?;
        let pfile = sdir.join("process.json");
        std::fs::write(&pfile, spec::process_to_json(&process))
            .map_err(internal("writing process.json"))?;
        let launch = ShimLaunch {
            shim_path: self.config.shim_path.clone(),
            id: c.id.clone(),
            state_dir: sdir.clone(),
            runtime: self.shim_runtime(&rec.runtime_path),
            runtime_root: self.runc_root(),
            bundle: None,
            exec_process: Some(pfile),
            log_path: None,
            log_rotation: None,
            tty: cfg.tty,
            stdin: cfg.attach_stdin && !detach,
            cgroup: None,
        };
        shim_client::launch(&launch).await?;
        let stream = shim_client::connect(&sdir)
            .await
            .map_err(|err| EngineError::Internal(format!("connecting to exec shim: {err}")))?;
        let (mut r, mut w) = stream.into_split();
        let (out_tx, out_rx) = mpsc::channel::<Output>(1024);
        let (to_shim_tx, mut to_shim_rx) = mpsc::unbounded_channel::<ShimFrame>();
        e.state.lock().unwrap().to_shim = Some(to_shim_tx.clone());
        let (reply_tx, reply_rx) = oneshot::channel::<std::result::Result<(), String>>();
        let (want_out, want_err) = (cfg.attach_stdout && !detach, cfg.attach_stderr && !detach);
        let exec = e.clone();
        let sdir2 = sdir.clone();
        tokio::spawn(async move {
            let mut reply_tx = Some(reply_tx);
            let mut code = None;
            let who = format!("exec {}", exec.id);
            while let Some(frame) = shim_client::next_frame(&mut r, &who).await {
                let (stream, data) = match frame {
                    Frame::Stdout(data) if want_out => (StreamKind::Stdout, data),
                    Frame::Stderr(data) if want_err => (StreamKind::Stderr, data),
                    Frame::Reply(res) => {
                        if let Some(tx) = reply_tx.take() {
                            let _ = tx.send(res);
                        }
                        continue;
                    }
                    Frame::Exit(record) => {
                        code = Some(record.exit_code);
                        break;
                    }
                    _ => continue,
                };
                let _ = out_tx.send(Output { stream, data }).await;
            }
            let code = code
                .or_else(|| shim_client::read_exit(&sdir2).map(|x| x.exit_code))
                .unwrap_or(126);
            {
                let mut st = exec.state.lock().unwrap();
                st.running = false;
                st.exit_code = Some(code);
                st.to_shim = None;
            }
            drop(out_tx);
            let _ = std::fs::remove_dir_all(&sdir2);
        });
        tokio::spawn(async move {
            while let Some(frame) = to_shim_rx.recv().await {
                if shim_client::write_frame(&mut w, &frame).await.is_err() {
                    return;
                }
            }
        });
        let _ = to_shim_tx.send(Frame::Start);
        match reply_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(m)) => {
                e.state.lock().unwrap().exit_code = Some(126);
                return Err(shim_client::classify_start_error(m));
            }
            Err(_) => {
                return Err(EngineError::Internal(
                    "exec shim exited before starting".into(),
                ))
            }
        }
        {
            let mut st = e.state.lock().unwrap();
            st.running = st.exit_code.is_none();
            st.pid = std::fs::read_to_string(sdir.join(protocol::PID_FILE))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
        }
        let input = if cfg.attach_stdin && !detach {
            Some(input_to_shim(to_shim_tx.clone(), true))
        } else {
            None
        };
        let output = if detach {
            let (_tx, rx) = mpsc::channel(1);
            rx
        } else {
            out_rx
        };
        Ok(IoSession {
            tty: cfg.tty,
            output,
            input,
        })
    }

    pub async fn exec_inspect(&self, exec_id: &str) -> Result<ExecInspect> {
        let e = self.exec_lookup(exec_id)?;
        let st = e.state.lock().unwrap();
        Ok(ExecInspect {
            id: e.id.clone(),
            running: st.running,
            exit_code: st.exit_code,
            process_config: berth_api::ProcessConfig {
                privileged: e.config.privileged,
                user: e.config.user.clone(),
                tty: e.config.tty,
                entrypoint: e.config.cmd.first().cloned().unwrap_or_default(),
                arguments: e.config.cmd.iter().skip(1).cloned().collect(),
            },
            open_stdin: e.config.attach_stdin,
            open_stderr: e.config.attach_stderr,
            open_stdout: e.config.attach_stdout,
            container_id: e.container_id.clone(),
            pid: st.pid,
        })
    }

    pub async fn exec_resize(&self, exec_id: &str, rows: u16, cols: u16) -> Result<()> {
        let e = self.exec_lookup(exec_id)?;
        let st = e.state.lock().unwrap();
        match &st.to_shim {
            Some(tx) => {
                let _ = tx.send(Frame::Resize { rows, cols });
                Ok(())
            }
            None => Err(EngineError::Conflict(format!(
                "Exec {exec_id} is not running"
            ))),
        }
    }
}

/// An attach session's input channel: stdin data and resizes become shim frames; when the
/// client closes its end, the process's stdin is closed too if `close_stdin`.
fn input_to_shim(
    to_shim: mpsc::UnboundedSender<ShimFrame>,
    close_stdin: bool,
) -> mpsc::Sender<Input> {
    let (itx, mut irx) = mpsc::channel::<Input>(64);
    tokio::spawn(async move {
        while let Some(i) = irx.recv().await {
            let frame = match i {
                Input::Data(d) => Frame::Stdin(d),
                Input::Resize { rows, cols } => Frame::Resize { rows, cols },
            };
            if to_shim.send(frame).is_err() {
                return;
            }
        }
        if close_stdin {
            let _ = to_shim.send(Frame::StdinClose);
        }
    });
    itx
}

fn name_conflict(name: &str, id: &str) -> EngineError {
    EngineError::Conflict(format!(
        "Conflict. The container name \"{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}

/// Fills what the request left empty from the image's config, as Docker does.
fn merge_image_config(cfg: &mut ContainerConfig, image: &ContainerConfig) {
    if cfg.entrypoint.0.is_empty() {
        cfg.entrypoint = image.entrypoint.clone();
        if cfg.cmd.0.is_empty() {
            cfg.cmd = image.cmd.clone();
        }
    }
    let mut env = image.env.clone();
    for kv in &cfg.env {
        let k = kv.split('=').next().unwrap_or("");
        env.retain(|e| e.split('=').next() != Some(k));
        env.push(kv.clone());
    }
    cfg.env = env;
    if cfg.working_dir.is_empty() {
        cfg.working_dir = image.working_dir.clone();
    }
    if cfg.user.is_empty() {
        cfg.user = image.user.clone();
    }
    if cfg.stop_signal.is_none() {
        cfg.stop_signal = image.stop_signal.clone();
    }
    for (k, v) in &image.labels {
        cfg.labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if cfg.healthcheck.is_none() {
        cfg.healthcheck = image.healthcheck.clone();
    }
    if cfg.exposed_ports.is_none() {
        cfg.exposed_ports = image.exposed_ports.clone();
    }
    if let Some(iv) = &image.volumes {
        let v = cfg.volumes.get_or_insert_with(BTreeMap::new);
        for (k, x) in iv {
            v.entry(k.clone()).or_insert_with(|| x.clone());
        }
    }
    if cfg.shell.is_none() {
        cfg.shell = image.shell.clone();
    }
}

impl Engine {
    /// `Mounts`: the bind and tmpfs mounts asked for, then the volumes.
    fn mount_points(&self, r: &ContainerRecord) -> Vec<MountPoint> {
        let mut out = host_mount_points(&r.host_config);
        out.extend(self.volume_mount_points(r));
        out
    }
}

fn host_mount_points(h: &HostConfig) -> Vec<MountPoint> {
    let mut out = Vec::new();
    for b in &h.binds {
        if let Ok(b) = spec::parse_bind(b) {
            out.push(MountPoint {
                kind: "bind".into(),
                source: b.source,
                destination: b.destination,
                mode: if b.read_only {
                    "ro".into()
                } else {
                    String::new()
                },
                rw: !b.read_only,
                propagation: b.propagation.unwrap_or_else(|| "rprivate".into()),
                ..Default::default()
            });
        }
    }
    for m in h.mounts.iter().filter(|m| m.kind != "volume") {
        out.push(MountPoint {
            kind: m.kind.clone(),
            source: m.source.clone(),
            destination: m.target.clone(),
            rw: !m.read_only,
            propagation: if m.kind == "bind" {
                "rprivate".into()
            } else {
                String::new()
            },
            ..Default::default()
        });
    }
    out
}

/// `label=key` or `label=key=value` against a label map.
fn label_matches(filter: &str, labels: &BTreeMap<String, String>) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
    }
}

/// `reference=busybox` / `reference=busy*` / `reference=busybox:latest` against `repo:tag`.
fn reference_matches(pattern: &str, tag: &str) -> bool {
    let (repo, t) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
    let (prepo, ptag) = match pattern.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (pattern, None),
    };
    glob(prepo, repo) && ptag.is_none_or(|pt| glob(pt, t))
}

fn glob(p: &str, s: &str) -> bool {
    match p.find('*') {
        None => p == s,
        Some(i) => {
            let (pre, rest) = (&p[..i], &p[i + 1..]);
            if !s.starts_with(pre) {
                return false;
            }
            let s = &s[pre.len()..];
            (0..=s.len()).any(|j| s.is_char_boundary(j) && glob(rest, &s[j..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_config_merge() {
        let img = ContainerConfig {
            cmd: StrList(vec!["sh".into()]),
            env: vec!["PATH=/bin".into(), "A=1".into()],
            working_dir: "/w".into(),
            ..Default::default()
        };
        let mut c = ContainerConfig {
            env: vec!["A=2".into()],
            ..Default::default()
        };
        merge_image_config(&mut c, &img);
        assert_eq!(c.cmd.0, vec!["sh"]);
        assert_eq!(c.env, vec!["PATH=/bin", "A=2"]);
        assert_eq!(c.working_dir, "/w");
        let img = ContainerConfig {
            entrypoint: StrList(vec!["/init".into()]),
            cmd: StrList(vec!["x".into()]),
            ..Default::default()
        };
        let mut c = ContainerConfig {
            entrypoint: StrList(vec!["/other".into()]),
            ..Default::default()
        };
        merge_image_config(&mut c, &img);
        assert!(c.cmd.0.is_empty(), "a new entrypoint drops the image's cmd");
    }

    #[test]
    fn filters() {
        let mut l = BTreeMap::new();
        l.insert("a".to_string(), "b".to_string());
        assert!(label_matches("a", &l));
        assert!(label_matches("a=b", &l));
        assert!(!label_matches("a=c", &l));
        assert!(reference_matches("busybox", "busybox:latest"));
        assert!(reference_matches("busy*", "busybox:latest"));
        assert!(reference_matches("busybox:lat*", "busybox:latest"));
        assert!(!reference_matches("alpine", "busybox:latest"));
        assert!(reference_matches("localhost:5000/a", "localhost:5000/a:t"));
    }
}
