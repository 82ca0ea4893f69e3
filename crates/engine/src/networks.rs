//! Networking for containers on top of [`berth_network::NetworkManager`]: choosing a
//! container's network mode at create, joining its networks (veth, address, published ports,
//! embedded DNS at 127.0.0.11 on user networks) when it starts, leaving them when it exits,
//! the `NetworkSettings` of inspect and `Ports` of ps, and the `/networks` operations.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api::{
    ContainerConfig, EndpointSettings, HostConfig, NetworkConnectRequest, NetworkCreateRequest,
    NetworkCreateResponse, NetworkPruneResponse, Port,
};
use berth_network::{
    dns, CreateNetwork, EndpointRequest, Ipv4Net, ManagerConfig, NetworkManager, Proto,
};
use serde_json::{json, Value};

use crate::container::{Container, ContainerRecord};
use crate::context::Context;
use crate::{EngineConfig, EngineError, Filters, Result};

/// Opens the network manager; `None` (with the reason logged) when bridge networking is off or
/// unavailable on this host.
pub(crate) fn open_manager(config: &EngineConfig) -> Option<NetworkManager> {
    if !config.networking {
        return None;
    }
    let mut mc = ManagerConfig {
        icc: config.icc,
        iptables: config.iptables,
        ..Default::default()
    };
    if let Some(bip) = &config.bip {
        match bip.parse::<Ipv4Net>() {
            Ok(n) => mc.bip = Some(n),
            Err(e) => {
                tracing::error!("invalid bip {bip:?}: {e}; bridge networking disabled");
                return None;
            }
        }
    }
    // Endpoints of containers that are not running are cleaned after the containers are
    // restored (see `Engine::reconcile_networks`), so nothing is judged dead here.
    match NetworkManager::open(&config.data_root.join("network"), mc, &|_| true) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::error!("bridge networking unavailable: {e}");
            None
        }
    }
}

/// `HostConfig.PortBindings` (and `-P` for the exposed ports) as the network crate's bindings.
pub(crate) fn port_bindings(
    h: &HostConfig,
    c: &ContainerConfig,
) -> Result<Vec<berth_network::PortBinding>> {
    let parse_key = |key: &str| -> Result<(u16, Proto)> {
        let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
        let port = port
            .parse::<u16>()
            .map_err(|_| EngineError::InvalidArgument(format!("invalid port: {key}")))?;
        let proto = proto
            .parse::<Proto>()
            .map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
        Ok((port, proto))
    };
    let mut out = Vec::new();
    for (key, list) in &h.port_bindings {
        let (container_port, proto) = parse_key(key)?;
        let list = list.clone().unwrap_or_default();
        let list = if list.is_empty() {
            vec![berth_api::PortBinding::default()]
        } else {
            list
        };
        for b in list {
            let host_ip =
                match b.host_ip.as_str() {
                    "" | "0.0.0.0" => None,
                    ip => Some(ip.parse::<Ipv4Addr>().map_err(|_| {
                        EngineError::InvalidArgument(format!("invalid host IP: {ip}"))
                    })?),
                };
            let host_port = match b.host_port.as_str() {
                "" => 0,
                p => p
                    .parse::<u16>()
                    .map_err(|_| EngineError::InvalidArgument(format!("invalid host port: {p}")))?,
            };
            out.push(berth_network::PortBinding {
                host_ip,
                host_port,
                container_port,
                proto,
            });
        }
    }
    if h.publish_all_ports {
        for key in c.exposed_ports.iter().flat_map(|m| m.keys()) {
            if !h.port_bindings.contains_key(key) {
                let (container_port, proto) = parse_key(key)?;
                out.push(berth_network::PortBinding {
                    host_ip: None,
                    host_port: 0,
                    container_port,
                    proto,
                });
            }
        }
    }
    Ok(out)
}

fn is_user_network(name: &str) -> bool {
    !["bridge", "none", "host", "default", ""].contains(&name) && !name.starts_with("container:")
}

