//! [`berth_build::BuildBackend`] over the engine: RUN steps are real containers created and
//! started through the normal engine path (same isolation as any container), committed with
//! the image store's layer commit and always removed; COPY/ADD and WORKDIR write layer tars;
//! metadata steps write config-only child images. The trait is synchronous and runs on a
//! blocking thread; every engine call goes through [`tokio::runtime::Handle::block_on`].

use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use berth_api::{ContainerConfig, ContainerCreateRequest, HostConfig, StrList};
use berth_build::backend::{
    CommitRequest, CopyRequest, ImageInfo, RunNetwork, RunObserver, RunRequest, StepCommit,
};
use berth_build::mounts::MountKind;
use berth_build::{BackendError, BuildBackend};
use berth_image::ChildImage;
use tokio::runtime::Handle;

use super::copy_layer::{CopyOwner, LayerWriter};
use super::image_fs::{components, ImageFs};
use crate::build_cache::BuildCache;
use crate::context::Context;
use crate::{AttachOptions, EngineError, RemoveOptions, WaitCondition};

/// The engine side of one build.
pub struct EngineBackend {
    pub(super) ctx: Arc<Context>,
    pub(super) handle: Handle,
    pub(super) cache: Arc<BuildCache>,
    /// `networkmode` of the build (`""`/`default`, `none`, `host`, a network name).
    pub(super) network_mode: String,
    pub(super) shm_size: i64,
    /// Temporary files of this build (layer tars, image mounts).
    pub(super) scratch: PathBuf,
    pub(super) cancelled: Arc<AtomicBool>,
}

fn other(e: impl std::fmt::Display) -> BackendError {
    BackendError::Other(e.to_string())
}

fn from_engine(e: EngineError) -> BackendError {
    match e {
        EngineError::NotFound(m) => BackendError::NotFound(m),
        e => BackendError::Other(e.to_string()),
    }
}

fn from_image(e: berth_image::ImageError) -> BackendError {
    from_engine(e.into())
}

fn child(c: &StepCommit) -> ChildImage {
    ChildImage {
        parent: c.parent.clone(),
        config: c.config.clone(),
        created_by: c.created_by.clone(),
        author: c.author.clone(),
        comment: String::new(),
        tags: Vec::new(),
    }
}

impl EngineBackend {
    fn check_cancelled(&self) -> Result<(), BackendError> {
        if self.cancelled.load(Ordering::SeqCst) {
            Err(BackendError::Cancelled)
        } else {
            Ok(())
        }
    }

    fn image_fs(&self, image: Option<&str>) -> Result<ImageFs, BackendError> {
        let dirs = match image {
            Some(id) => self.ctx.images.layer_dirs(id).map_err(from_image)?,
            None => Vec::new(),
        };
        Ok(ImageFs::new(dirs))
    }

    /// A new unlinked temporary file for a layer tar.
    fn temp_file(&self) -> Result<std::fs::File, BackendError> {
        std::fs::create_dir_all(&self.scratch).map_err(other)?;
        tempfile::tempfile_in(&self.scratch).map_err(other)
    }

    /// Commits `tar` (with `entries` entries; none: a config-only image) as a child image.
    fn commit_tar(
        &self,
        commit: &StepCommit,
        tar: Option<(std::fs::File, usize)>,
    ) -> Result<String, BackendError> {
        let images = self.ctx.images.clone();
        let child = child(commit);
        match tar {
            Some((mut f, n)) if n > 0 => {
                f.rewind().map_err(other)?;
                images
                    .commit_layer_tar(&child, Some(&mut f))
                    .map_err(from_image)
            }
            _ => images.commit_layer_tar(&child, None).map_err(from_image),
        }
    }

