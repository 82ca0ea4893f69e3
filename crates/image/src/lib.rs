//! berth-image owns images on disk: the content store (immutable blobs by digest, written to an
//! ingest area, verified and renamed into place), overlay snapshots (each layer unpacked once,
//! keyed by chain ID, shared read-only, plus one writable layer per container), image references
//! with Docker's normalisation, image records and tags, safe layer-tar application (whiteouts,
//! opaque directories, hard links, no escape from the layer), and the archive formats:
//! `docker save`/`load` (docker-archive and OCI layout) and `import`.
//!
//! The API is synchronous; callers in async code use `spawn_blocking`.
//!
//! On-disk layout under the store root: `blobs/sha256/<hex>` (configs, and each layer's blob:
//! compressed as pulled, or gzip'd when made here; data roots of earlier versions hold the
//! uncompressed tar instead, still read), `layerblobs/<diff-id-hex>.json` (which blob holds a
//! layer, and its tar's size),
//! `ingest/` (in-flight blob writes), `tmp/` (spooled archives, layers being unpacked),
//! `layers/<chainid-hex>/diff` (unpacked read-only layers), `l/` (short links to layer dirs),
//! `images/<id-hex>.json` (per-image metadata), `repositories.json` (tags), `taglog.json` (the
//! images each tag pointed to, for `image log`/`image rollback`), and
//! `rw/<container-id>/{upper,work}` (writable layers).
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use berth_api::{
    ContainerConfig, HistoryItem, ImageDeleteItem, ImageInspect, ImagePruneResponse, ImageSummary,
    TagLogItem, TagRollback,
};

mod archive;
mod commit;
pub mod content;
mod layer_blob;
pub mod layer_diff;
pub mod layer_limits;
pub mod layer_tar;
pub mod pgzip;
mod placement;
pub mod pull;
pub mod reference;
mod rollback;
mod snapshot;
mod store;
pub mod taglog;

pub use commit::ChildImage;
pub use pull::{
    CompressedFile, CompressedLayer, GunzipReader, ImageParts, LayerCompression, PulledLayer,
};
pub use reference::Reference;
pub use snapshot::chain_ids;
pub use taglog::TagMove;

/// Errors of the image store. The engine maps the kinds to API status codes.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No such image: the message is Docker's, e.g. `No such image: busybox:latest`.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the state, e.g. an image used by a container.
    #[error("{0}")]
    Conflict(String),
    /// Bad input: a malformed reference, archive, layer or change.
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, ImageError>;

/// Builds an [`ImageError::Io`].
pub(crate) fn io_err(context: impl Into<String>, source: std::io::Error) -> ImageError {
    ImageError::Io {
        context: context.into(),
        source,
    }
}

/// The parts of an image the engine needs to create a container.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// `sha256:<hex>` of the config blob.
    pub id: String,
    /// The image's default container config (Cmd, Entrypoint, Env, WorkingDir, User, ...).
    pub config: ContainerConfig,
}

/// How to mount a container's root filesystem: `mount -t <fstype> <source> <target> -o <options>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub fstype: String,
    pub source: String,
    pub options: Vec<String>,
}

/// An image produced by `load`: its ID and the tags it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    pub id: String,
    pub tags: Vec<String>,
}

/// The image store rooted at a directory (normally `<data-root>/image`). `Send + Sync`: the
/// records live behind a mutex, and mutating operations are serialised by a second one.
pub struct ImageStore {
    root: PathBuf,
    pub(crate) content: content::ContentStore,
    pub(crate) state: std::sync::Mutex<store::State>,
    pub(crate) writer: std::sync::Mutex<()>,
    /// What one layer may expand to ([`layer_tar::LayerLimits`]).
    pub(crate) layer_limits: layer_tar::LayerLimits,
}

impl ImageStore {
    /// Opens (creating if needed) the store under `root`, cleaning interrupted ingests.
    pub fn open(root: &Path) -> Result<Self> {
        store::open(root)
    }

    /// Caps what each layer unpacked from now on may expand to.
    pub fn set_layer_limits(&mut self, limits: layer_tar::LayerLimits) {
        self.layer_limits = limits;
    }

    /// The caps on what one layer may expand to.
    pub fn layer_limits(&self) -> layer_tar::LayerLimits {
        self.layer_limits
    }

    /// The directory this store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves a reference (`busybox`, `busybox:1`, `localhost:5000/a/b:t`, `name@sha256:..`),
    /// a full or short image ID (`sha256:abc..`, `abc123`).
    pub fn resolve(&self, name: &str) -> Result<ResolvedImage> {
        self.resolve_impl(name)
    }

    /// `GET /images/json`: all images, or with `all` also intermediate ones.
    pub fn list(&self, all: bool) -> Result<Vec<ImageSummary>> {
        self.list_impl(all)
    }

    /// `GET /images/{name}/json`.
    pub fn inspect(&self, name: &str) -> Result<ImageInspect> {
        self.inspect_impl(name)
    }

