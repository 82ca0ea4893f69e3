//! The sigstore attachment: signatures of the manifest `sha256:<hex>` live in the same
//! repository under the tag `sha256-<hex>.sig`, an OCI image manifest with one layer per
//! signature (media type `application/vnd.dev.cosign.simplesigning.v1+json`, the payload as the
//! blob, the base64 DER signature in the annotation `dev.cosignproject.cosign/signature`).

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::error::{Result, TrustError};

/// The media type of a signature layer.
pub const SIGNATURE_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation that holds a layer's signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The attachment manifest's media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The most signature layers berth reads from one attachment.
pub const MAX_SIGNATURES: usize = 128;
/// The largest payload blob berth reads (containers/image's limit is 4 MiB).
pub const MAX_PAYLOAD: u64 = 4 << 20;

/// The tag under which the signatures of `manifest_digest` are stored.
pub fn signature_tag(manifest_digest: &str) -> Result<String> {
    let hex = manifest_digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| TrustError::Signature(format!("not a sha256 digest: {manifest_digest}")))?;
    Ok(format!("sha256-{hex}.sig"))
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// One layer of the attachment, as listed (its blob not yet read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLayer {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    /// The `dev.cosignproject.cosign/signature` annotation, if present.
    pub signature: Option<String>,
}

/// The attachment manifest: its layers, kept as written so that a new signature is appended
/// without losing what other tools put there.
#[derive(Debug, Clone, Default)]
pub struct SignatureManifest {
    layers: Vec<Value>,
}

/// The blobs and manifest to upload for an updated attachment.
pub struct AttachmentUpload {
    /// The config blob (digest, bytes).
    pub config: (String, Vec<u8>),
    /// The new payload blob (digest, bytes), unless the registry already holds it.
    pub payload: (String, Vec<u8>),
    /// The manifest to put under the signature tag.
    pub manifest: Vec<u8>,
}

impl SignatureManifest {
    /// Parses an attachment manifest.
    pub fn parse(body: &[u8]) -> Result<SignatureManifest> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| TrustError::Signature(format!("malformed signature manifest: {e}")))?;
        if v["schemaVersion"] != 2 {
            return Err(TrustError::Signature(
                "malformed signature manifest: schemaVersion is not 2".into(),
            ));
        }
        let layers = match &v["layers"] {
            Value::Array(a) => a.clone(),
            Value::Null => Vec::new(),
            _ => {
                return Err(TrustError::Signature(
                    "malformed signature manifest: layers is not a list".into(),
                ))
            }
        };
        if layers.len() > MAX_SIGNATURES {
            return Err(TrustError::Signature(format!(
                "the signature manifest lists {} layers (at most {MAX_SIGNATURES} are read)",
                layers.len()
            )));
        }
        Ok(SignatureManifest { layers })
    }

    /// The layers, each checked to be a well-formed descriptor.
    pub fn layers(&self) -> Result<Vec<SignatureLayer>> {
        self.layers
            .iter()
            .map(|l| {
                let digest = l["digest"].as_str().unwrap_or("");
                let size = l["size"].as_u64();
                match (signature_tag(digest), size) {
                    (Ok(_), Some(size)) => Ok(SignatureLayer {
                        media_type: l["mediaType"].as_str().unwrap_or("").to_string(),
                        digest: digest.to_string(),
                        size,
                        signature: l["annotations"][SIGNATURE_ANNOTATION]
                            .as_str()
                            .map(str::to_string),
                    }),
                    _ => Err(TrustError::Signature(
                        "malformed signature manifest: a layer lacks a sha256 digest or a size"
                            .into(),
                    )),
                }
            })
            .collect()
    }

    /// Adds a signature (payload and base64 signature); false when the same one is there.
    /// Returns what to upload.
    pub fn add(&mut self, payload: &[u8], signature_b64: &str) -> Result<Option<AttachmentUpload>> {
        let digest = sha256_digest(payload);
        let present = self
            .layers()?
            .iter()
            .any(|l| l.digest == digest && l.signature.as_deref() == Some(signature_b64));
        if present {
            return Ok(None);
        }
        if self.layers.len() >= MAX_SIGNATURES {
            return Err(TrustError::Signature(format!(
                "the image already has {MAX_SIGNATURES} signatures"
            )));
        }
        self.layers.push(json!({
            "mediaType": SIGNATURE_MEDIA_TYPE,
            "digest": digest,
            "size": payload.len(),
            "annotations": {SIGNATURE_ANNOTATION: signature_b64},
        }));
        let diff_ids: Vec<&str> = self
            .layers
            .iter()
            .map(|l| l["digest"].as_str().unwrap_or(""))
            .collect();
        let config = serde_json::to_vec(&json!({
            "architecture": "",
            "os": "",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap_or_default();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "size": config.len(), "digest": sha256_digest(&config)},
            "layers": self.layers,
        }))
        .unwrap_or_default();
        Ok(Some(AttachmentUpload {
            config: (sha256_digest(&config), config),
            payload: (digest, payload.to_vec()),
            manifest,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_from_digest() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            signature_tag(&d).unwrap(),
            format!("sha256-{}.sig", "ab".repeat(32))
        );
        assert!(signature_tag("sha256:12").is_err());
        assert!(signature_tag("md5:x").is_err());
    }

    #[test]
    fn signatures_accumulate_and_round_trip() {
        let mut m = SignatureManifest::default();
        let up = m.add(b"one", "c2ln").unwrap().unwrap();
        let mut m = SignatureManifest::parse(&up.manifest).unwrap();
        assert!(
            m.add(b"one", "c2ln").unwrap().is_none(),
            "same signature twice"
        );
        let up = m.add(b"two", "c2lnMg==").unwrap().unwrap();
        let parsed = SignatureManifest::parse(&up.manifest).unwrap();
        let layers = parsed.layers().unwrap();
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[0].digest, sha256_digest(b"one"));
        assert_eq!(layers[1].signature.as_deref(), Some("c2lnMg=="));
        assert_eq!(layers[1].media_type, SIGNATURE_MEDIA_TYPE);
        let v: Value = serde_json::from_slice(&up.manifest).unwrap();
        assert_eq!(v["mediaType"], OCI_MANIFEST);
        assert_eq!(v["config"]["digest"], up.config.0);
        let cfg: Value = serde_json::from_slice(&up.config.1).unwrap();
        assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn foreign_layers_are_kept_and_bad_manifests_refused() {
        let body = br#"{"schemaVersion":2,"layers":[{"mediaType":"x/y","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":3,"annotations":{"other":"kept"}}]}"#;
        let mut m = SignatureManifest::parse(body).unwrap();
        let up = m.add(b"p", "cw==").unwrap().unwrap();
        let v: Value = serde_json::from_slice(&up.manifest).unwrap();
        assert_eq!(v["layers"][0]["annotations"]["other"], "kept");
        assert!(SignatureManifest::parse(b"{}").is_err());
        assert!(
            SignatureManifest::parse(br#"{"schemaVersion":2,"layers":[{"size":1}]}"#)
                .unwrap()
                .layers()
                .is_err()
        );
    }
}
