//! Manifests: the media types berth reads and writes, Docker schema2 / OCI image manifests,
//! manifest lists / OCI indexes, and platform selection in an index.

use serde::{Deserialize, Serialize};

use crate::error::{RegistryError, Result};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// The `Accept` header of a manifest GET.
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The compression of a layer media type; `None` for a type that is not a layer.
pub fn layer_compression(media_type: &str) -> Option<Compression> {
    match media_type {
        DOCKER_LAYER_GZIP | DOCKER_LAYER_FOREIGN | OCI_LAYER_GZIP => Some(Compression::Gzip),
        OCI_LAYER_ZSTD => Some(Compression::Zstd),
        OCI_LAYER | "application/vnd.oci.image.layer.nondistributable.v1.tar" => {
            Some(Compression::None)
        }
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" => Some(Compression::Gzip),
        _ => None,
    }
}

/// A content descriptor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// An OS/architecture pair as in an index entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl Platform {
    /// Parses `os[/arch[/variant]]` (the `--platform` value). Empty means the default.
    pub fn parse(s: &str) -> Result<Platform> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Platform::default_linux());
        }
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || {
            RegistryError::InvalidArgument(format!(
                "\"{s}\": unknown operating system or architecture: invalid argument"
            ))
        };
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let os = parts[0].to_lowercase();
        if os != "linux" && os != "windows" && os != "darwin" && os != "freebsd" {
            return Err(bad());
        }
        let mut arch = parts
            .get(1)
            .map(|a| a.to_lowercase())
            .unwrap_or_else(|| default_arch().to_string());
        let mut variant = parts.get(2).map(|v| v.to_lowercase()).unwrap_or_default();
        match arch.as_str() {
            "x86_64" | "x86-64" => arch = "amd64".into(),
            "aarch64" => {
                arch = "arm64".into();
                if variant == "8" {
                    variant = "v8".into();
                }
            }
            _ => {}
        }
        Ok(Platform {
            architecture: arch,
            os,
            variant,
        })
    }

    /// linux and this machine's architecture.
    pub fn default_linux() -> Platform {
        Platform {
            architecture: default_arch().into(),
            os: "linux".into(),
            variant: String::new(),
        }
    }

    /// Whether an index entry's platform satisfies this wanted platform.
    pub fn matches(&self, have: &Platform) -> bool {
        let norm = |v: &str, arch: &str| -> String {
            if v.is_empty() && arch == "arm64" {
                "v8".into()
            } else {
                v.to_string()
            }
        };
        self.os == have.os
            && self.architecture == have.architecture
            && (self.variant.is_empty()
                || norm(&self.variant, &self.architecture)
                    == norm(&have.variant, &have.architecture))
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// The Go name of this machine's architecture.
pub fn default_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// A single-platform image manifest (Docker schema2 or OCI).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// A manifest list or OCI index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
}

/// A parsed manifest of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image(ImageManifest),
    Index(ImageIndex),
}

/// Parses a manifest by its media type (from `Content-Type`, or the document's own field).
pub fn parse_manifest(content_type: &str, body: &[u8]) -> Result<Manifest> {
    let malformed =
        |e: String| RegistryError::InvalidArgument(format!("failed to parse manifest: {e}"));
    let ct = content_type.split(';').next().unwrap_or("").trim();
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| malformed(e.to_string()))?;
    let own = v.get("mediaType").and_then(|m| m.as_str()).unwrap_or("");
    let kind = if !own.is_empty() {
        own
    } else if matches!(ct, "" | "application/json" | "text/plain") {
        if v.get("manifests").is_some() {
            OCI_INDEX
        } else {
            OCI_MANIFEST
        }
    } else {
        ct
    };
    match kind {
        DOCKER_MANIFEST | OCI_MANIFEST => {
            let m: ImageManifest =
                serde_json::from_value(v).map_err(|e| malformed(e.to_string()))?;
            if m.schema_version != 2 {
                return Err(malformed(format!(
                    "unsupported schema version {}",
                    m.schema_version
                )));
            }
            for l in &m.layers {
                if layer_compression(&l.media_type).is_none() {
                    return Err(RegistryError::InvalidArgument(format!(
                        "unsupported media type {} for a layer",
                        l.media_type
                    )));
                }
                check_digest(&l.digest).map_err(malformed)?;
            }
            check_digest(&m.config.digest).map_err(malformed)?;
            Ok(Manifest::Image(m))
        }
        DOCKER_MANIFEST_LIST | OCI_INDEX => {
            let i: ImageIndex =
                serde_json::from_value(v).map_err(|e| malformed(e.to_string()))?;
            for d in &i.manifests {
                check_digest(&d.digest).map_err(malformed)?;
            }
            Ok(Manifest::Index(i))
        }
        "application/vnd.docker.distribution.manifest.v1+json"
        | "application/vnd.docker.distribution.manifest.v1+prettyjws" => {
            Err(RegistryError::InvalidArgument(
                "unsupported media type application/vnd.docker.distribution.manifest.v1+prettyjws: schema 1 manifests are not supported".into(),
            ))
        }
        other => Err(RegistryError::InvalidArgument(format!(
            "unsupported media type {other}"
        ))),
    }
}