    /// `--chown=user[:group]` resolved against the image's passwd and group files.
    fn resolve_chown(&self, image: &ImageFs, spec: &str) -> Result<(u32, u32), BackendError> {
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let passwd = image.read_file("/etc/passwd").map_err(other)?;
        let groups = image.read_file("/etc/group").map_err(other)?;
        let uid = match user.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                crate::user::resolve(user, &passwd, &groups)
                    .map_err(|_| {
                        other(format!(
                            "unable to find user {user}: no matching entries in passwd file"
                        ))
                    })?
                    .uid
            }
        };
        let gid = match group {
            None => uid,
            Some(g) => match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => {
                    crate::user::resolve(&format!("0:{g}"), &passwd, &groups)
                        .map_err(|_| {
                            other(format!(
                                "unable to find group {g}: no matching entries in group file"
                            ))
                        })?
                        .gid
                }
            },
        };
        Ok((uid, gid))
    }

    /// The host config of a RUN container: network, shm size and the step's mounts. Image
    /// mounts made for `bind,from=` are returned to be released.
    fn run_host_config(
        &self,
        req: &RunRequest,
    ) -> Result<(HostConfig, Vec<(String, PathBuf)>), BackendError> {
        let mut host = HostConfig {
            network_mode: match req.network {
                RunNetwork::None => "none".into(),
                RunNetwork::Host => "host".into(),
                RunNetwork::Default => match self.network_mode.as_str() {
                    "" | "default" => String::new(),
                    m => m.to_string(),
                },
            },
            shm_size: self.shm_size,
            ..Default::default()
        };
        let mut image_mounts = Vec::new();
        for m in &req.mounts {
            let inner = |base: &Path, source: &Option<String>| -> PathBuf {
                let rel = components(source.as_deref().unwrap_or("/"))
                    .into_iter()
                    .filter(|c| c != "..")
                    .collect::<Vec<_>>()
                    .join("/");
                base.join(rel)
            };
            match m.kind {
                MountKind::Bind => {
                    let base = match &m.from_image {
                        Some(img) => {
                            let p = self.mount_image(img)?;
                            image_mounts.push((img.clone(), p.clone()));
                            p
                        }
                        None => req.context_dir.clone(),
                    };
                    let src = inner(&base, &m.source);
                    let ro = if m.read_only { ":ro" } else { "" };
                    host.binds
                        .push(format!("{}:{}{ro}", src.display(), m.target));
                }
                MountKind::Cache => {
                    let key = berth_image::content::digest_bytes(m.id.as_bytes());
                    let dir = self
                        .ctx
                        .config
                        .data_root
                        .join("builder/cache-mounts")
                        .join(berth_image::content::digest_hex(&key));
                    std::fs::create_dir_all(&dir).map_err(other)?;
                    host.binds.push(format!("{}:{}", dir.display(), m.target));
                }
                MountKind::Tmpfs => {
                    let opts = m.size.map(|s| format!("size={s}")).unwrap_or_default();
                    host.tmpfs.insert(m.target.clone(), opts);
                }
                MountKind::Secret => match &m.secret_file {
                    Some(f) => {
                        let mode = m.mode.unwrap_or(0o400);
                        let f = super::secrets::file_for_mount(
                            f,
                            mode,
                            m.uid.unwrap_or(0),
                            m.gid.unwrap_or(0),
                        )
                        .map_err(|e| other(format!("secret {}: {e}", m.id)))?;
                        host.binds.push(format!("{}:{}:ro", f.display(), m.target));
                    }
                    None if m.required => {
                        return Err(other(format!("secret {} not found", m.id)));
                    }
                    None => {}
                },
            }
        }
        Ok((host, image_mounts))
    }

    /// Runs the container `id` to its exit, streaming its output; returns the exit code.
    async fn run_container(
        &self,
        id: &str,
        observer: &mut dyn RunObserver,
    ) -> Result<i64, BackendError> {
        let ctx = &self.ctx;
        let mut session = crate::io::container_attach(
            ctx,
            id,
            AttachOptions {
                stdout: true,
                stderr: true,
                stream: true,
                ..Default::default()
            },
        )
        .await
        .map_err(from_engine)?;
        let wait = crate::query::container_wait(ctx, id, WaitCondition::NextExit)
            .await
            .map_err(from_engine)?;
        crate::start::container_start(ctx, id)
            .await
            .map_err(from_engine)?;
        while let Some(out) = session.output.recv().await {
            observer.output(&out.data);
            if self.cancelled.load(Ordering::SeqCst) {
                let _ = crate::control::container_kill(ctx, id, Some("KILL".into())).await;
            }
        }
        let status = wait
            .await
            .map_err(|_| other("the build container went away"))?;
        self.check_cancelled()?;
        Ok(status.status_code)
    }
}

