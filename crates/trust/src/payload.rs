//! The "simple signing" payload a sigstore signature signs:
//! `{"critical":{"identity":{"docker-reference":…},"image":{"docker-manifest-digest":…},
//! "type":"cosign container image signature"},"optional":{…}}`, parsed as strictly as
//! containers/image parses it (unknown or missing critical fields refuse the signature).

use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::error::{Result, TrustError};
use crate::keys::{PublicKey, SigningKey};

/// The `type` every cosign signature payload carries.
pub const PAYLOAD_TYPE: &str = "cosign container image signature";

/// What a signature's payload claims: the image's name and manifest digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPayload {
    /// `critical.identity.docker-reference`, as written (not normalised).
    pub docker_reference: String,
    /// `critical.image.docker-manifest-digest`.
    pub manifest_digest: String,
}

/// A signature that verified: which key, for which name and digest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VerifiedSignature {
    /// The identity the signature names (`critical.identity.docker-reference`).
    pub signed_identity: String,
    /// The manifest digest it signs.
    pub manifest_digest: String,
    /// `SHA256:<hex>` of the key's SubjectPublicKeyInfo.
    pub key_fingerprint: String,
    /// Where the key came from in the policy (`keyPath` file or `keyData`).
    pub key_source: String,
}

fn sig_err(m: impl Into<String>) -> TrustError {
    TrustError::Signature(m.into())
}

fn object<'a>(v: &'a Value, what: &str, allowed: &[&str]) -> Result<&'a Map<String, Value>> {
    let o = v
        .as_object()
        .ok_or_else(|| sig_err(format!("signature payload: {what} is not an object")))?;
    for k in o.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(sig_err(format!(
                "signature payload: unknown field {k:?} in {what}"
            )));
        }
    }
    for k in allowed {
        if what != "optional" && what != "the payload" && !o.contains_key(*k) {
            return Err(sig_err(format!("signature payload: {what} lacks {k:?}")));
        }
    }
    Ok(o)
}

fn string(o: &Map<String, Value>, k: &str, what: &str) -> Result<String> {
    o.get(k)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| sig_err(format!("signature payload: {what}.{k} is not a string")))
}

impl SignedPayload {
    /// The payload's bytes, with berth as the creator and `timestamp` (Unix seconds).
    pub fn to_bytes(&self, timestamp: i64) -> Vec<u8> {
        let v = json!({
            "critical": {
                "identity": {"docker-reference": self.docker_reference},
                "image": {"docker-manifest-digest": self.manifest_digest},
                "type": PAYLOAD_TYPE,
            },
            "optional": {
                "creator": concat!("berth ", env!("CARGO_PKG_VERSION")),
                "timestamp": timestamp,
            },
        });
        serde_json::to_vec(&v).unwrap_or_default()
    }

    /// Parses an (already verified) payload strictly.
    pub fn parse(bytes: &[u8]) -> Result<SignedPayload> {
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| sig_err(format!("signature payload is not JSON: {e}")))?;
        let top = object(&v, "the payload", &["critical", "optional"])?;
        let critical = top
            .get("critical")
            .ok_or_else(|| sig_err("signature payload lacks \"critical\""))?;
        if let Some(opt) = top.get("optional") {
            if !opt.is_object() {
                return Err(sig_err("signature payload: optional is not an object"));
            }
        }
        let critical = object(critical, "critical", &["identity", "image", "type"])?;
        let kind = string(critical, "type", "critical")?;
        if kind != PAYLOAD_TYPE {
            return Err(sig_err(format!(
                "signature payload: unrecognized type {kind:?}"
            )));
        }
        let image = object(
            &critical["image"],
            "critical.image",
            &["docker-manifest-digest"],
        )?;
        let identity = object(
            &critical["identity"],
            "critical.identity",
            &["docker-reference"],
        )?;
        Ok(SignedPayload {
            docker_reference: string(identity, "docker-reference", "critical.identity")?,
            manifest_digest: string(image, "docker-manifest-digest", "critical.image")?,
        })
    }

    /// Signs the payload bytes: the base64 of the DER signature, as the annotation holds it.
    pub fn sign(payload: &[u8], key: &SigningKey) -> String {
        base64::engine::general_purpose::STANDARD.encode(key.sign(payload))
    }
}

