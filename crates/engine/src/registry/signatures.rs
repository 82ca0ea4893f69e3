//! Signed images: the signature policy applied to every pull before anything is downloaded
//! (`check_pull`) and to every archive load or import (`check_archive`), the record of what was
//! verified (shown by `image inspect` as `BerthSignatures`), and adding a signature made by a
//! client to an image's `sha256-<hex>.sig` attachment (`add_signature`), so that private keys
//! never reach the daemon.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_image::Reference;
use berth_registry::{RegistryClient, RegistryError, VerifyingReader};
use berth_trust::attachment::{self, SignatureManifest, MAX_PAYLOAD, OCI_MANIFEST};
use berth_trust::policy::{self, UntrustedSignature};
use berth_trust::{DockerReference, Policy, RegistriesDir, SignedPayload, TrustError};
use serde_json::{json, Value};

use crate::config::TrustSettings;
use crate::context::Context;
use crate::error::{EngineError, Result};

use super::{internal, parse_ref, registry_error, AuthConfig, PullPlan};

/// The policy and registries.d in force for one operation (read afresh each time).
pub(super) struct Gate {
    policy: Policy,
    registries: RegistriesDir,
}

fn trust_error(e: TrustError) -> EngineError {
    match e {
        TrustError::Rejected(m) => EngineError::Forbidden(m),
        e @ (TrustError::Policy(_) | TrustError::RegistriesD(_) | TrustError::Io(_)) => {
            EngineError::Internal(format!("signature policy: {e}"))
        }
        e => EngineError::InvalidArgument(e.to_string()),
    }
}

/// Reads the policy; `None` without a policy file (every image is taken, as before).
pub(super) fn load_gate(settings: &TrustSettings) -> Result<Option<Gate>> {
    let Some(policy) = Policy::load(&settings.policy).map_err(trust_error)? else {
        return Ok(None);
    };
    let registries = RegistriesDir::load(&settings.registries_d).map_err(trust_error)?;
    Ok(Some(Gate { policy, registries }))
}

/// Refuses, before any connection, a pull the policy rejects outright (`reject`).
pub(super) fn check_rejected(gate: &Gate, reference: &Reference) -> Result<()> {
    let intended = DockerReference::parse(&reference.full()).map_err(trust_error)?;
    let reqs = gate.policy.for_docker(&intended);
    if reqs
        .iter()
        .any(|r| matches!(r, berth_trust::Requirement::Reject))
    {
        return Err(trust_error(TrustError::Rejected(format!(
            "{intended} is rejected by the signature policy"
        ))));
    }
    Ok(())
}

/// Reads the signatures stored for `manifest_digest` in `client`'s repository. No attachment
/// is no signature.
fn fetch_signatures(
    client: &RegistryClient,
    manifest_digest: &str,
) -> Result<Vec<UntrustedSignature>> {
    let tag = attachment::signature_tag(manifest_digest).map_err(trust_error)?;
    let m = match client.get_manifest(&tag) {
        Ok(m) => m,
        Err(RegistryError::NotFound(_)) => return Ok(Vec::new()),
        Err(e) => return Err(registry_error(e)),
    };
    let layers = SignatureManifest::parse(&m.body)
        .and_then(|m| m.layers())
        .map_err(trust_error)?;
    let mut out = Vec::new();
    for l in layers {
        if l.size > MAX_PAYLOAD {
            return Err(EngineError::InvalidArgument(format!(
                "signature {} is too large ({} bytes)",
                l.digest, l.size
            )));
        }
        let body = client.get_blob(&l.digest).map_err(registry_error)?;
        let mut r = VerifyingReader::new(body, &l.digest, Some(l.size), Box::new(|_| {}));
        let mut payload = Vec::new();
        (&mut r)
            .take(MAX_PAYLOAD + 1)
            .read_to_end(&mut payload)
            .map_err(|e| EngineError::Internal(format!("reading signature {}: {e}", l.digest)))?;
        r.finish().map_err(registry_error)?;
        out.push(UntrustedSignature {
            media_type: l.media_type,
            payload,
            signature: l.signature,
        });
    }
    Ok(out)
}

/// Applies the policy to a resolved pull: the signatures of the manifest the reference points
/// to are read from the same endpoint and checked. Runs before any layer is fetched, so a
/// refused image leaves nothing behind.
pub(super) fn check_pull(
    gate: &Gate,
    plan: &PullPlan,
) -> Result<Vec<berth_trust::VerifiedSignature>> {
    let intended = DockerReference::parse(&plan.reference.full()).map_err(trust_error)?;
    let reqs = gate.policy.for_docker(&intended);
    let signatures =
        if policy::needs_signatures(reqs) && gate.registries.use_sigstore_attachments(&intended) {
            fetch_signatures(&plan.client, &plan.top_digest)?
        } else {
            Vec::new()
        };
    let decision =
        policy::evaluate(reqs, &intended, &plan.top_digest, &signatures).map_err(trust_error)?;
    Ok(decision.verified)
}

/// Applies the policy's archive rule (`docker load`, `docker import`).
pub(crate) fn check_archive(settings: &TrustSettings) -> Result<()> {
    match Policy::load(&settings.policy).map_err(trust_error)? {
        None => Ok(()),
        Some(p) => policy::evaluate_archive(&p).map_err(trust_error),
    }
}