/// Removes the mount points a RUN step's mounts created in container `upper` (empty stubs of
/// paths the image did not have, and their parents made only for them), as BuildKit does, so
/// they are not committed. Never follows a symlink the container made.
fn remove_mount_stubs(upper: &Path, image: &ImageFs, targets: &[String]) {
    for target in targets {
        let comps = components(target);
        if comps.is_empty() || comps.iter().any(|c| c == "..") {
            continue;
        }
        let mut real = true;
        for i in 1..comps.len() {
            let m = std::fs::symlink_metadata(upper.join(comps[..i].join("/")));
            if !m.is_ok_and(|m| m.is_dir()) {
                real = false;
                break;
            }
        }
        if !real {
            continue;
        }
        for depth in (1..=comps.len()).rev() {
            let rel = comps[..depth].join("/");
            if image.lstat(&format!("/{rel}")).is_some() {
                break;
            }
            let p = upper.join(&rel);
            let removed = match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => std::fs::remove_dir(&p).is_ok(),
                Ok(m) if m.is_file() && m.len() == 0 => std::fs::remove_file(&p).is_ok(),
                _ => false,
            };
            if !removed {
                break;
            }
        }
    }
}

impl BuildBackend for EngineBackend {
    fn resolve_image(
        &self,
        reference: &str,
        platform: Option<&str>,
        pull: bool,
        log: &mut dyn FnMut(&str),
    ) -> Result<ImageInfo, BackendError> {
        self.check_cancelled()?;
        let images = self.ctx.images.clone();
        let found = images.resolve(reference);
        let missing = matches!(found, Err(berth_image::ImageError::NotFound(_)));
        if pull || missing {
            let ctx = self.ctx.clone();
            let platform = platform.unwrap_or("").to_string();
            let reference_owned = reference.to_string();
            let pulled = self.handle.block_on(async move {
                let plans = crate::registry::image_pull_resolve(
                    &ctx,
                    &reference_owned,
                    "",
                    &platform,
                    None,
                )
                .await?;
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let run = crate::registry::image_pull_run(&ctx, plans, tx);
                let mut lines = Vec::new();
                let collect = async {
                    while let Some(v) = rx.recv().await {
                        lines.push(v);
                    }
                };
                let (r, ()) = tokio::join!(run, collect);
                r.map(|()| lines)
            });
            match pulled {
                Ok(lines) => {
                    for v in lines {
                        let status = v.get("status").and_then(|s| s.as_str()).unwrap_or("");
                        match v.get("id").and_then(|s| s.as_str()) {
                            Some(id) => log(&format!("{id}: {status}\n")),
                            None if !status.is_empty() => log(&format!("{status}\n")),
                            None => {}
                        }
                    }
                }
                Err(e) if missing => {
                    return Err(BackendError::NotFound(format!(
                        "pull access denied for {reference}, repository does not exist or may require 'docker login': {e}"
                    )))
                }
                Err(_) => {} // --pull with the image present: keep the local one.
            }
        }
        let img = images.resolve(reference).map_err(from_image)?;
        Ok(ImageInfo {
            id: img.id,
            config: img.config,
        })
    }

