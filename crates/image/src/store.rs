//! Image records and the tag index.
//!
//! An image is its config blob (ID = `sha256:` + sha256 of the config bytes) plus metadata in
//! `images/<hex>.json`; the tags live in `repositories.json`, written atomically. This module also
//! implements the read side (resolve, list, inspect, history) and tag/remove/prune/import.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use berth_api::{
    ContainerConfig, GraphDriver, HistoryItem, ImageDeleteItem, ImageInspect, ImagePruneResponse,
    ImageSummary, RootFs,
};
use serde::{Deserialize, Serialize};

use crate::content::{atomic_write, digest_hex, ContentStore};
use crate::reference::{familiar, is_hex, Reference};
use crate::snapshot::{chain_ids, KeepBlob, PreparedLayer};
use crate::taglog::{TagLog, TagMove};
use crate::{io_err, ImageError, ImageStore, ResolvedImage, Result};

/// The parts of an OCI/Docker image config this crate reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ImageConfigFile {
    pub architecture: String,
    pub os: String,
    pub created: Option<String>,
    pub author: String,
    pub comment: String,
    pub docker_version: String,
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFsConfig,
    pub history: Vec<HistoryEntry>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RootFsConfig {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct HistoryEntry {
    pub created: Option<String>,
    pub created_by: String,
    pub author: String,
    pub comment: String,
    pub empty_layer: bool,
}

/// Parses and validates an image config.
pub(crate) fn parse_config(bytes: &[u8]) -> Result<ImageConfigFile> {
    let cfg: ImageConfigFile = serde_json::from_slice(bytes)
        .map_err(|e| ImageError::InvalidArgument(format!("invalid image config: {e}")))?;
    for d in &cfg.rootfs.diff_ids {
        if !crate::reference::valid_digest(d) {
            return Err(ImageError::InvalidArgument(format!(
                "invalid image config: bad diff id {d}"
            )));
        }
    }
    Ok(cfg)
}

/// Per-image metadata kept in `images/<hex>.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct ImageMeta {
    pub last_tag_time: Option<String>,
    /// The image this one was made from here (`docker commit`, a build step), as dockerd
    /// records it: inspect's `Parent`, the list's `ParentId`. Pulled and loaded images have none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// An image known to the store.
#[derive(Debug, Clone)]
pub(crate) struct Image {
    pub id: String,
    pub config: ImageConfigFile,
    pub chain_ids: Vec<String>,
    pub size: i64,
    pub meta: ImageMeta,
}

/// The in-memory records: images by ID, full references (`docker.io/library/x:t`) to IDs, and
/// the tags' logs.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub images: BTreeMap<String, Image>,
    pub refs: BTreeMap<String, String>,
    pub taglog: TagLog,
}

use berth_sys::ids::short_id;

