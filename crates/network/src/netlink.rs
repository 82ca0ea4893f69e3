//! Links, addresses, routes, sysctls and host port probes behind the [`Netlink`] trait.
//! The real implementation, [`IpCommand`], runs iproute2's `ip` (and `nsenter --net=` for
//! work inside a container's network namespace); [`FakeNetlink`] records calls and keeps an
//! in-memory picture so the manager's logic is unit-tested without root.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::ipnet::Ipv4Net;
use crate::ports::Proto;
use crate::NetworkError;

/// How the container end of a veth is set up inside the container's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// Final interface name (`eth0`, `eth1`...).
    pub ifname: String,
    /// Address and prefix length.
    pub addr: Ipv4Net,
    /// MAC address (`02:42:ac:11:00:02`).
    pub mac: String,
    /// Default route via this gateway, if set.
    pub default_gateway: Option<Ipv4Addr>,
}

/// What berth needs from the kernel's networking (other than iptables).
pub trait Netlink: Send + Sync {
    /// Destinations of the host's IPv4 routes (the default route excluded).
    fn route_destinations(&self) -> Result<Vec<Ipv4Net>, NetworkError>;
    /// Names of the host's links.
    fn links(&self) -> Result<Vec<String>, NetworkError>;
    /// Creates bridge `name` with address `addr` (gateway/prefix) and brings it up; if it
    /// exists, makes sure it has the address and is up.
    fn create_bridge(&self, name: &str, addr: Ipv4Net) -> Result<(), NetworkError>;
    /// Deletes a link; no error if it does not exist.
    fn delete_link(&self, name: &str) -> Result<(), NetworkError>;
    /// Creates veth `host`/`peer`, attaches `host` to `bridge` (up, hairpin on) and moves
    /// `peer` into the namespace at `netns`. Leaves nothing behind on failure.
    fn create_veth(
        &self,
        host: &str,
        peer: &str,
        bridge: &str,
        netns: &Path,
    ) -> Result<(), NetworkError>;
    /// Names of the links inside the namespace at `netns`.
    fn netns_links(&self, netns: &Path) -> Result<Vec<String>, NetworkError>;
    /// Renames, addresses and brings up `peer` inside `netns`, brings `lo` up and adds the
    /// default route.
    fn configure_peer(
        &self,
        netns: &Path,
        peer: &str,
        cfg: &PeerConfig,
    ) -> Result<(), NetworkError>;
    /// Writes `/proc/sys/<key>`; `key` uses slashes (`net/ipv4/ip_forward`) so that
    /// interface names with dots stay intact.
    fn set_sysctl(&self, key: &str, value: &str) -> Result<(), NetworkError>;
    /// Binds `ip:port` on the host for `proto` and releases it at once; returns the port
    /// (the kernel's choice when `port` is 0). Fails when the port is taken.
    fn bind_test(&self, ip: Ipv4Addr, port: u16, proto: Proto) -> std::io::Result<u16>;
}

/// The real [`Netlink`]: iproute2 commands.
#[derive(Debug, Clone, Default)]
pub struct IpCommand;

