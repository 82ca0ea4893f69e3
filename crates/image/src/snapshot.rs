//! Snapshots: read-only layers unpacked once under `layers/<chainid-hex>/diff` and shared across
//! images, and the per-container writable layers under `rw/<container>/{upper,work}`.
//!
//! A layer is unpacked into `tmp/<random>/diff` and renamed into place only when complete, so a
//! half-unpacked layer is never visible. Layers are garbage-collected when no image needs them.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::content::{digest_hex, random_name, sync_dir};
use crate::layer_blob::StagedLayerBlob;
use crate::layer_tar::{apply_layer, maybe_decompress, remove_tree};
use crate::{io_err, ImageError, ImageStore, MountSpec, Result};

/// The OCI chain IDs of a list of diff IDs: chain(L0) = diff(L0),
/// chain(Ln) = sha256(chain(Ln-1) + " " + diff(Ln)).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!("{prev} {d}").as_bytes()))
            ),
        };
        out.push(next);
    }
    out
}

/// The next chain ID after `parent` for a layer with `diff_id`.
pub(crate) fn next_chain(parent: Option<&str>, diff_id: &str) -> String {
    match parent {
        None => diff_id.to_string(),
        Some(p) => format!(
            "sha256:{}",
            hex::encode(Sha256::digest(format!("{p} {diff_id}").as_bytes()))
        ),
    }
}

/// A temporary directory removed on drop unless kept.
pub(crate) struct TmpDir {
    pub path: PathBuf,
    keep: bool,
}

impl TmpDir {
    pub fn new(parent: &Path) -> Result<TmpDir> {
        let path = parent.join(random_name());
        fs::create_dir_all(&path).map_err(|e| io_err(format!("mkdir {}", path.display()), e))?;
        Ok(TmpDir { path, keep: false })
    }

    pub fn keep(mut self) -> PathBuf {
        self.keep = true;
        self.path.clone()
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = remove_tree(&self.path);
        }
    }
}

/// A layer ready to be committed: unpacked in a temp dir (unless already present) with its
/// blob staged in the content store (unless already present, or kept by the caller).
pub(crate) struct PreparedLayer {
    pub chain_id: String,
    pub diff_id: String,
    /// The size of the layer's uncompressed tar.
    pub tar_size: u64,
    tmp: Option<TmpDir>,
    pub blob: Option<StagedLayerBlob>,
}

/// What [`ImageStore::prepare_layer`] keeps of the layer stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeepBlob {
    /// A layer made here (build, commit): its tar, gzip'd once
    /// ([`ImageStore::stage_gzip_blob`]).
    Gzip,
    /// A layer loaded or imported: its tar as given (containerd keeps an imported archive's
    /// blobs the same way); compressing it would triple a load's time (BENCHMARKS.md).
    Tar,
    /// A pulled layer: nothing; the caller keeps the blob as downloaded.
    ByCaller,
}

/// Where [`ImageStore::prepare_layer`] tees a layer's tar.
enum Tee {
    Gzip(io::BufWriter<fs::File>),
    Tar(crate::content::IngestWriter),
    Nothing,
}

/// Validates a container ID used as a directory name.
fn check_container_id(id: &str) -> Result<()> {
    if id.is_empty()
        || id.len() > 128
        || id == "."
        || id == ".."
        || id.contains('/')
        || id.contains('\0')
    {
        return Err(ImageError::InvalidArgument(format!(
            "invalid container id {id:?}"
        )));
    }
    Ok(())
}

const MAX_OPTIONS: usize = 4000;

/// The file that marks a writable layer as scratch (see `ImageStore::create_scratch_rw_layer`).
const SCRATCH_MARK: &str = "scratch";

