//! The signature policy in the containers-policy.json format (`/etc/berth/policy.json`):
//! `default` requirements and per-transport scopes (`transports.docker` by registry,
//! namespace or repository, the most specific match winning; `transports.docker-archive` for
//! loaded archives). Requirements: `reject`, `insecureAcceptAnything`, `sigstoreSigned`
//! (`keyPath`, `keyPaths` or `keyData`, and `signedIdentity`). Every requirement of the
//! matching scope must accept the image. Fields berth cannot apply (GPG `signedBy`, Fulcio,
//! Rekor) are errors that name them.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use serde_json::Value;

use crate::error::{Result, TrustError};
use crate::keys::PublicKey;
use crate::payload::{self, VerifiedSignature};
use crate::reference::DockerReference;

/// Where berth reads the policy by default.
pub const DEFAULT_POLICY_PATH: &str = "/etc/berth/policy.json";

fn bad(m: impl Into<String>) -> TrustError {
    TrustError::Policy(m.into())
}

/// How a signature's claimed identity must relate to the image's reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedIdentity {
    MatchExact,
    MatchRepoDigestOrExact,
    MatchRepository,
    ExactReference(String),
    ExactRepository(String),
    RemapIdentity {
        prefix: String,
        signed_prefix: String,
    },
}

/// The keys of a `sigstoreSigned` requirement and where they came from.
#[derive(Debug, Clone)]
pub struct SigstoreSigned {
    pub keys: Vec<(PublicKey, String)>,
    pub signed_identity: SignedIdentity,
}

/// One requirement of a scope.
#[derive(Debug, Clone)]
pub enum Requirement {
    Reject,
    InsecureAcceptAnything,
    SigstoreSigned(SigstoreSigned),
}

/// A parsed policy.
#[derive(Debug, Clone)]
pub struct Policy {
    default: Vec<Requirement>,
    docker: BTreeMap<String, Vec<Requirement>>,
    archive: Option<Vec<Requirement>>,
}

/// A signature as found in the registry, not yet trusted.
#[derive(Debug, Clone)]
pub struct UntrustedSignature {
    pub media_type: String,
    pub payload: Vec<u8>,
    /// The base64 signature annotation.
    pub signature: Option<String>,
}

/// The outcome of a policy check that accepted the image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// The signatures that satisfied `sigstoreSigned` requirements (empty when none applied).
    pub verified: Vec<VerifiedSignature>,
}

fn fields(v: &Value, what: &str, allowed: &[&str]) -> Result<()> {
    let o = v
        .as_object()
        .ok_or_else(|| bad(format!("{what} is not a JSON object")))?;
    for k in o.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(bad(format!("{what}: unknown or unsupported field {k:?}")));
        }
    }
    Ok(())
}

fn str_field(v: &Value, k: &str, what: &str) -> Result<String> {
    v[k].as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| bad(format!("{what}: {k:?} must be a non-empty string")))
}

fn read_keys(path: &Path, base: &Path) -> Result<Vec<(PublicKey, String)>> {
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    let text = std::fs::read_to_string(&full)
        .map_err(|e| bad(format!("reading keyPath {}: {e}", full.display())))?;
    let keys = PublicKey::all_from_pem(&text)
        .map_err(|e| bad(format!("keyPath {}: {e}", full.display())))?;
    Ok(keys
        .into_iter()
        .map(|k| (k, full.display().to_string()))
        .collect())
}

