//! The store side of registry pulls and pushes.
//!
//! Pull: each layer blob is unpacked as it streams (gzip, zstd or plain) into a temp dir, and
//! the blob itself, as downloaded, is staged in the content store ([`crate::layer_blob`]);
//! nothing is visible until [`ImageStore::commit_pulled_image`] moves every layer, its blob,
//! the config, the tag and the repo digest into place together. A failed pull leaves only temp
//! files, removed on drop (or at the next start). Push: a layer's kept compressed blob is sent
//! as it is; a layer stored in the old form (its uncompressed tar) is compressed with
//! deterministic gzip. The mapping diff ID → compressed digest is remembered under
//! `distribution/`, so repeated pushes give the same digests.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::content::{atomic_write, digest_hex, IngestWriter};
pub use crate::layer_blob::{LayerCompression, DOCKER_LAYER_GZIP};
use crate::layer_blob::{LayerRecord, StagedLayerBlob};
use crate::reference::{valid_digest, Reference};
use crate::snapshot::{next_chain, KeepBlob, PreparedLayer};
use crate::store::parse_config;
use crate::{io_err, ImageError, ImageStore, Result};

/// A layer unpacked from a registry blob, invisible until committed with its image.
pub struct PulledLayer {
    prepared: PreparedLayer,
    /// The size of the layer's uncompressed tar.
    tar_size: u64,
}

/// The registry form of a layer: its compressed blob's digest, size and media type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompressedLayer {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    /// A repository known to hold the blob (`registry/path`), for cross-repository mounts.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
}

/// What an image is made of, for a push.
#[derive(Debug, Clone)]
pub struct ImageParts {
    /// `sha256:` of the config.
    pub id: String,
    pub config: Vec<u8>,
    /// The uncompressed layer digests, bottom first.
    pub diff_ids: Vec<String>,
    pub os: String,
    pub architecture: String,
}

/// A gzip'd layer ready to upload: a temp file (deleted when dropped) and its descriptor.
pub struct CompressedFile {
    pub file: File,
    pub layer: CompressedLayer,
}

/// Gunzips a layer blob (every gzip member) as it is read; [`GunzipReader::into_inner`] gives
/// the blob's reader back, e.g. to verify its digest over whatever is left of it. Lets a pull
/// decompress on the thread that downloads, ahead of the one that unpacks.
pub struct GunzipReader<R: Read> {
    decoder: flate2::read::MultiGzDecoder<R>,
}

impl<R: Read> GunzipReader<R> {
    pub fn new(blob: R) -> Self {
        GunzipReader {
            decoder: flate2::read::MultiGzDecoder::new(blob),
        }
    }

    /// The blob's reader, positioned after what the decoder consumed.
    pub fn into_inner(self) -> R {
        self.decoder.into_inner()
    }
}

impl<R: Read> Read for GunzipReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.decoder.read(buf)
    }
}

impl ImageStore {
    fn distribution_dir(&self) -> PathBuf {
        self.root().join("distribution")
    }

    /// Whether the layer `diff_id` on top of `parent` (a chain ID) is already unpacked with its
    /// blob stored, so that a pull need not download it.
    pub fn has_layer(&self, parent: Option<&str>, diff_id: &str) -> bool {
        valid_digest(diff_id)
            && self.layer_exists(&next_chain(parent, diff_id))
            && self.layer_data_exists(diff_id)
    }

    /// Unpacks a (compressed) layer stream on top of `parent`; it must have `diff_id`. Nothing
    /// of the stream is stored but the unpacked files: the downloaded blob is kept with
    /// [`ImageStore::keep_pulled_blob`].
    pub fn unpack_pulled_layer(
        &self,
        src: &mut dyn Read,
        compression: LayerCompression,
        parent: Option<&str>,
        diff_id: &str,
    ) -> Result<PulledLayer> {
        let prepared = match compression {
            LayerCompression::Zstd => {
                let mut dec = ruzstd::decoding::StreamingDecoder::new(BufReader::new(src))
                    .map_err(|e| ImageError::InvalidArgument(format!("invalid zstd layer: {e}")))?;
                self.prepare_layer(&mut dec, parent, Some(diff_id), KeepBlob::ByCaller)?
            }
            LayerCompression::Gzip | LayerCompression::None => {
                self.prepare_layer(src, parent, Some(diff_id), KeepBlob::ByCaller)?
            }
        };
        let tar_size = prepared.tar_size;
        Ok(PulledLayer { prepared, tar_size })
    }