pub(crate) fn net(ctx: &Arc<Context>) -> Result<&NetworkManager> {
    ctx.network.as_ref().ok_or_else(|| {
        EngineError::InvalidArgument(
            "bridge networking is not available on this host (see the daemon log)".into(),
        )
    })
}

/// Decides a new container's network mode and the networks it joins at start.
pub(crate) fn plan_networks(
    ctx: &Arc<Context>,
    host: &mut HostConfig,
    endpoints: &BTreeMap<String, EndpointSettings>,
) -> Result<BTreeMap<String, EndpointSettings>> {
    let mode = match host.network_mode.as_str() {
        "" | "default" if ctx.network.is_some() => "bridge".to_string(),
        "" | "default" => "none".to_string(),
        m => m.to_string(),
    };
    let mut nets = BTreeMap::new();
    let links = !host.links.is_empty() || endpoints.values().any(|e| !e.links.is_empty());
    match mode.as_str() {
        "host" if links => {
            return Err(EngineError::InvalidArgument("conflicting options: host type networking can't be used with links. This would result in undefined behavior".into()));
        }
        m if links && m.starts_with("container:") => {
            return Err(EngineError::InvalidArgument("conflicting options: container type network can't be used with links. This would result in undefined behavior".into()));
        }
        "none" | "bridge" if links => {
            return Err(EngineError::InvalidArgument(
                crate::spec::LEGACY_LINKS_ON_THE_DEFAULT_BRIDGE.into(),
            ));
        }
        "none" | "host" => {}
        m if m.starts_with("container:") => {
            let other = ctx.lookup(&m["container:".len()..])?;
            host.network_mode = format!("container:{}", other.id);
            if !host.port_bindings.is_empty() || host.publish_all_ports {
                return Err(EngineError::InvalidArgument(
                    "conflicting options: port publishing and the container type network mode"
                        .into(),
                ));
            }
            return Ok(nets);
        }
        "bridge" => {
            net(ctx)?;
            let ep = endpoints.get("bridge").cloned().unwrap_or_default();
            if !ep.aliases.is_empty() {
                return Err(EngineError::InvalidArgument("network-scoped alias is supported only for containers in user defined networks".into()));
            }

            nets.insert("bridge".to_string(), ep);
        }
        name => {
            // 400, not 404: the docker CLI answers a 404 from create by pulling the image.
            let info = net(ctx)
                .map_err(|_| EngineError::InvalidArgument(format!("network {name} not found")))?
                .inspect(name)
                .map_err(|_| EngineError::InvalidArgument(format!("network {name} not found")))?;
            let ep = endpoints
                .get(name)
                .or_else(|| endpoints.get(&info.id))
                .cloned()
                .unwrap_or_default();
            nets.insert(info.name.clone(), ep);
        }
    }
    if matches!(mode.as_str(), "none" | "host") && (!host.port_bindings.is_empty()) {
        tracing::debug!("published ports are ignored in network mode {mode}");
    }
    host.network_mode = mode;
    Ok(nets)
}

/// The path of the network namespace a `container:` mode container joins.
pub(crate) fn shared_netns(ctx: &Arc<Context>, mode: &str) -> Result<Option<PathBuf>> {
    let Some(other) = mode.strip_prefix("container:") else {
        return Ok(None);
    };
    let o = ctx.lookup(other)?;
    let pid = o.rec.lock().unwrap().state.pid;
    if !o.running() || pid <= 0 {
        return Err(EngineError::Conflict(format!(
            "cannot join network of a non running container: {other}"
        )));
    }
    Ok(Some(PathBuf::from(format!("/proc/{pid}/ns/net"))))
}

