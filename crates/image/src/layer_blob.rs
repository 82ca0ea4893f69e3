//! The stored form of each layer beside its unpacked directory: one blob of the content store,
//! compressed, from which its tar is regenerated for `save` and which `push` uploads as is.
//!
//! A pulled layer keeps the blob exactly as the registry served it (gzip, zstd or plain tar),
//! so that a push sends the same bytes under the same digest; a layer made by a build or a
//! commit is unpacked once and its tar gzip'd once, with the deterministic parallel gzip of
//! pushes ([`crate::pgzip`]), so pushing it sends what a push made before; a loaded or
//! imported layer keeps its tar as given (as containerd's import does: gzip'ing it would
//! triple the time of a load), gzip'd on the way by a push as before.
//! The record `layerblobs/<diff-id-hex>.json` names the blob, its compression and the size of
//! the uncompressed tar (the layer's size in `docker images` and `history`).
//!
//! Data roots written before this kept each layer as its uncompressed tar under its diff ID,
//! with no record: both forms are read (nothing is converted at start), and such a tar goes
//! when its layer's blob is stored in the new form.

use std::fs::{self, File};
use std::io::{self, Read, Seek};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::content::{atomic_write, digest_hex, IngestWriter, StagedBlob};
use crate::reference::valid_digest;
use crate::{io_err, ImageStore, Result};

/// How a pulled layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerCompression {
    None,
    Gzip,
    Zstd,
}

/// The gzip media type of Docker's schema2 layers.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Where a layer's blob is and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LayerRecord {
    /// The size of the uncompressed tar: the layer's size for `images` and `history`.
    pub tar_size: u64,
    /// `sha256:` of the kept blob.
    pub blob: String,
    /// The blob's size in bytes.
    pub blob_size: u64,
    /// How the blob is compressed.
    pub compression: LayerCompression,
    /// The blob's media type (as the registry named it, for a pulled layer).
    pub media_type: String,
}

/// A layer's blob written but not yet visible, with its record.
pub(crate) struct StagedLayerBlob {
    pub blob: StagedBlob,
    pub record: LayerRecord,
}

/// The media type of a zstd layer (OCI).
const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// The media type of an uncompressed layer (OCI).
const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

impl StagedLayerBlob {
    /// A layer kept as its uncompressed tar (`blob` is named by the diff ID).
    pub(crate) fn plain_tar(blob: StagedBlob) -> StagedLayerBlob {
        let record = LayerRecord {
            tar_size: blob.size,
            blob: blob.digest.clone(),
            blob_size: blob.size,
            compression: LayerCompression::None,
            media_type: OCI_LAYER_TAR.into(),
        };
        StagedLayerBlob { blob, record }
    }
}

impl ImageStore {
    fn layer_record_path(&self, diff_id: &str) -> PathBuf {
        self.root()
            .join("layerblobs")
            .join(format!("{}.json", digest_hex(diff_id)))
    }