fn parse_identity(v: Option<&Value>) -> Result<SignedIdentity> {
    let Some(v) = v else {
        return Ok(SignedIdentity::MatchRepoDigestOrExact);
    };
    let what = "signedIdentity";
    let kind = str_field(v, "type", what)?;
    Ok(match kind.as_str() {
        "matchExact" => {
            fields(v, what, &["type"])?;
            SignedIdentity::MatchExact
        }
        "matchRepoDigestOrExact" => {
            fields(v, what, &["type"])?;
            SignedIdentity::MatchRepoDigestOrExact
        }
        "matchRepository" => {
            fields(v, what, &["type"])?;
            SignedIdentity::MatchRepository
        }
        "exactReference" => {
            fields(v, what, &["type", "dockerReference"])?;
            let r = str_field(v, "dockerReference", what)?;
            let parsed = DockerReference::parse(&r)
                .map_err(|_| bad(format!("exactReference: invalid dockerReference {r:?}")))?;
            if parsed.is_name_only() {
                return Err(bad(format!(
                    "exactReference: dockerReference {r:?} has neither a tag nor a digest"
                )));
            }
            SignedIdentity::ExactReference(parsed.to_string())
        }
        "exactRepository" => {
            fields(v, what, &["type", "dockerRepository"])?;
            let r = str_field(v, "dockerRepository", what)?;
            let parsed = DockerReference::parse(&r)
                .map_err(|_| bad(format!("exactRepository: invalid dockerRepository {r:?}")))?;
            SignedIdentity::ExactRepository(parsed.name)
        }
        "remapIdentity" => {
            fields(v, what, &["type", "prefix", "signedPrefix"])?;
            let prefix = str_field(v, "prefix", what)?;
            let signed_prefix = str_field(v, "signedPrefix", what)?;
            for p in [&prefix, &signed_prefix] {
                if p.contains(['@', ' ']) || p.ends_with('/') || p.ends_with(':') {
                    return Err(bad(format!("remapIdentity: invalid prefix {p:?}")));
                }
            }
            SignedIdentity::RemapIdentity {
                prefix,
                signed_prefix,
            }
        }
        other => return Err(bad(format!("unknown signedIdentity type {other:?}"))),
    })
}

fn parse_requirement(v: &Value, base: &Path) -> Result<Requirement> {
    let kind = v["type"]
        .as_str()
        .ok_or_else(|| bad("a requirement lacks \"type\""))?;
    match kind {
        "reject" => {
            fields(v, "reject", &["type"])?;
            Ok(Requirement::Reject)
        }
        "insecureAcceptAnything" => {
            fields(v, "insecureAcceptAnything", &["type"])?;
            Ok(Requirement::InsecureAcceptAnything)
        }
        "sigstoreSigned" => {
            fields(
                v,
                "sigstoreSigned",
                &["type", "keyPath", "keyPaths", "keyData", "signedIdentity"],
            )?;
            let given = ["keyPath", "keyPaths", "keyData"]
                .iter()
                .filter(|k| v.get(**k).is_some())
                .count();
            if given != 1 {
                return Err(bad(
                    "sigstoreSigned needs exactly one of keyPath, keyPaths and keyData (berth verifies keys only; Fulcio and Rekor are not supported)",
                ));
            }
            let mut keys = Vec::new();
            if v.get("keyPath").is_some() {
                keys = read_keys(Path::new(&str_field(v, "keyPath", "sigstoreSigned")?), base)?;
            } else if let Some(paths) = v.get("keyPaths") {
                let list = paths
                    .as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| bad("sigstoreSigned: keyPaths must be a non-empty list"))?;
                for p in list {
                    let p = p
                        .as_str()
                        .ok_or_else(|| bad("sigstoreSigned: keyPaths must hold strings"))?;
                    keys.extend(read_keys(Path::new(p), base)?);
                }
            } else {
                let data = str_field(v, "keyData", "sigstoreSigned")?;
                let pem = base64::engine::general_purpose::STANDARD
                    .decode(data.trim())
                    .map_err(|e| bad(format!("sigstoreSigned: keyData is not base64: {e}")))?;
                let text = String::from_utf8(pem)
                    .map_err(|_| bad("sigstoreSigned: keyData is not a PEM key"))?;
                keys = PublicKey::all_from_pem(&text)
                    .map_err(|e| bad(format!("sigstoreSigned keyData: {e}")))?
                    .into_iter()
                    .map(|k| (k, "keyData".to_string()))
                    .collect();
            }
            Ok(Requirement::SigstoreSigned(SigstoreSigned {
                keys,
                signed_identity: parse_identity(v.get("signedIdentity"))?,
            }))
        }
        "signedBy" | "signedBaseLayer" => Err(bad(format!(
            "requirement type {kind:?} is not supported by berth (use sigstoreSigned)"
        ))),
        other => Err(bad(format!("unknown requirement type {other:?}"))),
    }
}

fn parse_list(v: &Value, base: &Path, what: &str) -> Result<Vec<Requirement>> {
    let list = v
        .as_array()
        .ok_or_else(|| bad(format!("{what} is not a list of requirements")))?;
    if list.is_empty() {
        return Err(bad(format!(
            "{what}: an empty list of requirements is not allowed"
        )));
    }
    list.iter().map(|r| parse_requirement(r, base)).collect()
}

