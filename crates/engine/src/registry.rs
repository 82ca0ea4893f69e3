//! Pull, push and login on top of [`berth_registry`] and the image store: the two phases of a
//! pull (resolve the manifest, so that a missing image is an error before any progress; then
//! download and unpack the layers concurrently and commit the image at once), pushes with
//! concurrent compressed uploads, credential checks, and the distribution inspect. Progress is
//! reported as Docker's JSON messages (`status`, `id`, `progressDetail`, `aux`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use berth_image::{
    CompressedLayer, GunzipReader, ImageStore, LayerCompression, PulledLayer, Reference,
};
use berth_registry::client::error_code;
use berth_registry::endpoints::{endpoints, first_success, moves_on_after};
use berth_registry::manifest::{self, layer_compression, Compression};
use berth_registry::{
    Credentials, Descriptor, Endpoint, ImageManifest, Manifest, Platform, RegistryClient,
    RegistryError, RegistryOptions, VerifyingReader,
};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;

use crate::engine::Engine;
use crate::error::{EngineError, Result};

/// The daemon's registry settings.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    pub options: RegistryOptions,
    pub max_concurrent_downloads: usize,
    pub max_concurrent_uploads: usize,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        RegistrySettings {
            options: RegistryOptions::default(),
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 5,
        }
    }
}

static SETTINGS: RwLock<Option<RegistrySettings>> = RwLock::new(None);

/// Sets the registry settings (once, at daemon start-up).
pub fn configure(settings: RegistrySettings) {
    *SETTINGS.write().unwrap_or_else(|e| e.into_inner()) = Some(settings);
}

fn settings() -> RegistrySettings {
    SETTINGS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default()
}

/// Where progress messages go.
pub type Progress = UnboundedSender<Value>;

fn status(p: &Progress, id: Option<&str>, text: &str) {
    let mut m = json!({ "status": text });
    if let Some(id) = id {
        m["id"] = json!(id);
    }
    let _ = p.send(m);
}

fn progress_bytes(p: &Progress, id: &str, text: &str, current: u64, total: u64) {
    let _ = p.send(json!({
        "status": text,
        "progressDetail": {"current": current, "total": total},
        "id": id,
    }));
}

fn short(digest: &str) -> String {
    digest
        .strip_prefix("sha256:")
        .unwrap_or(digest)
        .chars()
        .take(12)
        .collect()
}

fn internal(e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(e.to_string())
}

/// Maps a registry failure of a pull of `r` to Docker's wording and status.
fn pull_error(e: RegistryError, r: &Reference) -> EngineError {
    let code = error_code(&e);
    match (code, e) {
        (Some("MANIFEST_UNKNOWN"), e) => {
            EngineError::NotFound(format!("manifest for {} not found: {e}", r.familiar()))
        }
        (Some("NAME_UNKNOWN"), e) => {
            EngineError::NotFound(format!("repository {} not found: {e}", r.repo_familiar()))
        }
        (_, e @ (RegistryError::Denied(_) | RegistryError::Unauthorized(_))) => {
            EngineError::NotFound(format!(
                "pull access denied for {}, repository does not exist or may require 'docker login': {e}",
                r.repo_familiar()
            ))
        }
        (_, RegistryError::NotFound(m)) => {
            EngineError::NotFound(format!("manifest for {} not found: {m}", r.familiar()))
        }
        (_, e) => registry_error(e),
    }
}

/// Maps a registry failure to an engine error kind.
pub fn registry_error(e: RegistryError) -> EngineError {
    match e {
        RegistryError::NotFound(m) => EngineError::NotFound(m),
        RegistryError::Unauthorized(m) | RegistryError::Denied(m) => EngineError::Forbidden(m),
        e @ (RegistryError::InvalidArgument(_)
        | RegistryError::NoMatchingPlatform(_)
        | RegistryError::DigestMismatch { .. }) => EngineError::InvalidArgument(e.to_string()),
        e @ (RegistryError::Transport(_) | RegistryError::RangeNotSatisfiable(_)) => {
            EngineError::Internal(e.to_string())
        }
    }
}

/// The `X-Registry-Auth` / `POST /auth` body.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
    pub auth: String,
    pub serveraddress: String,
    pub identitytoken: String,
}

