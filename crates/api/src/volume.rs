//! Volume objects: `GET /volumes`, `POST /volumes/create`, `GET /volumes/{name}`,
//! `POST /volumes/prune`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::null_default;

/// A volume as `GET /volumes/{name}` returns it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default, deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    pub scope: String,
    #[serde(default, deserialize_with = "null_default")]
    pub options: BTreeMap<String, String>,
    /// Only filled by `system df`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_data: Option<VolumeUsageData>,
}

/// Size and reference count of a volume (`system df -v`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeUsageData {
    pub size: i64,
    pub ref_count: i64,
}

/// `POST /volumes/create` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeCreateRequest {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub driver: String,
    #[serde(default, deserialize_with = "null_default")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
}

/// `GET /volumes` answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeListResponse {
    #[serde(default, deserialize_with = "null_default")]
    pub volumes: Vec<Volume>,
    #[serde(default, deserialize_with = "null_default")]
    pub warnings: Vec<String>,
}

/// `POST /volumes/prune` answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct VolumePruneResponse {
    #[serde(default, deserialize_with = "null_default")]
    pub volumes_deleted: Vec<String>,
    pub space_reclaimed: u64,
}
