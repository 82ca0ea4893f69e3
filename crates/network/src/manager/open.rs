//! Opening the manager: loading the network records, pruning endpoints of containers that are
//! gone, (re)creating the default `bridge` network, bringing every network and its ports up
//! again and deleting stray veths.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::{
    now, random_id, valid_ifname, Inner, ManagerConfig, NetworkManager, NetworkRecord,
    OPT_BRIDGE_NAME, OPT_ENABLE_ICC,
};
use crate::drain::Drain;
use crate::firewall::{self, Chains, Firewall, IptablesCmd, Rule};
use crate::ipam;
use crate::netlink::Netlink;
use crate::rtnl::KernelNetlink;
use crate::NetworkError;

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
}