impl AuthConfig {
    /// Decodes `X-Registry-Auth` (base64url JSON; padded or not; `{}` and empty are none).
    pub fn from_header(h: &str) -> Option<AuthConfig> {
        use base64::Engine as _;
        let h = h.trim();
        if h.is_empty() {
            return None;
        }
        let engines = [
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
        ];
        let raw = engines.iter().find_map(|e| e.decode(h).ok())?;
        serde_json::from_slice(&raw).ok()
    }

    /// The credentials it carries (`auth` is base64 `user:pass`).
    pub fn credentials(&self) -> Option<Credentials> {
        use base64::Engine as _;
        let (mut user, mut pass) = (self.username.clone(), self.password.clone());
        if user.is_empty() && !self.auth.is_empty() {
            if let Some((u, p)) = base64::engine::general_purpose::STANDARD
                .decode(self.auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| {
                    s.split_once(':')
                        .map(|(u, p)| (u.to_string(), p.to_string()))
                })
            {
                user = u;
                pass = p;
            }
        }
        let c = Credentials {
            username: user,
            password: pass,
            identity_token: self.identitytoken.clone(),
        };
        (!c.is_empty()).then_some(c)
    }
}

/// The registry host of a login `serveraddress` (`https://index.docker.io/v1/` → docker.io).
pub fn login_domain(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("");
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".into(),
        h => h.to_string(),
    }
}

/// What [`Engine::image_pull_resolve`] found: everything the download phase needs.
pub struct PullPlan {
    client: Arc<RegistryClient>,
    reference: Reference,
    /// The tag or digest shown as the first message's id.
    display_id: String,
    /// Digest of what the reference points to (index or manifest).
    top_digest: String,
    manifest: ImageManifest,
    /// The platform asked for with `--platform`, checked against a single-platform image.
    wanted: Option<Platform>,
}

/// A resolved pull, or several for `pull -a`.
pub struct PullPlans(pub Vec<PullPlan>);

fn parse_ref(from_image: &str, tag: &str) -> Result<(Reference, bool)> {
    let bad = || EngineError::InvalidArgument("invalid reference format".into());
    let base = Reference::parse(from_image).map_err(|_| bad())?;
    let name_has_suffix = from_image.contains('@')
        || from_image
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'));
    if tag.is_empty() {
        return Ok((base, !name_has_suffix));
    }
    let joined = if tag.starts_with("sha256:") {
        format!("{}@{tag}", base.repo_full())
    } else {
        format!("{}:{tag}", base.repo_full())
    };
    Ok((Reference::parse(&joined).map_err(|_| bad())?, false))
}

impl Engine {
    fn store(&self) -> Arc<ImageStore> {
        self.images.clone()
    }

    /// Phase one of `POST /images/create?fromImage=`: connects, authenticates and fetches the
    /// manifest (choosing the platform in an index). Errors here are HTTP errors.
    pub async fn image_pull_resolve(
        &self,
        from_image: &str,
        tag: &str,
        platform: &str,
        auth: Option<AuthConfig>,
    ) -> Result<PullPlans> {
        let (reference, all_tags) = parse_ref(from_image, tag)?;
        let explicit = !platform.trim().is_empty();
        let platform = Platform::parse(platform).map_err(registry_error)?;
        let creds = auth.and_then(|a| a.credentials());
        tokio::task::spawn_blocking(move || -> Result<PullPlans> {
            let s = settings();
            let list = endpoints(&s.options, &reference.domain, true);
            let plans = first_success(
                &list,
                |endpoint| -> std::result::Result<Vec<PullPlan>, ResolveFailure> {
                    let client = connect_for_pull(&s.options, endpoint, &reference, creds.clone())?;
                    let client = Arc::new(client);
                    let refs = if all_tags {
                        let tags = client
                            .list_tags()
                            .map_err(|e| ResolveFailure::Fetch(e, Box::new(reference.clone())))?;
                        tags.into_iter()
                            .filter_map(|t| {
                                Reference::parse(&format!("{}:{t}", reference.repo_full())).ok()
                            })
                            .collect()
                    } else {
                        vec![reference.clone()]
                    };
                    let mut plans = Vec::new();
                    for r in refs {
                        let mut plan = resolve_one(client.clone(), r, &platform)?;
                        if !explicit {
                            plan.wanted = None;
                        }
                        plans.push(plan);
                    }
                    Ok(plans)
                },
                ResolveFailure::moves_on,
            )
            .map_err(|f| f.into_engine_error(&reference))?;
            Ok(PullPlans(plans))
        })
        .await
        .map_err(internal)?
    }

