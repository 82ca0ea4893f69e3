//! Container endpoints: connecting a container to a network (address, published ports, veth
//! pair, rules) and disconnecting it again.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;

use super::{
    delete_link_logged, random_id, Endpoint, EndpointRecord, EndpointRequest, Inner, NetworkManager,
};
use crate::firewall::{self, Rule};
use crate::ipam;
use crate::ipnet::Ipv4Net;
use crate::netlink::PeerConfig;
use crate::NetworkError;

impl Inner {
    pub(super) fn tear_down_endpoint(&self, ep: &EndpointRecord) {
        self.del_rules(&ep.rules);
        delete_link_logged(self.nl.as_ref(), &ep.endpoint.host_veth);
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
}

impl NetworkManager {
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
}
