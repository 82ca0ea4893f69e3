//! Pull, push and login on top of [`berth_registry`] and the image store: the two phases of a
//! pull (resolve the manifest, so that a missing image is an error before any progress; then
//! download and unpack the layers concurrently and commit the image at once), pushes with
//! concurrent compressed uploads, credential checks, and the distribution inspect. Progress is
//! reported as Docker's JSON messages (`status`, `id`, `progressDetail`, `aux`).

use std::sync::Arc;

use berth_image::{ImageStore, Reference};
use berth_registry::client::error_code;
use berth_registry::endpoints::{endpoints, first_success};
use berth_registry::manifest;
use berth_registry::{
    Credentials, ImageManifest, Manifest, Platform, RegistryClient, RegistryError,
};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;

use crate::context::Context;
use crate::error::{EngineError, Result};

mod pull;
mod push;
mod signatures;

pub(crate) use signatures::{add_signature, check_archive, recorded};

use pull::*;
use push::*;

pub use crate::config::RegistrySettings;

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

pub use berth_sys::names::login_domain;

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
    /// The signatures the policy verified for `top_digest` (recorded once the image is in).
    verified: Vec<berth_trust::VerifiedSignature>,
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

fn store(ctx: &Arc<Context>) -> Arc<ImageStore> {
    ctx.images.clone()
}

/// Phase one of `POST /images/create?fromImage=`: connects, authenticates and fetches the
/// manifest (choosing the platform in an index). Errors here are HTTP errors.
pub(crate) async fn image_pull_resolve(
    ctx: &Arc<Context>,
    from_image: &str,
    tag: &str,
    platform: &str,
    auth: Option<AuthConfig>,
) -> Result<PullPlans> {
    let (reference, all_tags) = parse_ref(from_image, tag)?;
    let explicit = !platform.trim().is_empty();
    let platform = Platform::parse(platform).map_err(registry_error)?;
    let creds = auth.and_then(|a| a.credentials());
    let s = ctx.config.registry.clone();
    let trust = ctx.config.trust.clone();
    tokio::task::spawn_blocking(move || -> Result<PullPlans> {
        // A broken policy refuses every pull (before any connection), never lets one through.
        let gate = signatures::load_gate(&trust)?;
        if let Some(gate) = &gate {
            signatures::check_rejected(gate, &reference)?;
        }
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
        let mut plans = plans;
        if let Some(gate) = &gate {
            for plan in &mut plans {
                plan.verified = signatures::check_pull(gate, plan)?;
            }
        }
        Ok(PullPlans(plans))
    })
    .await
    .map_err(internal)?
}

/// Phase two: downloads and commits, reporting progress. The last messages are Docker's
/// `Digest:` and `Status:` lines.
pub(crate) async fn image_pull_run(
    ctx: &Arc<Context>,
    plans: PullPlans,
    progress: Progress,
) -> Result<()> {
    let store = store(ctx);
    let n = plans.0.len();
    let pulled: Vec<String> = plans.0.iter().map(|p| p.reference.familiar()).collect();
    let s = ctx.config.registry.clone();
    let data_root = ctx.config.data_root.clone();
    let r = tokio::task::spawn_blocking(move || -> Result<()> {
        let mut last = None;
        for plan in plans.0 {
            let familiar = if n > 1 {
                plan.reference.repo_familiar()
            } else {
                plan.reference.familiar()
            };
            let changed = download(&store, &plan, &progress, s.max_concurrent_downloads)?;
            if !plan.verified.is_empty() {
                let repo_digest = format!("{}@{}", plan.reference.repo_full(), plan.top_digest);
                signatures::record(&data_root, &repo_digest, &plan.verified)?;
            }
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
            ctx.event(
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
pub(crate) async fn image_push_resolve(
    ctx: &Arc<Context>,
    name: &str,
    tag: &str,
) -> Result<Vec<Reference>> {
    let (reference, all_tags) = parse_ref(name, tag)?;
    if reference.is_digest() {
        return Err(EngineError::InvalidArgument(
            "cannot push a digest reference".into(),
        ));
    }
    let store = store(ctx);
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
pub(crate) async fn image_push_run(
    ctx: &Arc<Context>,
    refs: Vec<Reference>,
    auth: Option<AuthConfig>,
    progress: Progress,
) -> Result<()> {
    let store = store(ctx);
    let creds = auth.and_then(|a| a.credentials());
    let pushed: Vec<String> = refs.iter().map(|r| r.familiar()).collect();
    let s = ctx.config.registry.clone();
    let r = tokio::task::spawn_blocking(move || -> Result<()> {
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
            ctx.event(
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
pub(crate) async fn registry_login(ctx: &Arc<Context>, auth: AuthConfig) -> Result<()> {
    let domain = login_domain(&auth.serveraddress);
    let creds = auth.credentials();
    let s = ctx.config.registry.clone();
    tokio::task::spawn_blocking(move || -> Result<()> {
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
pub(crate) async fn distribution_inspect(
    ctx: &Arc<Context>,
    name: &str,
    auth: Option<AuthConfig>,
) -> Result<Value> {
    let (reference, _) = parse_ref(name, "")?;
    let creds = auth.and_then(|a| a.credentials());
    let s = ctx.config.registry.clone();
    tokio::task::spawn_blocking(move || -> Result<Value> {
        let want = reference
            .digest
            .clone()
            .or(reference.tag.clone())
            .unwrap_or_else(|| "latest".into());
        // As dockerd does, each endpoint is asked in turn until one has the manifest.
        let (client, m) = first_success(
            &endpoints(&s.options, &reference.domain, true),
            |endpoint| {
                let client = connect_for_pull(&s.options, endpoint, &reference, creds.clone())?;
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
