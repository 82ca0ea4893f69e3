//! The engine's configuration, filled by the daemon from flags and daemon.json.

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_api::Ulimit;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Persistent state (`/var/lib/berth`).
    pub data_root: PathBuf,
    /// Runtime state: sockets, shim state (`/run/berth`).
    pub exec_root: PathBuf,
    /// Runtime name → runc-compatible binary.
    pub runtimes: BTreeMap<String, PathBuf>,
    pub default_runtime: String,
    pub default_ulimits: Vec<Ulimit>,
    pub live_restore: bool,
    /// `json-file` (default) or `none`.
    pub log_driver: String,
    pub log_opts: BTreeMap<String, String>,
    /// The `berth-shim` binary.
    pub shim_path: PathBuf,
    /// The binary started as PID 1 for `--init` (berth's own, `berth init`).
    pub init_path: PathBuf,
    /// Bridge networking (the default `bridge` network and user networks); off: only
    /// `none`, `host` and `container:` modes, and `none` is the default.
    pub networking: bool,
    /// The default bridge's address and prefix (`bip`), e.g. `172.17.0.1/16`.
    pub bip: Option<String>,
    /// Manage iptables rules (NAT, published ports, isolation).
    pub iptables: bool,
    /// Inter-container communication on the default bridge.
    pub icc: bool,
    /// The path shims are given for a runtime, where it differs from the runtime's own path:
    /// berth-runtime's sealed copy held by the daemon (`/proc/<pid>/fd/<n>`), which spares the
    /// runtime a copy of itself at every container start and exec.
    pub shim_runtime_paths: BTreeMap<PathBuf, PathBuf>,
    /// What one image layer (or build context) may expand to when unpacked.
    pub layer_limits: berth_image::layer_tar::LayerLimits,
    /// Mirrors, insecure registries, and how many layers move at once.
    pub registry: RegistrySettings,
    /// The signature policy and registries.d (`--signature-policy`, `--registries-d`).
    pub trust: TrustSettings,
}

/// Where the signature policy and the registries.d configuration are read (at each pull and
/// load, so that edits apply at once; an absent policy file means no policy).
#[derive(Debug, Clone)]
pub struct TrustSettings {
    pub policy: PathBuf,
    pub registries_d: PathBuf,
}

impl Default for TrustSettings {
    fn default() -> Self {
        TrustSettings {
            policy: PathBuf::from(berth_trust::policy::DEFAULT_POLICY_PATH),
            registries_d: PathBuf::from(berth_trust::registries_d::DEFAULT_REGISTRIES_D),
        }
    }
}

impl EngineConfig {
    /// Defaults as dockerd's, with `runc` from the PATH.
    pub fn with_roots(data_root: PathBuf, exec_root: PathBuf) -> Self {
        let mut runtimes = BTreeMap::new();
        runtimes.insert("runc".to_string(), PathBuf::from("runc"));
        EngineConfig {
            data_root,
            exec_root,
            runtimes,
            default_runtime: "runc".into(),
            default_ulimits: Vec::new(),
            live_restore: true,
            log_driver: "json-file".into(),
            log_opts: BTreeMap::new(),
            shim_path: PathBuf::from("berth-shim"),
            init_path: PathBuf::from("berth"),
            networking: true,
            bip: None,
            iptables: true,
            icc: true,
            shim_runtime_paths: BTreeMap::new(),
            layer_limits: Default::default(),
            registry: Default::default(),
            trust: Default::default(),
        }
    }
}

/// The daemon's registry settings.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    pub options: berth_registry::RegistryOptions,
    pub max_concurrent_downloads: usize,
    pub max_concurrent_uploads: usize,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        RegistrySettings {
            options: berth_registry::RegistryOptions::default(),
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 5,
        }
    }
}