/// Joins the container's networks once its process exists (`pid`), then rewrites its
/// /etc/hosts and /etc/resolv.conf and starts its DNS server on user networks.
pub(crate) async fn connect_container(ctx: &Arc<Context>, c: &Container, pid: i64) -> Result<()> {
    let rec = c.record();
    if rec.networks.is_empty() {
        return Ok(());
    }
    let net = net(ctx)?.clone();
    let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let ports = port_bindings(&rec.host_config, &rec.config)?;
    let hostname = crate::spec::hostname(&rec.id, &rec.config);
    let id = rec.id.clone();
    let name = rec.name.trim_start_matches('/').to_string();
    let networks = rec.networks.clone();
    let ns = netns.clone();
    let hn = hostname.clone();
    let endpoints = tokio::task::spawn_blocking(move || -> Result<Vec<berth_network::Endpoint>> {
        let mut out = Vec::new();
        for (i, (network, ep)) in networks.iter().enumerate() {
            let ip = match ep
                .ipam_config
                .as_ref()
                .map(|c| c.ipv4_address.as_str())
                .filter(|s| !s.is_empty())
            {
                Some(s) => Some(s.parse::<Ipv4Addr>().map_err(|_| {
                    EngineError::InvalidArgument(format!("invalid IPv4 address: {s}"))
                })?),
                None => None,
            };
            let req = EndpointRequest {
                name: name.clone(),
                aliases: ep.aliases.clone(),
                ip,
                ports: if i == 0 { ports.clone() } else { Vec::new() },
                hostname: Some(hn.clone()),
            };
            match net.connect(network, &id, &ns, req) {
                Ok(e) => out.push(e),
                Err(e) => {
                    let _ = net.disconnect_all(&id);
                    return Err(e.into());
                }
            }
        }
        Ok(out)
    })
    .await
    .map_err(|e| EngineError::Internal(e.to_string()))??;
    // /etc/hosts and /etc/resolv.conf are bind-mounted files: rewrite them in place.
    let dir = ctx.container_dir(&rec.id);
    if let Some(first) = endpoints.first() {
        let mut hosts = std::fs::read_to_string(dir.join("hosts")).unwrap_or_default();
        hosts.push_str(&format!("{}\t{}\n", first.ip, hostname));
        let _ = std::fs::write(dir.join("hosts"), hosts);
    }
    if rec.networks.keys().any(|n| is_user_network(n)) {
        let h = &rec.host_config;
        let resolv = crate::etc::resolv_conf(
            &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            &crate::etc::DnsSettings {
                servers: &h.dns,
                search: &h.dns_search,
                options: &h.dns_options,
            },
            true,
        );
        let _ = std::fs::write(dir.join("resolv.conf"), resolv);
        start_dns(ctx, &rec.id, &netns)?;
    }
    Ok(())
}

/// Serves the embedded DNS at 127.0.0.11:53 inside the container's network namespace.
pub(crate) fn start_dns(ctx: &Arc<Context>, id: &str, netns: &Path) -> Result<()> {
    let net = net(ctx)?;
    let sock = dns::bind_in_netns(netns, SocketAddr::from(([127, 0, 0, 11], 53)))
        .map_err(|e| EngineError::Internal(format!("starting the embedded DNS server: {e}")))?;
    let server = dns::spawn(
        sock,
        Arc::new(net.resolver_for(id)),
        dns::DnsConfig::from_host(),
    );
    if let Some(old) = ctx.dns.lock().unwrap().insert(id.to_string(), server) {
        let _ = old.stop();
    }
    Ok(())
}

/// Leaves every network (veths, addresses, port rules) and stops the DNS server.
pub(crate) async fn disconnect_container(ctx: &Arc<Context>, id: &str) {
    leave_networks(ctx, id, false).await;
}

/// [`Self::disconnect_container`] for a container whose processes have all exited: its
/// veths go with its network namespace, which the kernel tears down on its own, so the
/// exit does not wait for them (`NetworkManager::release_exited`).
pub(crate) async fn release_networks_of_exited(ctx: &Arc<Context>, id: &str) {
    leave_networks(ctx, id, true).await;
}

