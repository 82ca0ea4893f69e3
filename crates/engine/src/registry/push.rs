//! The upload side of a push: each layer compressed as it is read and uploaded, then the
//! manifest.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use berth_image::{CompressedLayer, ImageStore, Reference};
use berth_registry::manifest;
use berth_registry::{RegistryClient, RegistryError};
use serde_json::json;

use crate::error::{EngineError, Result};

use super::*;

pub(super) fn push_one(
    store: &ImageStore,
    client: &RegistryClient,
    r: &Reference,
    p: &Progress,
    workers: usize,
) -> Result<()> {
    let parts = store.image_parts(&r.full()).map_err(EngineError::from)?;
    let mut unique: Vec<String> = Vec::new();
    for d in &parts.diff_ids {
        if !unique.contains(d) {
            unique.push(d.clone());
        }
    }
    for d in &unique {
        status(p, Some(&short(d)), "Preparing");
    }
    if unique.len() > workers.max(1) {
        for d in &unique[workers.max(1)..] {
            status(p, Some(&short(d)), "Waiting");
        }
    }
    let descriptors: BTreeMap<String, CompressedLayer> = run_bounded(&unique, workers, |d| {
        push_layer(store, client, r, d, p).map(|c| (d.clone(), c))
    })?
    .into_iter()
    .collect();
    if !client.blob_exists(&parts.id).map_err(registry_error)? {
        client
            .upload_blob(
                &parts.id,
                parts.config.len() as u64,
                Box::new(std::io::Cursor::new(parts.config.clone())),
            )
            .map_err(registry_error)?;
    }
    // Docker's schema2 unless a layer has an OCI-only media type (zstd, plain tar).
    let oci = descriptors
        .values()
        .any(|c| c.media_type.starts_with("application/vnd.oci."));
    let (manifest_type, config_type) = if oci {
        (manifest::OCI_MANIFEST, manifest::OCI_CONFIG)
    } else {
        (manifest::DOCKER_MANIFEST, manifest::DOCKER_CONFIG)
    };
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {
            "mediaType": config_type,
            "size": parts.config.len(),
            "digest": parts.id,
        },
        "layers": parts.diff_ids.iter().map(|d| {
            let c = &descriptors[d];
            json!({"mediaType": c.media_type, "size": c.size, "digest": c.digest})
        }).collect::<Vec<_>>(),
    });
    let body = serde_json::to_vec_pretty(&manifest).map_err(internal)?;
    let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
    let digest = client
        .put_manifest(&tag, manifest_type, &body)
        .map_err(registry_error)?;
    if let Ok(rd) = Reference::parse(&format!("{}@{digest}", r.repo_full())) {
        let _ = store.add_repo_digest(&parts.id, &rd);
    }
    status(
        p,
        None,
        &format!("{tag}: digest: {digest} size: {}", body.len()),
    );
    let _ = p.send(json!({
        "progressDetail": {},
        "aux": {"Tag": tag, "Digest": digest, "Size": body.len()},
    }));
    Ok(())
}

pub(super) fn push_layer(
    store: &ImageStore,
    client: &RegistryClient,
    target: &Reference,
    diff_id: &str,
    p: &Progress,
) -> Result<CompressedLayer> {
    let id = short(diff_id);
    let remember = |mut c: CompressedLayer| -> Result<CompressedLayer> {
        c.source = target.repo_full();
        store
            .record_compressed(diff_id, &c)
            .map_err(EngineError::from)?;
        Ok(c)
    };
    if let Some(c) = store.compressed_layer(diff_id) {
        if client.blob_exists(&c.digest).map_err(registry_error)? {
            status(p, Some(&id), "Layer already exists");
            return remember(c);
        }
        // The same registry holds it in another repository: mount it from there.
        let prefix = format!("{}/", target.domain);
        if let Some(from) = c.source.strip_prefix(&prefix) {
            if from != target.path && client.mount_blob(&c.digest, from).unwrap_or(false) {
                status(p, Some(&id), &format!("Mounted from {from}"));
                return remember(c);
            }
        }
    }
    // The layer's kept blob as it is, or (a layer stored in the old form) its tar compressed
    // while uploading: a digest-computing read-ahead thread reads (and runs the compressor),
    // this thread sends what it produced.
    let (gz, total, media_type) = store.layer_upload(diff_id).map_err(EngineError::from)?;
    let (pp, pid) = (p.clone(), id.clone());
    let mut last = 0u64;
    let counting = CountingReader {
        inner: gz,
        hasher: sha2::Sha256::default(),
        size: 0,
        progress: Box::new(move |n| {
            if n - last >= 512 * 1024 {
                last = n;
                progress_bytes(&pp, &pid, "Pushing", n, total);
            }
        }),
    };
    let ahead = berth_registry::pipe::ReadAhead::spawn(counting, 256 * 1024, 16, |c| {
        (
            format!("sha256:{}", hex::encode(sha2::Digest::finalize(c.hasher))),
            c.size,
        )
    });
    let result: Arc<Mutex<Option<(String, u64)>>> = Arc::new(Mutex::new(None));
    let slot = result.clone();
    let ahead = Arc::new(Mutex::new(Some(ahead)));
    let reader = SharedReader(ahead.clone());
    let mut finish = move || -> berth_registry::Result<String> {
        let a = ahead
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| RegistryError::Transport("upload finished twice".into()))?;
        let (digest, size) = a.finish();
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some((digest.clone(), size));
        Ok(digest)
    };
    client
        .upload_blob_streamed(Box::new(reader), &mut finish)
        .map_err(registry_error)?;
    let (digest, size) = result
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .ok_or_else(|| EngineError::Internal("the upload did not finish".into()))?;
    let c = CompressedLayer {
        digest,
        size,
        media_type,
        source: String::new(),
    };
    status(p, Some(&id), "Pushed");
    remember(c)
}

/// Hashes and counts what passes through (the compressed stream of a push).
pub(super) struct CountingReader {
    inner: Box<dyn std::io::Read + Send>,
    hasher: sha2::Sha256,
    size: u64,
    progress: Box<dyn FnMut(u64) + Send>,
}

impl std::io::Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        self.size += n as u64;
        (self.progress)(self.size);
        Ok(n)
    }
}

/// The consuming side of a read-ahead, shared with the closure that finishes it.
pub(super) struct SharedReader(Arc<Mutex<Option<CompressingPipe>>>);

/// The read-ahead of a push: it yields the compressed layer and ends with its digest and size.
pub(super) type CompressingPipe = berth_registry::pipe::ReadAhead<(String, u64)>;

impl std::io::Read for SharedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(a) => a.read(buf),
            None => Ok(0),
        }
    }
}
