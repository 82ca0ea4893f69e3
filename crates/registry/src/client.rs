//! The HTTP side of the protocol: endpoint discovery (`GET /v2/` over HTTPS, plain HTTP for
//! insecure registries), authorisation on demand, manifests, blobs and uploads. Blocking
//! (ureq); callers in async code use `spawn_blocking`. `Sync`: one client serves the
//! concurrent layer transfers of an operation.

use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::{parse_challenge, repository_scope, token_from_response, token_url, Challenge};
use crate::endpoints::{endpoints, first_success, Endpoint};
use crate::error::{describe_error_body, RegistryError, Result};
use crate::manifest::MANIFEST_ACCEPT;
use crate::options::{RegistryOptions, UploadPolicy};
use crate::token::{token_lifetime, Authorization};
use crate::verify::sha256_digest;
use crate::Credentials;

/// The most of a manifest berth reads.
const MAX_MANIFEST: u64 = 4 << 20;

/// A client for one repository of one registry.
pub struct RegistryClient {
    agent: ureq::Agent,
    /// `scheme://host[:port]`.
    base: String,
    repository: String,
    creds: Option<Credentials>,
    actions: Vec<&'static str>,
    challenge: Mutex<Option<Challenge>>,
    authorization: Mutex<Option<Authorization>>,
    /// When blobs go up in chunks.
    pub(crate) upload: UploadPolicy,
}

/// A fetched manifest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub media_type: String,
    pub body: Vec<u8>,
    /// `sha256:` of the body.
    pub digest: String,
}

pub(crate) fn transport(e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Transport(e.to_string())
}

/// Maps an error answer to Docker's wording.
fn status_error(code: u16, resp: ureq::Response) -> RegistryError {
    let status_text = resp.status_text().to_string();
    let mut body = Vec::new();
    let _ = resp.into_reader().take(64 * 1024).read_to_end(&mut body);
    let described = describe_error_body(&body);
    let text = described.as_ref().map(|(_, t)| t.clone());
    match code {
        401 => RegistryError::Unauthorized(
            text.unwrap_or_else(|| "unauthorized: authentication required".into()),
        ),
        403 => RegistryError::Denied(
            text.unwrap_or_else(|| "denied: requested access to the resource is denied".into()),
        ),
        404 => RegistryError::NotFound(text.unwrap_or_else(|| "not found".into())),
        416 => RegistryError::RangeNotSatisfiable(match text {
            Some(t) => format!("{code} {status_text}: {t}"),
            None => format!("{code} {status_text}"),
        }),
        _ => RegistryError::Transport(match text {
            Some(t) => format!("received unexpected HTTP status: {code} {status_text}: {t}"),
            None => format!("received unexpected HTTP status: {code} {status_text}"),
        }),
    }
}

/// The error code of a registry error (`MANIFEST_UNKNOWN`, `NAME_UNKNOWN`, …) in a message
/// produced by [`status_error`].
pub fn error_code(e: &RegistryError) -> Option<&'static str> {
    let msg = e.to_string();
    for (prefix, code) in [
        ("manifest unknown", "MANIFEST_UNKNOWN"),
        ("name unknown", "NAME_UNKNOWN"),
        ("blob unknown", "BLOB_UNKNOWN"),
        ("denied", "DENIED"),
        ("unauthorized", "UNAUTHORIZED"),
    ] {
        if msg.starts_with(prefix) {
            return Some(code);
        }
    }
    None
}

/// The request body of [`RegistryClient::send`].
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    Reader(Box<dyn Read + Send + 'a>, u64),
}