async fn leave_networks(ctx: &Arc<Context>, id: &str, exited: bool) {
    // First, so that its socket does not keep the namespace alive.
    if let Some(server) = ctx.dns.lock().unwrap().remove(id) {
        let _ = server.stop();
    }
    let Some(net) = ctx.network.clone() else {
        return;
    };
    let id = id.to_string();
    let _ = tokio::task::spawn_blocking(move || {
        let res = if exited {
            net.release_exited(&id)
        } else {
            net.disconnect_all(&id)
        };
        if let Err(e) = res {
            tracing::warn!("leaving networks of {id}: {e}");
        }
    })
    .await;
}

/// After a restart: endpoints of containers that no longer run are removed; running
/// containers on user networks get their DNS server back.
pub(crate) async fn reconcile_networks(ctx: &Arc<Context>) {
    let Some(net) = ctx.network.clone() else {
        return;
    };
    let running: BTreeMap<String, (i64, bool)> = ctx
        .containers
        .lock()
        .unwrap()
        .values()
        .map(|c| {
            let r = c.rec.lock().unwrap();
            (
                r.id.clone(),
                (
                    r.state.pid,
                    r.state.running() && r.networks.keys().any(|n| is_user_network(n)),
                ),
            )
        })
        .filter(|(_, (pid, _))| *pid > 0)
        .collect();
    let stale: Vec<(String, String)> = net
        .list()
        .into_iter()
        .flat_map(|n| {
            n.containers
                .keys()
                .map(|cid| (n.id.clone(), cid.clone()))
                .collect::<Vec<_>>()
        })
        .filter(|(_, cid)| !running.contains_key(cid))
        .collect();
    let n2 = net.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for (nid, cid) in stale {
            let _ = n2.disconnect(&nid, &cid);
        }
    })
    .await;
    for (id, (pid, user)) in running {
        if user {
            if let Err(e) = start_dns(ctx, &id, Path::new(&format!("/proc/{pid}/ns/net"))) {
                tracing::warn!("restoring DNS of {id}: {e}");
            }
        }
    }
}

/// `NetworkSettings` of inspect and the `Ports` of ps for a container.
pub(crate) fn network_settings(ctx: &Arc<Context>, rec: &ContainerRecord) -> (Value, Vec<Port>) {
    let live = if rec.state.running() {
        ctx.network
            .as_ref()
            .map(|n| n.endpoints(&rec.id))
            .unwrap_or_default()
    } else {
        BTreeMap::new()
    };
    let mut networks = serde_json::Map::new();
    let mut ports_json = serde_json::Map::new();
    let mut ports = Vec::new();
    for key in rec.host_config.port_bindings.keys() {
        ports_json.insert(key.clone(), Value::Null);
    }
    for (name, want) in &rec.networks {
        let ep = live.get(name);
        networks.insert(
            name.clone(),
            json!({
                "IPAMConfig": want.ipam_config,
                "Links": null,
                "Aliases": if want.aliases.is_empty() { Value::Null } else { json!(want.aliases) },
                "MacAddress": ep.map(|e| e.mac.clone()).unwrap_or_default(),
                "NetworkID": ep.map(|e| e.network_id.clone()).unwrap_or_default(),
                "EndpointID": ep.map(|e| e.endpoint_id.clone()).unwrap_or_default(),
                "Gateway": ep.map(|e| e.gateway.to_string()).unwrap_or_default(),
                "IPAddress": ep.map(|e| e.ip.to_string()).unwrap_or_default(),
                "IPPrefixLen": ep.map(|e| e.prefix_len).unwrap_or(0),
                "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DriverOpts": null, "DNSNames": null,
            }),
        );
        for p in ep.map(|e| e.ports.clone()).unwrap_or_default() {
            let key = format!("{}/{}", p.container_port, p.proto);
            let ip = p
                .host_ip
                .map(|i| i.to_string())
                .unwrap_or_else(|| "0.0.0.0".into());
            let entry = ports_json.entry(key).or_insert(Value::Null);
            if !entry.is_array() {
                *entry = json!([]);
            }
            entry
                .as_array_mut()
                .unwrap()
                .push(json!({"HostIp": ip, "HostPort": p.host_port.to_string()}));
            ports.push(Port {
                ip: Some(ip),
                private_port: p.container_port,
                public_port: Some(p.host_port),
                kind: p.proto.to_string(),
            });
        }
    }
    for key in rec.config.exposed_ports.iter().flat_map(|m| m.keys()) {
        if !ports
            .iter()
            .any(|p| format!("{}/{}", p.private_port, p.kind) == *key)
        {
            if let Some((port, proto)) = key
                .split_once('/')
                .and_then(|(p, t)| Some((p.parse::<u16>().ok()?, t)))
            {
                ports.push(Port {
                    ip: None,
                    private_port: port,
                    public_port: None,
                    kind: proto.to_string(),
                });
            }
        }
    }
    let bridge = live.get("bridge");
    let settings = json!({
        "Bridge": "", "SandboxID": "", "SandboxKey": if rec.state.running() { format!("/proc/{}/ns/net", rec.state.pid) } else { String::new() },
        "HairpinMode": false, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "Ports": ports_json,
        "EndpointID": bridge.map(|e| e.endpoint_id.clone()).unwrap_or_default(),
        "Gateway": bridge.map(|e| e.gateway.to_string()).unwrap_or_default(),
        "IPAddress": bridge.map(|e| e.ip.to_string()).unwrap_or_default(),
        "IPPrefixLen": bridge.map(|e| e.prefix_len).unwrap_or(0),
        "MacAddress": bridge.map(|e| e.mac.clone()).unwrap_or_default(),
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPv6Gateway": "",
        "Networks": networks,
    });
    (settings, ports)
}