    /// Keeps the blob `layer` was unpacked from, written to `w` (from
    /// [`ImageStore::pulled_blob_writer`]) as it downloaded: `blob` is its verified digest,
    /// size and media type. It becomes visible with the layer's image.
    pub fn keep_pulled_blob(
        &self,
        layer: &mut PulledLayer,
        w: IngestWriter,
        blob: &CompressedLayer,
        compression: LayerCompression,
    ) -> Result<()> {
        let staged = w.finish_hashed_by_caller(&blob.digest, blob.size)?;
        layer.prepared.blob = Some(StagedLayerBlob {
            blob: staged,
            record: LayerRecord {
                tar_size: layer.tar_size,
                blob: blob.digest.clone(),
                blob_size: blob.size,
                compression,
                media_type: blob.media_type.clone(),
            },
        });
        Ok(())
    }

    /// Commits a pulled image: its new layers, its config, `tag` and `repo_digest`
    /// (`name@sha256:…`), and the compressed forms of its layers. Returns the image ID and
    /// whether the tag or digest changed (Docker's "Downloaded newer image").
    pub fn commit_pulled_image(
        &self,
        layers: Vec<PulledLayer>,
        config: &[u8],
        tag: Option<&Reference>,
        repo_digest: Option<&Reference>,
        compressed: &[(String, CompressedLayer)],
    ) -> Result<(String, bool)> {
        let cfg = parse_config(config)?;
        let _w = self.write_lock();
        let mut st = self.lock();
        for l in layers {
            self.commit_layer(l.prepared)?;
        }
        let mut parent: Option<String> = None;
        for d in &cfg.rootfs.diff_ids {
            let chain = next_chain(parent.as_deref(), d);
            if !self.layer_exists(&chain) {
                return Err(ImageError::NotFound(format!(
                    "layer {d} is missing after the pull"
                )));
            }
            parent = Some(chain);
        }
        let id = crate::content::digest_bytes(config);
        let mut changed = !st.images.contains_key(&id);
        for r in tag.iter().chain(repo_digest.iter()) {
            if st.refs.get(&r.full()) != Some(&id) {
                changed = true;
            }
        }
        let refs: Vec<Reference> = tag
            .iter()
            .chain(repo_digest.iter())
            .map(|r| (*r).clone())
            .collect();
        let id = self.commit_image(&mut st, config, &refs, crate::taglog::TagMove::Pull)?;
        drop(st);
        for (diff_id, c) in compressed {
            self.record_compressed(diff_id, c)?;
        }
        Ok((id, changed))
    }

    /// Adds `repo_digest` (`name@sha256:…`) to image `id` (after a push).
    pub fn add_repo_digest(&self, id: &str, repo_digest: &Reference) -> Result<()> {
        let _w = self.write_lock();
        let mut st = self.lock();
        if !st.images.contains_key(id) {
            return Err(ImageError::NotFound(format!("No such image: {id}")));
        }
        let config = self.content.read(id)?;
        self.commit_image(
            &mut st,
            &config,
            std::slice::from_ref(repo_digest),
            crate::taglog::TagMove::Pull,
        )?;
        Ok(())
    }

    /// The config and layer list of the image `name` designates.
    pub fn image_parts(&self, name: &str) -> Result<ImageParts> {
        let st = self.lock();
        let (id, _) = st.lookup(name)?;
        let img = &st.images[&id];
        let config = self.content.read(&id)?;
        Ok(ImageParts {
            id: id.clone(),
            config,
            diff_ids: img.config.rootfs.diff_ids.clone(),
            os: img.config.os.clone(),
            architecture: img.config.architecture.clone(),
        })
    }

    /// The full references (`localhost:5000/a:t`) of the images in repository `repo_full`
    /// (`localhost:5000/a`), with their image IDs: `push -a`.
    pub fn tags_in_repository(&self, repo_full: &str) -> Vec<(Reference, String)> {
        let st = self.lock();
        st.refs
            .iter()
            .filter_map(|(r, id)| Reference::parse(r).ok().map(|p| (p, id.clone())))
            .filter(|(r, _)| !r.is_digest() && r.repo_full() == repo_full)
            .collect()
    }

