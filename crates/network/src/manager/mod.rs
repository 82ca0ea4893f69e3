//! [`NetworkManager`]: bridge networks, their persistent records and IP allocations, container
//! endpoints (veth pairs), published ports and the iptables rules that go with them.
//!
//! State: one JSON record per network in `<state_dir>/networks/<id>.json` (temp file + fsync +
//! rename + fsync of the directory), holding the network's settings, its endpoints (and with
//! them the allocated addresses and bound host ports) and the rules installed for it. Every
//! operation either completes or rolls back what it did.
//!
//! The [`NetworkManager`] type and its state live here; the operations are split by concern:
//! [`open`] (start-up and reconciliation), [`network`] (network lifecycle and rules),
//! [`endpoint`] (connect/disconnect), [`publish`] (host ports), [`reaper`] (veths of exited
//! containers), [`resolve`] (names), [`store`] (records on disk) and [`types`] (public types).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::drain::Drain;
use crate::firewall::{Chains, Firewall, Rule};
use crate::ipnet::Ipv4Net;
use crate::netlink::Netlink;
use crate::NetworkError;

mod endpoint;
mod network;
mod open;
mod publish;
mod reaper;
mod resolve;
mod store;
mod types;

pub use resolve::ContainerResolver;
pub use types::{
    ConfigFrom, CreateNetwork, Endpoint, EndpointRequest, Ipam, IpamConfig, ManagerConfig,
    NetworkContainer, NetworkInfo, OPT_BRIDGE_NAME, OPT_ENABLE_ICC,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct EndpointRecord {
    container_id: String,
    name: String,
    aliases: Vec<String>,
    hostname: Option<String>,
    endpoint: Endpoint,
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct NetworkRecord {
    id: String,
    name: String,
    created: String,
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    ip_range: Option<Ipv4Net>,
    internal: bool,
    attachable: bool,
    icc: bool,
    bridge: String,
    predefined: bool,
    labels: BTreeMap<String, String>,
    options: BTreeMap<String, String>,
    endpoints: BTreeMap<String, EndpointRecord>,
    rules: Vec<Rule>,
}

struct Inner {
    dir: PathBuf,
    cfg: ManagerConfig,
    chains: Chains,
    nl: Arc<dyn Netlink>,
    fw: Option<Arc<dyn Firewall>>,
    nets: BTreeMap<String, NetworkRecord>,
    /// Veths of exited containers that the kernel is deleting; see [`crate::drain`].
    drain: Drain,
}

/// Manages berth's bridge networks. Cheap to clone; all methods are synchronous (call them
/// from `spawn_blocking`) and serialised by an internal lock.
#[derive(Clone)]
pub struct NetworkManager {
    inner: Arc<Mutex<Inner>>,
}

fn random_id() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

use berth_sys::time::now_rfc3339 as now;

/// Deletes link `name`, logging a failure (for clean-ups nobody can act on).
fn delete_link_logged(nl: &dyn Netlink, name: &str) {
    if let Err(e) = nl.delete_link(name) {
        tracing::warn!("deleting {name}: {e}");
    }
}

fn valid_name(name: &str) -> bool {
    berth_sys::names::is_valid(name, 1)
}

fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl Inner {
    fn find_id(&self, key: &str) -> Result<String, NetworkError> {
        if self.nets.contains_key(key) {
            return Ok(key.to_string());
        }
        if let Some(n) = self.nets.values().find(|n| n.name == key) {
            return Ok(n.id.clone());
        }
        let hits: Vec<&String> = self
            .nets
            .keys()
            .filter(|id| !key.is_empty() && id.starts_with(key))
            .collect();
        match hits.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(NetworkError::NotFound(format!("network {key} not found"))),
            _ => Err(NetworkError::InvalidArgument(format!(
                "network {key} is ambiguous ({} matches found based on ID prefix)",
                hits.len()
            ))),
        }
    }
}

impl NetworkManager {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// All networks.
    pub fn list(&self) -> Vec<NetworkInfo> {
        self.lock().nets.values().map(NetworkRecord::info).collect()
    }

    /// One network by name, id or unique id prefix.
    pub fn inspect(&self, name_or_id: &str) -> Result<NetworkInfo, NetworkError> {
        let inner = self.lock();
        let id = inner.find_id(name_or_id)?;
        Ok(inner.nets[&id].info())
    }

    /// The Linux bridge of a network (`berth0`, `br-<12 hex>` or the name option).
    pub fn bridge_name(&self, name_or_id: &str) -> Result<String, NetworkError> {
        let inner = self.lock();
        let id = inner.find_id(name_or_id)?;
        Ok(inner.nets[&id].bridge.clone())
    }
}