/// The manager and network `name` (name, ID or ID prefix), or NotFound in Docker's words.
fn find_network(
    ctx: &Arc<Context>,
    name: &str,
) -> Result<(NetworkManager, berth_network::NetworkInfo)> {
    let not_found = || EngineError::NotFound(format!("network {name} not found"));
    let net = net(ctx).map_err(|_| not_found())?.clone();
    let info = net.inspect(name).map_err(|_| not_found())?;
    Ok((net, info))
}

fn predefined() -> Vec<Value> {
    let mk = |name: &str, driver: &str| {
        json!({"Name": name, "Id": format!("{:0>64}", hex_of(name)), "Created": "0001-01-01T00:00:00Z", "Scope": "local", "Driver": driver,
               "EnableIPv6": false, "IPAM": {"Driver": "default", "Options": null, "Config": []}, "Internal": false, "Attachable": false,
               "Ingress": false, "Containers": {}, "Options": {}, "Labels": {}})
    };
    vec![mk("host", "host"), mk("none", "null")]
}

pub(crate) async fn network_list(ctx: &Arc<Context>, filters: Filters) -> Result<Vec<Value>> {
    for k in filters.keys() {
        if !["name", "id", "driver", "label", "type", "scope", "dangling"].contains(&k.as_str()) {
            return Err(EngineError::InvalidArgument(format!(
                "invalid filter '{k}'"
            )));
        }
    }
    let mut all: Vec<Value> = ctx
        .network
        .as_ref()
        .map(|n| n.list())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| serde_json::to_value(i).ok())
        .collect();
    all.extend(predefined());
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    all.retain(|n| {
        filters
            .get("name")
            .is_none_or(|v| v.iter().any(|x| s(n, "Name").contains(x.as_str())))
            && filters
                .get("id")
                .is_none_or(|v| v.iter().any(|x| s(n, "Id").starts_with(x.as_str())))
            && filters
                .get("driver")
                .is_none_or(|v| v.contains(&s(n, "Driver")))
            && filters.get("label").is_none_or(|v| {
                v.iter().all(|l| match l.split_once('=') {
                    Some((k, val)) => n["Labels"][k].as_str() == Some(val),
                    None => n["Labels"].get(l).is_some(),
                })
            })
            && filters.get("type").is_none_or(|v| {
                let builtin = ["bridge", "host", "none"].contains(&s(n, "Name").as_str());
                v.iter().any(|t| (t == "builtin") == builtin)
            })
    });
    Ok(all)
}