    /// Phase two: downloads and commits, reporting progress. The last messages are Docker's
    /// `Digest:` and `Status:` lines.
    pub async fn image_pull_run(&self, plans: PullPlans, progress: Progress) -> Result<()> {
        let store = self.store();
        let n = plans.0.len();
        let pulled: Vec<String> = plans.0.iter().map(|p| p.reference.familiar()).collect();
        let r = tokio::task::spawn_blocking(move || -> Result<()> {
            let s = settings();
            let mut last = None;
            for plan in plans.0 {
                let familiar = if n > 1 {
                    plan.reference.repo_familiar()
                } else {
                    plan.reference.familiar()
                };
                let changed = download(&store, &plan, &progress, s.max_concurrent_downloads)?;
                status(&progress, None, &format!("Digest: {}", plan.top_digest));
                last = Some((familiar, changed));
            }
            if let Some((familiar, changed)) = last {
                let text = if changed {
                    format!("Status: Downloaded newer image for {familiar}")
                } else {
                    format!("Status: Image is up to date for {familiar}")
                };
                status(&progress, None, &text);
            }
            Ok(())
        })
        .await
        .map_err(internal)?;
        if r.is_ok() {
            for name in pulled {
                let repo = name.rsplit_once(':').map(|(r, _)| r.to_string());
                self.event(
                    "image",
                    "pull",
                    &name,
                    &[("name", repo.unwrap_or(name.clone()))],
                );
            }
        }
        r
    }

    /// Checks that the image exists before a push stream starts, and resolves the tags to push.
    pub async fn image_push_resolve(&self, name: &str, tag: &str) -> Result<Vec<Reference>> {
        let (reference, all_tags) = parse_ref(name, tag)?;
        if reference.is_digest() {
            return Err(EngineError::InvalidArgument(
                "cannot push a digest reference".into(),
            ));
        }
        let store = self.store();
        let refs = if all_tags {
            let tags: Vec<Reference> = store
                .tags_in_repository(&reference.repo_full())
                .into_iter()
                .map(|(r, _)| r)
                .collect();
            if tags.is_empty() {
                return Err(EngineError::NotFound(format!(
                    "An image does not exist locally with the tag: {}",
                    reference.repo_familiar()
                )));
            }
            tags
        } else {
            if store.image_parts(&reference.full()).is_err() {
                return Err(EngineError::NotFound(format!(
                    "An image does not exist locally with the tag: {}",
                    reference.familiar()
                )));
            }
            vec![reference]
        };
        Ok(refs)
    }

    /// `POST /images/{name}/push`: uploads what the registry lacks, then the manifest.
    pub async fn image_push_run(
        &self,
        refs: Vec<Reference>,
        auth: Option<AuthConfig>,
        progress: Progress,
    ) -> Result<()> {
        let store = self.store();
        let creds = auth.and_then(|a| a.credentials());
        let pushed: Vec<String> = refs.iter().map(|r| r.familiar()).collect();
        let r = tokio::task::spawn_blocking(move || -> Result<()> {
            let s = settings();
            let Some(first) = refs.first() else {
                return Ok(());
            };
            status(
                &progress,
                None,
                &format!("The push refers to repository [{}]", first.repo_familiar()),
            );
            let client = RegistryClient::connect(
                &s.options,
                &first.domain,
                &first.path,
                creds,
                &["pull", "push"],
                false,
            )
            .map_err(registry_error)?;
            for r in &refs {
                push_one(&store, &client, r, &progress, s.max_concurrent_uploads)?;
            }
            Ok(())
        })
        .await
        .map_err(internal)?;
        if r.is_ok() {
            for name in pushed {
                let repo = name.rsplit_once(':').map(|(r, _)| r.to_string());
                self.event(
                    "image",
                    "push",
                    &name,
                    &[("name", repo.unwrap_or(name.clone()))],
                );
            }
        }
        r
    }