fn valid_docker_scope(scope: &str) -> bool {
    if scope.is_empty() {
        return true;
    }
    if let Some(host) = scope.strip_prefix("*.") {
        return !host.is_empty() && !host.contains(['/', ':', '*']);
    }
    // A registry alone (`host`, `host:port`) or a namespace/repository/reference under one.
    if !scope.contains('/') {
        return crate::reference::valid_domain(scope);
    }
    DockerReference::parse(scope).is_ok_and(|r| r.to_string() == scope || r.name == scope)
}

impl Policy {
    /// Reads the policy file at `path`; `None` when it does not exist (no policy: any image is
    /// taken, as before). Relative `keyPath`s are taken from the policy file's directory.
    pub fn load(path: &Path) -> Result<Option<Policy>> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(TrustError::Io(format!("reading {}: {e}", path.display()))),
        };
        let base = path.parent().unwrap_or(Path::new("/"));
        Policy::parse(&text, base)
            .map(Some)
            .map_err(|e| TrustError::Policy(format!("{}: {e}", path.display())))
    }

    /// Parses a policy's JSON; `base` is where relative key paths start.
    pub fn parse(text: &[u8], base: &Path) -> Result<Policy> {
        let v: Value =
            serde_json::from_slice(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        fields(&v, "the policy", &["default", "transports"])?;
        let default = parse_list(
            v.get("default")
                .ok_or_else(|| bad("the policy has no \"default\""))?,
            base,
            "default",
        )?;
        let mut policy = Policy {
            default,
            docker: BTreeMap::new(),
            archive: None,
        };
        let Some(transports) = v.get("transports") else {
            return Ok(policy);
        };
        let transports = transports
            .as_object()
            .ok_or_else(|| bad("transports is not an object"))?;
        for (transport, scopes) in transports {
            let scopes = scopes
                .as_object()
                .ok_or_else(|| bad(format!("transports.{transport} is not an object")))?;
            match transport.as_str() {
                "docker" => {
                    for (scope, list) in scopes {
                        if !valid_docker_scope(scope) {
                            return Err(bad(format!("invalid docker scope {scope:?}")));
                        }
                        let what = format!("transports.docker[{scope:?}]");
                        policy
                            .docker
                            .insert(scope.clone(), parse_list(list, base, &what)?);
                    }
                }
                "docker-archive" => {
                    for (scope, list) in scopes {
                        if !scope.is_empty() {
                            return Err(bad(format!(
                                "transports.docker-archive[{scope:?}]: berth loads archives from a stream, with no path; only the \"\" scope applies"
                            )));
                        }
                        policy.archive = Some(parse_list(list, base, "transports.docker-archive")?);
                    }
                }
                // Transports berth never uses (containers-storage, dir, oci, …): checked for
                // form, never consulted.
                _ => {
                    for (scope, list) in scopes {
                        parse_list(list, base, &format!("transports.{transport}[{scope:?}]"))?;
                    }
                }
            }
        }
        Ok(policy)
    }

    /// The requirements for pulling `reference`: the most specific docker scope, then the
    /// docker transport's `""`, then `default`.
    pub fn for_docker(&self, reference: &DockerReference) -> &[Requirement] {
        reference
            .scopes()
            .iter()
            .find_map(|s| self.docker.get(s))
            .or_else(|| self.docker.get(""))
            .unwrap_or(&self.default)
    }

    /// The requirements for loading an archive.
    pub fn for_archive(&self) -> &[Requirement] {
        self.archive.as_deref().unwrap_or(&self.default)
    }
}

/// Whether any requirement needs the image's signatures.
pub fn needs_signatures(reqs: &[Requirement]) -> bool {
    reqs.iter()
        .any(|r| matches!(r, Requirement::SigstoreSigned(_)))
}

fn ref_matches_prefix(name: &str, prefix: &str) -> bool {
    match name.len().cmp(&prefix.len()) {
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => name == prefix,
        std::cmp::Ordering::Greater => {
            name.starts_with(prefix) && name.as_bytes()[prefix.len()] == b'/'
        }
    }
}

fn repo_digest_or_exact(intended: &DockerReference, signed: &DockerReference) -> bool {
    if signed.is_name_only() {
        return false;
    }
    if intended.tag.is_some() {
        signed.to_string() == intended.to_string()
    } else if intended.digest.is_some() {
        signed.name == intended.name
    } else {
        false
    }
}