/// Checks `signature_b64` over `payload` with any of `keys`, then parses the payload and checks
/// that it signs `manifest_digest`. Returns the payload and the index of the key that verified.
pub fn verify(
    keys: &[PublicKey],
    payload: &[u8],
    signature_b64: &str,
    manifest_digest: &str,
) -> Result<(SignedPayload, usize)> {
    let sig = base64::engine::general_purpose::STANDARD
        .decode(signature_b64.trim())
        .map_err(|e| sig_err(format!("signature is not base64: {e}")))?;
    let which = keys
        .iter()
        .position(|k| k.verify(payload, &sig))
        .ok_or_else(|| sig_err("cryptographic signature verification failed: the signature was not made by a trusted key"))?;
    let parsed = SignedPayload::parse(payload)?;
    if parsed.manifest_digest != manifest_digest {
        return Err(sig_err(format!(
            "signature for digest {} does not match the image's manifest digest {manifest_digest}",
            parsed.manifest_digest
        )));
    }
    Ok((parsed, which))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::generate_key_pair;

    fn pair() -> (SigningKey, PublicKey) {
        let (private, public) = generate_key_pair(b"").unwrap();
        (
            SigningKey::from_encrypted_pem(&private, b"").unwrap(),
            PublicKey::from_pem(&public).unwrap(),
        )
    }

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let (key, public) = pair();
        let p = SignedPayload {
            docker_reference: "127.0.0.1:5000/a:v1".into(),
            manifest_digest: digest('a'),
        };
        let bytes = p.to_bytes(1);
        let sig = SignedPayload::sign(&bytes, &key);
        let (got, which) = verify(&[public], &bytes, &sig, &digest('a')).unwrap();
        assert_eq!((got, which), (p, 0));
    }

    #[test]
    fn tampered_payload_wrong_key_and_wrong_digest_fail() {
        let (key, public) = pair();
        let (_, other) = pair();
        let p = SignedPayload {
            docker_reference: "127.0.0.1:5000/a:v1".into(),
            manifest_digest: digest('a'),
        };
        let bytes = p.to_bytes(1);
        let sig = SignedPayload::sign(&bytes, &key);
        let tampered = String::from_utf8(bytes.clone())
            .unwrap()
            .replace("/a:v1", "/b:v1");
        assert!(verify(
            std::slice::from_ref(&public),
            tampered.as_bytes(),
            &sig,
            &digest('a')
        )
        .is_err());
        let e = verify(std::slice::from_ref(&other), &bytes, &sig, &digest('a')).unwrap_err();
        assert!(e.to_string().contains("not made by a trusted key"), "{e}");
        let e = verify(std::slice::from_ref(&public), &bytes, &sig, &digest('b')).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
        // Any of several keys verifies.
        assert_eq!(
            verify(&[other, public], &bytes, &sig, &digest('a'))
                .unwrap()
                .1,
            1
        );
    }

    #[test]
    fn strict_payload_parsing() {
        let ok = br#"{"critical":{"identity":{"docker-reference":"x"},"image":{"docker-manifest-digest":"d"},"type":"cosign container image signature"},"optional":null}"#;
        assert!(
            SignedPayload::parse(ok).is_err(),
            "optional must be an object"
        );
        let ok = br#"{"critical":{"identity":{"docker-reference":"x"},"image":{"docker-manifest-digest":"d"},"type":"cosign container image signature"}}"#;
        assert_eq!(SignedPayload::parse(ok).unwrap().docker_reference, "x");
        for bad in [
            r#"{"critical":{"identity":{"docker-reference":"x"},"image":{"docker-manifest-digest":"d"},"type":"other"}}"#,
            r#"{"critical":{"identity":{"docker-reference":"x"},"image":{"docker-manifest-digest":"d"},"type":"cosign container image signature","extra":1}}"#,
            r#"{"critical":{"identity":{},"image":{"docker-manifest-digest":"d"},"type":"cosign container image signature"}}"#,
            r#"{"critical":{"identity":{"docker-reference":"x"},"type":"cosign container image signature"}}"#,
            r#"{"extra":{}}"#,
            r#"[]"#,
        ] {
            assert!(SignedPayload::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