    fn run(
        &self,
        req: &RunRequest,
        observer: &mut dyn RunObserver,
    ) -> Result<String, BackendError> {
        self.check_cancelled()?;
        let parent = req.commit.parent.clone().ok_or_else(|| {
            other("failed to create the RUN container: the image has no file system (FROM scratch) and no shell")
        })?;
        let (host, image_mounts) = self.run_host_config(req)?;
        let cfg = ContainerConfig {
            image: parent.clone(),
            entrypoint: StrList(req.argv.clone()),
            cmd: StrList(Vec::new()),
            env: req.env.clone(),
            user: req.user.clone(),
            working_dir: req.working_dir.clone(),
            attach_stdout: true,
            attach_stderr: true,
            labels: Default::default(),
            ..Default::default()
        };
        let create = ContainerCreateRequest {
            config: cfg,
            host_config: host,
            networking_config: None,
        };
        let ctx = self.ctx.clone();
        let result = self.handle.block_on(async {
            // Recorded before the container exists: a daemon killed mid-step removes it when
            // it opens (the name is chosen here so that the record can say which).
            let name = format!(
                "{}_{}",
                crate::util::random_name(),
                &crate::util::new_id()[..6]
            );
            let step = crate::inflight::begin(
                &ctx,
                crate::inflight::Operation::BuildStep { name: name.clone() },
            )
            .map_err(from_engine)?;
            let id = crate::create::container_create(&ctx, Some(name), create)
                .await
                .map_err(from_engine)?
                .id;
            observer.started(&id);
            let outcome = match self.run_container(&id, observer).await {
                Ok(0) => {
                    let targets: Vec<String> =
                        req.mounts.iter().map(|m| m.target.clone()).collect();
                    if !targets.is_empty() {
                        if let Ok(image) = self.image_fs(Some(&parent)) {
                            let upper = ctx.images.root().join("rw").join(&id).join("upper");
                            remove_mount_stubs(&upper, &image, &targets);
                        }
                    }
                    let images = ctx.images.clone();
                    let (cid, c) = (id.clone(), child(&req.commit));
                    tokio::task::spawn_blocking(move || images.commit_rw_layer(&cid, &c))
                        .await
                        .map_err(other)
                        .and_then(|r| r.map_err(from_image))
                }
                Ok(code) => Err(BackendError::ExitCode(code)),
                Err(e) => Err(e),
            };
            let removed = crate::remove::container_remove(
                &ctx,
                &id,
                RemoveOptions {
                    force: true,
                    volumes: true,
                    link: false,
                },
            )
            .await;
            match removed {
                Ok(()) => drop(step),
                // Left in the journal: the next open removes it.
                Err(e) => {
                    tracing::warn!("removing build container {id}: {e}");
                    step.leave();
                }
            }
            outcome
        });
        for (img, path) in image_mounts {
            self.release_image(&img, &path);
        }
        result
    }

    fn copy(&self, req: &CopyRequest) -> Result<String, BackendError> {
        self.check_cancelled()?;
        let image = self.image_fs(req.commit.parent.as_deref())?;
        let chown = match &req.chown {
            Some(spec) => Some(self.resolve_chown(&image, spec)?),
            None => None,
        };
        let owner = CopyOwner {
            chown,
            chmod: req.chmod,
            preserve_owner: req.preserve_owner,
        };
        let f = self.temp_file()?;
        let mut w = LayerWriter::new(std::io::BufWriter::new(f), &image);
        for e in &req.entries {
            w.entry(e, &owner)
                .map_err(|err| other(format!("failed to copy files: {}: {err}", e.dest)))?;
        }
        let n = w.entries;
        let mut buf = w.finish().map_err(other)?;
        buf.flush().map_err(other)?;
        let f = buf.into_inner().map_err(|e| other(e.error()))?;
        self.commit_tar(&req.commit, Some((f, n)))
    }

