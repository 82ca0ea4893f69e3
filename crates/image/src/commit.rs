//! New images made from a parent image: from a container's writable layer (`docker commit`, a
//! build's `RUN`), from a layer tar the caller produced (a build's `COPY`), or with a new config
//! only (a build's metadata steps).
//!
//! The new config is the parent's config blob with `created`, `author`, `comment`, `config`,
//! the parent's `rootfs.diff_ids` plus the new layer's, and the parent's history plus one entry
//! (`empty_layer: true` and no new layer when nothing changed, as dockerd's `NewChildImage`).
//! Atomic: the layer is unpacked and staged in temporary places, and only moved into place
//! together with the config under the store's locks, so a failure leaves no half-written image.

use std::fs;
use std::io::{Read, Seek};
use std::path::PathBuf;

use berth_api::ContainerConfig;
use serde_json::{json, Map, Value};

use crate::content::random_name;
use crate::layer_diff::write_diff;
use crate::reference::Reference;
use crate::snapshot::{KeepBlob, PreparedLayer};
use crate::{io_err, ImageError, ImageStore, Result};

/// What a new child image records besides its layer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChildImage {
    /// The parent image (reference or id); `None`: an empty base (`FROM scratch`).
    pub parent: Option<String>,
    /// The new image's container config.
    pub config: ContainerConfig,
    /// The history entry's `created_by`.
    pub created_by: String,
    /// The image's and the history entry's `author`.
    pub author: String,
    /// The image's and the history entry's `comment` (`docker commit -m`).
    pub comment: String,
    /// References to point at the new image (`repo:tag`); checked before anything is written.
    pub tags: Vec<String>,
}

use berth_sys::time::now_rfc3339;

