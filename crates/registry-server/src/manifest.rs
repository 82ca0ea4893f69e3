//! Manifest parsing and validation: OCI image manifests and indexes, Docker schema2 manifests
//! and manifest lists. What a manifest references (blobs, child manifests), its subject and
//! the descriptor the referrers API lists for it.

use serde::Deserialize;
use serde_json::Value;

use crate::digest::Digest;
use crate::error::{ApiError, Code};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The largest manifest accepted (the spec's recommended limit).
pub const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: String,
    #[serde(default)]
    size: i64,
    #[serde(default)]
    urls: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
    annotations: Option<serde_json::Map<String, Value>>,
}

/// A validated manifest.
#[derive(Debug)]
pub struct Manifest {
    pub media_type: String,
    /// Blobs that must be in the repository (config, distributable layers).
    pub blobs: Vec<Digest>,
    /// Manifests that must be in the repository (an index's children).
    pub children: Vec<Digest>,
    pub subject: Option<Digest>,
    pub artifact_type: Option<String>,
    pub config_media_type: Option<String>,
    pub annotations: Option<serde_json::Map<String, Value>>,
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(Code::ManifestInvalid, msg)
}

fn descriptor_digest(d: &RawDescriptor, what: &str) -> Result<Digest, ApiError> {
    if d.size < 0 {
        return Err(invalid(format!("{what} {} has a negative size", d.digest)));
    }
    Digest::parse(&d.digest).map_err(|e| invalid(format!("{what}: {e}")))
}

/// Layers that are not in the registry by design (Windows foreign layers, with URLs).
fn nondistributable(d: &RawDescriptor) -> bool {
    !d.urls.is_empty()
        || d.media_type
            .as_deref()
            .is_some_and(|m| m.contains("nondistributable") || m.contains(".foreign."))
}

/// Media type from the request's `Content-Type`, without parameters.
pub fn content_type_media(ct: Option<&str>) -> Option<String> {
    let m = ct?.split(';').next()?.trim().to_ascii_lowercase();
    (!m.is_empty()).then_some(m)
}

/// Parses and checks `data` sent with `content_type`.
pub fn parse(data: &[u8], content_type: Option<&str>) -> Result<Manifest, ApiError> {
    if data.len() > MAX_MANIFEST_SIZE {
        return Err(ApiError::new(
            Code::SizeInvalid,
            format!(
                "manifest of {} bytes exceeds the {MAX_MANIFEST_SIZE}-byte limit",
                data.len()
            ),
        )
        .with_status(hyper::StatusCode::PAYLOAD_TOO_LARGE));
    }
    let raw: RawManifest = serde_json::from_slice(data)
        .map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
    let header = content_type_media(content_type);
    let media_type = match (&header, &raw.media_type) {
        (Some(h), Some(b)) if h != b => {
            return Err(invalid(format!(
                "Content-Type {h} does not match the manifest's mediaType {b}"
            )))
        }
        (Some(h), _) if h != "application/json" && h != "application/octet-stream" => h.clone(),
        (_, Some(b)) => b.clone(),
        (_, None) if raw.manifests.is_some() => OCI_INDEX.to_string(),
        (_, None) if raw.config.is_some() => OCI_MANIFEST.to_string(),
        _ => return Err(invalid("cannot tell the manifest's media type")),
    };
    if raw.schema_version != Some(2) {
        return Err(invalid("schemaVersion must be 2"));
    }
    let subject = raw
        .subject
        .as_ref()
        .map(|s| descriptor_digest(s, "subject"))
        .transpose()?;
    let mut blobs = Vec::new();
    let mut children = Vec::new();
    match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let config = raw
                .config
                .as_ref()
                .ok_or_else(|| invalid("an image manifest needs a config"))?;
            blobs.push(descriptor_digest(config, "config")?);
            for l in raw.layers.as_deref().unwrap_or_default() {
                let d = descriptor_digest(l, "layer")?;
                if !nondistributable(l) {
                    blobs.push(d);
                }
            }
            if raw.manifests.is_some() {
                return Err(invalid("an image manifest has no manifests list"));
            }
        }
        OCI_INDEX | DOCKER_LIST => {
            let list = raw
                .manifests
                .as_ref()
                .ok_or_else(|| invalid("an index needs a manifests list"))?;
            for m in list {
                children.push(descriptor_digest(m, "manifest")?);
            }
            if raw.config.is_some() || raw.layers.is_some() {
                return Err(invalid("an index has no config or layers"));
            }
        }
        other => {
            return Err(invalid(format!("unsupported manifest media type {other}")));
        }
    }
    Ok(Manifest {
        media_type,
        blobs,
        children,
        subject,
        artifact_type: raw.artifact_type,
        config_media_type: raw.config.and_then(|c| c.media_type),
        annotations: raw.annotations,
    })
}

impl Manifest {
    /// The descriptor the referrers API lists for this manifest (digest `d`, `size` bytes):
    /// artifactType is the manifest's own, else its config's media type.
    pub fn referrer_descriptor(&self, d: &Digest, size: usize) -> Value {
        let mut v = serde_json::json!({
            "mediaType": self.media_type,
            "digest": d.to_string(),
            "size": size,
        });
        let at = self
            .artifact_type
            .clone()
            .or_else(|| self.config_media_type.clone());
        if let Some(at) = at {
            v["artifactType"] = Value::String(at);
        }
        if let Some(a) = &self.annotations {
            v["annotations"] = Value::Object(a.clone());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> String {
        Digest::sha256_of(s.as_bytes()).to_string()
    }

    #[test]
    fn image_manifest_references_and_subject() {
        let body = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.x", "digest": d("c"), "size": 1},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d("l"), "size": 1},
                {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                 "digest": d("f"), "size": 1, "urls": ["https://x"]}
            ],
            "subject": {"mediaType": OCI_MANIFEST, "digest": d("s"), "size": 1},
            "annotations": {"k": "v"}
        });
        let data = serde_json::to_vec(&body).unwrap();
        let m = parse(&data, Some(OCI_MANIFEST)).unwrap();
        assert_eq!(m.blobs.len(), 2, "the foreign layer is not required");
        assert_eq!(m.subject.unwrap().to_string(), d("s"));
        let m = parse(&data, None).unwrap();
        let desc = m.referrer_descriptor(&Digest::sha256_of(&data), data.len());
        assert_eq!(desc["artifactType"], "application/vnd.x");
        assert_eq!(desc["annotations"]["k"], "v");
    }

    #[test]
    fn rejects_bad_manifests() {
        assert!(parse(b"not json", Some(OCI_MANIFEST)).is_err());
        let idx = serde_json::json!({"schemaVersion": 2, "manifests": []});
        let data = serde_json::to_vec(&idx).unwrap();
        assert!(
            parse(&data, Some(OCI_MANIFEST)).is_err(),
            "an index sent as a manifest"
        );
        assert_eq!(parse(&data, Some(OCI_INDEX)).unwrap().children.len(), 0);
        let bad = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"digest": "sha256:nope", "size": 1}});
        let e = parse(&serde_json::to_vec(&bad).unwrap(), None).unwrap_err();
        assert_eq!(e.code, Code::ManifestInvalid);
        let schema1 = serde_json::json!({"schemaVersion": 1, "name": "x"});
        assert!(parse(&serde_json::to_vec(&schema1).unwrap(), None).is_err());
    }
}