fn check_digest(d: &str) -> std::result::Result<(), String> {
    let ok = d
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid digest {d:?}"))
    }
}

/// Chooses the entry of `index` for `want`: the first exact match, skipping attestations.
pub fn select_platform<'a>(index: &'a ImageIndex, want: &Platform) -> Result<&'a Descriptor> {
    index
        .manifests
        .iter()
        .filter(|d| matches!(d.media_type.as_str(), DOCKER_MANIFEST | OCI_MANIFEST | ""))
        .find(|d| d.platform.as_ref().is_some_and(|p| want.matches(p)))
        .ok_or_else(|| RegistryError::NoMatchingPlatform(want.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn entry(os: &str, arch: &str, variant: &str, c: char) -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: digest(c),
            size: 1,
            platform: Some(Platform {
                architecture: arch.into(),
                os: os.into(),
                variant: variant.into(),
            }),
        }
    }

    #[test]
    fn platforms_parse() {
        let p = Platform::parse("linux/amd64").unwrap();
        assert_eq!(p.to_string(), "linux/amd64");
        assert_eq!(Platform::parse("linux/arm/v7").unwrap().variant, "v7");
        assert_eq!(
            Platform::parse("linux/aarch64").unwrap().architecture,
            "arm64"
        );
        assert_eq!(Platform::parse("").unwrap(), Platform::default_linux());
        assert!(Platform::parse("nope/amd64").is_err());
        assert!(Platform::parse("linux//x").is_err());
    }

    #[test]
    fn platform_selection() {
        let index = ImageIndex {
            schema_version: 2,
            media_type: OCI_INDEX.into(),
            manifests: vec![
                entry("linux", "arm64", "v8", 'a'),
                entry("linux", "amd64", "", 'b'),
                entry("linux", "arm", "v7", 'c'),
            ],
        };
        let amd = Platform::parse("linux/amd64").unwrap();
        assert_eq!(select_platform(&index, &amd).unwrap().digest, digest('b'));
        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert_eq!(select_platform(&index, &arm64).unwrap().digest, digest('a'));
        let arm7 = Platform::parse("linux/arm/v7").unwrap();
        assert_eq!(select_platform(&index, &arm7).unwrap().digest, digest('c'));
        let e = select_platform(&index, &Platform::parse("linux/s390x").unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no matching manifest for linux/s390x in the manifest list entries"
        );
    }

    #[test]
    fn manifests_parse() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{}","size":10}},"layers":[{{"mediaType":"{OCI_LAYER_ZSTD}","digest":"{}","size":5}}]}}"#,
            digest('a'),
            digest('b')
        );
        match parse_manifest(DOCKER_MANIFEST, m.as_bytes()).unwrap() {
            Manifest::Image(im) => {
                assert_eq!(im.layers.len(), 1);
                assert_eq!(
                    layer_compression(&im.layers[0].media_type),
                    Some(Compression::Zstd)
                );
            }
            other => panic!("{other:?}"),
        }
        let bad_layer = m.replace(OCI_LAYER_ZSTD, "application/x-weird");
        let e = parse_manifest(DOCKER_MANIFEST, bad_layer.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("unsupported media type"), "{e}");
        assert!(parse_manifest(DOCKER_MANIFEST, b"{").is_err());
        let e = parse_manifest("application/x-unknown", b"{}").unwrap_err();
        assert!(e.to_string().contains("unsupported media type"));
        let idx = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":3,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
            digest('c')
        );
        assert!(matches!(
            parse_manifest(OCI_INDEX, idx.as_bytes()).unwrap(),
            Manifest::Index(_)
        ));
    }
}