fn rfc3339_to_unix(s: Option<&str>) -> i64 {
    s.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

use berth_sys::time::now_rfc3339;

impl State {
    /// Finds the image `name` designates: a reference (tags win) or a full/short ID.
    /// Returns the ID and, when matched by reference, the reference.
    pub fn lookup(&self, name: &str) -> Result<(String, Option<Reference>)> {
        let by_prefix = |hex: &str| -> Option<String> {
            let full = format!("sha256:{hex}");
            let mut it = self
                .images
                .range(full.clone()..)
                .take_while(|(k, _)| k.starts_with(&full));
            match (it.next(), it.next()) {
                (Some((k, _)), None) => Some(k.clone()),
                _ => None,
            }
        };
        let not_found = |what: &str| ImageError::NotFound(format!("No such image: {what}"));
        if let Some(hex) = name.strip_prefix("sha256:") {
            if !is_hex(hex) || hex.len() > 64 {
                return Err(ImageError::InvalidArgument(
                    "invalid reference format".into(),
                ));
            }
            return by_prefix(hex)
                .map(|id| (id, None))
                .ok_or_else(|| not_found(name));
        }
        match Reference::parse(name) {
            Ok(r) => {
                if let Some(id) = self.refs.get(&r.full()) {
                    return Ok((id.clone(), Some(r)));
                }
                if is_hex(name) && name.len() <= 64 {
                    if let Some(id) = by_prefix(name) {
                        return Ok((id, None));
                    }
                }
                Err(not_found(&r.familiar()))
            }
            Err(e) => {
                if is_hex(name) && name.len() <= 64 {
                    return by_prefix(name)
                        .map(|id| (id, None))
                        .ok_or_else(|| not_found(name));
                }
                Err(e)
            }
        }
    }

    /// Removes reference `full` and, with the tag, its log.
    pub fn remove_ref(&mut self, full: &str) {
        self.refs.remove(full);
        self.taglog.forget(full);
    }

    /// Full references to `id`, sorted.
    pub fn refs_of(&self, id: &str) -> Vec<String> {
        self.refs
            .iter()
            .filter(|(_, v)| v.as_str() == id)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Familiar tags and digests of `id`.
    pub fn tags_and_digests(&self, id: &str) -> (Vec<String>, Vec<String>) {
        let mut tags = Vec::new();
        let mut digests = Vec::new();
        for r in self.refs_of(id) {
            if r.contains('@') {
                digests.push(familiar(&r));
            } else {
                tags.push(familiar(&r));
            }
        }
        (tags, digests)
    }
}

/// The on-disk form of `repositories.json` (Docker's shape: repo → reference → ID).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Repositories {
    #[serde(rename = "Repositories", default)]
    repositories: BTreeMap<String, BTreeMap<String, String>>,
}

/// The tags' logs, under the store root.
const TAGLOG_FILE: &str = "taglog.json";

pub(crate) fn open(root: &Path) -> Result<ImageStore> {
    for d in ["layers", "images", "rw", "tmp", "l"] {
        let p = root.join(d);
        fs::create_dir_all(&p).map_err(|e| io_err(format!("create {}", p.display()), e))?;
    }
    // Layers are unpacked in directories of `tmp/`: spread them over the disk.
    crate::placement::spread_subdirectories(&root.join("tmp"));
    let content = ContentStore::open(root)?;
    // Leftovers of interrupted loads, unpacks and removals.
    if let Ok(rd) = fs::read_dir(root.join("tmp")) {
        for e in rd.flatten() {
            let _ = crate::layer_tar::remove_any(&e.path());
        }
    }
    let store = ImageStore {
        root: root.to_path_buf(),
        content,
        state: Mutex::new(State::default()),
        writer: Mutex::new(()),
        layer_limits: crate::layer_tar::LayerLimits::default(),
    };
    let mut st = State::default();
    if let Ok(rd) = fs::read_dir(root.join("images")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(hex) = name.strip_suffix(".json") else {
                continue;
            };
            if !crate::reference::is_full_hex(hex) {
                continue;
            }
            let id = format!("sha256:{hex}");
            let meta: ImageMeta = fs::read(e.path())
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            let Ok(bytes) = store.content.read(&id) else {
                continue;
            };
            let Ok(config) = parse_config(&bytes) else {
                continue;
            };
            st.images
                .insert(id.clone(), store.make_image(id, config, meta));
        }
    }
    let repos_path = root.join("repositories.json");
    if let Ok(bytes) = fs::read(&repos_path) {
        let repos: Repositories = serde_json::from_slice(&bytes).map_err(|e| {
            ImageError::InvalidArgument(format!("corrupt {}: {e}", repos_path.display()))
        })?;
        for refs in repos.repositories.values() {
            for (r, id) in refs {
                if let Ok(r) = Reference::parse(r) {
                    if st.images.contains_key(id) {
                        st.refs.insert(r.full(), id.clone());
                    }
                }
            }
        }
    }
    st.taglog = TagLog::load(&root.join(TAGLOG_FILE));
    let refs = st.refs.clone();
    st.taglog.reconcile(&|tag| refs.get(tag).cloned());
    *store.lock() = st;
    Ok(store)
}

