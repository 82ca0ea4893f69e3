//! [`NetworkManager`]: bridge networks, their persistent records and IP allocations, container
//! endpoints (veth pairs), published ports and the iptables rules that go with them.
//!
//! State: one JSON record per network in `<state_dir>/networks/<id>.json` (temp file + fsync +
//! rename + fsync of the directory), holding the network's settings, its endpoints (and with
//! them the allocated addresses and bound host ports) and the rules installed for it. Every
//! operation either completes or rolls back what it did.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::dns::Resolver;
use crate::drain::{Drain, DRAIN_POLL};
use crate::firewall::{self, Chains, Firewall, IptablesCmd, Rule};
use crate::ipam::{self, AddressPool};
use crate::ipnet::Ipv4Net;
use crate::netlink::{Netlink, PeerConfig};
use crate::ports::PortBinding;
use crate::rtnl::KernelNetlink;
use crate::NetworkError;

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

impl NetworkRecord {
    fn info(&self) -> NetworkInfo {
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

    fn resolve(&self, name: &str) -> Option<Ipv4Addr> {
        if self.predefined {
            return None;
        }
        let name = name.trim_end_matches('.');
        // `<container>.<network>` resolves too.
        let suffix = format!(".{}", self.name.to_ascii_lowercase());
        let name = match name.to_ascii_lowercase().strip_suffix(&suffix) {
            Some(short) if !short.is_empty() => short.to_string(),
            _ => name.to_string(),
        };
        let name = name.as_str();
        self.endpoints.values().find_map(|e| {
            let hit = e.name.eq_ignore_ascii_case(name)
                || e.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
                || e.hostname
                    .as_deref()
                    .is_some_and(|h| h.eq_ignore_ascii_case(name))
                || (name.len() >= 12 && e.container_id.starts_with(&name.to_ascii_lowercase()));
            hit.then_some(e.endpoint.ip)
        })
    }
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
    fn net_dir(&self) -> PathBuf {
        self.dir.join("networks")
    }

    /// Saves a network's record durably (its definition changed).
    fn save(&self, rec: &NetworkRecord) -> Result<(), NetworkError> {
        self.write_record(rec, true)
    }

    /// Saves a network's record after an endpoint came or went. Not fsynced: a host crash
    /// ends every container, and the endpoints of containers that do not run are dropped when
    /// the engine starts (`reconcile_networks`), so a lost endpoint change is harmless.
    fn save_endpoints(&self, rec: &NetworkRecord) -> Result<(), NetworkError> {
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

    fn unlink(&self, id: &str) -> Result<(), NetworkError> {
        let p = self.net_dir().join(format!("{id}.json"));
        match fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(NetworkError::io(format!("removing {}", p.display()), e))
            }
            _ => Ok(()),
        }
    }

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

    /// Adds rules in order; on failure deletes the ones added and returns the error.
    fn add_rules(&self, rules: &[Rule]) -> Result<(), NetworkError> {
        let Some(fw) = &self.fw else { return Ok(()) };
        for (i, r) in rules.iter().enumerate() {
            if let Err(e) = fw.append(r) {
                self.del_rules(&rules[..i]);
                return Err(e);
            }
        }
        Ok(())
    }

    fn del_rules(&self, rules: &[Rule]) {
        let Some(fw) = &self.fw else { return };
        for r in rules.iter().rev() {
            if let Err(e) = fw.delete(r) {
                tracing::warn!("deleting rule {r:?}: {e}");
            }
        }
    }

    fn setup_base_rules(&self) -> Result<(), NetworkError> {
        let Some(fw) = &self.fw else { return Ok(()) };
        for (t, c) in self.chains.all() {
            fw.ensure_chain(t, c)?;
            fw.flush_chain(t, c)?;
        }
        fw.append(&self.chains.isolation_jump())?;
        for j in self.chains.jumps() {
            if !fw.exists(&j)? {
                fw.insert(&j)?;
            }
        }
        Ok(())
    }