pub(crate) async fn network_inspect(ctx: &Arc<Context>, name: &str) -> Result<Value> {
    if let Some(p) = predefined()
        .into_iter()
        .find(|p| p["Name"] == name || p["Id"] == name)
    {
        return Ok(p);
    }
    let (_, info) = find_network(ctx, name)?;
    serde_json::to_value(info).map_err(|e| EngineError::Internal(e.to_string()))
}

pub(crate) async fn network_create(
    ctx: &Arc<Context>,
    req: NetworkCreateRequest,
) -> Result<NetworkCreateResponse> {
    if req.name.is_empty() {
        return Err(EngineError::InvalidArgument(
            "network name must not be empty".into(),
        ));
    }
    if ["bridge", "host", "none", "default"].contains(&req.name.as_str()) {
        return Err(EngineError::Forbidden(format!(
            "operation is not permitted on predefined {} network ",
            req.name
        )));
    }
    if !req.driver.is_empty() && req.driver != "bridge" {
        return Err(EngineError::NotFound(format!(
            "plugin \"{}\" not found",
            req.driver
        )));
    }
    let cfg = req
        .ipam
        .as_ref()
        .and_then(|i| i.config.first().cloned())
        .unwrap_or_default();
    let parse_net = |s: &str| -> Result<Option<Ipv4Net>> {
        if s.is_empty() {
            Ok(None)
        } else {
            s.parse::<Ipv4Net>()
                .map(Some)
                .map_err(|e| EngineError::InvalidArgument(format!("invalid subnet {s}: {e}")))
        }
    };
    let create = CreateNetwork {
        name: req.name.clone(),
        driver: "bridge".into(),
        subnet: parse_net(&cfg.subnet)?,
        gateway: match cfg.gateway.as_str() {
            "" => None,
            g => Some(g.parse::<Ipv4Addr>().map_err(|_| {
                EngineError::InvalidArgument(format!("invalid gateway address: {g}"))
            })?),
        },
        ip_range: parse_net(&cfg.ip_range)?,
        internal: req.internal,
        attachable: req.attachable,
        labels: req.labels.clone(),
        options: req.options.clone(),
    };
    let net = net(ctx)?.clone();
    let info = tokio::task::spawn_blocking(move || net.create(create))
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))??;
    ctx.event(
        "network",
        "create",
        &info.id,
        &[("name", info.name.clone()), ("type", "bridge".into())],
    );
    Ok(NetworkCreateResponse {
        id: info.id,
        warning: String::new(),
    })
}

/// Running containers attached to the network.
fn network_users(ctx: &Arc<Context>, net_name: &str, net_id: &str) -> Vec<String> {
    ctx.containers
        .lock()
        .unwrap()
        .values()
        .filter(|c| {
            // As dockerd: only running containers hold endpoints; a stopped one that
            // names the network does not keep it from being removed.
            let r = c.rec.lock().unwrap();
            r.state.running() && r.networks.keys().any(|n| n == net_name || n == net_id)
        })
        .map(|c| c.id.clone())
        .collect()
}

pub(crate) async fn network_remove(ctx: &Arc<Context>, name: &str) -> Result<()> {
    if predefined().iter().any(|p| p["Name"] == name) || name == "bridge" {
        return Err(EngineError::Forbidden(format!(
            "{name} is a pre-defined network and cannot be removed"
        )));
    }
    let (net, info) = find_network(ctx, name)?;
    let users = network_users(ctx, &info.name, &info.id);
    if !users.is_empty() {
        return Err(EngineError::Conflict(format!(
            "error while removing network: network {} id {} has active endpoints",
            info.name, info.id
        )));
    }
    let id = info.id.clone();
    tokio::task::spawn_blocking(move || net.remove(&id))
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))??;
    ctx.event(
        "network",
        "destroy",
        &info.id,
        &[("name", info.name.clone()), ("type", "bridge".into())],
    );
    Ok(())
}

