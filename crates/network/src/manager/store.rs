//! Persistence of network records: one JSON file per network under
//! `<state_dir>/networks/`, written atomically (durably when a network's definition changes),
//! and the [`NetworkInfo`] view of a record.

use std::fs;
use std::path::{Path, PathBuf};

use super::{ConfigFrom, Inner, Ipam, IpamConfig, NetworkContainer, NetworkInfo, NetworkRecord};
use crate::NetworkError;

/// Writes `data` to `path` atomically; with `durable`, also fsyncs it and its directory so the
/// new content survives a host crash.
fn write_atomic(path: &Path, data: &[u8], durable: bool) -> Result<(), NetworkError> {
    let durability = if durable {
        berth_sys::Durability::Durable
    } else {
        berth_sys::Durability::Atomic
    };
    berth_sys::write_atomic(path, data, durability)
        .map_err(|e| NetworkError::io(format!("writing {}", path.display()), e))
}

impl Inner {
    pub(super) fn net_dir(&self) -> PathBuf {
        self.dir.join("networks")
    }

    /// Saves a network's record durably (its definition changed).
    pub(super) fn save(&self, rec: &NetworkRecord) -> Result<(), NetworkError> {
        self.write_record(rec, true)
    }

    /// Saves a network's record after an endpoint came or went. Not fsynced: a host crash
    /// ends every container, and the endpoints of containers that do not run are dropped when
    /// the engine starts (`reconcile_networks`), so a lost endpoint change is harmless.
    pub(super) fn save_endpoints(&self, rec: &NetworkRecord) -> Result<(), NetworkError> {
        self.write_record(rec, false)
    }

    fn write_record(&self, rec: &NetworkRecord, durable: bool) -> Result<(), NetworkError> {
        let data = serde_json::to_vec_pretty(rec).expect("records serialise");
        write_atomic(
            &self.net_dir().join(format!("{}.json", rec.id)),
            &data,
            durable,
        )
    }

    pub(super) fn unlink(&self, id: &str) -> Result<(), NetworkError> {
        let p = self.net_dir().join(format!("{id}.json"));
        match fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(NetworkError::io(format!("removing {}", p.display()), e))
            }
            _ => Ok(()),
        }
    }
}

impl NetworkRecord {
    pub(super) fn info(&self) -> NetworkInfo {
        NetworkInfo {
            name: self.name.clone(),
            id: self.id.clone(),
            created: self.created.clone(),
            scope: "local".into(),
            driver: "bridge".into(),
            enable_ipv6: false,
            ipam: Ipam {
                driver: "default".into(),
                options: None,
                config: vec![IpamConfig {
                    subnet: self.subnet.to_string(),
                    ip_range: self.ip_range.map(|r| r.to_string()),
                    gateway: self.gateway.to_string(),
                }],
            },
            internal: self.internal,
            attachable: self.attachable,
            ingress: false,
            config_from: ConfigFrom::default(),
            config_only: false,
            containers: self
                .endpoints
                .values()
                .map(|e| {
                    (
                        e.container_id.clone(),
                        NetworkContainer {
                            name: e.name.clone(),
                            endpoint_id: e.endpoint.endpoint_id.clone(),
                            mac_address: e.endpoint.mac.clone(),
                            ipv4_address: format!("{}/{}", e.endpoint.ip, self.subnet.prefix_len()),
                            ipv6_address: String::new(),
                        },
                    )
                })
                .collect(),
            options: self.options.clone(),
            labels: self.labels.clone(),
        }
    }
}
