//! `POST /build` on the engine: the context tar is unpacked safely into a scratch directory,
//! the Dockerfile front end (`berth-build`) drives the steps over [`backend::EngineBackend`],
//! progress goes to a channel as the classic builder's messages, and the scratch directory is
//! removed at the end whatever happened. Also `POST /build/prune` (the cache index).

mod backend;
mod copy_layer;
mod fetch;
mod image_fs;
mod secrets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use berth_build::{BuildError, BuildOptions, BuildResult};
use tokio::sync::mpsc::UnboundedSender;

use crate::build_cache as cache;
use crate::context::Context;
use crate::util::ActivePaths;
use crate::{EngineError, Result};

pub use backend::EngineBackend;
pub use berth_build::Progress;
pub use secrets::{SecretError, SecretValues, HEADER as SECRETS_HEADER};

/// Whether `t` is a valid `-t` reference (`name[:tag]`, no digest).
pub fn valid_tag(t: &str) -> bool {
    berth_image::Reference::parse(t).is_ok_and(|r| !r.is_digest())
}

/// The query of `POST /build`, parsed.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// `dockerfile`: path inside the context (default `Dockerfile`).
    pub dockerfile: String,
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    pub network_mode: String,
    pub shm_size: i64,
    pub platform: Option<String>,
    /// Secrets for `RUN --mount=type=secret` (berth's `X-Berth-Build-Secrets` header).
    pub secrets: SecretValues,
}

/// The build cache index of the engine's data root.
fn cache_for(ctx: &Context) -> Arc<cache::BuildCache> {
    ctx.build_cache
        .get_or_init(|| Arc::new(cache::BuildCache::open(&cache_path(ctx))))
        .clone()
}

/// Removes the scratch directories (and image mounts inside them) that builds of an earlier
/// daemon process left behind when it died mid-build.
fn sweep_stale_scratch(tmp: &Path, active: &ActivePaths) {
    let Ok(rd) = std::fs::read_dir(tmp) else {
        return;
    };
    let stale: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("build-"))
        .map(|e| e.path())
        .filter(|p| !active.contains(p))
        .collect();
    for path in stale {
        drop(ScratchDir(path, active.clone()));
    }
}

/// At open: the scratch directories (with their image mounts) of the builds a dead daemon
/// was running.
pub(crate) fn sweep_scratch_at_open(ctx: &Context) {
    sweep_stale_scratch(&ctx.config.data_root.join("tmp"), &ctx.build_scratch);
}

/// A build's scratch directory: registered as active, removed (mounts first) when dropped.
struct ScratchDir(PathBuf, ActivePaths);

