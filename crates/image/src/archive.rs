//! Image archives: `load` of docker-archive (`manifest.json`) and OCI image layout (`index.json`)
//! tars, and `save` in Docker 25+'s combined layout (both `manifest.json` and OCI `index.json`
//! over `blobs/sha256/<hex>`).
//!
//! `load` spools the whole (optionally gzip'd) archive into `tmp/` first, since entry order is not
//! to be trusted, then verifies every image (configs parse, referenced files exist, paths stay in
//! the archive, layer diff IDs equal the config's `rootfs.diff_ids`) while unpacking layers into
//! temp dirs, and only then commits everything. A bad archive leaves the store unchanged.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::json;

use crate::content::{digest_bytes, digest_hex};
use crate::layer_tar::{clean_path, maybe_decompress};
use crate::reference::{valid_digest, Reference};
use crate::snapshot::{next_chain, KeepBlob, TmpDir};
use crate::store::{go_arch, parse_config};
use crate::{io_err, ImageError, ImageStore, LoadedImage, Result};

fn bad(msg: impl std::fmt::Display) -> ImageError {
    ImageError::InvalidArgument(format!("invalid archive: {msg}"))
}

/// An archive unpacked into a temp dir: each regular file stored flat, symlinks and hard links
/// kept as a name map, so nothing in the archive can place files outside the spool.
struct Spool {
    dir: TmpDir,
    files: HashMap<String, PathBuf>,
    links: HashMap<String, String>,
}

fn key(comps: &[Vec<u8>]) -> String {
    comps
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

impl Spool {
    fn extract(src: &mut dyn Read, tmp: &std::path::Path) -> Result<Spool> {
        let dir = TmpDir::new(tmp)?;
        let mut spool = Spool {
            dir,
            files: HashMap::new(),
            links: HashMap::new(),
        };
        let plain = maybe_decompress(Box::new(io::BufReader::with_capacity(1 << 16, src)))?;
        let mut ar = tar::Archive::new(plain);
        let mut n = 0usize;
        for entry in ar.entries().map_err(bad)? {
            let mut e = entry.map_err(bad)?;
            let raw = e.path_bytes().into_owned();
            let comps = clean_path(&raw).ok_or_else(|| {
                bad(format!(
                    "path escapes the archive: {}",
                    String::from_utf8_lossy(&raw)
                ))
            })?;
            if comps.is_empty() {
                continue;
            }
            let k = key(&comps);
            match e.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    n += 1;
                    let p = spool.dir.path.join(format!("f{n}"));
                    let mut f = File::create(&p).map_err(|e| io_err("spool archive", e))?;
                    io::copy(&mut e, &mut f).map_err(bad)?;
                    spool.links.remove(&k);
                    spool.files.insert(k, p);
                }
                kind @ (tar::EntryType::Symlink | tar::EntryType::Link) => {
                    let target = e
                        .link_name_bytes()
                        .ok_or_else(|| bad("link without target"))?
                        .into_owned();
                    let mut full = Vec::new();
                    if kind == tar::EntryType::Symlink && !target.starts_with(b"/") {
                        for c in &comps[..comps.len() - 1] {
                            full.extend_from_slice(c);
                            full.push(b'/');
                        }
                    }
                    full.extend_from_slice(&target);
                    let t = clean_path(&full).ok_or_else(|| {
                        bad(format!(
                            "link escapes the archive: {}",
                            String::from_utf8_lossy(&target)
                        ))
                    })?;
                    spool.files.remove(&k);
                    spool.links.insert(k, key(&t));
                }
                _ => {}
            }
        }
        Ok(spool)
    }

    fn resolve(&self, name: &str) -> Result<&PathBuf> {
        let comps = clean_path(name.as_bytes())
            .ok_or_else(|| bad(format!("path escapes the archive: {name}")))?;
        let mut k = key(&comps);
        for _ in 0..16 {
            if let Some(p) = self.files.get(&k) {
                return Ok(p);
            }
            match self.links.get(&k) {
                Some(t) => k = t.clone(),
                None => break,
            }
        }
        Err(bad(format!("missing file {name}")))
    }

    fn has(&self, name: &str) -> bool {
        self.resolve(name).is_ok()
    }

    fn open(&self, name: &str) -> Result<File> {
        let p = self.resolve(name)?;
        File::open(p).map_err(|e| io_err(format!("open {name}"), e))
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let p = self.resolve(name)?;
        fs::read(p).map_err(|e| io_err(format!("read {name}"), e))
    }

    /// Reads an OCI blob, verifying its digest.
    fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        if !valid_digest(digest) {
            return Err(bad(format!("unsupported digest {digest}")));
        }
        let data = self.read(&blob_path(digest))?;
        if digest_bytes(&data) != digest {
            return Err(bad(format!("blob digest mismatch for {digest}")));
        }
        Ok(data)
    }
}

fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", digest_hex(digest))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Platform {
    architecture: String,
    os: String,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct OciIndex {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct OciManifest {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// One image found in an archive.
struct Candidate {
    config: Vec<u8>,
    layers: Vec<String>,
    tags: Vec<Reference>,
}

fn parse_tag(t: &str) -> Result<Reference> {
    Reference::parse(t).map_err(|_| bad(format!("invalid tag {t:?}")))
}

fn docker_candidates(spool: &Spool) -> Result<Vec<Candidate>> {
    let entries: Vec<ManifestEntry> = serde_json::from_slice(&spool.read("manifest.json")?)
        .map_err(|e| bad(format!("manifest.json: {e}")))?;
    let mut out = Vec::new();
    for m in entries {
        let config = spool.read(&m.config)?;
        let mut tags = Vec::new();
        for t in m.repo_tags.unwrap_or_default() {
            let r = parse_tag(&t)?;
            if !r.is_digest() {
                tags.push(r);
            }
        }
        out.push(Candidate {
            config,
            layers: m.layers,
            tags,
        });
    }
    Ok(out)
}

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

fn oci_candidates(spool: &Spool) -> Result<Vec<Candidate>> {
    let index: OciIndex = serde_json::from_slice(&spool.read("index.json")?)
        .map_err(|e| bad(format!("index.json: {e}")))?;
    let mut out = Vec::new();
    for desc in index.manifests {
        let mut manifest_desc_digest = desc.digest.clone();
        let mut media = desc.media_type.clone();
        let mut bytes = spool.read_blob(&manifest_desc_digest)?;
        // A nested index: pick this platform's manifest, else the first.
        for _ in 0..4 {
            let is_index = INDEX_TYPES.contains(&media.as_str())
                || serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .is_some_and(|v| v.get("manifests").is_some() && v.get("config").is_none());
            if !is_index {
                break;
            }
            let inner: OciIndex =
                serde_json::from_slice(&bytes).map_err(|e| bad(format!("index: {e}")))?;
            let chosen = inner
                .manifests
                .iter()
                .find(|m| {
                    m.platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == go_arch())
                })
                .or_else(|| inner.manifests.first())
                .ok_or_else(|| bad("empty image index"))?;
            manifest_desc_digest = chosen.digest.clone();
            media = chosen.media_type.clone();
            bytes = spool.read_blob(&manifest_desc_digest)?;
        }
        let manifest: OciManifest =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("manifest: {e}")))?;
        let config = spool.read_blob(&manifest.config.digest)?;
        let mut layers = Vec::new();
        for l in &manifest.layers {
            if !valid_digest(&l.digest) {
                return Err(bad(format!("unsupported digest {}", l.digest)));
            }
            layers.push(blob_path(&l.digest));
        }
        let mut tags = Vec::new();
        let name = desc
            .annotations
            .get("io.containerd.image.name")
            .or_else(|| {
                desc.annotations
                    .get("org.opencontainers.image.ref.name")
                    .filter(|n| n.contains(['/', ':']))
            });
        if let Some(n) = name {
            let r = parse_tag(n)?;
            if !r.is_digest() {
                tags.push(r);
            }
        }
        out.push(Candidate {
            config,
            layers,
            tags,
        });
    }
    Ok(out)
}

impl ImageStore {
    pub(crate) fn load_impl(&self, archive: &mut dyn Read) -> Result<Vec<LoadedImage>> {
        let _w = self.write_lock();
        let spool = Spool::extract(archive, &self.tmp_dir())?;
        let candidates = if spool.has("manifest.json") {
            docker_candidates(&spool)?
        } else if spool.has("index.json") {
            oci_candidates(&spool)?
        } else {
            return Err(bad("no manifest.json or index.json"));
        };
        // Verify and unpack everything before committing anything.
        let mut prepared = Vec::new();
        let mut seen = HashSet::new();
        for c in &candidates {
            let cfg = parse_config(&c.config)?;
            let diffs = &cfg.rootfs.diff_ids;
            if diffs.len() != c.layers.len() {
                return Err(bad(format!(
                    "config lists {} layers but the manifest has {}",
                    diffs.len(),
                    c.layers.len()
                )));
            }
            let mut parent: Option<String> = None;
            for (diff, path) in diffs.iter().zip(&c.layers) {
                let chain = next_chain(parent.as_deref(), diff);
                if seen.insert(chain.clone()) {
                    let mut f = spool.open(path)?;
                    prepared.push(self.prepare_layer(
                        &mut f,
                        parent.as_deref(),
                        Some(diff),
                        KeepBlob::Tar,
                    )?);
                }
                parent = Some(chain);
            }
        }
        let mut st = self.lock();
        for p in prepared {
            self.commit_layer(p)?;
        }
        let mut loaded: Vec<LoadedImage> = Vec::new();
        for c in &candidates {
            let id =
                self.commit_image(&mut st, &c.config, &c.tags, crate::taglog::TagMove::Load)?;
            let tags: Vec<String> = c.tags.iter().map(|t| t.familiar()).collect();
            match loaded.iter_mut().find(|l| l.id == id) {
                Some(l) => l.tags.extend(tags),
                None => loaded.push(LoadedImage { id, tags }),
            }
        }
        drop(st);
        drop(spool);
        Ok(loaded)
    }