impl RegistryClient {
    /// Finds the endpoint of `domain` (the reference's registry) and learns how it wants to be
    /// authenticated. `actions` are the scope's actions (`pull`, `push`). With `pull_only`,
    /// Docker Hub's mirrors are tried first, in order; a mirror that does not answer falls
    /// through to the next one. Mirrors are never sent the credentials given for docker.io.
    /// Pulls that must also fall through when a mirror lacks the image go through
    /// [`crate::endpoints::first_success`] with [`RegistryClient::connect_to`] instead.
    pub fn connect(
        opts: &RegistryOptions,
        domain: &str,
        repository: &str,
        creds: Option<Credentials>,
        actions: &[&'static str],
        pull_only: bool,
    ) -> Result<RegistryClient> {
        first_success(
            &endpoints(opts, domain, pull_only),
            |endpoint| Self::connect_to(opts, endpoint, repository, creds.clone(), actions),
            |_, _| true,
        )
    }

    /// Connects to one endpoint (`GET /v2/`, keeping its authentication challenge). A mirror
    /// is not given `creds`.
    pub fn connect_to(
        opts: &RegistryOptions,
        endpoint: &Endpoint,
        repository: &str,
        creds: Option<Credentials>,
        actions: &[&'static str],
    ) -> Result<RegistryClient> {
        let tls = crate::tls::client_config(&opts.certs_dir, endpoint.host())?;
        let agent = ureq::AgentBuilder::new()
            .tls_config(tls)
            .user_agent(&opts.user_agent)
            .timeout_connect(Duration::from_secs(15))
            .timeout_read(Duration::from_secs(300))
            .build();
        let client = RegistryClient {
            agent,
            base: endpoint.base.clone(),
            repository: repository.to_string(),
            creds: creds.filter(|c| !c.is_empty() && !endpoint.mirror),
            actions: actions.to_vec(),
            challenge: Mutex::new(None),
            authorization: Mutex::new(None),
            upload: opts.upload,
        };
        client.ping()?;
        Ok(client)
    }

    /// The endpoint in use, e.g. `http://127.0.0.1:5000`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /v2/`: 200, or 401 with the challenge to answer later.
    fn ping(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        match self.agent.get(&url).call() {
            Ok(_) => Ok(()),
            Err(ureq::Error::Status(401, resp)) => {
                let ch = resp.header("www-authenticate").and_then(parse_challenge);
                *self.challenge.lock().unwrap_or_else(|e| e.into_inner()) = ch;
                Ok(())
            }
            Err(ureq::Error::Status(code, resp)) => Err(status_error(code, resp)),
            Err(ureq::Error::Transport(t)) => Err(transport(format!("Get \"{url}\": {t}"))),
        }
    }

    /// Checks the credentials (`docker login`): the registry must accept them.
    pub fn check_login(&self) -> Result<()> {
        let challenge = self
            .challenge
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(challenge) = challenge else {
            return Ok(());
        };
        let authorization = self.authorize(&challenge, &[])?;
        let url = format!("{}/v2/", self.base);
        let mut req = self.agent.get(&url);
        if let Some(a) = &authorization {
            req = req.set("Authorization", &a.header);
        }
        match req.call() {
            Ok(_) => Ok(()),
            Err(ureq::Error::Status(code, resp)) => Err(status_error(code, resp)),
            Err(ureq::Error::Transport(t)) => Err(transport(format!("Get \"{url}\": {t}"))),
        }
    }

    /// The Authorization header answering `challenge` for `scopes`, with its lifetime.
    fn authorize(&self, challenge: &Challenge, scopes: &[String]) -> Result<Option<Authorization>> {
        match challenge {
            Challenge::Basic { .. } => Ok(self
                .creds
                .as_ref()
                .map(|c| Authorization::lasting(c.basic_header()))),
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let mut all: Vec<String> = scopes.to_vec();
                if !scope.is_empty() && !all.contains(scope) {
                    all.push(scope.clone());
                }
                let url = token_url(realm, service, &all);
                let mut req = self.agent.get(&url);
                if let Some(c) = &self.creds {
                    req = req.set("Authorization", &c.basic_header());
                }
                let received = Instant::now();
                let resp = match req.call() {
                    Ok(r) => r,
                    Err(ureq::Error::Status(code @ (401 | 403), resp)) => {
                        let e = status_error(code, resp);
                        return Err(RegistryError::Unauthorized(match e {
                            RegistryError::Unauthorized(m) | RegistryError::Denied(m) => {
                                if m.starts_with("unauthorized") {
                                    m
                                } else {
                                    format!("unauthorized: {m}")
                                }
                            }
                            other => other.to_string(),
                        }));
                    }
                    Err(ureq::Error::Status(code, resp)) => {
                        return Err(status_error(code, resp));
                    }
                    Err(ureq::Error::Transport(t)) => {
                        return Err(transport(format!("Get \"{url}\": {t}")))
                    }
                };
                let mut body = Vec::new();
                resp.into_reader()
                    .take(1 << 20)
                    .read_to_end(&mut body)
                    .map_err(transport)?;
                let token = token_from_response(&body)
                    .ok_or_else(|| transport("the token server answered no token"))?;
                Ok(Some(Authorization::bearer(
                    &token,
                    received,
                    token_lifetime(&body),
                )))
            }
        }
    }

    fn scopes(&self) -> Vec<String> {
        vec![repository_scope(&self.repository, &self.actions)]
    }

    pub(crate) fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else if path.starts_with('/') {
            format!("{}{path}", self.base)
        } else {
            format!("{}/v2/{}/{path}", self.base, self.repository)
        }
    }

