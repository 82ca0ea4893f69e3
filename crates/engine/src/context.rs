//! The engine's shared context: the state every service works on (the container and exec
//! tables, the image and volume stores, the network manager, the event bus) and the few
//! helpers they all use (paths under the roots, record persistence, lookup). Services take a
//! `&Arc<Context>`; none of them knows the [`crate::Engine`] facade.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_image::ImageStore;
use tokio::sync::mpsc;

use crate::container::{Container, Exec};
use crate::events::EventBus;
use crate::util;
use crate::{EngineConfig, EngineError, Result};

/// Work a service hands back to the engine instead of calling a service above it: the exit
/// path asks for a restart or an auto-remove, and the engine runs it (see
/// `Engine::run_followups`). This keeps the exit path below start and remove.
pub(crate) enum Followup {
    /// The restart policy's back-off is over: start the container again.
    Restart(Arc<Container>),
    /// An `--rm` container is done: remove it and its anonymous volumes.
    AutoRemove(String),
}

/// What every service shares.
pub(crate) struct Context {
    pub(crate) config: EngineConfig,
    pub(crate) images: Arc<ImageStore>,
    pub(crate) containers: Mutex<BTreeMap<String, Arc<Container>>>,
    pub(crate) execs: Mutex<BTreeMap<String, Arc<Exec>>>,
    /// Names being created, reserved before the record exists.
    pub(crate) reserved_names: Mutex<Vec<String>>,
    pub(crate) kernel: (u32, u32),
    pub(crate) cap_bounding: u64,
    /// Bridge networking; `None` when off or unavailable.
    pub(crate) network: Option<berth_network::NetworkManager>,
    /// Embedded DNS servers of running containers on user networks.
    pub(crate) dns: Mutex<BTreeMap<String, berth_network::dns::DnsServer>>,
    pub(crate) volumes: Arc<berth_volume::VolumeStore>,
    pub(crate) events: EventBus,
    pub(crate) followups: mpsc::UnboundedSender<Followup>,
    /// The kernel, the shims and the OCI runtime, behind traits.
    pub(crate) host: crate::host::Host,
    /// The build cache index of this data root, opened by the first build.
    pub(crate) build_cache: std::sync::OnceLock<Arc<crate::build_cache::BuildCache>>,
    /// Scratch directories of the builds running now.
    pub(crate) build_scratch: util::ActivePaths,
    /// Secret directories of the builds running now.
    pub(crate) build_secrets: util::ActivePaths,
}

pub(crate) fn internal(context: &str) -> impl Fn(std::io::Error) -> EngineError + '_ {
    move |e| EngineError::Internal(format!("{context}: {e}"))
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Internal(format!("task failed: {e}")))?
}

pub(crate) fn rlimit_hard(name: &str) -> Option<u64> {
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

impl Context {
    /// Now, by the host's clock, as a record stamps it (RFC 3339, nanoseconds).
    pub(crate) fn now_rfc3339(&self) -> String {
        self.host.clock.now_rfc3339()
    }

    /// Now, by the host's clock, in whole seconds since the Unix epoch.
    pub(crate) fn now_secs(&self) -> i64 {
        self.host.clock.now_unix().0
    }

    /// Hands `f` to the engine (a no-op once it is shutting down).
    pub(crate) fn follow_up(&self, f: Followup) {
        let _ = self.followups.send(f);
    }

    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.config.data_root.join("containers").join(id)
    }

    pub(crate) fn rootfs(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("rootfs")
    }

    pub(crate) fn bundle_dir(&self, id: &str) -> PathBuf {
        self.config.exec_root.join("containers").join(id)
    }

    pub(crate) fn shim_dir(&self, id: &str) -> PathBuf {
        self.config.exec_root.join("shims").join(id)
    }

    pub(crate) fn runc_root(&self) -> PathBuf {
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

    pub(crate) fn images_in_use(&self) -> Vec<String> {
        self.containers
            .lock()
            .unwrap()
            .values()
            .map(|c| c.rec.lock().unwrap().image_id.clone())
            .collect()
    }

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
    pub(crate) fn shim_runtime(&self, runtime: &Path) -> PathBuf {
        self.config
            .shim_runtime_paths
            .get(runtime)
            .cloned()
            .unwrap_or_else(|| runtime.to_path_buf())
    }

    pub(crate) fn runtime_path(&self, name: &str) -> Result<PathBuf> {
        let name = if name.is_empty() {
            self.config.default_runtime.as_str()
        } else {
            name
        };
        self.config.runtimes.get(name).cloned().ok_or_else(|| {
            EngineError::InvalidArgument(format!("unknown or invalid runtime name: {name}"))
        })
    }

    /// A container event with dockerd's attributes: the image, the name, the labels, and
    /// `extra` (`exitCode`, `signal`, …).
    pub(crate) fn container_event(
        &self,
        c: &crate::container::Container,
        action: &str,
        extra: &[(&str, String)],
    ) {
        let mut attrs: BTreeMap<String, String> = BTreeMap::new();
        let id = {
            let r = c.rec.lock().unwrap();
            attrs.extend(r.config.labels.clone());
            attrs.insert("image".into(), r.config.image.clone());
            attrs.insert("name".into(), r.name.trim_start_matches('/').to_string());
            r.id.clone()
        };
        for (k, v) in extra {
            attrs.insert((*k).to_string(), v.clone());
        }
        self.events.publish("container", action, &id, attrs);
    }

    /// Any other event.
    pub(crate) fn event(&self, kind: &str, action: &str, id: &str, attrs: &[(&str, String)]) {
        let attrs = attrs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect();
        self.events.publish(kind, action, id, attrs);
    }
}