    /// The remembered compressed form of layer `diff_id`.
    pub fn compressed_layer(&self, diff_id: &str) -> Option<CompressedLayer> {
        if !valid_digest(diff_id) {
            return None;
        }
        let p = self.distribution_dir().join(digest_hex(diff_id));
        fs::read(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }

    /// Remembers the compressed form of layer `diff_id`.
    pub fn record_compressed(&self, diff_id: &str, c: &CompressedLayer) -> Result<()> {
        if !valid_digest(diff_id) || !valid_digest(&c.digest) {
            return Err(ImageError::InvalidArgument(format!(
                "invalid digest {diff_id} / {}",
                c.digest
            )));
        }
        let dir = self.distribution_dir();
        fs::create_dir_all(&dir).map_err(|e| io_err(format!("mkdir {}", dir.display()), e))?;
        let bytes = serde_json::to_vec(c).map_err(|e| io_err("encode", e.into()))?;
        atomic_write(&dir.join(digest_hex(diff_id)), &bytes)
    }

    /// The layer `diff_id` as a deterministic gzip stream (compressed as it is read, in
    /// parallel: [`crate::pgzip`]), and its uncompressed size.
    pub fn gzip_layer_stream(&self, diff_id: &str) -> Result<(Box<dyn Read + Send>, u64)> {
        let src = self.open_layer_tar(diff_id)?;
        let size = self.layer_tar_size(diff_id).unwrap_or(0);
        let gz = crate::pgzip::ParallelGzipReader::new(
            src,
            flate2::Compression::fast(),
            crate::pgzip::default_threads(),
            crate::pgzip::DEFAULT_BLOCK_SIZE,
        );
        Ok((Box::new(gz), size))
    }

    /// Compresses layer `diff_id` with deterministic gzip into a temp file, counting input bytes
    /// through `progress`, and remembers the result.
    pub fn gzip_layer(
        &self,
        diff_id: &str,
        progress: &mut dyn FnMut(u64),
    ) -> Result<CompressedFile> {
        let mut src = self.open_layer_tar(diff_id)?;
        let tmp =
            tempfile::tempfile_in(self.tmp_dir()).map_err(|e| io_err("create a temp file", e))?;
        let mut hashing = HashingWriter {
            inner: io::BufWriter::with_capacity(1 << 16, tmp),
            hasher: <sha2::Sha256 as sha2::Digest>::new(),
            size: 0,
        };
        {
            let mut gz = flate2::GzBuilder::new()
                .mtime(0)
                .operating_system(255)
                .write(&mut hashing, flate2::Compression::fast());
            let mut buf = vec![0u8; 1 << 16];
            let mut done = 0u64;
            loop {
                let n = src
                    .read(&mut buf)
                    .map_err(|e| io_err(format!("read layer {diff_id}"), e))?;
                if n == 0 {
                    break;
                }
                gz.write_all(&buf[..n]).map_err(|e| io_err("compress", e))?;
                done += n as u64;
                progress(done);
            }
            gz.finish().map_err(|e| io_err("compress", e))?;
        }
        let digest = format!(
            "sha256:{}",
            hex::encode(sha2::Digest::finalize(hashing.hasher))
        );
        let size = hashing.size;
        let mut file = hashing
            .inner
            .into_inner()
            .map_err(|e| io_err("flush", e.into_error()))?;
        file.rewind().map_err(|e| io_err("rewind", e))?;
        let layer = CompressedLayer {
            digest,
            size,
            media_type: DOCKER_LAYER_GZIP.into(),
            source: String::new(),
        };
        self.record_compressed(diff_id, &layer)?;
        Ok(CompressedFile { file, layer })
    }
}

struct HashingWriter<W> {
    inner: W,
    hasher: sha2::Sha256,
    size: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::layer_tar::tests::TarBuilder;

    /// Unpacks `blob` as a pull does, keeping the blob as the download would have written it.
    pub(crate) fn pull(
        store: &ImageStore,
        blob: &[u8],
        compression: LayerCompression,
        media_type: &str,
        diff_id: &str,
    ) -> Result<PulledLayer> {
        let mut layer = store.unpack_pulled_layer(&mut &blob[..], compression, None, diff_id)?;
        let mut w = store.pulled_blob_writer()?;
        w.write_all(blob).unwrap();
        let desc = CompressedLayer {
            digest: crate::content::digest_bytes(blob),
            size: blob.len() as u64,
            media_type: media_type.into(),
            source: String::new(),
        };
        store.keep_pulled_blob(&mut layer, w, &desc, compression)?;
        Ok(layer)
    }

    /// The names of the blobs in the content store.
    fn blobs(store: &ImageStore) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(store.root().join("blobs/sha256"))
            .unwrap()
            .map(|e| format!("sha256:{}", e.unwrap().file_name().to_string_lossy()))
            .collect();
        v.sort();
        v
    }