pub(crate) async fn network_prune(
    ctx: &Arc<Context>,
    _filters: Filters,
) -> Result<NetworkPruneResponse> {
    let mut deleted = Vec::new();
    for n in ctx.network.as_ref().map(|n| n.list()).unwrap_or_default() {
        if n.name == "bridge" || !network_users(ctx, &n.name, &n.id).is_empty() {
            continue;
        }
        if network_remove(ctx, &n.id).await.is_ok() {
            deleted.push(n.name);
        }
    }
    Ok(NetworkPruneResponse {
        networks_deleted: deleted,
    })
}

pub(crate) async fn network_connect(
    ctx: &Arc<Context>,
    network: &str,
    req: NetworkConnectRequest,
) -> Result<()> {
    let (net, info) = find_network(ctx, network)?;
    let c = ctx.lookup(&req.container)?;
    let ep = req.endpoint_config.clone().unwrap_or_default();
    {
        let r = c.rec.lock().unwrap();
        if r.networks.contains_key(&info.name) {
            return Err(EngineError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                r.name.trim_start_matches('/'),
                info.name
            )));
        }
        if matches!(r.host_config.network_mode.as_str(), "none" | "host")
            || r.host_config.network_mode.starts_with("container:")
        {
            return Err(EngineError::InvalidArgument(format!("container cannot be disconnected from host network or connected to host network: {}", r.host_config.network_mode)));
        }
    }
    if c.running() {
        let rec = c.record();
        let pid = rec.state.pid;
        let req = EndpointRequest {
            name: rec.name.trim_start_matches('/').to_string(),
            aliases: ep.aliases.clone(),
            ip: ep
                .ipam_config
                .as_ref()
                .and_then(|i| i.ipv4_address.parse().ok()),
            ports: Vec::new(),
            hostname: Some(crate::spec::hostname(&rec.id, &rec.config)),
        };
        let (n2, id, name) = (net.clone(), rec.id.clone(), info.name.clone());
        tokio::task::spawn_blocking(move || {
            n2.connect(&name, &id, Path::new(&format!("/proc/{pid}/ns/net")), req)
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))??;
        if is_user_network(&info.name) && !ctx.dns.lock().unwrap().contains_key(&rec.id) {
            start_dns(ctx, &rec.id, Path::new(&format!("/proc/{pid}/ns/net")))?;
        }
    }
    c.rec.lock().unwrap().networks.insert(info.name.clone(), ep);
    ctx.event(
        "network",
        "connect",
        &info.id,
        &[
            ("container", c.id.clone()),
            ("name", info.name.clone()),
            ("type", "bridge".into()),
        ],
    );
    ctx.persist(&c)
}

pub(crate) async fn network_disconnect(
    ctx: &Arc<Context>,
    network: &str,
    req: NetworkConnectRequest,
) -> Result<()> {
    let (net, info) = find_network(ctx, network)?;
    let c = ctx.lookup(&req.container)?;
    if !c.rec.lock().unwrap().networks.contains_key(&info.name) {
        return Err(EngineError::Forbidden(format!(
            "container {} is not connected to network {}",
            c.id, info.name
        )));
    }
    if c.running() {
        let (n2, id, nid) = (net.clone(), c.id.clone(), info.id.clone());
        let res = tokio::task::spawn_blocking(move || n2.disconnect(&nid, &id))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        if let Err(e) = res {
            if !req.force {
                return Err(e.into());
            }
        }
    }
    c.rec.lock().unwrap().networks.remove(&info.name);
    ctx.event(
        "network",
        "disconnect",
        &info.id,
        &[
            ("container", c.id.clone()),
            ("name", info.name.clone()),
            ("type", "bridge".into()),
        ],
    );
    ctx.persist(&c)
}

fn hex_of(name: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(
        format!("berth-predefined-{name}").as_bytes(),
    ))
}