    pub(crate) fn save_impl(&self, names: &[String], out: &mut dyn Write) -> Result<()> {
        let _w = self.write_lock();
        // (id, tags, diff ids) in the order first named.
        let mut plan: Vec<(String, Vec<Reference>, Vec<String>)> = Vec::new();
        {
            let st = self.lock();
            for name in names {
                let (id, r) = st.lookup(name)?;
                let idx = match plan.iter().position(|p| p.0 == id) {
                    Some(i) => i,
                    None => {
                        plan.push((
                            id.clone(),
                            Vec::new(),
                            st.images[&id].config.rootfs.diff_ids.clone(),
                        ));
                        plan.len() - 1
                    }
                };
                if let Some(r) = r.filter(|r| !r.is_digest()) {
                    if !plan[idx].1.contains(&r) {
                        plan[idx].1.push(r);
                    }
                }
            }
        }
        let mut b = tar::Builder::new(out);
        let werr = |e: io::Error| io_err("write archive", e);
        for d in ["blobs/", "blobs/sha256/"] {
            let mut h = tar::Header::new_ustar();
            h.set_path(d).map_err(werr)?;
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_cksum();
            b.append(&h, io::empty()).map_err(werr)?;
        }
        let mut written: HashSet<String> = HashSet::new();
        let mut manifest_json = Vec::new();
        let mut index_entries = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (id, tags, diffs) in &plan {
            let mut layer_descs = Vec::new();
            let mut layer_paths = Vec::new();
            for blob in std::iter::once(id).chain(diffs.iter()) {
                let size = if blob == id {
                    self.content.size(blob)
                } else {
                    self.layer_tar_size(blob)
                }
                .ok_or_else(|| ImageError::NotFound(format!("blob {blob} is missing")))?;
                if blob != id {
                    layer_descs.push(json!({
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": blob,
                        "size": size,
                    }));
                    layer_paths.push(blob_path(blob));
                }
                if written.insert(blob.clone()) {
                    // A layer's tar is regenerated from its kept blob as it is written.
                    let f: Box<dyn Read> = if blob == id {
                        Box::new(self.content.open_blob(blob)?)
                    } else {
                        self.open_layer_tar(blob)?
                    };
                    append_file(&mut b, &blob_path(blob), size, f)?;
                }
            }
            let config_size = self.content.size(id).unwrap_or(0);
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": id, "size": config_size},
                "layers": layer_descs,
            });
            let mbytes = serde_json::to_vec(&manifest).map_err(|e| werr(e.into()))?;
            let mdigest = digest_bytes(&mbytes);
            if written.insert(mdigest.clone()) {
                append_bytes(&mut b, &blob_path(&mdigest), &mbytes)?;
            }
            let mdesc = |annotations: Option<serde_json::Value>| {
                let mut d = json!({
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": mdigest,
                    "size": mbytes.len(),
                });
                if let Some(a) = annotations {
                    d["annotations"] = a;
                }
                d
            };
            if tags.is_empty() {
                index_entries.push(mdesc(None));
            }
            for t in tags {
                index_entries.push(mdesc(Some(json!({
                    "io.containerd.image.name": t.full(),
                    "org.opencontainers.image.ref.name": t.tag.clone().unwrap_or_default(),
                }))));
                if let Some(top) = diffs.last() {
                    repositories.entry(t.repo_familiar()).or_default().insert(
                        t.tag.clone().unwrap_or_default(),
                        digest_hex(top).to_string(),
                    );
                }
            }
            let repo_tags: Option<Vec<String>> = if tags.is_empty() {
                None
            } else {
                Some(tags.iter().map(|t| t.familiar()).collect())
            };
            manifest_json.push(json!({
                "Config": blob_path(id),
                "RepoTags": repo_tags,
                "Layers": layer_paths,
            }));
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": index_entries,
        });
        let enc = |v: &serde_json::Value| serde_json::to_vec(v).map_err(|e| werr(e.into()));
        append_bytes(&mut b, "index.json", &enc(&index)?)?;
        append_bytes(
            &mut b,
            "manifest.json",
            &enc(&serde_json::Value::from(manifest_json))?,
        )?;
        append_bytes(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        if !repositories.is_empty() {
            append_bytes(&mut b, "repositories", &enc(&json!(repositories))?)?;
        }
        b.finish().map_err(werr)?;
        Ok(())
    }
}

fn file_header(path: &str, size: u64) -> Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).map_err(|e| io_err("write archive", e))?;
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(0);
    h.set_cksum();
    Ok(h)
}

fn append_bytes(b: &mut tar::Builder<&mut dyn Write>, path: &str, data: &[u8]) -> Result<()> {
    let h = file_header(path, data.len() as u64)?;
    b.append(&h, data).map_err(|e| io_err("write archive", e))
}

fn append_file(
    b: &mut tar::Builder<&mut dyn Write>,
    path: &str,
    size: u64,
    f: Box<dyn Read + '_>,
) -> Result<()> {
    let h = file_header(path, size)?;
    b.append(&h, f.take(size))
        .map_err(|e| io_err("write archive", e))
}