    /// Sends a request, authorising first when the registry asked for it or the token in use
    /// is about to expire, and once more when a 401 answers (a token expired or revoked
    /// mid-operation; requests whose body can be sent again only).
    pub(crate) fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        mut body: Body<'_>,
    ) -> Result<ureq::Response> {
        let url = self.url(path);
        for attempt in 0..2 {
            let stale = self
                .authorization
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .is_none_or(|a| !a.is_fresh(Instant::now()));
            if stale {
                let ch = self
                    .challenge
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                if let Some(ch) = ch {
                    let h = self.authorize(&ch, &self.scopes())?;
                    *self.authorization.lock().unwrap_or_else(|e| e.into_inner()) = h;
                }
            }
            let mut req = self.agent.request(method, &url);
            for (k, v) in headers {
                req = req.set(k, v);
            }
            if let Some(a) = self
                .authorization
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
            {
                req = req.set("Authorization", &a.header);
            }
            let has_body = !matches!(body, Body::Empty);
            let res = match std::mem::replace(&mut body, Body::Empty) {
                Body::Empty => req.call(),
                Body::Bytes(b) => {
                    body = Body::Bytes(b);
                    req.send_bytes(b)
                }
                Body::Reader(r, len) => req.set("Content-Length", &len.to_string()).send(r),
            };
            match res {
                Ok(r) => return Ok(r),
                Err(ureq::Error::Status(401, resp))
                    if attempt == 0 && (!has_body || matches!(body, Body::Bytes(_))) =>
                {
                    let ch = resp.header("www-authenticate").and_then(parse_challenge);
                    let Some(ch) = ch else {
                        return Err(status_error(401, resp));
                    };
                    let h = self.authorize(&ch, &self.scopes())?;
                    *self.challenge.lock().unwrap_or_else(|e| e.into_inner()) = Some(ch);
                    *self.authorization.lock().unwrap_or_else(|e| e.into_inner()) = h;
                }
                Err(ureq::Error::Status(code, resp)) => return Err(status_error(code, resp)),
                Err(ureq::Error::Transport(t)) => {
                    return Err(transport(format!(
                        "{} \"{url}\": {t}",
                        method_title(method)
                    )))
                }
            }
        }
        Err(RegistryError::Unauthorized(
            "unauthorized: authentication required".into(),
        ))
    }

    /// `GET /v2/<name>/manifests/<reference>`. A digest reference is verified.
    pub fn get_manifest(&self, reference: &str) -> Result<FetchedManifest> {
        let resp = self.send(
            "GET",
            &format!("manifests/{reference}"),
            &[("Accept", MANIFEST_ACCEPT)],
            Body::Empty,
        )?;
        let media_type = resp
            .header("content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let mut body = Vec::new();
        resp.into_reader()
            .take(MAX_MANIFEST + 1)
            .read_to_end(&mut body)
            .map_err(transport)?;
        if body.len() as u64 > MAX_MANIFEST {
            return Err(RegistryError::InvalidArgument("manifest too large".into()));
        }
        let digest = sha256_digest(&body);
        if reference.starts_with("sha256:") && digest != reference {
            return Err(RegistryError::DigestMismatch {
                expected: reference.to_string(),
                actual: digest,
            });
        }
        Ok(FetchedManifest {
            media_type,
            body,
            digest,
        })
    }

    /// `GET /v2/<name>/tags/list`: the repository's tags.
    pub fn list_tags(&self) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let resp = self.send("GET", "tags/list", &[], Body::Empty)?;
        let mut body = Vec::new();
        resp.into_reader()
            .take(MAX_MANIFEST)
            .read_to_end(&mut body)
            .map_err(transport)?;
        let t: Tags = serde_json::from_slice(&body)
            .map_err(|e| RegistryError::InvalidArgument(format!("invalid tag list: {e}")))?;
        let mut tags = t.tags.unwrap_or_default();
        tags.sort();
        Ok(tags)
    }

    /// `HEAD /v2/<name>/blobs/<digest>`: whether the registry has the blob.
    pub fn blob_exists(&self, digest: &str) -> Result<bool> {
        match self.send("HEAD", &format!("blobs/{digest}"), &[], Body::Empty) {
            Ok(_) => Ok(true),
            Err(RegistryError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `GET /v2/<name>/blobs/<digest>`: the body stream (not yet verified; wrap it in a
    /// [`crate::VerifyingReader`]).
    pub fn get_blob(&self, digest: &str) -> Result<Box<dyn Read + Send>> {
        let resp = self.send("GET", &format!("blobs/{digest}"), &[], Body::Empty)?;
        Ok(Box::new(resp.into_reader()))
    }

    /// Mounts `digest` from `from` (another repository of the same registry); false when the
    /// registry did not mount it.
    pub fn mount_blob(&self, digest: &str, from: &str) -> Result<bool> {
        let path = format!("blobs/uploads/?mount={digest}&from={from}");
        let resp = self.send("POST", &path, &[], Body::Bytes(b""))?;
        Ok(resp.status() == 201)
    }

    /// Monolithic upload: `POST /v2/<name>/blobs/uploads/`, then `PUT <location>?digest=`.
    pub fn upload_blob(
        &self,
        digest: &str,
        size: u64,
        data: Box<dyn Read + Send + '_>,
    ) -> Result<()> {
        let resp = self.send("POST", "blobs/uploads/", &[], Body::Bytes(b""))?;
        let location = resp
            .header("location")
            .ok_or_else(|| transport("the registry answered an upload without a Location"))?
            .to_string();
        let location = self.url(&location);
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={digest}");
        self.send(
            "PUT",
            &put,
            &[("Content-Type", "application/octet-stream")],
            Body::Reader(data, size),
        )?;
        Ok(())
    }

    /// `PUT /v2/<name>/manifests/<reference>`; returns the manifest's digest.
    pub fn put_manifest(&self, reference: &str, media_type: &str, body: &[u8]) -> Result<String> {
        self.send(
            "PUT",
            &format!("manifests/{reference}"),
            &[("Content-Type", media_type)],
            Body::Bytes(body),
        )?;
        Ok(sha256_digest(body))
    }
}

fn method_title(m: &str) -> String {
    let mut c = m.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + &c.as_str().to_lowercase(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_for_references() {
        let c = RegistryClient {
            agent: ureq::AgentBuilder::new().build(),
            base: "http://127.0.0.1:5000".into(),
            repository: "library/busybox".into(),
            creds: None,
            actions: vec!["pull"],
            challenge: Mutex::new(None),
            authorization: Mutex::new(None),
            upload: UploadPolicy::default(),
        };
        assert_eq!(
            c.url("manifests/latest"),
            "http://127.0.0.1:5000/v2/library/busybox/manifests/latest"
        );
        assert_eq!(
            c.url("/v2/library/busybox/blobs/uploads/abc?_state=x"),
            "http://127.0.0.1:5000/v2/library/busybox/blobs/uploads/abc?_state=x"
        );
        assert_eq!(c.url("https://s3/x"), "https://s3/x");
        assert_eq!(c.scopes(), vec!["repository:library/busybox:pull"]);
        assert_eq!(method_title("GET"), "Get");
    }

    #[test]
    fn error_codes() {
        assert_eq!(
            error_code(&RegistryError::NotFound(
                "manifest unknown: manifest unknown".into()
            )),
            Some("MANIFEST_UNKNOWN")
        );
        assert_eq!(
            error_code(&RegistryError::NotFound(
                "name unknown: repository name not known to registry".into()
            )),
            Some("NAME_UNKNOWN")
        );
        assert_eq!(error_code(&RegistryError::Transport("x".into())), None);
    }
}