impl ImageStore {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write_lock(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn make_image(&self, id: String, config: ImageConfigFile, meta: ImageMeta) -> Image {
        let chain_ids = chain_ids(&config.rootfs.diff_ids);
        let size = config
            .rootfs
            .diff_ids
            .iter()
            .map(|d| self.layer_tar_size(d).unwrap_or(0) as i64)
            .sum();
        Image {
            id,
            config,
            chain_ids,
            size,
            meta,
        }
    }

    pub(crate) fn persist_refs(&self, st: &State) -> Result<()> {
        let mut repos = Repositories::default();
        for (r, id) in &st.refs {
            let Ok(parsed) = Reference::parse(r) else {
                continue;
            };
            repos
                .repositories
                .entry(parsed.repo_familiar())
                .or_default()
                .insert(parsed.familiar(), id.clone());
        }
        let bytes =
            serde_json::to_vec(&repos).map_err(|e| io_err("encode repositories", e.into()))?;
        atomic_write(&self.root().join("repositories.json"), &bytes)?;
        st.taglog.save(&self.root().join(TAGLOG_FILE))
    }

    fn persist_meta(&self, img: &Image) -> Result<()> {
        let bytes =
            serde_json::to_vec(&img.meta).map_err(|e| io_err("encode image metadata", e.into()))?;
        atomic_write(
            &self
                .root()
                .join("images")
                .join(format!("{}.json", digest_hex(&img.id))),
            &bytes,
        )
    }

    /// Points `r` at `id`, logging the move of a tag to another image as `how` (the caller
    /// holds the state lock and persists the refs). Every path that moves a reference comes here.
    pub(crate) fn set_ref(
        &self,
        st: &mut State,
        r: &Reference,
        id: &str,
        how: TagMove,
    ) -> Result<()> {
        let full = r.full();
        let previous = st.refs.insert(full.clone(), id.to_string());
        if !r.is_digest() {
            st.taglog
                .record(&full, previous.as_deref(), id, how, &now_rfc3339());
        }
        if let Some(img) = st.images.get_mut(id) {
            img.meta.last_tag_time = Some(now_rfc3339());
            let img = img.clone();
            self.persist_meta(&img)?;
        }
        Ok(())
    }

    /// Stores a new image from committed layers and a config: the config blob, the metadata
    /// file, the record, and its tags. The caller holds the state lock.
    pub(crate) fn commit_image(
        &self,
        st: &mut State,
        config_bytes: &[u8],
        tags: &[Reference],
        how: TagMove,
    ) -> Result<String> {
        let config = parse_config(config_bytes)?;
        let id = self.content.write_blob(config_bytes, None)?;
        if !st.images.contains_key(&id) {
            let img = self.make_image(id.clone(), config, ImageMeta::default());
            self.persist_meta(&img)?;
            st.images.insert(id.clone(), img);
        }
        for t in tags {
            self.set_ref(st, t, &id, how)?;
        }
        self.persist_refs(st)?;
        Ok(id)
    }

    /// Records that image `id` was made from `parent` (kept once: an image that already had
    /// one made the same way keeps it).
    pub(crate) fn record_parent(&self, st: &mut State, id: &str, parent: &str) -> Result<()> {
        let Some(img) = st.images.get_mut(id) else {
            return Ok(());
        };
        if img.meta.parent.is_some() || img.id == parent {
            return Ok(());
        }
        img.meta.parent = Some(parent.to_string());
        let img = img.clone();
        self.persist_meta(&img)
    }

    /// Deletes image `id` and the layers and blobs no other image needs. Returns the Deleted
    /// entries and the bytes reclaimed.
    fn delete_image(&self, st: &mut State, id: &str) -> Result<(Vec<ImageDeleteItem>, u64)> {
        let refs = st.refs_of(id);
        for r in refs {
            st.remove_ref(&r);
        }
        self.persist_refs(st)?;
        let Some(img) = st.images.remove(id) else {
            return Ok((Vec::new(), 0));
        };
        let _ = fs::remove_file(
            self.root()
                .join("images")
                .join(format!("{}.json", digest_hex(id))),
        );
        self.content.remove(id);
        let mut items = vec![ImageDeleteItem {
            untagged: None,
            deleted: Some(id.to_string()),
        }];
        let needed_chains: BTreeSet<&String> = st
            .images
            .values()
            .flat_map(|i| i.chain_ids.iter())
            .collect();
        let needed_diffs: BTreeSet<&String> = st
            .images
            .values()
            .flat_map(|i| i.config.rootfs.diff_ids.iter())
            .collect();
        let mut reclaimed = 0u64;
        for c in img.chain_ids.iter().rev() {
            if !needed_chains.contains(c) {
                self.remove_layer(c);
                items.push(ImageDeleteItem {
                    untagged: None,
                    deleted: Some(c.clone()),
                });
            }
        }
        for d in &img.config.rootfs.diff_ids {
            if !needed_diffs.contains(d) {
                reclaimed += self.remove_layer_data(d);
            }
        }
        Ok((items, reclaimed))
    }

    pub(crate) fn resolve_impl(&self, name: &str) -> Result<ResolvedImage> {
        let st = self.lock();
        let (id, _) = st.lookup(name)?;
        let config = st.images[&id].config.config.clone().unwrap_or_default();
        Ok(ResolvedImage { id, config })
    }

    fn summary(&self, st: &State, img: &Image) -> ImageSummary {
        let (repo_tags, repo_digests) = st.tags_and_digests(&img.id);
        ImageSummary {
            id: img.id.clone(),
            parent_id: img.meta.parent.clone().unwrap_or_default(),
            repo_tags,
            repo_digests,
            created: rfc3339_to_unix(img.config.created.as_deref()),
            size: img.size,
            shared_size: -1,
            labels: img
                .config
                .config
                .as_ref()
                .map(|c| c.labels.clone())
                .unwrap_or_default(),
            containers: -1,
        }
    }

    pub(crate) fn list_impl(&self, _all: bool) -> Result<Vec<ImageSummary>> {
        let st = self.lock();
        let mut out: Vec<ImageSummary> = st.images.values().map(|i| self.summary(&st, i)).collect();
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    pub(crate) fn inspect_impl(&self, name: &str) -> Result<ImageInspect> {
        let st = self.lock();
        let (id, _) = st.lookup(name)?;
        let img = &st.images[&id];
        let (repo_tags, repo_digests) = st.tags_and_digests(&id);
        let mut data = BTreeMap::new();
        let dirs: Vec<String> = img
            .chain_ids
            .iter()
            .rev()
            .map(|c| {
                self.layer_dir(c)
                    .join("diff")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        if let Some((top, rest)) = dirs.split_first() {
            data.insert("UpperDir".to_string(), top.clone());
            if let Some(c) = img.chain_ids.last() {
                data.insert(
                    "WorkDir".to_string(),
                    self.layer_dir(c)
                        .join("work")
                        .to_string_lossy()
                        .into_owned(),
                );
                data.insert(
                    "MergedDir".to_string(),
                    self.layer_dir(c)
                        .join("merged")
                        .to_string_lossy()
                        .into_owned(),
                );
            }
            if !rest.is_empty() {
                data.insert("LowerDir".to_string(), rest.join(":"));
            }
        }
        let mut metadata = BTreeMap::new();
        metadata.insert(
            "LastTagTime".to_string(),
            img.meta
                .last_tag_time
                .clone()
                .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string()),
        );
        Ok(ImageInspect {
            id: id.clone(),
            repo_tags,
            repo_digests,
            parent: img.meta.parent.clone().unwrap_or_default(),
            comment: img.config.comment.clone(),
            created: img.config.created.clone().unwrap_or_default(),
            docker_version: img.config.docker_version.clone(),
            author: img.config.author.clone(),
            config: img.config.config.clone().unwrap_or_default(),
            architecture: img.config.architecture.clone(),
            os: img.config.os.clone(),
            size: img.size,
            graph_driver: GraphDriver {
                name: "overlay2".into(),
                data,
            },
            root_fs: RootFs {
                kind: "layers".into(),
                layers: img.config.rootfs.diff_ids.clone(),
            },
            metadata,
            berth_signatures: Vec::new(),
        })
    }

    pub(crate) fn history_impl(&self, name: &str) -> Result<Vec<HistoryItem>> {
        let st = self.lock();
        let (id, _) = st.lookup(name)?;
        let img = &st.images[&id];
        let (tags, _) = st.tags_and_digests(&id);
        let diffs = &img.config.rootfs.diff_ids;
        let layer_size = |i: usize| {
            diffs
                .get(i)
                .and_then(|d| self.layer_tar_size(d))
                .unwrap_or(0) as i64
        };
        let mut items = Vec::new();
        if img.config.history.is_empty() {
            for i in 0..diffs.len() {
                items.push(HistoryItem {
                    created: rfc3339_to_unix(img.config.created.as_deref()),
                    size: layer_size(i),
                    ..Default::default()
                });
            }
        } else {
            let mut layer = 0;
            for h in &img.config.history {
                let size = if h.empty_layer {
                    0
                } else {
                    layer += 1;
                    layer_size(layer - 1)
                };
                items.push(HistoryItem {
                    id: String::new(),
                    created: rfc3339_to_unix(h.created.as_deref()),
                    created_by: h.created_by.clone(),
                    tags: Vec::new(),
                    size,
                    comment: h.comment.clone(),
                });
            }
        }
        items.reverse();
        for (i, it) in items.iter_mut().enumerate() {
            if i == 0 {
                it.id = id.clone();
                it.tags = tags.clone();
            } else {
                it.id = "<missing>".into();
            }
        }
        Ok(items)
    }

    pub(crate) fn tag_impl(&self, name: &str, target: &str, how: TagMove) -> Result<()> {
        let r = Reference::parse(target)?;
        if r.is_digest() {
            return Err(ImageError::InvalidArgument(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        if crate::reference::is_full_hex(r.path.rsplit('/').next().unwrap_or(""))
            && r.domain == "docker.io"
        {
            return Err(ImageError::InvalidArgument(
                "invalid repository name, cannot specify 64-byte hexadecimal strings".into(),
            ));
        }
        let _w = self.write_lock();
        let mut st = self.lock();
        let (id, _) = st.lookup(name)?;
        self.set_ref(&mut st, &r, &id, how)?;
        self.persist_refs(&st)
    }

    pub(crate) fn remove_impl(
        &self,
        name: &str,
        force: bool,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<ImageDeleteItem>> {
        let _w = self.write_lock();
        let mut st = self.lock();
        let (id, by_ref) = st.lookup(name)?;
        let short = short_id(&id);
        let used = in_use(&id);
        let mut items = Vec::new();
        match by_ref {
            Some(r) => {
                let refs = st.refs_of(&id);
                if used && refs.len() == 1 && !force {
                    return Err(ImageError::Conflict(format!(
                        "conflict: unable to remove repository reference \"{}\" (must force) - container is using its referenced image {short}",
                        r.familiar()
                    )));
                }
                st.remove_ref(&r.full());
                self.persist_refs(&st)?;
                items.push(ImageDeleteItem {
                    untagged: Some(r.familiar()),
                    deleted: None,
                });
                if refs.len() > 1 || used {
                    return Ok(items);
                }
            }
            None => {
                let refs = st.refs_of(&id);
                if refs.len() > 1 && !force {
                    return Err(ImageError::Conflict(format!(
                        "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
                    )));
                }
                if used && !force {
                    return Err(ImageError::Conflict(format!(
                        "conflict: unable to delete {short} (must be forced) - image is being used by a container"
                    )));
                }
                for r in &refs {
                    st.remove_ref(r);
                    items.push(ImageDeleteItem {
                        untagged: Some(familiar(r)),
                        deleted: None,
                    });
                }
                self.persist_refs(&st)?;
                if used {
                    return Ok(items);
                }
            }
        }
        let (deleted, _) = self.delete_image(&mut st, &id)?;
        items.extend(deleted);
        Ok(items)
    }

    pub(crate) fn prune_impl(
        &self,
        dangling_only: bool,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<ImagePruneResponse> {
        let _w = self.write_lock();
        let mut st = self.lock();
        // Images a tag's log names stay: they are what `image rollback` goes back to.
        let logged = st.taglog.protected_ids();
        let candidates: Vec<String> = st
            .images
            .keys()
            .filter(|id| !in_use(id) && !logged.contains(*id))
            .filter(|id| !dangling_only || st.refs_of(id).is_empty())
            .cloned()
            .collect();
        let mut items = Vec::new();
        let mut reclaimed = 0;
        for id in candidates {
            for r in st.refs_of(&id) {
                items.push(ImageDeleteItem {
                    untagged: Some(familiar(&r)),
                    deleted: None,
                });
            }
            let (deleted, bytes) = self.delete_image(&mut st, &id)?;
            items.extend(deleted);
            reclaimed += bytes;
        }
        Ok(ImagePruneResponse {
            images_deleted: if items.is_empty() { None } else { Some(items) },
            space_reclaimed: reclaimed,
        })
    }

    pub(crate) fn import_impl(
        &self,
        tarball: &mut dyn Read,
        reference: Option<&str>,
        config: ContainerConfig,
        message: &str,
    ) -> Result<String> {
        let tags = match reference {
            Some(r) if !r.is_empty() => {
                let r = Reference::parse(r)?;
                if r.is_digest() {
                    return Err(ImageError::InvalidArgument(
                        "cannot import with a digest reference".into(),
                    ));
                }
                vec![r]
            }
            _ => Vec::new(),
        };
        let _w = self.write_lock();
        let layer: PreparedLayer = self.prepare_layer(tarball, None, None, KeepBlob::Tar)?;
        let created = now_rfc3339();
        let comment = if message.is_empty() {
            "Imported from -".to_string()
        } else {
            message.to_string()
        };
        let cfg = serde_json::json!({
            "architecture": go_arch(),
            "os": "linux",
            "created": created,
            "comment": comment,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.clone()]},
            "history": [{"created": created, "comment": comment}],
        });
        let bytes = serde_json::to_vec(&cfg).map_err(|e| io_err("encode config", e.into()))?;
        let mut st = self.lock();
        self.commit_layer(layer)?;
        self.commit_image(&mut st, &bytes, &tags, TagMove::Import)
    }
}

/// The Go name of this machine's architecture, as image configs use.
pub(crate) fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "arm" => "arm",
        other => other,
    }
}