    fn config_for(diff_ids: &[&str]) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap()
    }

    #[test]
    fn pull_commit_is_atomic_and_push_gzip_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        let tar = TarBuilder::new().file("hello.txt", b"hi").build();
        let diff_id = crate::content::digest_bytes(&tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();

        assert!(!store.has_layer(None, &diff_id));
        // A wrong diff ID is refused and leaves nothing.
        let wrong = crate::content::digest_bytes(b"x");
        assert!(store
            .unpack_pulled_layer(&mut gz.as_slice(), LayerCompression::Gzip, None, &wrong)
            .is_err());
        let layer = pull(
            &store,
            &gz,
            LayerCompression::Gzip,
            DOCKER_LAYER_GZIP,
            &diff_id,
        )
        .unwrap();
        // Not visible before the commit.
        assert!(!store.has_layer(None, &diff_id));
        assert_eq!(store.count(), 0);
        assert!(blobs(&store).is_empty());
        let cfg = config_for(&[&diff_id]);
        let tag = Reference::parse("localhost:5000/t:1").unwrap();
        let rd = Reference::parse(&format!(
            "localhost:5000/t@{}",
            crate::content::digest_bytes(b"manifest")
        ))
        .unwrap();
        let (id, changed) = store
            .commit_pulled_image(vec![layer], &cfg, Some(&tag), Some(&rd), &[])
            .unwrap();
        assert!(changed);
        assert!(store.has_layer(None, &diff_id));
        // The store holds the config and the blob as pulled, no uncompressed copy; the size
        // shown is still the tar's.
        let gz_digest = crate::content::digest_bytes(&gz);
        let mut want = vec![id.clone(), gz_digest.clone()];
        want.sort();
        assert_eq!(blobs(&store), want);
        assert_eq!(
            store.list(false).unwrap()[0].size,
            i64::try_from(tar.len()).unwrap()
        );
        // A push sends the kept blob as it is.
        let (mut up, up_size, up_type) = store.layer_upload(&diff_id).unwrap();
        let mut sent = Vec::new();
        up.read_to_end(&mut sent).unwrap();
        assert_eq!((sent, up_size), (gz.clone(), gz.len() as u64));
        assert_eq!(up_type, DOCKER_LAYER_GZIP);
        // Its tar comes back from it, byte for byte.
        let mut back = Vec::new();
        store
            .open_layer_tar(&diff_id)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, tar);
        let inspect = store.inspect("localhost:5000/t:1").unwrap();
        assert_eq!(inspect.repo_digests, vec![rd.familiar()]);
        let (_, changed) = store
            .commit_pulled_image(vec![], &cfg, Some(&tag), Some(&rd), &[])
            .unwrap();
        assert!(!changed);

        let parts = store.image_parts("localhost:5000/t:1").unwrap();
        assert_eq!(parts.id, id);
        assert_eq!(parts.diff_ids, vec![diff_id.clone()]);
        let a = store.gzip_layer(&diff_id, &mut |_| {}).unwrap();
        let b = store.gzip_layer(&diff_id, &mut |_| {}).unwrap();
        assert_eq!(a.layer, b.layer);
        assert_eq!(store.compressed_layer(&diff_id), Some(a.layer.clone()));
        let mut data = Vec::new();
        { a.file }.read_to_end(&mut data).unwrap();
        assert_eq!(crate::content::digest_bytes(&data), a.layer.digest);
        assert_eq!(store.tags_in_repository("localhost:5000/t").len(), 1);

        // The push stream: parallel gzip, the same bytes every time, decoding to the layer.
        let streamed = || {
            let (mut r, size) = store.gzip_layer_stream(&diff_id).unwrap();
            assert_eq!(size, tar.len() as u64);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            out
        };
        let s1 = streamed();
        assert_eq!(streamed(), s1);
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(s1.as_slice())
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, tar);
    }

    #[test]
    fn gunzip_reader_decodes_every_member_and_gives_the_blob_back() {
        let gz = |data: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        };
        let mut blob = gz(b"first ");
        blob.extend(gz(b"second"));
        let mut r = GunzipReader::new(io::Cursor::new(blob.clone()));
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        assert_eq!(out, "first second");
        assert_eq!(r.into_inner().position(), blob.len() as u64);
        // Not gzip: an error, not garbage.
        let mut bad = GunzipReader::new(&b"plain tar"[..]);
        assert!(bad.read_to_end(&mut Vec::new()).is_err());
    }

    #[test]
    fn zstd_layers_unpack() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        let tar = TarBuilder::new().file("z.txt", b"zstd").build();
        let diff_id = crate::content::digest_bytes(&tar);
        let compressed = ruzstd::encoding::compress_to_vec(
            tar.as_slice(),
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let zstd_type = "application/vnd.oci.image.layer.v1.tar+zstd";
        let layer = pull(
            &store,
            &compressed,
            LayerCompression::Zstd,
            zstd_type,
            &diff_id,
        )
        .unwrap();
        store
            .commit_pulled_image(vec![layer], &config_for(&[&diff_id]), None, None, &[])
            .unwrap();
        assert!(store.has_layer(None, &diff_id));
        assert!(!store.content.exists(&diff_id));
        let mut back = Vec::new();
        store
            .open_layer_tar(&diff_id)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, tar);
        let (_, _, up_type) = store.layer_upload(&diff_id).unwrap();
        assert_eq!(up_type, zstd_type);
    }
}