    /// `GET /images/{name}/history`.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryItem>> {
        self.history_impl(name)
    }

    /// `POST /images/{name}/tag`: `target` is a reference such as `repo:tag`.
    pub fn tag(&self, name: &str, target: &str) -> Result<()> {
        self.tag_impl(name, target, TagMove::Tag)
    }

    /// [`ImageStore::tag`], logging the move as `how` (a build's `-t` is [`TagMove::Build`]).
    pub fn tag_as(&self, name: &str, target: &str, how: TagMove) -> Result<()> {
        self.tag_impl(name, target, how)
    }

    /// `GET /images/{name}/log` (berth's own): the moves of tag `name`, newest first.
    /// `NotFound` ("No such image: …") when the tag does not exist.
    pub fn tag_log(&self, name: &str) -> Result<Vec<TagLogItem>> {
        self.tag_log_impl(name)
    }

    /// `POST /images/{name}/rollback` (berth's own): points tag `name` back at the image it
    /// had before its latest move, walking back one version per call. `Conflict` when there is
    /// no earlier image or it was removed; nothing changes then.
    pub fn rollback(&self, name: &str) -> Result<TagRollback> {
        self.rollback_impl(name)
    }

    /// `DELETE /images/{name}`. `in_use(id)` says whether a container uses that image; such an
    /// image is refused with Conflict unless `force` (then only its tags go, as Docker does).
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<ImageDeleteItem>> {
        self.remove_impl(name, force, in_use)
    }

    /// `POST /images/prune`: dangling images (or all unused with `dangling_only == false`).
    pub fn prune(
        &self,
        dangling_only: bool,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<ImagePruneResponse> {
        self.prune_impl(dangling_only, in_use)
    }

    /// `POST /images/load`: a docker-archive or OCI-layout tar (optionally gzip'd). Nothing is
    /// stored when any part is bad.
    pub fn load(&self, archive: &mut dyn Read) -> Result<Vec<LoadedImage>> {
        self.load_impl(archive)
    }

    /// `GET /images/get`: writes an archive `docker load` accepts holding `names`.
    pub fn save(&self, names: &[String], out: &mut dyn Write) -> Result<()> {
        self.save_impl(names, out)
    }

    /// `POST /images/create?fromSrc=-`: a rootfs tarball (optionally gzip'd) becomes a one-layer
    /// image with `config`; tagged `reference` when given. Returns the image ID.
    pub fn import(
        &self,
        tarball: &mut dyn Read,
        reference: Option<&str>,
        config: ContainerConfig,
        message: &str,
    ) -> Result<String> {
        self.import_impl(tarball, reference, config, message)
    }

    /// Creates the writable layer of container `container_id` on image `image_id` and returns how
    /// to mount the container's root filesystem.
    pub fn create_rw_layer(&self, container_id: &str, image_id: &str) -> Result<MountSpec> {
        self.create_rw_layer_impl(container_id, image_id, false)
    }

    /// Like [`ImageStore::create_rw_layer`], for a layer thrown away with its container (`--rm`
    /// containers, build steps): nothing about it is fsynced and its overlay mount is
    /// `volatile` (no sync of the host filesystem at unmount; kernels before 5.10 refuse the
    /// option, and the mount is then retried without it). After a host crash such a layer may
    /// be unusable, which does not matter: it is only ever removed.
    pub fn create_scratch_rw_layer(&self, container_id: &str, image_id: &str) -> Result<MountSpec> {
        self.create_rw_layer_impl(container_id, image_id, true)
    }

    /// The mount of an existing writable layer.
    pub fn rw_layer_mount(&self, container_id: &str) -> Result<MountSpec> {
        self.rw_layer_mount_impl(container_id)
    }

    /// The names of the writable layers on disk (container ids, and the names of build
    /// mounts), for the engine to find layers no container owns after a crash.
    pub fn rw_layer_names(&self) -> Vec<String> {
        std::fs::read_dir(self.root().join("rw"))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Removes container `container_id`'s writable layer (it must be unmounted).
    pub fn remove_rw_layer(&self, container_id: &str) -> Result<()> {
        self.remove_rw_layer_impl(container_id)
    }

    /// `docker commit`: container `container_id`'s writable layer as a new layer on
    /// `child.parent` (no layer, `empty_layer`, when nothing changed). Returns the image ID.
    pub fn commit_rw_layer(&self, container_id: &str, child: &ChildImage) -> Result<String> {
        self.commit_rw_impl(container_id, child)
    }

    /// A new image from `child.parent` plus the layer tar `layer` (optionally gzip'd), or with
    /// only a new config and history entry when `layer` is `None`. Returns the image ID.
    pub fn commit_layer_tar(
        &self,
        child: &ChildImage,
        layer: Option<&mut dyn Read>,
    ) -> Result<String> {
        self.commit_tar_impl(child, layer)
    }

    /// The unpacked layer directories of image `name`, bottom-most first (empty for an image
    /// without layers).
    pub fn layer_dirs(&self, name: &str) -> Result<Vec<PathBuf>> {
        let st = self.lock();
        let (id, _) = st.lookup(name)?;
        Ok(st.images[&id]
            .chain_ids
            .iter()
            .map(|c| self.layer_dir(c).join("diff"))
            .collect())
    }

    /// The number of images (for `/info`).
    pub fn count(&self) -> usize {
        self.lock().images.len()
    }
}

#[cfg(test)]
mod tests;