fn run(cmd: &mut Command) -> Result<String, NetworkError> {
    let line = format!("{cmd:?}").replace('"', "");
    let out = cmd.output().map_err(|e| NetworkError::Command {
        cmd: line.clone(),
        stderr: e.to_string(),
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NetworkError::Command {
            cmd: line,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

fn ip(args: &[&str]) -> Result<String, NetworkError> {
    run(Command::new("ip").args(args))
}

fn ip_in(netns: &Path, args: &[&str]) -> Result<String, NetworkError> {
    let mut ns = std::ffi::OsString::from("--net=");
    ns.push(netns);
    run(Command::new("nsenter").arg(ns).arg("ip").args(args))
}

fn link_names(json: &str) -> Result<Vec<String>, NetworkError> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| NetworkError::Command {
        cmd: "ip -j link".into(),
        stderr: format!("unparsable output: {e}"),
    })?;
    Ok(v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l.get("ifname").and_then(|n| n.as_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// Parses `ip -j route` output into route destinations (default excluded).
pub fn parse_routes(json: &str) -> Result<Vec<Ipv4Net>, NetworkError> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| NetworkError::Command {
        cmd: "ip -j route".into(),
        stderr: format!("unparsable output: {e}"),
    })?;
    let mut out = Vec::new();
    for r in v.as_array().into_iter().flatten() {
        let Some(dst) = r.get("dst").and_then(|d| d.as_str()) else {
            continue;
        };
        if dst == "default" {
            continue;
        }
        let net = if dst.contains('/') {
            dst.parse().ok()
        } else {
            dst.parse::<Ipv4Addr>()
                .ok()
                .and_then(|a| Ipv4Net::new(a, 32).ok())
        };
        out.extend(net);
    }
    Ok(out)
}

impl Netlink for IpCommand {
    fn route_destinations(&self) -> Result<Vec<Ipv4Net>, NetworkError> {
        parse_routes(&ip(&["-4", "-j", "route", "show"])?)
    }

    fn links(&self) -> Result<Vec<String>, NetworkError> {
        link_names(&ip(&["-j", "link", "show"])?)
    }

    fn create_bridge(&self, name: &str, addr: Ipv4Net) -> Result<(), NetworkError> {
        let existed = self.links()?.iter().any(|l| l == name);
        if !existed {
            ip(&["link", "add", "name", name, "type", "bridge"])?;
        }
        let res = (|| {
            ip(&["addr", "replace", &addr.to_string(), "dev", name])?;
            ip(&["link", "set", "dev", name, "up"])?;
            Ok(())
        })();
        if res.is_err() && !existed {
            let _ = ip(&["link", "del", "dev", name]);
        }
        res
    }

    fn delete_link(&self, name: &str) -> Result<(), NetworkError> {
        if !self.links()?.iter().any(|l| l == name) {
            return Ok(());
        }
        match ip(&["link", "del", "dev", name]) {
            // The pair may vanish between the listing and the delete (its namespace died).
            Err(e)
                if self
                    .links()
                    .map(|l| !l.iter().any(|l| l == name))
                    .unwrap_or(false) =>
            {
                tracing::debug!("link {name} vanished: {e}");
                Ok(())
            }
            r => r.map(|_| ()),
        }
    }

    fn create_veth(
        &self,
        host: &str,
        peer: &str,
        bridge: &str,
        netns: &Path,
    ) -> Result<(), NetworkError> {
        ip(&[
            "link", "add", "name", host, "type", "veth", "peer", "name", peer,
        ])?;
        let res = (|| {
            ip(&["link", "set", "dev", host, "master", bridge])?;
            ip(&[
                "link",
                "set",
                "dev",
                host,
                "type",
                "bridge_slave",
                "hairpin",
                "on",
            ])?;
            ip(&["link", "set", "dev", host, "up"])?;
            let ns = netns.to_string_lossy();
            ip(&["link", "set", "dev", peer, "netns", &ns])?;
            Ok(())
        })();
        if res.is_err() {
            let _ = ip(&["link", "del", "dev", host]);
        }
        res
    }

    fn netns_links(&self, netns: &Path) -> Result<Vec<String>, NetworkError> {
        link_names(&ip_in(netns, &["-j", "link", "show"])?)
    }

    fn configure_peer(
        &self,
        netns: &Path,
        peer: &str,
        cfg: &PeerConfig,
    ) -> Result<(), NetworkError> {
        let n = cfg.ifname.as_str();
        ip_in(netns, &["link", "set", "dev", peer, "name", n])?;
        ip_in(netns, &["link", "set", "dev", n, "address", &cfg.mac])?;
        ip_in(netns, &["addr", "add", &cfg.addr.to_string(), "dev", n])?;
        ip_in(netns, &["link", "set", "dev", n, "up"])?;
        ip_in(netns, &["link", "set", "dev", "lo", "up"])?;
        if let Some(gw) = cfg.default_gateway {
            ip_in(
                netns,
                &[
                    "route",
                    "replace",
                    "default",
                    "via",
                    &gw.to_string(),
                    "dev",
                    n,
                ],
            )?;
        }
        Ok(())
    }

    fn set_sysctl(&self, key: &str, value: &str) -> Result<(), NetworkError> {
        let path = PathBuf::from("/proc/sys").join(key);
        std::fs::write(&path, value)
            .map_err(|e| NetworkError::io(format!("writing {}", path.display()), e))
    }

    fn bind_test(&self, ip: Ipv4Addr, port: u16, proto: Proto) -> std::io::Result<u16> {
        let addr = SocketAddrV4::new(ip, port);
        match proto {
            Proto::Tcp => Ok(TcpListener::bind(addr)?.local_addr()?.port()),
            Proto::Udp => Ok(UdpSocket::bind(addr)?.local_addr()?.port()),
        }
    }
}

/// Recording fake [`Netlink`].
#[derive(Debug, Default)]
pub struct FakeNetlink {
    /// Every call, as a short text (`create_bridge berth0 172.17.0.1/16`).
    pub calls: Mutex<Vec<String>>,
    /// Host links (bridges and host veth ends); seed with e.g. `eth0`.
    pub host_links: Mutex<BTreeSet<String>>,
    /// Links per namespace path.
    pub netns: Mutex<BTreeMap<PathBuf, BTreeSet<String>>>,
    /// Host route destinations reported by `route_destinations`.
    pub routes: Mutex<Vec<Ipv4Net>>,
    /// Sysctls written.
    pub sysctls: Mutex<BTreeMap<String, String>>,
    /// Host ports considered taken, by `(port, proto)`.
    pub busy_ports: Mutex<BTreeSet<(u16, Proto)>>,
    /// When set, any call whose text contains this string fails.
    pub fail_on: Mutex<Option<String>>,
}

impl FakeNetlink {
    fn call(&self, s: String) -> Result<(), NetworkError> {
        let fail = self
            .fail_on
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|f| s.contains(f.as_str()));
        self.calls.lock().unwrap().push(s.clone());
        if fail {
            return Err(NetworkError::Command {
                cmd: s,
                stderr: "injected failure".into(),
            });
        }
        Ok(())
    }
}

impl Netlink for FakeNetlink {
    fn route_destinations(&self) -> Result<Vec<Ipv4Net>, NetworkError> {
        Ok(self.routes.lock().unwrap().clone())
    }

    fn links(&self) -> Result<Vec<String>, NetworkError> {
        Ok(self.host_links.lock().unwrap().iter().cloned().collect())
    }

    fn create_bridge(&self, name: &str, addr: Ipv4Net) -> Result<(), NetworkError> {
        self.call(format!("create_bridge {name} {addr}"))?;
        self.host_links.lock().unwrap().insert(name.into());
        self.routes.lock().unwrap().push(addr.trunc());
        Ok(())
    }

    fn delete_link(&self, name: &str) -> Result<(), NetworkError> {
        self.call(format!("delete_link {name}"))?;
        self.host_links.lock().unwrap().remove(name);
        for l in self.netns.lock().unwrap().values_mut() {
            l.remove(&format!("peer-of-{name}"));
        }
        Ok(())
    }

    fn create_veth(
        &self,
        host: &str,
        peer: &str,
        bridge: &str,
        netns: &Path,
    ) -> Result<(), NetworkError> {
        self.call(format!(
            "create_veth {host} {peer} {bridge} {}",
            netns.display()
        ))?;
        self.host_links.lock().unwrap().insert(host.into());
        self.netns
            .lock()
            .unwrap()
            .entry(netns.to_path_buf())
            .or_default()
            .insert(peer.into());
        Ok(())
    }

    fn netns_links(&self, netns: &Path) -> Result<Vec<String>, NetworkError> {
        Ok(self
            .netns
            .lock()
            .unwrap()
            .get(netns)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_else(|| vec!["lo".into()]))
    }

    fn configure_peer(
        &self,
        netns: &Path,
        peer: &str,
        cfg: &PeerConfig,
    ) -> Result<(), NetworkError> {
        self.call(format!(
            "configure_peer {} {peer} {} {} {} gw={:?}",
            netns.display(),
            cfg.ifname,
            cfg.addr,
            cfg.mac,
            cfg.default_gateway
        ))?;
        if let Some(l) = self.netns.lock().unwrap().get_mut(netns) {
            l.remove(peer);
            l.insert(cfg.ifname.clone());
        }
        Ok(())
    }

    fn set_sysctl(&self, key: &str, value: &str) -> Result<(), NetworkError> {
        self.call(format!("sysctl {key}={value}"))?;
        self.sysctls
            .lock()
            .unwrap()
            .insert(key.into(), value.into());
        Ok(())
    }

    fn bind_test(&self, _ip: Ipv4Addr, port: u16, proto: Proto) -> std::io::Result<u16> {
        let busy = self.busy_ports.lock().unwrap();
        if port == 0 {
            return (20000..)
                .find(|p| !busy.contains(&(*p, proto)))
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::AddrInUse));
        }
        if busy.contains(&(port, proto)) {
            return Err(std::io::Error::from(std::io::ErrorKind::AddrInUse));
        }
        Ok(port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse() {
        let j = r#"[{"dst":"default","gateway":"192.0.2.1","dev":"eth0"},
                   {"dst":"192.0.2.0/24","dev":"eth0"},{"dst":"10.9.8.7","dev":"tun0"}]"#;
        let r = parse_routes(j).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].to_string(), "192.0.2.0/24");
        assert_eq!(r[1].to_string(), "10.9.8.7/32");
        assert!(parse_routes("nope").is_err());
    }

    #[test]
    fn links_parse() {
        let j = r#"[{"ifindex":1,"ifname":"lo"},{"ifindex":5,"ifname":"veth1","link":"x"}]"#;
        assert_eq!(link_names(j).unwrap(), ["lo", "veth1"]);
    }
}
