//! The download side of a pull: the manifest at one endpoint, then the layers, a bounded
//! number at a time, unpacked as they stream.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use berth_image::content::IngestWriter;
use berth_image::{
    CompressedLayer, GunzipReader, ImageStore, LayerCompression, PulledLayer, Reference,
};
use berth_registry::endpoints::moves_on_after;
use berth_registry::manifest::{self, layer_compression, Compression};
use berth_registry::{
    Credentials, Descriptor, Endpoint, Manifest, Platform, RegistryClient, RegistryError,
    VerifyingReader,
};
use serde_json::Value;

use crate::error::{EngineError, Result};

use super::*;

/// Connects to `endpoint` to pull from `reference`'s repository.
pub(super) fn connect_for_pull(
    options: &berth_registry::RegistryOptions,
    endpoint: &Endpoint,
    reference: &Reference,
    creds: Option<Credentials>,
) -> std::result::Result<RegistryClient, ResolveFailure> {
    RegistryClient::connect_to(options, endpoint, &reference.path, creds, &["pull"])
        .map_err(ResolveFailure::Connect)
}

/// Why resolving a pull at one endpoint failed, and so whether the next endpoint is tried.
pub(super) enum ResolveFailure {
    /// `GET /v2/` failed: the endpoint is not usable, the next one is tried.
    Connect(RegistryError),
    /// A manifest or tag list request for the reference failed: the next endpoint is tried
    /// after a mirror's any failure, or the registry's own transport failure.
    Fetch(RegistryError, Box<Reference>),
    /// What the endpoint served is unusable (a bad manifest, no entry for the platform): the
    /// next endpoint is tried only after a mirror.
    Other(EngineError),
}

impl From<RegistryError> for ResolveFailure {
    fn from(e: RegistryError) -> Self {
        ResolveFailure::Connect(e)
    }
}

impl ResolveFailure {
    pub(super) fn moves_on(&self, endpoint: &Endpoint) -> bool {
        match self {
            ResolveFailure::Connect(_) => true,
            ResolveFailure::Fetch(e, _) => moves_on_after(e, endpoint),
            ResolveFailure::Other(_) => endpoint.mirror,
        }
    }

    /// Docker's wording of the failure of a pull of `asked`.
    pub(super) fn into_engine_error(self, asked: &Reference) -> EngineError {
        match self {
            ResolveFailure::Connect(e) => pull_error(e, asked),
            ResolveFailure::Fetch(e, r) => pull_error(e, &r),
            ResolveFailure::Other(e) => e,
        }
    }
}

/// Fetches the manifest `r` names from `client`'s endpoint (and, for an index, the entry for
/// `platform`).
pub(super) fn resolve_one(
    client: Arc<RegistryClient>,
    r: Reference,
    platform: &Platform,
) -> std::result::Result<PullPlan, ResolveFailure> {
    let want = r
        .digest
        .clone()
        .or(r.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let top = client
        .get_manifest(&want)
        .map_err(|e| ResolveFailure::Fetch(e, Box::new(r.clone())))?;
    let parsed = manifest::parse_manifest(&top.media_type, &top.body)
        .map_err(|e| ResolveFailure::Other(registry_error(e)))?;
    let mut wanted = None;
    let manifest = match parsed {
        Manifest::Image(m) => {
            wanted = Some(platform.clone());
            m
        }
        Manifest::Index(idx) => {
            let d = manifest::select_platform(&idx, platform)
                .map_err(|e| ResolveFailure::Other(registry_error(e)))?;
            let m = client
                .get_manifest(&d.digest)
                .map_err(|e| ResolveFailure::Fetch(e, Box::new(r.clone())))?;
            match manifest::parse_manifest(&m.media_type, &m.body)
                .map_err(|e| ResolveFailure::Other(registry_error(e)))?
            {
                Manifest::Image(m) => m,
                Manifest::Index(_) => {
                    return Err(ResolveFailure::Other(EngineError::InvalidArgument(
                        "an index entry points to another index".into(),
                    )))
                }
            }
        }
    };
    Ok(PullPlan {
        client,
        display_id: want,
        top_digest: top.digest,
        reference: r,
        manifest,
        wanted,
        verified: Vec::new(),
    })
}

pub(super) fn fetch_config(client: &RegistryClient, d: &Descriptor) -> Result<Vec<u8>> {
    if d.size > 8 << 20 {
        return Err(EngineError::InvalidArgument(
            "image config too large".into(),
        ));
    }
    let body = client.get_blob(&d.digest).map_err(registry_error)?;
    let mut r = VerifyingReader::new(body, &d.digest, Some(d.size), Box::new(|_| {}));
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut r, &mut out)
        .map_err(|e| EngineError::Internal(format!("reading config {}: {e}", d.digest)))?;
    r.finish().map_err(registry_error)?;
    Ok(out)
}