    fn commit(&self, req: &CommitRequest) -> Result<String, BackendError> {
        self.check_cancelled()?;
        let Some(dir) = &req.ensure_dir else {
            return self.commit_tar(&req.commit, None);
        };
        let image = self.image_fs(req.commit.parent.as_deref())?;
        if image.is_dir(dir) {
            return self.commit_tar(&req.commit, None);
        }
        let f = self.temp_file()?;
        let mut w = LayerWriter::new(f, &image);
        w.ensure_dir(&components(dir).join("/"), None)
            .map_err(other)?;
        let n = w.entries;
        let f = w.finish().map_err(other)?;
        self.commit_tar(&req.commit, Some((f, n)))
    }

    fn path_is_dir(&self, image_id: &str, path: &str) -> Result<bool, BackendError> {
        Ok(self.image_fs(Some(image_id))?.is_dir(path))
    }

    fn mount_image(&self, image_id: &str) -> Result<PathBuf, BackendError> {
        let name = format!("build-{}", crate::util::new_id());
        let spec = self
            .ctx
            .images
            .create_scratch_rw_layer(&name, image_id)
            .map_err(from_image)?;
        let target = self.scratch.join("mounts").join(&name);
        let mounted = std::fs::create_dir_all(&target).and_then(|()| {
            crate::sys::mount_fs(&spec.fstype, &spec.source, &target, &spec.options)
        });
        if let Err(e) = mounted {
            let _ = std::fs::remove_dir(&target);
            let _ = self.ctx.images.remove_rw_layer(&name);
            return Err(other(format!("mounting image {image_id}: {e}")));
        }
        Ok(target)
    }

    fn release_image(&self, _image_id: &str, path: &Path) {
        let _ = crate::sys::unmount(path);
        let _ = std::fs::remove_dir(path);
        if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
            if name.starts_with("build-") {
                let _ = self.ctx.images.remove_rw_layer(name);
            }
        }
    }

    fn fetch_url(&self, url: &str, dest: &Path) -> Result<(), BackendError> {
        self.check_cancelled()?;
        super::fetch::fetch_url(url, dest).map_err(other)
    }

    fn cache_get(&self, key: &str) -> Result<Option<String>, BackendError> {
        let Some(id) = self.cache.get(key) else {
            return Ok(None);
        };
        Ok(self.ctx.images.resolve(&id).ok().map(|_| id))
    }

    fn cache_put(&self, key: &str, image_id: &str) -> Result<(), BackendError> {
        self.cache.put(key, image_id).map_err(other)
    }

    fn tag(&self, image_id: &str, reference: &str) -> Result<(), BackendError> {
        self.ctx
            .images
            .tag_as(image_id, reference, berth_image::TagMove::Build)
            .map_err(from_image)?;
        self.ctx
            .event("image", "tag", image_id, &[("name", reference.to_string())]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_stubs_go_and_real_content_stays() {
        let image_layer = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(image_layer.path().join("mnt")).unwrap();
        let image = ImageFs::new(vec![image_layer.path().into()]);
        let upper = tempfile::tempdir().unwrap();
        let u = upper.path();
        std::fs::create_dir_all(u.join("run/secrets")).unwrap();
        std::fs::write(u.join("run/secrets/id"), b"").unwrap();
        std::fs::create_dir_all(u.join("cache")).unwrap();
        std::fs::create_dir_all(u.join("mnt")).unwrap();
        std::fs::create_dir_all(u.join("data")).unwrap();
        std::fs::write(u.join("data/kept"), b"x").unwrap();
        std::os::unix::fs::symlink("/", u.join("evil")).unwrap();
        remove_mount_stubs(
            u,
            &image,
            &[
                "/run/secrets/id".into(),
                "/cache".into(),
                "/mnt".into(),
                "/data".into(),
                "/evil/tmp".into(),
            ],
        );
        assert!(!u.join("run").exists());
        assert!(!u.join("cache").exists());
        assert!(u.join("mnt").exists(), "a directory of the image stays");
        assert!(u.join("data/kept").exists());
        assert!(std::path::Path::new("/tmp").exists());
    }
}