impl ImageStore {
    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root().join("tmp")
    }

    /// The directory of the layer with `chain_id` (holding `diff`).
    pub(crate) fn layer_dir(&self, chain_id: &str) -> PathBuf {
        self.root().join("layers").join(digest_hex(chain_id))
    }

    fn short_link(&self, chain_id: &str) -> PathBuf {
        self.root().join("l").join(&digest_hex(chain_id)[..20])
    }

    pub(crate) fn layer_exists(&self, chain_id: &str) -> bool {
        self.layer_dir(chain_id).join("diff").is_dir()
    }

    /// Unpacks (or, for a layer already present, only verifies) a layer stream on top of
    /// `parent`. `expected` is the diff ID the layer must have; `keep` says what is stored of
    /// the stream besides the unpacked files.
    pub(crate) fn prepare_layer(
        &self,
        src: &mut dyn Read,
        parent: Option<&str>,
        expected: Option<&str>,
        keep: KeepBlob,
    ) -> Result<PreparedLayer> {
        let mismatch = |got: &str| {
            ImageError::InvalidArgument(format!(
                "invalid archive: layer digest mismatch: expected {}, got {got}",
                expected.unwrap_or("")
            ))
        };
        if let Some(exp) = expected {
            let chain = next_chain(parent, exp);
            if self.layer_exists(&chain) && self.layer_data_exists(exp) {
                let mut plain = maybe_decompress(Box::new(src))?;
                let (got, tar_size) = crate::content::digest_reader(&mut plain)
                    .map_err(|e| ImageError::InvalidArgument(format!("invalid layer: {e}")))?;
                if got != exp {
                    return Err(mismatch(&got));
                }
                return Ok(PreparedLayer {
                    chain_id: chain,
                    diff_id: got,
                    tar_size,
                    tmp: None,
                    blob: None,
                });
            }
        }
        let tmp = TmpDir::new(&self.tmp_dir())?;
        let diff = tmp.path.join("diff");
        fs::create_dir(&diff).map_err(|e| io_err(format!("mkdir {}", diff.display()), e))?;
        fs::set_permissions(&diff, fs::Permissions::from_mode(0o755))
            .map_err(|e| io_err("chmod layer", e))?;
        // A layer made here tees its tar into an unnamed temp file, gzip'd once it is whole;
        // a loaded one tees it into the content store (apply_layer hashes every byte it tees:
        // the diff ID is that blob's digest).
        let mut tee = match keep {
            KeepBlob::Gzip => Tee::Gzip(io::BufWriter::with_capacity(
                1 << 16,
                tempfile::tempfile_in(self.tmp_dir())
                    .map_err(|e| io_err("create a temp file", e))?,
            )),
            KeepBlob::Tar => Tee::Tar(self.content.writer_hashed_by_caller()?),
            KeepBlob::ByCaller => Tee::Nothing,
        };
        let writer: Option<&mut dyn io::Write> = match &mut tee {
            Tee::Gzip(w) => Some(w),
            Tee::Tar(w) => Some(w),
            Tee::Nothing => None,
        };
        let applied = apply_layer(src, &diff, writer, self.layer_limits)?;
        if let Some(exp) = expected {
            if applied.diff_id != exp {
                return Err(mismatch(&applied.diff_id));
            }
        }
        let blob = match tee {
            Tee::Gzip(w) => {
                let file = w
                    .into_inner()
                    .map_err(|e| io_err("write layer tar", e.into_error()))?;
                Some(self.stage_gzip_blob(file, applied.size)?)
            }
            Tee::Tar(w) => {
                let blob = w.finish_hashed_by_caller(&applied.diff_id, applied.size)?;
                Some(StagedLayerBlob::plain_tar(blob))
            }
            Tee::Nothing => None,
        };
        let chain = next_chain(parent, &applied.diff_id);
        let tmp = if self.layer_exists(&chain) {
            None
        } else {
            Some(tmp)
        };
        Ok(PreparedLayer {
            chain_id: chain,
            diff_id: applied.diff_id,
            tar_size: applied.size,
            tmp,
            blob,
        })
    }

    /// Moves a prepared layer into place (the caller holds the state lock).
    pub(crate) fn commit_layer(&self, layer: PreparedLayer) -> Result<()> {
        if let Some(blob) = layer.blob {
            self.commit_layer_blob(&layer.diff_id, blob)?;
        }
        if let Some(tmp) = layer.tmp {
            let dest = self.layer_dir(&layer.chain_id);
            if !dest.join("diff").is_dir() {
                let _ = remove_tree(&dest);
                let layers = self.root().join("layers");
                fs::rename(&tmp.path, &dest)
                    .map_err(|e| io_err(format!("commit layer {}", layer.chain_id), e))?;
                tmp.keep();
                sync_dir(&layers)?;
            }
        }
        Ok(())
    }

    /// Removes an unpacked layer.
    pub(crate) fn remove_layer(&self, chain_id: &str) {
        let _ = fs::remove_file(self.short_link(chain_id));
        let dir = self.layer_dir(chain_id);
        // Rename first so a half-removed layer is never taken for a complete one.
        let doomed = self.tmp_dir().join(format!("rm-{}", random_name()));
        if fs::rename(&dir, &doomed).is_ok() {
            let _ = remove_tree(&doomed);
        } else {
            let _ = remove_tree(&dir);
        }
    }

    /// The lower directories of an image, top-most first, using short links when the option
    /// string would not fit in a page.
    fn lowerdirs(&self, chains: &[String], extra: usize) -> Result<String> {
        let full: Vec<String> = chains
            .iter()
            .rev()
            .map(|c| {
                self.layer_dir(c)
                    .join("diff")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let joined = full.join(":");
        if joined.len() + extra <= MAX_OPTIONS {
            return Ok(joined);
        }
        let l = self.root().join("l");
        fs::create_dir_all(&l).map_err(|e| io_err("mkdir l", e))?;
        let mut short = Vec::new();
        for c in chains.iter().rev() {
            let link = self.short_link(c);
            if fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(self.layer_dir(c).join("diff"), &link)
                    .map_err(|e| io_err(format!("symlink {}", link.display()), e))?;
            }
            short.push(link.to_string_lossy().into_owned());
        }
        Ok(short.join(":"))
    }

    fn rw_dir(&self, container_id: &str) -> PathBuf {
        self.root().join("rw").join(container_id)
    }

    fn mount_spec(&self, container_id: &str, lower: &str, scratch: bool) -> MountSpec {
        let rw = self.rw_dir(container_id);
        let mut options = vec![
            format!("lowerdir={lower}"),
            format!("upperdir={}", rw.join("upper").display()),
            format!("workdir={}", rw.join("work").display()),
        ];
        if scratch {
            options.push("volatile".into());
        }
        MountSpec {
            fstype: "overlay".into(),
            source: "overlay".into(),
            options,
        }
    }

    pub(crate) fn create_rw_layer_impl(
        &self,
        container_id: &str,
        image_id: &str,
        scratch: bool,
    ) -> Result<MountSpec> {
        check_container_id(container_id)?;
        let (id, chains) = {
            let st = self.lock();
            let (id, _) = st.lookup(image_id)?;
            let chains = st.images[&id].chain_ids.clone();
            (id, chains)
        };
        let rw = self.rw_dir(container_id);
        for sub in ["upper", "work"] {
            let d = rw.join(sub);
            fs::create_dir_all(&d).map_err(|e| io_err(format!("mkdir {}", d.display()), e))?;
        }
        let _ = fs::set_permissions(rw.join("upper"), fs::Permissions::from_mode(0o755));
        let extra = rw.to_string_lossy().len() * 2 + 64;
        let lower = if chains.is_empty() {
            let empty = rw.join("empty");
            fs::create_dir_all(&empty).map_err(|e| io_err("mkdir empty lower", e))?;
            empty.to_string_lossy().into_owned()
        } else {
            for c in &chains {
                if !self.layer_exists(c) {
                    return Err(ImageError::NotFound(format!(
                        "layer {c} of image {id} is missing"
                    )));
                }
            }
            self.lowerdirs(&chains, extra)?
        };
        if scratch {
            // Thrown away with its container: no fsyncs, and a `volatile` overlay (no sync of
            // the host filesystem when it is unmounted).
            for (name, data) in [("lower", lower.as_bytes()), ("image", id.as_bytes())] {
                fs::write(rw.join(name), data)
                    .map_err(|e| io_err(format!("write {}", rw.join(name).display()), e))?;
            }
            fs::write(rw.join(SCRATCH_MARK), b"")
                .map_err(|e| io_err("mark a scratch writable layer", e))?;
        } else {
            crate::content::atomic_write(&rw.join("lower"), lower.as_bytes())?;
            crate::content::atomic_write(&rw.join("image"), id.as_bytes())?;
        }
        Ok(self.mount_spec(container_id, &lower, scratch))
    }

    pub(crate) fn rw_layer_mount_impl(&self, container_id: &str) -> Result<MountSpec> {
        check_container_id(container_id)?;
        let rw = self.rw_dir(container_id);
        let lower = fs::read_to_string(rw.join("lower")).map_err(|_| {
            ImageError::NotFound(format!("no writable layer for container {container_id}"))
        })?;
        let scratch = rw.join(SCRATCH_MARK).exists();
        if scratch {
            // overlayfs leaves `work/incompat/volatile` behind a volatile mount and refuses to
            // mount the layer again while it exists; the previous mount is gone by now.
            let _ = fs::remove_dir_all(rw.join("work/work/incompat"));
        }
        Ok(self.mount_spec(container_id, &lower, scratch))
    }

    pub(crate) fn remove_rw_layer_impl(&self, container_id: &str) -> Result<()> {
        check_container_id(container_id)?;
        remove_tree(&self.rw_dir(container_id))
            .map_err(|e| io_err(format!("remove writable layer of {container_id}"), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_id_rules() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let c = format!("sha256:{}", "c".repeat(64));
        let ids = chain_ids(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(ids[0], a);
        let ab = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(format!("{a} {b}").as_bytes()))
        );
        assert_eq!(ids[1], ab);
        let abc = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(format!("{ab} {c}").as_bytes()))
        );
        assert_eq!(ids[2], abc);
        assert_eq!(next_chain(Some(&ab), &c), abc);
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn container_ids_checked() {
        assert!(check_container_id("abc").is_ok());
        for bad in ["", ".", "..", "a/b"] {
            assert!(check_container_id(bad).is_err());
        }
    }
}