    fn taken_subnets(&self) -> Result<Vec<Ipv4Net>, NetworkError> {
        let mut taken = self.nl.route_destinations()?;
        taken.extend(self.nets.values().map(|n| n.subnet));
        Ok(taken)
    }

    /// Creates the bridge, its sysctl and its rules for `rec` (filling `rec.rules`); rolls
    /// back on failure (the bridge is deleted only if `fresh`).
    fn bring_up(&self, rec: &mut NetworkRecord, fresh: bool) -> Result<(), NetworkError> {
        let addr = Ipv4Net::new(rec.gateway, rec.subnet.prefix_len())?;
        self.nl.create_bridge(&rec.bridge, addr)?;
        let res = (|| {
            self.nl
                .set_sysctl(&format!("net/ipv4/conf/{}/route_localnet", rec.bridge), "1")?;
            let rules = firewall::network_rules(
                &self.chains,
                &rec.bridge,
                rec.subnet,
                rec.internal,
                rec.icc,
            );
            self.add_rules(&rules)?;
            rec.rules = if self.fw.is_some() { rules } else { Vec::new() };
            Ok(())
        })();
        if res.is_err() && fresh {
            let _ = self.nl.delete_link(&rec.bridge);
        }
        res
    }

    fn tear_down_endpoint(&self, ep: &EndpointRecord) {
        self.del_rules(&ep.rules);
        delete_link_logged(self.nl.as_ref(), &ep.endpoint.host_veth);
    }

    fn tear_down_network(&self, rec: &NetworkRecord) -> Result<(), NetworkError> {
        for ep in rec.endpoints.values() {
            self.tear_down_endpoint(ep);
        }
        self.del_rules(&rec.rules);
        self.nl.delete_link(&rec.bridge)
    }

    /// An address on network `id` for `container_id`: `requested`, else the one its veth
    /// still draining there holds (a restart keeps its address), else the first free one.
    /// Addresses held by draining veths are skipped; when one of them is requested, or nothing
    /// else is free, those veths are deleted now and their addresses given out.
    fn allocate_address(
        &mut self,
        id: &str,
        container_id: &str,
        requested: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr, NetworkError> {
        if requested.is_none() {
            if let Some((veth, ip)) = self.drain.take_container(id, container_id) {
                delete_link_logged(self.nl.as_ref(), &veth);
                return Ok(ip);
            }
        }
        let rec = &self.nets[id];
        let (subnet, range, gateway) = (rec.subnet, rec.ip_range, rec.gateway);
        let in_use: BTreeSet<Ipv4Addr> = rec.endpoints.values().map(|e| e.endpoint.ip).collect();
        let mut used = in_use.clone();
        used.extend(self.drain.reserved(id));
        let err = match ipam::allocate(subnet, range, gateway, &used, requested) {
            Ok(ip) => return Ok(ip),
            Err(e) => e,
        };
        if requested.is_some_and(|ip| in_use.contains(&ip)) {
            return Err(err);
        }
        let veths = self.drain.take(id, requested);
        if veths.is_empty() {
            return Err(err);
        }
        for v in veths {
            delete_link_logged(self.nl.as_ref(), &v);
        }
        ipam::allocate(subnet, range, gateway, &in_use, requested)
    }

    fn used_ports(&self) -> Vec<PortBinding> {
        self.nets
            .values()
            .flat_map(|n| n.endpoints.values())
            .flat_map(|e| e.endpoint.ports.iter().copied())
            .collect()
    }

    fn bind_ports(&self, req: &[PortBinding]) -> Result<Vec<PortBinding>, NetworkError> {
        let mut used = self.used_ports();
        let mut out = Vec::new();
        let clash = |used: &[PortBinding], p: &PortBinding| {
            used.iter().any(|u| {
                u.proto == p.proto
                    && u.host_port == p.host_port
                    && (u.host_ip.is_none() || p.host_ip.is_none() || u.host_ip == p.host_ip)
            })
        };
        for p in req {
            if p.container_port == 0 {
                return Err(NetworkError::InvalidArgument(format!(
                    "invalid container port 0 in {p}"
                )));
            }
            let ip = p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
            let mut b = *p;
            if p.host_port == 0 {
                let mut found = None;
                for _ in 0..64 {
                    let port = self.nl.bind_test(ip, 0, p.proto).map_err(|e| {
                        NetworkError::Conflict(format!("no free host port on {ip} for {p}: {e}"))
                    })?;
                    if !clash(
                        &used,
                        &PortBinding {
                            host_port: port,
                            ..b
                        },
                    ) {
                        found = Some(port);
                        break;
                    }
                }
                b.host_port = found.ok_or_else(|| {
                    NetworkError::Conflict(format!("no free host port on {ip} for {p}"))
                })?;
            } else {
                let taken = || {
                    NetworkError::Conflict(format!(
                        "Bind for {ip}:{} failed: port is already allocated",
                        p.host_port
                    ))
                };
                if clash(&used, &b) {
                    return Err(taken());
                }
                self.nl
                    .bind_test(ip, p.host_port, p.proto)
                    .map_err(|_| taken())?;
            }
            used.push(b);
            out.push(b);
        }
        Ok(out)
    }
}

impl NetworkManager {
    /// Opens (creating) the state under `state_dir` with the real backends (`ip`, and the
    /// working `iptables` when `cfg.iptables`). `live(container_id)` tells which containers
    /// still run: endpoints of the others are removed with their veths and rules.
    pub fn open(
        state_dir: &Path,
        cfg: ManagerConfig,
        live: &dyn Fn(&str) -> bool,
    ) -> Result<Self, NetworkError> {
        let fw: Option<Arc<dyn Firewall>> = if cfg.iptables {
            Some(Arc::new(IptablesCmd::detect()?))
        } else {
            None
        };
        Self::open_with(state_dir, cfg, Arc::new(KernelNetlink), fw, live)
    }

