//! `/version` and `/info`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ComponentVersion {
    pub name: String,
    pub version: String,
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `GET /version`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SystemVersion {
    pub platform: serde_json::Value,
    pub components: Vec<ComponentVersion>,
    pub version: String,
    pub api_version: String,
    #[serde(rename = "MinAPIVersion", alias = "MinApiVersion")]
    pub min_api_version: String,
    pub git_commit: String,
    pub go_version: String,
    pub os: String,
    pub arch: String,
    pub kernel_version: String,
    pub build_time: String,
}

/// `GET /info` (the fields berth fills; the daemon may add more as raw JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SystemInfo {
    #[serde(rename = "ID")]
    pub id: String,
    pub containers: i64,
    pub containers_running: i64,
    pub containers_paused: i64,
    pub containers_stopped: i64,
    pub images: i64,
    pub driver: String,
    pub driver_status: Vec<Vec<String>>,
    pub memory_limit: bool,
    pub swap_limit: bool,
    pub cpu_cfs_period: bool,
    pub cpu_cfs_quota: bool,
    #[serde(rename = "CPUShares")]
    pub cpu_shares: bool,
    #[serde(rename = "CPUSet")]
    pub cpu_set: bool,
    pub pids_limit: bool,
    #[serde(rename = "IPv4Forwarding")]
    pub ipv4_forwarding: bool,
    pub debug: bool,
    #[serde(rename = "NFd")]
    pub n_fd: i64,
    pub n_goroutines: i64,
    pub system_time: String,
    pub logging_driver: String,
    pub cgroup_driver: String,
    pub cgroup_version: String,
    #[serde(rename = "NEventsListener")]
    pub n_events_listener: i64,
    pub kernel_version: String,
    pub operating_system: String,
    #[serde(rename = "OSVersion")]
    pub os_version: String,
    #[serde(rename = "OSType")]
    pub os_type: String,
    pub architecture: String,
    #[serde(rename = "NCPU")]
    pub ncpu: i64,
    pub mem_total: i64,
    pub docker_root_dir: String,
    pub name: String,
    pub labels: Vec<String>,
    pub experimental_build: bool,
    pub server_version: String,
    pub runtimes: serde_json::Value,
    pub default_runtime: String,
    pub live_restore_enabled: bool,
    pub isolation: String,
    pub init_binary: String,
    pub security_options: Vec<String>,
    /// `LocalNodeState: inactive`: berth never joins a swarm.
    pub swarm: serde_json::Value,
    pub warnings: Vec<String>,
}

/// `GET /system/df`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct SystemDf {
    pub layers_size: i64,
    pub images: Vec<crate::ImageSummary>,
    pub containers: Vec<crate::ContainerSummary>,
    pub volumes: Vec<crate::Volume>,
    pub build_cache: Vec<serde_json::Value>,
}
