//! Image objects.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ContainerConfig;

/// One row of `GET /images/json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageSummary {
    pub id: String,
    pub parent_id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub created: i64,
    pub size: i64,
    pub shared_size: i64,
    pub labels: BTreeMap<String, String>,
    pub containers: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RootFs {
    #[serde(rename = "Type")]
    pub kind: String,
    pub layers: Vec<String>,
}

/// `GET /images/{name}/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    pub created: String,
    pub docker_version: String,
    pub author: String,
    pub config: ContainerConfig,
    pub architecture: String,
    pub os: String,
    pub size: i64,
    pub graph_driver: crate::GraphDriver,
    #[serde(rename = "RootFS")]
    pub root_fs: RootFs,
    pub metadata: BTreeMap<String, String>,
    /// berth's own field: the signatures verified by the signature policy when the image was
    /// pulled, one per repository digest and key (absent when none were).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub berth_signatures: Vec<VerifiedSignature>,
}

/// A signature the policy verified at pull time (`BerthSignatures` of an image inspect).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VerifiedSignature {
    /// The pulled `repository@digest` the signature was verified for.
    pub repo_digest: String,
    /// The identity the signature names (its `docker-reference`).
    pub signed_identity: String,
    /// `SHA256:<hex>` of the key's SubjectPublicKeyInfo.
    pub key_fingerprint: String,
    /// Where the policy took the key from (a `keyPath` file, or `keyData`).
    pub key_source: String,
}

/// One row of `GET /images/{name}/history`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HistoryItem {
    pub id: String,
    pub created: i64,
    pub created_by: String,
    pub tags: Vec<String>,
    pub size: i64,
    pub comment: String,
}

/// One row of `DELETE /images/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageDeleteItem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untagged: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImagePruneResponse {
    pub images_deleted: Option<Vec<ImageDeleteItem>>,
    pub space_reclaimed: u64,
}