    /// [`NetworkManager::open`] with explicit backends (fakes in tests). `fw` `None` disables
    /// iptables management.
    pub fn open_with(
        state_dir: &Path,
        cfg: ManagerConfig,
        nl: Arc<dyn Netlink>,
        fw: Option<Arc<dyn Firewall>>,
        live: &dyn Fn(&str) -> bool,
    ) -> Result<Self, NetworkError> {
        if cfg.veth_prefix.is_empty()
            || cfg.veth_prefix.len() > 6
            || !valid_ifname(&cfg.veth_prefix)
        {
            return Err(NetworkError::InvalidArgument(format!(
                "veth prefix {:?} must be 1 to 6 interface-name characters",
                cfg.veth_prefix
            )));
        }
        if !valid_ifname(&cfg.default_bridge) {
            return Err(NetworkError::InvalidArgument(format!(
                "invalid bridge name {:?}",
                cfg.default_bridge
            )));
        }
        let fw = if cfg.iptables { fw } else { None };
        let mut inner = Inner {
            dir: state_dir.to_path_buf(),
            chains: Chains::new(&cfg.chain_prefix),
            cfg,
            nl,
            fw,
            nets: BTreeMap::new(),
            drain: Drain::default(),
        };
        let nd = inner.net_dir();
        fs::create_dir_all(&nd)
            .map_err(|e| NetworkError::io(format!("creating {}", nd.display()), e))?;
        // Load records.
        let entries = fs::read_dir(&nd)
            .map_err(|e| NetworkError::io(format!("reading {}", nd.display()), e))?;
        for ent in entries {
            let ent = ent.map_err(|e| NetworkError::io(format!("reading {}", nd.display()), e))?;
            let p = ent.path();
            let fname = ent.file_name().to_string_lossy().into_owned();
            if fname.starts_with('.') {
                let _ = fs::remove_file(&p);
                continue;
            }
            if !fname.ends_with(".json") {
                continue;
            }
            let data = fs::read(&p)
                .map_err(|e| NetworkError::io(format!("reading {}", p.display()), e))?;
            let rec: NetworkRecord =
                serde_json::from_slice(&data).map_err(|e| NetworkError::State {
                    path: p.display().to_string(),
                    msg: e.to_string(),
                })?;
            inner.nets.insert(rec.id.clone(), rec);
        }
        if inner.cfg.ip_forward {
            inner.nl.set_sysctl("net/ipv4/ip_forward", "1")?;
        }
        inner.setup_base_rules()?;

        // Prune endpoints of containers that are gone.
        for rec in inner.nets.values_mut() {
            rec.endpoints.retain(|id, ep| {
                let keep = live(id);
                if !keep {
                    let _ = inner.nl.delete_link(&ep.endpoint.host_veth);
                }
                keep
            });
        }

        // The default network: drop it if its settings changed and nothing uses it.
        let cfg = inner.cfg.clone();
        let stale_default: Vec<String> = inner
            .nets
            .values()
            .filter(|n| n.predefined)
            .filter(|n| {
                let bip_differs = cfg.bip.is_some_and(|b| {
                    b.trunc() != n.subnet || (b.addr() != b.network() && b.addr() != n.gateway)
                });
                let changed = bip_differs || n.bridge != cfg.default_bridge;
                if changed && !n.endpoints.is_empty() {
                    tracing::warn!(
                        "default bridge settings changed but containers are attached; keeping {} {}",
                        n.bridge,
                        n.subnet
                    );
                }
                changed && n.endpoints.is_empty()
            })
            .map(|n| n.id.clone())
            .collect();
        for id in stale_default {
            if let Some(rec) = inner.nets.remove(&id) {
                inner.nl.delete_link(&rec.bridge)?;
                inner.unlink(&id)?;
            }
        }
        if !inner.nets.values().any(|n| n.predefined) {
            let (subnet, gateway) = match cfg.bip {
                Some(b) => {
                    let gw = if b.addr() == b.network() {
                        b.nth(1).unwrap_or(b.addr())
                    } else {
                        b.addr()
                    };
                    (b.trunc(), gw)
                }
                None => {
                    // A bridge left by an earlier run without a record would hide its subnet.
                    if inner.nl.links()?.contains(&cfg.default_bridge) {
                        inner.nl.delete_link(&cfg.default_bridge)?;
                    }
                    let s =
                        ipam::choose_subnet(&cfg.default_address_pools, &inner.taken_subnets()?)?;
                    (s, s.nth(1).expect("subnet has hosts"))
                }
            };
            ipam::check_gateway(subnet, gateway)?;
            let mut options = BTreeMap::new();
            for (k, v) in [
                ("com.docker.network.bridge.default_bridge", "true"),
                (OPT_ENABLE_ICC, if cfg.icc { "true" } else { "false" }),
                ("com.docker.network.bridge.enable_ip_masquerade", "true"),
                ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
                (OPT_BRIDGE_NAME, cfg.default_bridge.as_str()),
                ("com.docker.network.driver.mtu", "1500"),
            ] {
                options.insert(k.to_string(), v.to_string());
            }
            let rec = NetworkRecord {
                id: random_id(),
                name: "bridge".into(),
                created: now(),
                subnet,
                gateway,
                ip_range: None,
                internal: false,
                attachable: false,
                icc: cfg.icc,
                bridge: cfg.default_bridge.clone(),
                predefined: true,
                labels: BTreeMap::new(),
                options,
                endpoints: BTreeMap::new(),
                rules: Vec::new(),
            };
            inner.nets.insert(rec.id.clone(), rec);
        }

        // Bring every network up again, with the ports of its live endpoints.
        let ids: Vec<String> = inner.nets.keys().cloned().collect();
        for id in ids {
            let mut rec = inner.nets.remove(&id).expect("listed");
            if rec.predefined {
                rec.icc = cfg.icc;
            }
            inner.bring_up(&mut rec, false)?;
            for ep in rec.endpoints.values_mut() {
                let rules: Vec<Rule> = ep
                    .endpoint
                    .ports
                    .iter()
                    .flat_map(|p| {
                        firewall::port_rules(&inner.chains, &rec.bridge, ep.endpoint.ip, p)
                    })
                    .collect();
                inner.add_rules(&rules)?;
                ep.rules = if inner.fw.is_some() {
                    rules
                } else {
                    Vec::new()
                };
            }
            inner.save(&rec)?;
            inner.nets.insert(id, rec);
        }

        // Host veths of ours that no endpoint owns.
        let owned: BTreeSet<String> = inner
            .nets
            .values()
            .flat_map(|n| n.endpoints.values().map(|e| e.endpoint.host_veth.clone()))
            .collect();
        for l in inner.nl.links()? {
            if l.starts_with(&cfg.veth_prefix) && !owned.contains(&l) {
                inner.nl.delete_link(&l)?;
            }
        }
        Ok(NetworkManager {
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a user-defined bridge network.
    pub fn create(&self, req: CreateNetwork) -> Result<NetworkInfo, NetworkError> {
        let mut inner = self.lock();
        if !valid_name(&req.name) {
            return Err(NetworkError::InvalidArgument(format!(
                "invalid network name {:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                req.name
            )));
        }
        if !(req.driver.is_empty() || req.driver == "bridge") {
            return Err(NetworkError::InvalidArgument(format!(
                "network driver {:?} is not supported (only bridge)",
                req.driver
            )));
        }
        if inner.nets.values().any(|n| n.name == req.name) {
            return Err(NetworkError::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let icc = match req.options.get(OPT_ENABLE_ICC).map(String::as_str) {
            None | Some("true") => true,
            Some("false") => false,
            Some(o) => {
                return Err(NetworkError::InvalidArgument(format!(
                    "invalid {OPT_ENABLE_ICC} value {o:?}"
                )))
            }
        };
        let id = random_id();
        let bridge = match req.options.get(OPT_BRIDGE_NAME) {
            Some(b) => {
                if !valid_ifname(b) {
                    return Err(NetworkError::InvalidArgument(format!(
                        "invalid bridge name {b:?}"
                    )));
                }
                b.clone()
            }
            None => format!("{}{}", inner.cfg.bridge_prefix, &id[..12]),
        };
        if inner.nets.values().any(|n| n.bridge == bridge) || inner.nl.links()?.contains(&bridge) {
            return Err(NetworkError::Conflict(format!(
                "bridge {bridge} already exists"
            )));
        }
        let subnet = match req.subnet {
            Some(s) => {
                let s = s.trunc();
                if s.prefix_len() > 30 {
                    return Err(NetworkError::InvalidArgument(format!(
                        "subnet {s} is too small"
                    )));
                }
                if let Some(o) = inner.nets.values().find(|n| n.subnet.overlaps(&s)) {
                    return Err(NetworkError::InvalidArgument(format!(
                        "invalid pool request: Pool overlaps with other one on this address space ({s} overlaps network {})",
                        o.name
                    )));
                }
                s
            }
            None => {
                if req.gateway.is_some() || req.ip_range.is_some() {
                    return Err(NetworkError::InvalidArgument(
                        "a gateway or IP range requires a subnet".into(),
                    ));
                }
                ipam::choose_subnet(&inner.cfg.default_address_pools, &inner.taken_subnets()?)?
            }
        };
        let gateway = req
            .gateway
            .unwrap_or_else(|| subnet.nth(1).expect("subnet has hosts"));
        ipam::check_gateway(subnet, gateway)?;
        if let Some(r) = req.ip_range {
            if !subnet.contains(r.network()) || r.prefix_len() < subnet.prefix_len() {
                return Err(NetworkError::InvalidArgument(format!(
                    "IP range {r} is not inside subnet {subnet}"
                )));
            }
        }
        let mut rec = NetworkRecord {
            id: id.clone(),
            name: req.name,
            created: now(),
            subnet,
            gateway,
            ip_range: req.ip_range.map(|r| r.trunc()),
            internal: req.internal,
            attachable: req.attachable,
            icc,
            bridge,
            predefined: false,
            labels: req.labels,
            options: req.options,
            endpoints: BTreeMap::new(),
            rules: Vec::new(),
        };
        inner.bring_up(&mut rec, true)?;
        if let Err(e) = inner.save(&rec) {
            let _ = inner.tear_down_network(&rec);
            return Err(e);
        }
        let info = rec.info();
        inner.nets.insert(id, rec);
        Ok(info)
    }

    /// Removes a user-defined network; `Conflict` while containers are attached.
    pub fn remove(&self, name_or_id: &str) -> Result<(), NetworkError> {
        let mut inner = self.lock();
        let id = inner.find_id(name_or_id)?;
        let rec = &inner.nets[&id];
        if rec.predefined {
            return Err(NetworkError::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                rec.name
            )));
        }
        if !rec.endpoints.is_empty() {
            return Err(NetworkError::Conflict(format!(
                "error while removing network: network {} id {} has active endpoints",
                rec.name, rec.id
            )));
        }
        inner.tear_down_network(rec)?;
        inner.unlink(&id)?;
        inner.nets.remove(&id);
        Ok(())
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

    /// Attaches a created (not yet started) container to a network: allocates its address,
    /// binds its ports, creates the veth pair (peer → `ethN` in `netns_path`) and the rules.
    pub fn connect(
        &self,
        network: &str,
        container_id: &str,
        netns_path: &Path,
        req: EndpointRequest,
    ) -> Result<Endpoint, NetworkError> {
        let mut inner = self.lock();
        let id = inner.find_id(network)?;
        if !netns_path.exists() {
            return Err(NetworkError::InvalidArgument(format!(
                "network namespace {} does not exist",
                netns_path.display()
            )));
        }
        let rec = &inner.nets[&id];
        if rec.endpoints.contains_key(container_id) {
            return Err(NetworkError::Conflict(format!(
                "endpoint with name {} already exists in network {}",
                req.name, rec.name
            )));
        }
        if req.ip.is_some() && rec.predefined {
            return Err(NetworkError::InvalidArgument(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        let (internal, net_name) = (rec.internal, rec.name.clone());
        let ip = inner.allocate_address(&id, container_id, req.ip)?;
        let ports = if internal {
            if !req.ports.is_empty() {
                tracing::info!(
                    "ignoring published ports of {container_id} on internal network {net_name}"
                );
            }
            Vec::new()
        } else {
            inner.bind_ports(&req.ports)?
        };
        let rec = &inner.nets[&id];
        let host_veth = loop {
            let n = format!(
                "{}{}",
                inner.cfg.veth_prefix,
                hex::encode(rand::random::<[u8; 4]>())
            );
            if !inner.nl.link_exists(&n) {
                break n;
            }
        };
        let peer = format!("{host_veth}p");
        let has_gateway = inner
            .nets
            .values()
            .any(|n| !n.internal && n.endpoints.contains_key(container_id));
        let pc = PeerConfig {
            addr: Ipv4Net::new(ip, rec.subnet.prefix_len())?,
            mac: ipam::mac_for(ip),
            default_gateway: (!rec.internal && !has_gateway).then_some(rec.gateway),
        };
        inner
            .nl
            .create_veth(&host_veth, &peer, &rec.bridge, netns_path)?;
        let ifname = match inner.nl.configure_peer(netns_path, &peer, &pc) {
            Ok(ifname) => ifname,
            Err(e) => {
                let _ = inner.nl.delete_link(&host_veth);
                return Err(e);
            }
        };
        let rules: Vec<Rule> = ports
            .iter()
            .flat_map(|p| firewall::port_rules(&inner.chains, &rec.bridge, ip, p))
            .collect();
        if let Err(e) = inner.add_rules(&rules) {
            let _ = inner.nl.delete_link(&host_veth);
            return Err(e);
        }
        let endpoint = Endpoint {
            network_id: rec.id.clone(),
            network_name: rec.name.clone(),
            endpoint_id: random_id(),
            ip,
            prefix_len: rec.subnet.prefix_len(),
            gateway: rec.gateway,
            mac: pc.mac.clone(),
            ifname,
            host_veth: host_veth.clone(),
            ports,
        };
        let ep = EndpointRecord {
            container_id: container_id.to_string(),
            name: req.name.trim_start_matches('/').to_string(),
            aliases: req.aliases,
            hostname: req.hostname,
            endpoint: endpoint.clone(),
            rules: if inner.fw.is_some() {
                rules
            } else {
                Vec::new()
            },
        };
        let mut new_rec = rec.clone();
        new_rec
            .endpoints
            .insert(container_id.to_string(), ep.clone());
        if let Err(e) = inner.save_endpoints(&new_rec) {
            inner.tear_down_endpoint(&ep);
            return Err(e);
        }
        inner.nets.insert(id, new_rec);
        Ok(endpoint)
    }

    /// Detaches a container: deletes its port rules and veth pair and releases its address.
    pub fn disconnect(&self, network: &str, container_id: &str) -> Result<(), NetworkError> {
        let mut inner = self.lock();
        let id = inner.find_id(network)?;
        let rec = &inner.nets[&id];
        let Some(ep) = rec.endpoints.get(container_id) else {
            return Err(NetworkError::NotFound(format!(
                "container {container_id} is not connected to network {}",
                rec.name
            )));
        };
        inner.tear_down_endpoint(ep);
        let mut new_rec = rec.clone();
        new_rec.endpoints.remove(container_id);
        inner.save_endpoints(&new_rec)?;
        inner.nets.insert(id, new_rec);
        Ok(())
    }

    /// Detaches a container from every network it is on (call when it exits).
    pub fn disconnect_all(&self, container_id: &str) -> Result<(), NetworkError> {
        let ids: Vec<String> = {
            let inner = self.lock();
            inner
                .nets
                .values()
                .filter(|n| n.endpoints.contains_key(container_id))
                .map(|n| n.id.clone())
                .collect()
        };
        for id in ids {
            match self.disconnect(&id, container_id) {
                Err(NetworkError::NotFound(_)) | Ok(()) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Detaches a container whose processes have all exited: its port rules go and its
    /// endpoints are released now, while its veths are left to the kernel, which deletes them
    /// with the container's network namespace (see [`crate::drain`]); their addresses stay
    /// reserved until then. A network namespace still in use needs [`Self::disconnect_all`].
    pub fn release_exited(&self, container_id: &str) -> Result<(), NetworkError> {
        let mut inner = self.lock();
        let ids: Vec<String> = inner
            .nets
            .values()
            .filter(|n| n.endpoints.contains_key(container_id))
            .map(|n| n.id.clone())
            .collect();
        let now = Instant::now();
        let mut start_reaper = false;
        let mut first_err = None;
        for id in ids {
            let mut rec = inner.nets[&id].clone();
            let ep = rec.endpoints.remove(container_id).expect("listed");
            inner.del_rules(&ep.rules);
            start_reaper |= inner.drain.add(
                container_id,
                &ep.endpoint.host_veth,
                &id,
                ep.endpoint.ip,
                now,
            );
            // The endpoint is gone whether or not the record is saved: a daemon that starts
            // drops endpoints of containers that do not run.
            if let Err(e) = inner.save_endpoints(&rec) {
                first_err.get_or_insert(e);
            }
            inner.nets.insert(id, rec);
        }
        drop(inner);
        if start_reaper {
            self.spawn_reaper();
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Starts the thread that watches draining veths (one at a time; it ends when none is
    /// left). If no thread can be started, the veths are deleted here and now.
    fn spawn_reaper(&self) {
        let inner = Arc::clone(&self.inner);
        let spawned = std::thread::Builder::new()
            .name("berth-veth-reaper".into())
            .spawn(move || reap_drained_veths(&inner));
        if let Err(e) = spawned {
            tracing::warn!("starting the veth reaper: {e}; deleting veths now");
            let mut inner = self.lock();
            for v in inner.drain.take_all() {
                delete_link_logged(inner.nl.as_ref(), &v);
            }
        }
    }

    /// The container's endpoints, by network name.
    pub fn endpoints(&self, container_id: &str) -> BTreeMap<String, Endpoint> {
        self.lock()
            .nets
            .values()
            .filter_map(|n| {
                n.endpoints
                    .get(container_id)
                    .map(|e| (n.name.clone(), e.endpoint.clone()))
            })
            .collect()
    }

    /// Resolves a container name, alias, hostname or id prefix (12+ characters) on a
    /// user-defined network (never on the default `bridge`, like Docker).
    pub fn resolve(&self, network: &str, name: &str) -> Option<Ipv4Addr> {
        let inner = self.lock();
        let id = inner.find_id(network).ok()?;
        inner.nets[&id].resolve(name)
    }

    /// A [`Resolver`] for the embedded DNS server of one container: names on every
    /// user-defined network the container is attached to (looked up live).
    pub fn resolver_for(&self, container_id: &str) -> ContainerResolver {
        ContainerResolver {
            inner: Arc::clone(&self.inner),
            container_id: container_id.to_string(),
        }
    }

    /// Removes everything this manager made: endpoints, bridges (the default one too),
    /// berth's chains and the jumps to them, and the state files. For tests and resets.
    pub fn purge(&self) -> Result<(), NetworkError> {
        let mut inner = self.lock();
        for v in inner.drain.take_all() {
            delete_link_logged(inner.nl.as_ref(), &v);
        }
        let ids: Vec<String> = inner.nets.keys().cloned().collect();
        let mut first_err = None;
        for id in ids {
            let rec = inner.nets.remove(&id).expect("listed");
            if let Err(e) = inner
                .tear_down_network(&rec)
                .and_then(|_| inner.unlink(&id))
            {
                first_err.get_or_insert(e);
            }
        }
        if let Some(fw) = inner.fw.clone() {
            for j in inner.chains.jumps() {
                if let Err(e) = fw.delete(&j) {
                    first_err.get_or_insert(e);
                }
            }
            for (t, c) in inner.chains.all() {
                if let Err(e) = fw.flush_chain(t, c) {
                    first_err.get_or_insert(e);
                }
            }
            for (t, c) in inner.chains.all() {
                if let Err(e) = fw.delete_chain(t, c) {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// The reaper: every [`DRAIN_POLL`], forgets the draining veths the kernel has deleted and
/// deletes those past their deadline itself; returns when none is left.
fn reap_drained_veths(inner: &Mutex<Inner>) {
    let lock = || inner.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        std::thread::sleep(DRAIN_POLL);
        let (nl, overdue) = {
            let mut g = lock();
            let nl = Arc::clone(&g.nl);
            match g.drain.pass(|v| nl.link_exists(v), Instant::now()) {
                Some(overdue) => (nl, overdue),
                None => return,
            }
        };
        for veth in overdue {
            tracing::info!("deleting {veth}: it outlived its container");
            delete_link_logged(nl.as_ref(), &veth);
            lock().drain.forget(&veth);
        }
    }
}

/// Resolves names for one container; see [`NetworkManager::resolver_for`].
#[derive(Clone)]
pub struct ContainerResolver {
    inner: Arc<Mutex<Inner>>,
    container_id: String,
}

impl Resolver for ContainerResolver {
    fn resolve(&self, name: &str) -> Option<Ipv4Addr> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .nets
            .values()
            .filter(|n| n.endpoints.contains_key(&self.container_id))
            .find_map(|n| n.resolve(name))
    }
}