/// Downloads the layers the store lacks, `workers` at a time, unpacking as they stream, then
/// commits. Returns whether anything changed.
pub(super) fn download(
    store: &ImageStore,
    plan: &PullPlan,
    p: &Progress,
    workers: usize,
) -> Result<bool> {
    let m = &plan.manifest;
    status(
        p,
        Some(&plan.display_id),
        &format!("Pulling from {}", plan.reference.path),
    );
    let config = fetch_config(&plan.client, &m.config)?;
    let cfg: Value = serde_json::from_slice(&config)
        .map_err(|e| EngineError::InvalidArgument(format!("invalid image config: {e}")))?;
    if let Some(want) = &plan.wanted {
        let have = Platform {
            os: cfg["os"].as_str().unwrap_or("").to_string(),
            architecture: cfg["architecture"].as_str().unwrap_or("").to_string(),
            variant: cfg["variant"].as_str().unwrap_or("").to_string(),
        };
        if !want.matches(&have) {
            return Err(EngineError::NotFound(format!(
                "image with reference {} was found but does not match the specified platform: wanted {want}, actual: {have}",
                plan.reference.familiar()
            )));
        }
    }
    let diff_ids: Vec<String> = cfg
        .pointer("/rootfs/diff_ids")
        .and_then(|d| d.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if diff_ids.len() != m.layers.len() {
        return Err(EngineError::InvalidArgument(format!(
            "invalid image: the config lists {} layers but the manifest has {}",
            diff_ids.len(),
            m.layers.len()
        )));
    }
    let chains = berth_image::chain_ids(&diff_ids);
    let mut todo = Vec::new();
    let mut known: Vec<(String, CompressedLayer)> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, layer) in m.layers.iter().enumerate() {
        let parent = (i > 0).then(|| chains[i - 1].as_str());
        if store.has_layer(parent, &diff_ids[i]) || !seen.insert(chains[i].clone()) {
            status(p, Some(&short(&layer.digest)), "Already exists");
            // The manifest (verified) ties this blob to the layer: remember it for pushes.
            known.push((
                diff_ids[i].clone(),
                CompressedLayer {
                    digest: layer.digest.clone(),
                    size: layer.size,
                    media_type: layer.media_type.clone(),
                    source: plan.reference.repo_full(),
                },
            ));
        } else {
            todo.push(i);
        }
    }
    for &i in &todo {
        status(p, Some(&short(&m.layers[i].digest)), "Pulling fs layer");
    }
    if todo.len() > workers.max(1) {
        for &i in &todo[workers.max(1)..] {
            status(p, Some(&short(&m.layers[i].digest)), "Waiting");
        }
    }
    let pulled = run_bounded(&todo, workers, |&i| {
        let parent = (i > 0).then(|| chains[i - 1].as_str());
        let layer = pull_layer(store, &plan.client, &m.layers[i], parent, &diff_ids[i], p)?;
        let blob = CompressedLayer {
            digest: m.layers[i].digest.clone(),
            size: m.layers[i].size,
            media_type: m.layers[i].media_type.clone(),
            source: plan.reference.repo_full(),
        };
        Ok((layer, (diff_ids[i].clone(), blob)))
    })?;
    let (done, fetched): (Vec<PulledLayer>, Vec<(String, CompressedLayer)>) =
        pulled.into_iter().unzip();
    let mut compressed = known;
    compressed.extend(fetched);
    let tag = plan.reference.tag.as_ref().map(|_| &plan.reference);
    let repo_digest = Reference::parse(&format!(
        "{}@{}",
        plan.reference.repo_full(),
        plan.top_digest
    ))
    .ok();
    let (_, changed) = store
        .commit_pulled_image(done, &config, tag, repo_digest.as_ref(), &compressed)
        .map_err(EngineError::from)?;
    Ok(changed)
}