/// Whether a signature claiming `signed` satisfies `rule` for the image `intended`.
pub fn identity_matches(rule: &SignedIdentity, intended: &DockerReference, signed: &str) -> bool {
    let Ok(signed) = DockerReference::parse(signed) else {
        return false;
    };
    match rule {
        SignedIdentity::MatchExact => {
            intended.tag.is_some()
                && intended.digest.is_none()
                && signed.to_string() == intended.to_string()
        }
        SignedIdentity::MatchRepoDigestOrExact => repo_digest_or_exact(intended, &signed),
        SignedIdentity::MatchRepository => signed.name == intended.name,
        SignedIdentity::ExactReference(r) => !signed.is_name_only() && signed.to_string() == *r,
        SignedIdentity::ExactRepository(r) => signed.name == *r,
        SignedIdentity::RemapIdentity {
            prefix,
            signed_prefix,
        } => {
            let remapped = if ref_matches_prefix(&intended.name, prefix) {
                let s = intended.to_string();
                match DockerReference::parse(&format!("{signed_prefix}{}", &s[prefix.len()..])) {
                    Ok(r) => r,
                    Err(_) => return false,
                }
            } else {
                intended.clone()
            };
            repo_digest_or_exact(&remapped, &signed)
        }
    }
}

fn check_sigstore(
    req: &SigstoreSigned,
    intended: &DockerReference,
    manifest_digest: &str,
    signatures: &[UntrustedSignature],
) -> std::result::Result<VerifiedSignature, String> {
    if signatures.is_empty() {
        return Err("a signature was required, but no signature exists".into());
    }
    let keys: Vec<PublicKey> = req.keys.iter().map(|(k, _)| k.clone()).collect();
    let mut reasons = Vec::new();
    for s in signatures {
        if s.media_type != crate::attachment::SIGNATURE_MEDIA_TYPE {
            reasons.push(format!(
                "unexpected signature media type {:?}",
                s.media_type
            ));
            continue;
        }
        let Some(sig) = &s.signature else {
            reasons.push("a signature layer lacks its signature annotation".into());
            continue;
        };
        match payload::verify(&keys, &s.payload, sig, manifest_digest) {
            Err(e) => reasons.push(e.to_string()),
            Ok((p, which)) => {
                if identity_matches(&req.signed_identity, intended, &p.docker_reference) {
                    let (key, source) = &req.keys[which];
                    return Ok(VerifiedSignature {
                        signed_identity: p.docker_reference,
                        manifest_digest: p.manifest_digest,
                        key_fingerprint: key.fingerprint(),
                        key_source: source.clone(),
                    });
                }
                reasons.push(format!(
                    "signature for identity {:?} is not accepted for {intended}",
                    p.docker_reference
                ));
            }
        }
    }
    reasons.dedup();
    Err(if reasons.len() == 1 {
        reasons.remove(0)
    } else {
        format!(
            "none of the signatures were accepted: {}",
            reasons.join("; ")
        )
    })
}

/// Applies `reqs` to the image `intended` whose manifest digest is `manifest_digest`, with the
/// signatures found for it. Every requirement must accept.
pub fn evaluate(
    reqs: &[Requirement],
    intended: &DockerReference,
    manifest_digest: &str,
    signatures: &[UntrustedSignature],
) -> Result<Decision> {
    let mut decision = Decision::default();
    for r in reqs {
        match r {
            Requirement::InsecureAcceptAnything => {}
            Requirement::Reject => {
                return Err(TrustError::Rejected(format!(
                    "{intended} is rejected by the signature policy"
                )))
            }
            Requirement::SigstoreSigned(s) => {
                let v = check_sigstore(s, intended, manifest_digest, signatures).map_err(|m| {
                    TrustError::Rejected(format!(
                        "{intended} is refused by the signature policy: {m}"
                    ))
                })?;
                if !decision.verified.contains(&v) {
                    decision.verified.push(v);
                }
            }
        }
    }
    Ok(decision)
}

/// Applies the archive rule: archives carry no signatures, so `sigstoreSigned` refuses them.
pub fn evaluate_archive(policy: &Policy) -> Result<()> {
    for r in policy.for_archive() {
        match r {
            Requirement::InsecureAcceptAnything => {}
            Requirement::Reject => {
                return Err(TrustError::Rejected(
                    "loading images from an archive is rejected by the signature policy".into(),
                ))
            }
            Requirement::SigstoreSigned(_) => {
                return Err(TrustError::Rejected(
                    "loading images from an archive is refused by the signature policy: a signature was required, but archives carry no signatures".into(),
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
