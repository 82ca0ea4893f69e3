//! Network lifecycle: creating and removing user-defined networks, bringing a network's bridge
//! and rules up and tearing them down, berth's base chains, and [`NetworkManager::purge`].

use std::collections::BTreeMap;

use super::{
    delete_link_logged, now, random_id, valid_ifname, valid_name, CreateNetwork, Inner,
    NetworkInfo, NetworkManager, NetworkRecord, OPT_BRIDGE_NAME, OPT_ENABLE_ICC,
};
use crate::firewall::{self, Rule};
use crate::ipam;
use crate::ipnet::Ipv4Net;
use crate::NetworkError;

impl Inner {
    /// Adds rules in order; on failure deletes the ones added and returns the error.
    pub(super) fn add_rules(&self, rules: &[Rule]) -> Result<(), NetworkError> {
        let Some(fw) = &self.fw else { return Ok(()) };
        for (i, r) in rules.iter().enumerate() {
            if let Err(e) = fw.append(r) {
                self.del_rules(&rules[..i]);
                return Err(e);
            }
        }
        Ok(())
    }

    pub(super) fn del_rules(&self, rules: &[Rule]) {
        let Some(fw) = &self.fw else { return };
        for r in rules.iter().rev() {
            if let Err(e) = fw.delete(r) {
                tracing::warn!("deleting rule {r:?}: {e}");
            }
        }
    }

    pub(super) fn setup_base_rules(&self) -> Result<(), NetworkError> {
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

    pub(super) fn taken_subnets(&self) -> Result<Vec<Ipv4Net>, NetworkError> {
        let mut taken = self.nl.route_destinations()?;
        taken.extend(self.nets.values().map(|n| n.subnet));
        Ok(taken)
    }

    /// Creates the bridge, its sysctl and its rules for `rec` (filling `rec.rules`); rolls
    /// back on failure (the bridge is deleted only if `fresh`).
    pub(super) fn bring_up(
        &self,
        rec: &mut NetworkRecord,
        fresh: bool,
    ) -> Result<(), NetworkError> {
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

    fn tear_down_network(&self, rec: &NetworkRecord) -> Result<(), NetworkError> {
        for ep in rec.endpoints.values() {
            self.tear_down_endpoint(ep);
        }
        self.del_rules(&rec.rules);
        self.nl.delete_link(&rec.bridge)
    }
}

impl NetworkManager {
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