/// Runs `work` over `items` on at most `workers` threads, taking items in order. After the first
/// error no new item starts, and that error is returned; otherwise the results, in item order.
pub(super) fn run_bounded<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    work: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_err: Mutex<Option<EngineError>> = Mutex::new(None);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1).min(items.len().max(1)) {
            scope.spawn(|| loop {
                if failed.load(Ordering::SeqCst) {
                    return;
                }
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(k) else {
                    return;
                };
                match work(item) {
                    Ok(r) => results.lock().unwrap_or_else(|e| e.into_inner())[k] = Some(r),
                    Err(e) => {
                        failed.store(true, Ordering::SeqCst);
                        first_err
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = first_err.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect())
}

pub(super) fn pull_layer(
    store: &ImageStore,
    client: &RegistryClient,
    layer: &Descriptor,
    parent: Option<&str>,
    diff_id: &str,
    p: &Progress,
) -> Result<PulledLayer> {
    let id = short(&layer.digest);
    let compression = match layer_compression(&layer.media_type) {
        Some(Compression::Gzip) => LayerCompression::Gzip,
        Some(Compression::Zstd) => LayerCompression::Zstd,
        Some(Compression::None) => LayerCompression::None,
        None => {
            return Err(EngineError::InvalidArgument(format!(
                "unsupported media type {}",
                layer.media_type
            )))
        }
    };
    let body = client.get_blob(&layer.digest).map_err(registry_error)?;
    // The blob is kept as it downloads (the store's copy of the layer, sent again as it is by
    // a push); the verifying reader reads every byte of it through this tee.
    let kept = Arc::new(Mutex::new(Some(
        store.pulled_blob_writer().map_err(EngineError::from)?,
    )));
    let body = TeeReader {
        inner: body,
        out: kept.clone(),
    };
    let total = layer.size;
    let (pp, pid) = (p.clone(), id.clone());
    let mut last = 0u64;
    let reader = VerifyingReader::new(
        body,
        &layer.digest,
        Some(layer.size),
        Box::new(move |n| {
            if n - last >= 512 * 1024 || n == total {
                last = n;
                progress_bytes(&pp, &pid, "Downloading", n, total);
            }
        }),
    );
    // The network read, the digest and (for gzip) the decompression run on their own thread,
    // ahead of the unpacking (tar, files, the uncompressed digest).
    let (unpacked, verified) = if compression == LayerCompression::Gzip {
        let mut ahead = berth_registry::pipe::ReadAhead::spawn(
            GunzipReader::new(reader),
            256 * 1024,
            16,
            |gunzip| gunzip.into_inner().finish(),
        );
        let unpacked =
            store.unpack_pulled_layer(&mut ahead, LayerCompression::None, parent, diff_id);
        (unpacked, ahead.finish())
    } else {
        let mut ahead =
            berth_registry::pipe::ReadAhead::spawn(reader, 256 * 1024, 16, |r| r.finish());
        let unpacked = store.unpack_pulled_layer(&mut ahead, compression, parent, diff_id);
        (unpacked, ahead.finish())
    };
    // The blob's digest decides first: a tampered blob is a digest mismatch.
    verified.map_err(registry_error)?;
    let mut layer_out = unpacked.map_err(EngineError::from)?;
    let writer = kept
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .ok_or_else(|| EngineError::Internal(format!("layer {id}: its blob was not kept")))?;
    let blob = CompressedLayer {
        digest: layer.digest.clone(),
        size: layer.size,
        media_type: layer.media_type.clone(),
        source: String::new(),
    };
    store
        .keep_pulled_blob(&mut layer_out, writer, &blob, compression)
        .map_err(EngineError::from)?;
    status(p, Some(&id), "Verifying Checksum");
    status(p, Some(&id), "Download complete");
    progress_bytes(p, &id, "Extracting", total, total);
    status(p, Some(&id), "Pull complete");
    Ok(layer_out)
}

/// Copies what is read from `inner` into the kept blob's writer; a failed write fails the read.
struct TeeReader<R> {
    inner: R,
    out: Arc<Mutex<Option<IngestWriter>>>,
}

impl<R: std::io::Read> std::io::Read for TeeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(w) = self.out.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            std::io::Write::write_all(w, &buf[..n])?;
        }
        Ok(n)
    }
}
