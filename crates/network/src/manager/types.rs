//! The manager's public types: daemon settings ([`ManagerConfig`]), requests
//! ([`CreateNetwork`], [`EndpointRequest`]), a container's [`Endpoint`] and the Docker JSON views
//! of a network ([`NetworkInfo`] and its parts), plus the driver option keys.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::ipam::{self, AddressPool};
use crate::ipnet::Ipv4Net;
use crate::ports::PortBinding;

/// Option key naming a network's bridge.
pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
/// Option key enabling inter-container communication on a network.
pub const OPT_ENABLE_ICC: &str = "com.docker.network.bridge.enable_icc";

/// Daemon-level settings (dockerd's `bip`, `default-address-pools`, `icc`, `iptables`...).
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// Address and prefix of the default bridge (`172.17.0.1/16`); chosen from the pools if unset.
    pub bip: Option<Ipv4Net>,
    /// Pools for the default bridge (when no `bip`) and for user networks without a subnet.
    pub default_address_pools: Vec<AddressPool>,
    /// Inter-container communication on the default bridge.
    pub icc: bool,
    /// Manage iptables rules at all.
    pub iptables: bool,
    /// Set `net.ipv4.ip_forward=1`.
    pub ip_forward: bool,
    /// Name of the default bridge's Linux bridge (`berth0`).
    pub default_bridge: String,
    /// Prefix of berth's iptables chains (`BERTH`).
    pub chain_prefix: String,
    /// Prefix of host-side veth names (at most 6 characters; `bveth`).
    pub veth_prefix: String,
    /// Prefix of user networks' bridges (`br-`), followed by 12 characters of the network id.
    pub bridge_prefix: String,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            bip: None,
            default_address_pools: ipam::default_pools(),
            icc: true,
            iptables: true,
            ip_forward: true,
            default_bridge: "berth0".into(),
            chain_prefix: "BERTH".into(),
            veth_prefix: "bveth".into(),
            bridge_prefix: "br-".into(),
        }
    }
}

/// `POST /networks/create`, already parsed.
#[derive(Debug, Clone, Default)]
pub struct CreateNetwork {
    /// Network name.
    pub name: String,
    /// Driver; only `bridge` (or empty, meaning bridge) is supported.
    pub driver: String,
    /// Subnet; chosen from the pools if unset.
    pub subnet: Option<Ipv4Net>,
    /// Gateway; the first host address if unset.
    pub gateway: Option<Ipv4Addr>,
    /// Range within the subnet that container addresses are taken from.
    pub ip_range: Option<Ipv4Net>,
    /// `--internal`: no NAT, no traffic in or out of the bridge.
    pub internal: bool,
    /// `--attachable` (recorded only).
    pub attachable: bool,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Driver options (`com.docker.network.bridge.name`, `...enable_icc`).
    pub options: BTreeMap<String, String>,
}

/// What a container asks for when it joins a network.
#[derive(Debug, Clone, Default)]
pub struct EndpointRequest {
    /// Container name (without the leading `/`); resolvable on user networks.
    pub name: String,
    /// Extra DNS names on this network.
    pub aliases: Vec<String>,
    /// A fixed address (user networks only).
    pub ip: Option<Ipv4Addr>,
    /// Ports to publish (ignored on internal networks).
    pub ports: Vec<PortBinding>,
    /// Container hostname (recorded; also resolvable on user networks).
    pub hostname: Option<String>,
}

/// A container's attachment to a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Network id.
    pub network_id: String,
    /// Network name.
    pub network_name: String,
    /// Endpoint id (64 hex).
    pub endpoint_id: String,
    /// Container address.
    pub ip: Ipv4Addr,
    /// Prefix length of the network.
    pub prefix_len: u8,
    /// Network gateway.
    pub gateway: Ipv4Addr,
    /// Container MAC address.
    pub mac: String,
    /// Interface name inside the container (`eth0`...).
    pub ifname: String,
    /// Host end of the veth pair.
    pub host_veth: String,
    /// Published ports, with the host ports actually bound.
    pub ports: Vec<PortBinding>,
}

/// `Containers` entry of a network in Docker's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkContainer {
    /// Container name.
    pub name: String,
    /// Endpoint id.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// MAC address.
    pub mac_address: String,
    /// `172.17.0.2/16`.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    /// Always empty.
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// One `IPAM.Config` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    /// Subnet.
    pub subnet: String,
    /// Address range, if set.
    #[serde(rename = "IPRange", skip_serializing_if = "Option::is_none", default)]
    pub ip_range: Option<String>,
    /// Gateway.
    pub gateway: String,
}

/// `IPAM` of a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ipam {
    /// Always `default`.
    pub driver: String,
    /// Always null.
    pub options: Option<BTreeMap<String, String>>,
    /// One entry.
    pub config: Vec<IpamConfig>,
}

/// `ConfigFrom` of a network (config-only networks are not supported: always empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigFrom {
    /// Always empty.
    pub network: String,
}

/// A network as `GET /networks` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInfo {
    /// Name.
    pub name: String,
    /// 64 hex.
    pub id: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// Always `local`.
    pub scope: String,
    /// Always `bridge`.
    pub driver: String,
    /// Always false.
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    /// Address management.
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    /// `--internal`.
    pub internal: bool,
    /// `--attachable`.
    pub attachable: bool,
    /// Always false.
    pub ingress: bool,
    /// Always `{"Network": ""}`.
    pub config_from: ConfigFrom,
    /// Always false.
    pub config_only: bool,
    /// Attached containers by id.
    pub containers: BTreeMap<String, NetworkContainer>,
    /// Driver options.
    pub options: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}
