//! The boundary between the build driver and the engine: the [`BuildBackend`] trait and the
//! requests the driver hands it. The driver decides *what* every step does (the command line,
//! the environment, the files and where they go, the new image config, the history entry, the
//! cache key); the backend does it against real images and containers.
//!
//! Contract, for implementers:
//!
//! - All methods are synchronous and take `&self`; the trait is `Sync` because independent
//!   stages of one build may run on several threads at once. Call it from `spawn_blocking`.
//! - Image ids are full `sha256:<hex>` strings.
//! - Every method that produces an image ([`BuildBackend::run`], [`BuildBackend::copy`],
//!   [`BuildBackend::commit`]) writes a new image whose parent is `StepCommit::parent` (`None`:
//!   an empty base, `FROM scratch`): the parent's layers, plus the layer of the step's
//!   filesystem changes if there are any, the config `StepCommit::config` as given (the driver
//!   computed Env, Cmd, Entrypoint, … already), the parent's history plus one entry with
//!   `created_by` = `StepCommit::created_by`, `author` = `StepCommit::author`, and
//!   `empty_layer: true` exactly when the step changed no file (then no layer is added, as
//!   dockerd's `NewChildImage` does). The new image is untagged; it returns its id.
//! - A failed step leaves nothing behind: no container, no mount, no half-written image.
//! - Cache entries map a key (a hex string from the driver) to an image id. [`cache_get`]
//!   must only return ids of images that still exist.
//!
//! [`cache_get`]: BuildBackend::cache_get

use std::path::{Path, PathBuf};

use berth_api::ContainerConfig;

use crate::error::BackendError;
use crate::mounts::RunMount;

/// An image as the driver sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInfo {
    /// `sha256:<hex>`.
    pub id: String,
    /// The image's config (`config` object of the image config blob).
    pub config: ContainerConfig,
}

/// What every image-producing request carries: where it starts and what it records.
#[derive(Debug, Clone, PartialEq)]
pub struct StepCommit {
    /// The image the step starts from; `None` for an empty base (`FROM scratch`).
    pub parent: Option<String>,
    /// The config of the new image.
    pub config: ContainerConfig,
    /// The history entry's `created_by`, e.g. `/bin/sh -c #(nop)  ENV A=b`.
    pub created_by: String,
    /// The image's `author` (from MAINTAINER), empty if none.
    pub author: String,
}

/// The network of a RUN step (`RUN --network=`; `Default` is the build's network mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunNetwork {
    #[default]
    Default,
    None,
    Host,
}

/// `RUN`: run a process in a container made from `commit.parent`, then commit its changes.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRequest {
    pub commit: StepCommit,
    /// The process: the shell (`SHELL`, default `/bin/sh -c`) plus the command for the shell
    /// form, the array as written for the exec form.
    pub argv: Vec<String>,
    /// The process environment: the image's Env followed by the build args in effect
    /// (`KEY=value`).
    pub env: Vec<String>,
    /// USER of the stage (`name`, `uid`, `name:group`, …; empty = root).
    pub user: String,
    /// WORKDIR of the stage (absolute; empty = `/`).
    pub working_dir: String,
    /// `RUN --mount`s, resolved: `from_image` and `secret_file` are set by the driver; a bind
    /// mount with `from_image == None` binds `source` from `context_dir`.
    pub mounts: Vec<RunMount>,
    pub network: RunNetwork,
    /// The build context on the host (for bind mounts without `from`).
    pub context_dir: PathBuf,
}

/// Where a copied entry comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopySource {
    /// A regular file on the host: copy content, mode and modification time.
    File(PathBuf),
    /// A directory on the host: create the destination directory with its mode (its
    /// children are listed as entries of their own).
    Dir(PathBuf),
    /// A symbolic link on the host: recreate it with the same target.
    Symlink(PathBuf),
    /// Inline content (a heredoc): a regular file with this mode.
    Bytes { content: Vec<u8>, mode: u32 },
    /// ADD of a local archive (tar, optionally gzip/bzip2/xz compressed): extract it into the
    /// destination directory.
    Archive(PathBuf),
}