impl ScratchDir {
    fn new(path: PathBuf, active: &ActivePaths) -> ScratchDir {
        active.insert(path.clone());
        ScratchDir(path, active.clone())
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        self.1.remove(&self.0);
        let mounts = self.0.join("mounts");
        if let Ok(rd) = std::fs::read_dir(&mounts) {
            for e in rd.flatten() {
                let _ = crate::sys::unmount(&e.path());
            }
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Why a build failed: the message for `errorDetail` and, for a failed RUN, its exit code.
#[derive(Debug, Clone)]
pub struct BuildFailure {
    pub message: String,
    pub code: Option<i64>,
}

impl From<EngineError> for BuildFailure {
    fn from(e: EngineError) -> Self {
        BuildFailure {
            message: e.to_string(),
            code: None,
        }
    }
}

impl From<BuildError> for BuildFailure {
    fn from(e: BuildError) -> Self {
        let code = match &e {
            BuildError::Step { exit_code, .. } => *exit_code,
            _ => None,
        };
        BuildFailure {
            message: e.to_string(),
            code,
        }
    }
}

fn cache_path(ctx: &Context) -> PathBuf {
    ctx.config.data_root.join("builder").join("cache.json")
}

/// The relative, clean path of the Dockerfile inside the context, refusing escapes.
fn dockerfile_rel(name: &str) -> std::result::Result<PathBuf, BuildFailure> {
    let name = if name.is_empty() { "Dockerfile" } else { name };
    let mut out = PathBuf::new();
    for c in name.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if c == ".." {
            if !out.pop() {
                return Err(BuildFailure {
                    message: format!("Cannot locate specified Dockerfile: {name}"),
                    code: None,
                });
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Runs a build of the context tar `context` (optionally gzip'd), sending progress to
/// `progress`. When the receiver goes away the build is cancelled.
pub(crate) async fn build(
    ctx: &Arc<Context>,
    context: std::fs::File,
    req: BuildRequest,
    progress: UnboundedSender<Progress>,
) -> std::result::Result<BuildResult, BuildFailure> {
    let build_name = format!("build-{}", crate::util::new_id());
    let root = ctx.config.data_root.join("tmp").join(&build_name);
    let tmp = ctx.config.data_root.join("tmp");
    let scratch = ScratchDir::new(root.clone(), &ctx.build_scratch);
    let exec_root = ctx.config.exec_root.clone();
    let (scratch_dirs, secret_dirs) = (ctx.build_scratch.clone(), ctx.build_secrets.clone());
    let secret_dir = tokio::task::spawn_blocking(move || {
        sweep_stale_scratch(&tmp, &scratch_dirs);
        secrets::sweep_stale(&exec_root, &secret_dirs);
        secrets::SecretDir::create(&exec_root, &build_name, &req.secrets, &secret_dirs)
            .map(|d| (d, req))
    })
    .await
    .map_err(|e| EngineError::Internal(e.to_string()))?;
    let (secret_dir, req) = secret_dir.map_err(|e| BuildFailure {
        message: format!("failed to prepare the build secrets: {e}"),
        code: None,
    })?;
    let context_dir = root.join("context");
    std::fs::create_dir_all(&context_dir).map_err(EngineError::from)?;
    let unpack_dir = context_dir.clone();
    // A build context is a tar stream like a layer, and as hostile: the same caps.
    let limits = ctx.images.layer_limits();
    tokio::task::spawn_blocking(move || {
        let mut f = context;
        berth_image::layer_tar::apply_layer(&mut f, &unpack_dir, None, limits)
    })
    .await
    .map_err(|e| EngineError::Internal(e.to_string()))?
    .map_err(|e| BuildFailure {
        message: format!("failed to read the build context: {e}"),
        code: None,
    })?;
    let rel = dockerfile_rel(&req.dockerfile)?;
    let dockerfile = std::fs::read_to_string(context_dir.join(&rel)).map_err(|_| BuildFailure {
        message: format!("Cannot locate specified Dockerfile: {}", rel.display()),
        code: None,
    })?;
    let cancelled = Arc::new(AtomicBool::new(false));
    let backend = EngineBackend {
        ctx: ctx.clone(),
        handle: tokio::runtime::Handle::current(),
        cache: cache_for(ctx),
        network_mode: req.network_mode.clone(),
        shm_size: req.shm_size,
        scratch: root.join("work"),
        cancelled: cancelled.clone(),
    };
    let opts = BuildOptions {
        context_dir,
        dockerfile,
        dockerfile_path: rel,
        tags: req.tags,
        build_args: req.build_args,
        labels: req.labels,
        target: req.target,
        no_cache: req.no_cache,
        pull: req.pull,
        platform: req.platform,
        secrets: secret_dir.files.clone(),
        scratch_dir: root.join("downloads"),
        parallel: true,
    };
    let result = tokio::task::spawn_blocking(move || {
        let send = |p: Progress| {
            if progress.send(p).is_err() {
                cancelled.store(true, Ordering::SeqCst);
            }
        };
        berth_build::build(&backend, &opts, &send)
    })
    .await
    .map_err(|e| EngineError::Internal(format!("build task failed: {e}")))?;
    drop(scratch);
    drop(secret_dir);
    Ok(result?)
}

/// `POST /build/prune`: forgets every build cache entry (and the cache mounts). Returns the
/// number of entries removed.
pub(crate) async fn build_prune(ctx: &Arc<Context>) -> Result<usize> {
    let cache = cache_for(ctx);
    let mounts = ctx.config.data_root.join("builder").join("cache-mounts");
    tokio::task::spawn_blocking(move || {
        let _ = std::fs::remove_dir_all(&mounts);
        cache.retain(|_| false).map_err(EngineError::from)
    })
    .await
    .map_err(|e| EngineError::Internal(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_scratch_is_swept_and_active_kept() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join("build-old");
        std::fs::create_dir_all(stale.join("context")).unwrap();
        let other = dir.path().join("spool");
        std::fs::create_dir_all(&other).unwrap();
        let running = ActivePaths::default();
        let active = ScratchDir::new(dir.path().join("build-now"), &running);
        std::fs::create_dir_all(&active.0).unwrap();
        sweep_stale_scratch(dir.path(), &running);
        assert!(!stale.exists());
        assert!(other.exists());
        assert!(active.0.exists());
        let p = active.0.clone();
        drop(active);
        assert!(!p.exists());
    }

    #[test]
    fn dockerfile_paths_stay_inside() {
        assert_eq!(dockerfile_rel("").unwrap(), PathBuf::from("Dockerfile"));
        assert_eq!(
            dockerfile_rel("./sub/../x.Dockerfile").unwrap(),
            PathBuf::from("x.Dockerfile")
        );
        assert!(dockerfile_rel("../etc/passwd").is_err());
    }
}