    /// `POST /auth`: checks credentials against the registry.
    pub async fn registry_login(&self, auth: AuthConfig) -> Result<()> {
        let domain = login_domain(&auth.serveraddress);
        let creds = auth.credentials();
        tokio::task::spawn_blocking(move || -> Result<()> {
            let s = settings();
            let client = RegistryClient::connect(&s.options, &domain, "", creds, &[], false)
                .map_err(registry_error)?;
            client.check_login().map_err(|e| match e {
                RegistryError::Unauthorized(m) | RegistryError::Denied(m) => {
                    let m = if m.starts_with("unauthorized") {
                        m
                    } else {
                        format!("unauthorized: {m}")
                    };
                    EngineError::Forbidden(format!("Get \"{}/v2/\": {m}", client.base()))
                }
                other => registry_error(other),
            })
        })
        .await
        .map_err(internal)?
    }

    /// `GET /distribution/{name}/json`: the descriptor the reference points to, and platforms.
    pub async fn distribution_inspect(
        &self,
        name: &str,
        auth: Option<AuthConfig>,
    ) -> Result<Value> {
        let (reference, _) = parse_ref(name, "")?;
        let creds = auth.and_then(|a| a.credentials());
        tokio::task::spawn_blocking(move || -> Result<Value> {
            let s = settings();
            let want = reference
                .digest
                .clone()
                .or(reference.tag.clone())
                .unwrap_or_else(|| "latest".into());
            // As dockerd does, each endpoint is asked in turn until one has the manifest.
            let (client, m) = first_success(
                &endpoints(&s.options, &reference.domain, true),
                |endpoint| {
                    let client =
                        connect_for_pull(&s.options, endpoint, &reference, creds.clone())?;
                    let m = client
                        .get_manifest(&want)
                        .map_err(|e| ResolveFailure::Fetch(e, Box::new(reference.clone())))?;
                    Ok((client, m))
                },
                ResolveFailure::moves_on,
            )
            .map_err(|f| f.into_engine_error(&reference))?;
            let parsed = manifest::parse_manifest(&m.media_type, &m.body).map_err(registry_error)?;
            let media_type = if m.media_type.is_empty() {
                match &parsed {
                    Manifest::Image(i) => i.media_type.clone(),
                    Manifest::Index(i) => i.media_type.clone(),
                }
            } else {
                m.media_type.clone()
            };
            let platforms: Vec<Value> = match &parsed {
                Manifest::Index(i) => i
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref())
                    .map(|p| json!({"architecture": p.architecture, "os": p.os, "variant": p.variant}))
                    .collect(),
                Manifest::Image(im) => {
                    let cfg = fetch_config(&client, &im.config)?;
                    let v: Value = serde_json::from_slice(&cfg).unwrap_or_default();
                    vec![json!({
                        "architecture": v.get("architecture").cloned().unwrap_or_default(),
                        "os": v.get("os").cloned().unwrap_or_default(),
                    })]
                }
            };
            Ok(json!({
                "Descriptor": {"mediaType": media_type, "digest": m.digest, "size": m.body.len()},
                "Platforms": platforms,
            }))
        })
        .await
        .map_err(internal)?
    }
}

/// Connects to `endpoint` to pull from `reference`'s repository.
fn connect_for_pull(
    options: &berth_registry::RegistryOptions,
    endpoint: &Endpoint,
    reference: &Reference,
    creds: Option<Credentials>,
) -> std::result::Result<RegistryClient, ResolveFailure> {
    RegistryClient::connect_to(options, endpoint, &reference.path, creds, &["pull"])
        .map_err(ResolveFailure::Connect)
}

/// Why resolving a pull at one endpoint failed, and so whether the next endpoint is tried.
enum ResolveFailure {
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
    fn moves_on(&self, endpoint: &Endpoint) -> bool {
        match self {
            ResolveFailure::Connect(_) => true,
            ResolveFailure::Fetch(e, _) => moves_on_after(e, endpoint),
            ResolveFailure::Other(_) => endpoint.mirror,
        }
    }