    /// The record of layer `diff_id` (none for a layer stored in the old form).
    pub(crate) fn layer_record(&self, diff_id: &str) -> Option<LayerRecord> {
        if !valid_digest(diff_id) {
            return None;
        }
        let bytes = fs::read(self.layer_record_path(diff_id)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The size of layer `diff_id`'s uncompressed tar, in either form.
    pub(crate) fn layer_tar_size(&self, diff_id: &str) -> Option<u64> {
        match self.layer_record(diff_id) {
            Some(r) => Some(r.tar_size),
            None => self.content.size(diff_id),
        }
    }

    /// Whether the data of layer `diff_id` (its blob, or its old-form tar) is stored.
    pub(crate) fn layer_data_exists(&self, diff_id: &str) -> bool {
        match self.layer_record(diff_id) {
            Some(r) => self.content.exists(&r.blob),
            None => self.content.exists(diff_id),
        }
    }

    /// The uncompressed tar of layer `diff_id` (its sha256 is the diff ID), decompressed from
    /// the kept blob as it is read; the stream fails at its end when the content is not the
    /// layer.
    pub(crate) fn open_layer_tar(&self, diff_id: &str) -> Result<Box<dyn Read + Send>> {
        let Some(rec) = self.layer_record(diff_id) else {
            return Ok(Box::new(self.content.open_blob(diff_id)?));
        };
        let blob = io::BufReader::with_capacity(1 << 16, self.content.open_blob(&rec.blob)?);
        let plain: Box<dyn Read + Send> = match rec.compression {
            LayerCompression::None => Box::new(blob),
            LayerCompression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(blob)),
            LayerCompression::Zstd => Box::new(
                ruzstd::decoding::StreamingDecoder::new(blob)
                    .map_err(|e| io_err(format!("open layer {diff_id}"), io::Error::other(e)))?,
            ),
        };
        Ok(Box::new(CheckedTar {
            inner: plain,
            hasher: Sha256::new(),
            size: 0,
            expected: rec.tar_size,
            diff_id: diff_id.to_string(),
            checked: false,
        }))
    }

    /// What a push uploads for layer `diff_id` when the registry lacks it: the kept blob as it
    /// is when compressed, else the tar gzip'd as it is read. Returns the stream, its size
    /// when known ahead (for progress: the tar's size when compressed on the way), and the
    /// media type.
    pub fn layer_upload(&self, diff_id: &str) -> Result<(Box<dyn Read + Send>, u64, String)> {
        if let Some(rec) = self.layer_record(diff_id) {
            let media_type = match rec.compression {
                LayerCompression::Gzip => Some(DOCKER_LAYER_GZIP),
                LayerCompression::Zstd => Some(OCI_LAYER_ZSTD),
                LayerCompression::None => None,
            };
            if let Some(media_type) = media_type {
                let f = self.content.open_blob(&rec.blob)?;
                return Ok((Box::new(f), rec.blob_size, media_type.to_string()));
            }
        }
        let (gz, size) = self.gzip_layer_stream(diff_id)?;
        Ok((gz, size, DOCKER_LAYER_GZIP.to_string()))
    }

    /// Gzips the uncompressed layer tar in `tar` (from its start) into a staged blob, with the
    /// deterministic parallel gzip a push of it used to make, so a push sends those bytes.
    pub(crate) fn stage_gzip_blob(&self, mut tar: File, tar_size: u64) -> Result<StagedLayerBlob> {
        tar.rewind().map_err(|e| io_err("rewind layer tar", e))?;
        let mut gz = crate::pgzip::ParallelGzipReader::new(
            tar,
            flate2::Compression::fast(),
            crate::pgzip::default_threads(),
            crate::pgzip::DEFAULT_BLOCK_SIZE,
        );
        let mut w = self.content.writer()?;
        io::copy(&mut gz, &mut w).map_err(|e| io_err("compress layer", e))?;
        let blob = w.finish(None)?;
        let record = LayerRecord {
            tar_size,
            blob: blob.digest.clone(),
            blob_size: blob.size,
            compression: LayerCompression::Gzip,
            media_type: DOCKER_LAYER_GZIP.into(),
        };
        Ok(StagedLayerBlob { blob, record })
    }

    /// A writer for a pulled layer's blob as it downloads; the caller hashes the bytes (the
    /// registry client verifies them) and hands the writer to [`ImageStore::keep_pulled_blob`].
    pub fn pulled_blob_writer(&self) -> Result<IngestWriter> {
        self.content.writer_hashed_by_caller()
    }

    /// Makes a staged layer blob visible with its record; an old-form tar of the same layer
    /// goes. A layer already kept in the new form keeps its blob (the staged one is dropped),
    /// so that no blob is left without a record (the caller holds the state lock).
    pub(crate) fn commit_layer_blob(&self, diff_id: &str, staged: StagedLayerBlob) -> Result<()> {
        if let Some(kept) = self.layer_record(diff_id) {
            if self.content.exists(&kept.blob) {
                return Ok(());
            }
        }
        let StagedLayerBlob { blob, record } = staged;
        blob.commit()?;
        let dir = self.root().join("layerblobs");
        fs::create_dir_all(&dir).map_err(|e| io_err(format!("mkdir {}", dir.display()), e))?;
        let bytes =
            serde_json::to_vec(&record).map_err(|e| io_err("encode layer record", e.into()))?;
        atomic_write(&self.layer_record_path(diff_id), &bytes)?;
        if record.blob != diff_id {
            self.content.remove(diff_id);
        }
        Ok(())
    }

    /// Removes the stored data of layer `diff_id` (in either form); returns its tar's size.
    pub(crate) fn remove_layer_data(&self, diff_id: &str) -> u64 {
        let size = self.layer_tar_size(diff_id).unwrap_or(0);
        if let Some(rec) = self.layer_record(diff_id) {
            let _ = fs::remove_file(self.layer_record_path(diff_id));
            self.content.remove(&rec.blob);
        }
        self.content.remove(diff_id);
        size
    }
}

/// The tar regenerated from a layer's blob, checked against the layer as it ends: a blob that
/// does not decompress to the layer's tar fails the read instead of passing for it.
struct CheckedTar {
    inner: Box<dyn Read + Send>,
    hasher: Sha256,
    size: u64,
    expected: u64,
    diff_id: String,
    /// Whether the whole layer has been read and found right.
    checked: bool,
}

impl Read for CheckedTar {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        // Checked as soon as the layer's size is reached: a reader that takes exactly that
        // many bytes (a tar entry) never asks for the end.
        let bad = if self.checked {
            n > 0
        } else if n == 0 || self.size >= self.expected {
            let got = format!("sha256:{}", hex::encode(self.hasher.clone().finalize()));
            self.checked = true;
            self.size != self.expected || got != self.diff_id
        } else {
            false
        };
        if bad {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "layer {}: its stored blob does not hold the layer ({} bytes read, {} expected)",
                    self.diff_id, self.size, self.expected
                ),
            ));
        }
        Ok(n)
    }
}