impl ImageStore {
    /// The parent's raw config (or an empty base) and its id.
    fn parent_config(&self, parent: Option<&str>) -> Result<(Option<String>, Map<String, Value>)> {
        let Some(name) = parent else {
            let mut base = Map::new();
            base.insert("architecture".into(), json!(crate::store::go_arch()));
            base.insert("os".into(), json!("linux"));
            base.insert("rootfs".into(), json!({"type": "layers", "diff_ids": []}));
            return Ok((None, base));
        };
        let id = self.lock().lookup(name)?.0;
        let bytes = self.content.read(&id)?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => Ok((Some(id), m)),
            _ => Err(ImageError::InvalidArgument(format!(
                "invalid image config of {id}"
            ))),
        }
    }

    fn parse_tags(tags: &[String]) -> Result<Vec<Reference>> {
        tags.iter()
            .map(|t| {
                let r = Reference::parse(t)?;
                if r.is_digest() {
                    return Err(ImageError::InvalidArgument(format!(
                        "invalid reference format: {t} is a digest reference"
                    )));
                }
                Ok(r)
            })
            .collect()
    }

    /// Writes the child image: `layer` (a prepared, not yet committed layer) or none.
    fn write_child(
        &self,
        child: &ChildImage,
        mut base: Map<String, Value>,
        parent_id: Option<&str>,
        layer: Option<PreparedLayer>,
        tags: &[Reference],
    ) -> Result<String> {
        let created = now_rfc3339();
        let mut diff_ids: Vec<Value> = base
            .get("rootfs")
            .and_then(|r| r.get("diff_ids"))
            .and_then(|d| d.as_array())
            .cloned()
            .unwrap_or_default();
        let mut history: Vec<Value> = base
            .get("history")
            .and_then(|h| h.as_array())
            .cloned()
            .unwrap_or_default();
        let mut entry = Map::new();
        entry.insert("created".into(), json!(created));
        if !child.created_by.is_empty() {
            entry.insert("created_by".into(), json!(child.created_by));
        }
        if !child.author.is_empty() {
            entry.insert("author".into(), json!(child.author));
        }
        if !child.comment.is_empty() {
            entry.insert("comment".into(), json!(child.comment));
        }
        match &layer {
            Some(l) => diff_ids.push(json!(l.diff_id)),
            None => {
                entry.insert("empty_layer".into(), json!(true));
            }
        }
        history.push(Value::Object(entry));
        base.insert("created".into(), json!(created));
        base.insert(
            "config".into(),
            serde_json::to_value(&child.config).unwrap_or_default(),
        );
        base.insert(
            "rootfs".into(),
            json!({"type": "layers", "diff_ids": diff_ids}),
        );
        base.insert("history".into(), Value::Array(history));
        for (key, value) in [("author", &child.author), ("comment", &child.comment)] {
            if value.is_empty() {
                base.remove(key);
            } else {
                base.insert(key.into(), json!(value));
            }
        }
        base.remove("container");
        base.remove("container_config");
        let bytes = serde_json::to_vec(&Value::Object(base))
            .map_err(|e| io_err("encode config", e.into()))?;
        let mut st = self.lock();
        if let Some(parent) = parent_id {
            if !st.images.contains_key(parent) {
                return Err(ImageError::NotFound(format!("No such image: {parent}")));
            }
        }
        if let Some(l) = layer {
            self.commit_layer(l)?;
        }
        let id = self.commit_image(&mut st, &bytes, tags, crate::taglog::TagMove::Commit)?;
        if let Some(parent) = parent_id {
            self.record_parent(&mut st, &id, parent)?;
        }
        Ok(id)
    }

    /// The chain id of the top layer of image `id` (`None` for an image without layers).
    fn top_chain(&self, id: Option<&str>) -> Option<String> {
        let id = id?;
        self.lock().images.get(id)?.chain_ids.last().cloned()
    }

    pub(crate) fn commit_tar_impl(
        &self,
        child: &ChildImage,
        layer: Option<&mut dyn Read>,
    ) -> Result<String> {
        let tags = Self::parse_tags(&child.tags)?;
        let _w = self.write_lock();
        let (parent_id, base) = self.parent_config(child.parent.as_deref())?;
        let prepared = match layer {
            Some(src) => {
                let top = self.top_chain(parent_id.as_deref());
                Some(self.prepare_layer(src, top.as_deref(), None, KeepBlob::Gzip)?)
            }
            None => None,
        };
        self.write_child(child, base, parent_id.as_deref(), prepared, &tags)
    }

    pub(crate) fn commit_rw_impl(&self, container_id: &str, child: &ChildImage) -> Result<String> {
        let tags = Self::parse_tags(&child.tags)?;
        let rw = self.root().join("rw").join(container_id);
        let upper = rw.join("upper");
        if container_id.contains('/') || !upper.is_dir() {
            return Err(ImageError::NotFound(format!(
                "no writable layer for container {container_id}"
            )));
        }
        let lowers: Vec<PathBuf> = fs::read_to_string(rw.join("lower"))
            .map(|s| s.split(':').map(PathBuf::from).collect())
            .unwrap_or_default();
        let tmp_path = self.tmp_dir().join(format!("diff-{}", random_name()));
        let mut tmp = fs::File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp_path)
            .map_err(|e| io_err("create diff file", e))?;
        let _ = fs::remove_file(&tmp_path);
        let stats = write_diff(&upper, &lowers, true, &mut tmp)
            .map_err(|e| io_err(format!("reading the changes of {container_id}"), e))?;
        tmp.rewind().map_err(|e| io_err("rewind diff", e))?;
        let _w = self.write_lock();
        let (parent_id, base) = self.parent_config(child.parent.as_deref())?;
        let prepared = if stats.entries == 0 {
            None
        } else {
            let top = self.top_chain(parent_id.as_deref());
            Some(self.prepare_layer(&mut tmp, top.as_deref(), None, KeepBlob::Gzip)?)
        };
        self.write_child(child, base, parent_id.as_deref(), prepared, &tags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer_tar(name: &str, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
        b.into_inner().unwrap()
    }

    fn record(store: &ImageStore, id: &str) -> crate::store::ImageConfigFile {
        store.lock().images[id].config.clone()
    }

    #[test]
    fn children_from_tars_configs_and_rw_layers() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        let tar = layer_tar("a.txt", b"hello");
        let base = store
            .commit_layer_tar(
                &ChildImage {
                    created_by: "COPY a".into(),
                    tags: vec!["base:1".into()],
                    ..Default::default()
                },
                Some(&mut tar.as_slice()),
            )
            .unwrap();
        assert_eq!(store.resolve("base:1").unwrap().id, base);
        let cfg = record(&store, &base);
        assert_eq!(cfg.rootfs.diff_ids.len(), 1);
        assert_eq!(cfg.history.len(), 1);
        assert!(!cfg.history[0].empty_layer);

        let meta = store
            .commit_layer_tar(
                &ChildImage {
                    parent: Some(base.clone()),
                    created_by: "ENV A=b".into(),
                    config: ContainerConfig {
                        env: vec!["A=b".into()],
                        ..Default::default()
                    },
                    ..Default::default()
                },
                None,
            )
            .unwrap();
        let cfg = record(&store, &meta);
        assert_eq!(cfg.rootfs.diff_ids.len(), 1);
        assert_eq!(cfg.history.len(), 2);
        assert!(cfg.history[1].empty_layer);
        assert_eq!(cfg.config.unwrap().env, vec!["A=b"]);

        // A writable layer with one new file: one more layer, the file inside.
        store.create_rw_layer("c1", &meta).unwrap();
        fs::write(dir.path().join("rw/c1/upper/new.txt"), b"x").unwrap();
        let child = ChildImage {
            parent: Some(meta.clone()),
            comment: "msg".into(),
            ..Default::default()
        };
        let committed = store.commit_rw_layer("c1", &child).unwrap();
        let cfg = record(&store, &committed);
        assert_eq!(cfg.rootfs.diff_ids.len(), 2);
        assert_eq!(cfg.comment, "msg");
        let top = store.layer_dirs(&committed).unwrap().pop().unwrap();
        assert_eq!(fs::read(top.join("new.txt")).unwrap(), b"x");
        // Parent recorded, as dockerd's: the image committed from, none for a FROM-scratch one.
        assert_eq!(store.inspect(&committed).unwrap().parent, meta);
        assert_eq!(store.inspect(&meta).unwrap().parent, base);
        assert_eq!(store.inspect(&base).unwrap().parent, "");
        let reopened = ImageStore::open(dir.path()).unwrap();
        assert_eq!(
            reopened.inspect(&committed).unwrap().parent,
            meta,
            "persisted"
        );
        drop(reopened);

        // Nothing changed: no layer, an empty_layer history entry.
        store.create_rw_layer("c2", &meta).unwrap();
        let same = store.commit_rw_layer("c2", &child).unwrap();
        let cfg = record(&store, &same);
        assert_eq!(cfg.rootfs.diff_ids.len(), 1);
        assert!(cfg.history.last().unwrap().empty_layer);

        // A bad tag changes nothing.
        let before = store.count();
        let bad = ChildImage {
            tags: vec!["Bad:Ref".into()],
            ..child
        };
        assert!(store.commit_rw_layer("c1", &bad).is_err());
        assert!(store.commit_layer_tar(&bad, None).is_err());
        assert_eq!(store.count(), before);
        assert!(store
            .commit_rw_layer("missing", &ChildImage::default())
            .is_err());
    }
}