    /// Docker's wording of the failure of a pull of `asked`.
    fn into_engine_error(self, asked: &Reference) -> EngineError {
        match self {
            ResolveFailure::Connect(e) => pull_error(e, asked),
            ResolveFailure::Fetch(e, r) => pull_error(e, &r),
            ResolveFailure::Other(e) => e,
        }
    }
}

/// Fetches the manifest `r` names from `client`'s endpoint (and, for an index, the entry for
/// `platform`).
fn resolve_one(
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
    })
}

fn fetch_config(client: &RegistryClient, d: &Descriptor) -> Result<Vec<u8>> {
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
fn download(store: &ImageStore, plan: &PullPlan, p: &Progress, workers: usize) -> Result<bool> {
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
fn run_bounded<T: Sync, R: Send>(
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

fn pull_layer(
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
    let layer_out = unpacked.map_err(EngineError::from)?;
    status(p, Some(&id), "Verifying Checksum");
    status(p, Some(&id), "Download complete");
    progress_bytes(p, &id, "Extracting", total, total);
    status(p, Some(&id), "Pull complete");
    Ok(layer_out)
}

fn push_one(
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

fn push_layer(
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
    // Compress while uploading: a digest-computing read-ahead thread runs the compressor,
    // this thread sends what it produced.
    let (gz, total) = store
        .gzip_layer_stream(diff_id)
        .map_err(EngineError::from)?;
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
        media_type: berth_image::pull::DOCKER_LAYER_GZIP.into(),
        source: String::new(),
    };
    status(p, Some(&id), "Pushed");
    remember(c)
}

/// Hashes and counts what passes through (the compressed stream of a push).
struct CountingReader {
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
struct SharedReader(Arc<Mutex<Option<CompressingPipe>>>);

/// The read-ahead of a push: it yields the compressed layer and ends with its digest and size.
type CompressingPipe = berth_registry::pipe::ReadAhead<(String, u64)>;

impl std::io::Read for SharedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(a) => a.read(buf),
            None => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_from_query() {
        let (r, all) = parse_ref("busybox", "latest").unwrap();
        assert_eq!(r.full(), "docker.io/library/busybox:latest");
        assert!(!all);
        let (r, all) = parse_ref("localhost:5000/a", "").unwrap();
        assert!(all);
        assert_eq!(r.repo_full(), "localhost:5000/a");
        let (_, all) = parse_ref("localhost:5000/a:v1", "").unwrap();
        assert!(!all);
        let d = format!("sha256:{}", "a".repeat(64));
        let (r, _) = parse_ref("x", &d).unwrap();
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert!(parse_ref("UPPER", "").is_err());
    }

    #[test]
    fn auth_header_and_login_domains() {
        use base64::Engine as _;
        let h = base64::engine::general_purpose::URL_SAFE
            .encode(r#"{"username":"u","password":"p","serveraddress":"127.0.0.1:5000"}"#);
        let a = AuthConfig::from_header(&h).unwrap();
        let c = a.credentials().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p"));
        let a = AuthConfig {
            auth: base64::engine::general_purpose::STANDARD.encode("x:y:z"),
            ..Default::default()
        };
        assert_eq!(a.credentials().unwrap().password, "y:z");
        assert!(AuthConfig::from_header("e30=")
            .unwrap()
            .credentials()
            .is_none());
        assert!(AuthConfig::from_header("").is_none());
        assert_eq!(login_domain("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(login_domain("http://127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(login_domain("localhost:5000"), "localhost:5000");
    }

    #[test]
    fn pull_errors_worded_as_docker() {
        let r = Reference::parse("localhost:5000/x:nope").unwrap();
        let e = pull_error(
            RegistryError::NotFound("manifest unknown: manifest unknown".into()),
            &r,
        );
        assert_eq!(
            e.to_string(),
            "manifest for localhost:5000/x:nope not found: manifest unknown: manifest unknown"
        );
        let e = pull_error(
            RegistryError::Unauthorized("unauthorized: authentication required".into()),
            &r,
        );
        assert!(e
            .to_string()
            .starts_with("pull access denied for localhost:5000/x, repository does not exist or may require 'docker login'"));
    }
}
