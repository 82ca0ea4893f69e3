//! Links, addresses, routes, sysctls and host port probes behind the [`Netlink`] trait.
//! The real implementation is [`crate::rtnl::KernelNetlink`] (rtnetlink, in-process);
//! [`FakeNetlink`] records calls and keeps an in-memory picture so the manager's logic is
//! unit-tested without root.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::ipnet::Ipv4Net;
use crate::ports::Proto;
use crate::NetworkError;

/// How the container end of a veth is set up inside the container's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
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
    /// Renames `peer` inside `netns` to the first free `ethN`, gives it `cfg`'s address and
    /// MAC, brings it and `lo` up and adds the default route. Returns the name it chose.
    fn configure_peer(
        &self,
        netns: &Path,
        peer: &str,
        cfg: &PeerConfig,
    ) -> Result<String, NetworkError>;
    /// Whether the host has a link called `name` (cheap: no netlink round trip).
    fn link_exists(&self, name: &str) -> bool;
    /// Writes `/proc/sys/<key>`; `key` uses slashes (`net/ipv4/ip_forward`) so that
    /// interface names with dots stay intact.
    fn set_sysctl(&self, key: &str, value: &str) -> Result<(), NetworkError>;
    /// Binds `ip:port` on the host for `proto` and releases it at once; returns the port
    /// (the kernel's choice when `port` is 0). Fails when the port is taken.
    fn bind_test(&self, ip: Ipv4Addr, port: u16, proto: Proto) -> std::io::Result<u16>;
}

/// Writes `/proc/sys/<key>` (the real [`Netlink::set_sysctl`]).
pub(crate) fn write_sysctl(key: &str, value: &str) -> Result<(), NetworkError> {
    let path = PathBuf::from("/proc/sys").join(key);
    std::fs::write(&path, value)
        .map_err(|e| NetworkError::io(format!("writing {}", path.display()), e))
}

/// The first `ethN` not among `links`.
pub(crate) fn first_free_eth<'a>(links: impl Iterator<Item = &'a str> + Clone) -> String {
    (0..)
        .map(|i| format!("eth{i}"))
        .find(|n| !links.clone().any(|l| l == n))
        .expect("infinite")
}

/// Binds `ip:port` on the host and releases it (the real [`Netlink::bind_test`]).
pub(crate) fn bind_test_on_host(ip: Ipv4Addr, port: u16, proto: Proto) -> std::io::Result<u16> {
    let addr = SocketAddrV4::new(ip, port);
    match proto {
        Proto::Tcp => Ok(TcpListener::bind(addr)?.local_addr()?.port()),
        Proto::Udp => Ok(UdpSocket::bind(addr)?.local_addr()?.port()),
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

    fn configure_peer(
        &self,
        netns: &Path,
        peer: &str,
        cfg: &PeerConfig,
    ) -> Result<String, NetworkError> {
        let mut all = self.netns.lock().unwrap();
        let links = all.entry(netns.to_path_buf()).or_default();
        let ifname = first_free_eth(links.iter().map(String::as_str));
        self.call(format!(
            "configure_peer {} {peer} {ifname} {} {} gw={:?}",
            netns.display(),
            cfg.addr,
            cfg.mac,
            cfg.default_gateway
        ))?;
        links.remove(peer);
        links.insert(ifname.clone());
        Ok(ifname)
    }

    fn link_exists(&self, name: &str) -> bool {
        self.host_links.lock().unwrap().contains(name)
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