fn record_path(data_root: &Path, repo_digest: &str) -> PathBuf {
    data_root.join("trust").join("verified").join(format!(
        "{}.json",
        attachment::sha256_digest(repo_digest.as_bytes()).trim_start_matches("sha256:")
    ))
}

/// Records what a pull verified, under the pulled `repo@digest` (which the image's
/// `RepoDigests` keeps while the image is there).
pub(super) fn record(
    data_root: &Path,
    repo_digest: &str,
    verified: &[berth_trust::VerifiedSignature],
) -> Result<()> {
    let path = record_path(data_root, repo_digest);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(internal)?;
    }
    let list: Vec<berth_api::VerifiedSignature> = verified
        .iter()
        .map(|v| berth_api::VerifiedSignature {
            repo_digest: repo_digest.to_string(),
            signed_identity: v.signed_identity.clone(),
            key_fingerprint: v.key_fingerprint.clone(),
            key_source: v.key_source.clone(),
        })
        .collect();
    let body = serde_json::to_vec(&list).map_err(internal)?;
    berth_sys::fs::write_atomic(&path, &body, berth_sys::fs::Durability::Atomic).map_err(internal)
}

/// The signatures recorded for an image's repository digests.
pub(crate) fn recorded(
    data_root: &Path,
    repo_digests: &[String],
) -> Vec<berth_api::VerifiedSignature> {
    let mut out = Vec::new();
    for rd in repo_digests {
        // Inspect shows familiar names; records are kept under the full name.
        let full = Reference::parse(rd)
            .map(|r| r.full())
            .unwrap_or_else(|_| rd.clone());
        let Ok(body) = std::fs::read(record_path(data_root, &full)) else {
            continue;
        };
        if let Ok(list) = serde_json::from_slice::<Vec<berth_api::VerifiedSignature>>(&body) {
            out.extend(list.into_iter().map(|mut v| {
                v.repo_digest = rd.clone();
                v
            }));
        }
    }
    out
}

/// `POST /images/{name}/signatures` (berth's own): adds a signature a client made (payload and
/// base64 signature; the private key stays with the client) to the attachment of the manifest
/// the payload names, in `name`'s repository. Returns the attachment's tag and manifest digest
/// and whether the signature was new.
pub(crate) async fn add_signature(
    ctx: &Arc<Context>,
    name: &str,
    payload: Vec<u8>,
    signature: String,
    auth: Option<AuthConfig>,
) -> Result<Value> {
    let (reference, _) = parse_ref(name, "")?;
    let claimed = SignedPayload::parse(&payload).map_err(trust_error)?;
    let signed = DockerReference::parse(&claimed.docker_reference).map_err(trust_error)?;
    if signed.name != reference.repo_full() {
        return Err(EngineError::InvalidArgument(format!(
            "the signature names {}, not the repository {}",
            claimed.docker_reference,
            reference.repo_familiar()
        )));
    }
    let tag = attachment::signature_tag(&claimed.manifest_digest).map_err(trust_error)?;
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|e| EngineError::InvalidArgument(format!("the signature is not base64: {e}")))?;
    let creds = auth.and_then(|a| a.credentials());
    let s = ctx.config.registry.clone();
    let trust = ctx.config.trust.clone();
    let intended = signed.clone();
    tokio::task::spawn_blocking(move || -> Result<Value> {
        let registries = RegistriesDir::load(&trust.registries_d).map_err(trust_error)?;
        if !registries.use_sigstore_attachments(&intended) {
            return Err(EngineError::InvalidArgument(format!(
                "registries.d sets use-sigstore-attachments: false for {}; berth stores signatures only as sigstore attachments",
                reference.repo_familiar()
            )));
        }
        let client = RegistryClient::connect(
            &s.options,
            &reference.domain,
            &reference.path,
            creds,
            &["pull", "push"],
            false,
        )
        .map_err(registry_error)?;
        // The signed manifest must be in this repository.
        client
            .get_manifest(&claimed.manifest_digest)
            .map_err(registry_error)?;
        let mut sigs = match client.get_manifest(&tag) {
            Ok(m) => SignatureManifest::parse(&m.body).map_err(trust_error)?,
            Err(RegistryError::NotFound(_)) => SignatureManifest::default(),
            Err(e) => return Err(registry_error(e)),
        };
        let Some(up) = sigs.add(&payload, signature.trim()).map_err(trust_error)? else {
            return Ok(json!({"Tag": tag, "Added": false}));
        };
        for (digest, bytes) in [&up.config, &up.payload] {
            if !client.blob_exists(digest).map_err(registry_error)? {
                client
                    .upload_blob(digest, bytes.len() as u64, Box::new(bytes.as_slice()))
                    .map_err(registry_error)?;
            }
        }
        let digest = client
            .put_manifest(&tag, OCI_MANIFEST, &up.manifest)
            .map_err(registry_error)?;
        Ok(json!({"Tag": tag, "Digest": digest, "Added": true}))
    })
    .await
    .map_err(internal)?
}