/// One entry of a COPY/ADD, with its final path in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyEntry {
    /// Absolute, clean path in the image (`/app/src/main.rs`).
    pub dest: String,
    pub source: CopySource,
}

/// `COPY`/`ADD`: write entries into a new layer on top of `commit.parent`.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyRequest {
    pub commit: StepCommit,
    /// In order; parents come before children. Missing parent directories of a `dest` are
    /// created (mode 0755, owned by root).
    pub entries: Vec<CopyEntry>,
    /// `--chown=user[:group]` as written (names are resolved against the image's
    /// `/etc/passwd` and `/etc/group`, numbers taken as they are). `None`: owner 0:0, or the
    /// source's owner when `preserve_owner`.
    pub chown: Option<String>,
    /// `--chmod` (octal, parsed), applied to every entry instead of the source's mode.
    pub chmod: Option<u32>,
    /// `COPY --from`: keep the uid/gid of the source files when there is no `--chown`.
    pub preserve_owner: bool,
    /// `--link` (a hint; the result must be the same without it).
    pub link: bool,
}

/// A metadata-only step (ENV, LABEL, CMD, …) or WORKDIR.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitRequest {
    pub commit: StepCommit,
    /// WORKDIR: make sure this absolute directory exists (created 0755, root-owned, with its
    /// parents); when it already exists the step changes no file (`empty_layer`).
    pub ensure_dir: Option<String>,
}

/// Receives what a RUN step's container does, in order.
pub trait RunObserver {
    /// The container was created (before it starts): its full id.
    fn started(&mut self, container_id: &str);
    /// Output of the process (stdout and stderr as they come).
    fn output(&mut self, bytes: &[u8]);
}

/// The engine side of a build. See the module docs for the contract.
pub trait BuildBackend: Sync {
    /// Finds `reference` (an image reference or id) locally, pulling it when it is missing or
    /// when `pull` is set; `platform` is `--platform` of the FROM or of the build. Pull
    /// progress lines go to `log`. Not called for `scratch`.
    fn resolve_image(
        &self,
        reference: &str,
        platform: Option<&str>,
        pull: bool,
        log: &mut dyn FnMut(&str),
    ) -> Result<ImageInfo, BackendError>;

    /// Runs `req.argv` in a new container from `req.commit.parent` with `req.env`, `user`,
    /// `working_dir`, `mounts` and `network`, streaming to `observer`; on exit code 0 commits
    /// the container's changes as described in the module docs and returns the new image id.
    /// A non-zero exit is `Err(BackendError::ExitCode(code))`. The container is removed in
    /// every case.
    fn run(&self, req: &RunRequest, observer: &mut dyn RunObserver)
        -> Result<String, BackendError>;

    /// Writes `req.entries` as a new layer and returns the new image id.
    fn copy(&self, req: &CopyRequest) -> Result<String, BackendError>;

    /// Commits a metadata-only step (or WORKDIR's directory) and returns the new image id.
    fn commit(&self, req: &CommitRequest) -> Result<String, BackendError>;

    /// Whether `path` (absolute) is an existing directory in the image (following symlinks
    /// inside the image). Used for COPY's destination rule: a single file copied to an
    /// existing directory goes inside it.
    fn path_is_dir(&self, image_id: &str, path: &str) -> Result<bool, BackendError>;

    /// Makes the image's root filesystem readable at a host path (read-only), for
    /// `COPY --from`. Every call is paired with [`BuildBackend::release_image`].
    fn mount_image(&self, image_id: &str) -> Result<PathBuf, BackendError>;

    /// Undoes [`BuildBackend::mount_image`].
    fn release_image(&self, image_id: &str, path: &Path);

    /// Downloads `url` (ADD) into the file `dest` (created by the backend).
    fn fetch_url(&self, url: &str, dest: &Path) -> Result<(), BackendError>;

    /// The image id stored under a cache key, if that image still exists.
    fn cache_get(&self, key: &str) -> Result<Option<String>, BackendError>;

    /// Stores a cache entry.
    fn cache_put(&self, key: &str, image_id: &str) -> Result<(), BackendError>;

    /// Points `reference` (`name:tag`, already normalised by the driver) at `image_id`.
    fn tag(&self, image_id: &str, reference: &str) -> Result<(), BackendError>;
}
