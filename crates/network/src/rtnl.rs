//! The kernel [`Netlink`]: rtnetlink requests over `NETLINK_ROUTE` sockets, with the message
//! types of `netlink-packet-route` and the sockets of `netlink-sys`. Work inside a container's
//! namespace goes through a socket opened there by a short-lived thread that joins the
//! namespace first ([`crate::dns::in_netns`]), so no process is started for any of it (the
//! iproute2 version ran about fifteen `ip`/`nsenter` processes per container).

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::ipnet::Ipv4Net;
use crate::netlink::{bind_test_on_host, first_free_eth, write_sysctl, Netlink, PeerConfig};
use crate::ports::Proto;
use crate::NetworkError;

/// The real [`Netlink`]: rtnetlink, in-process.
#[derive(Debug, Clone, Default)]
pub struct KernelNetlink;

/// One rtnetlink socket, in the namespace it was opened in.
struct Rtnl {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

fn failed(what: impl Into<String>, e: io::Error) -> NetworkError {
    NetworkError::Command {
        cmd: format!("netlink: {}", what.into()),
        stderr: e.to_string(),
    }
}

impl Rtnl {
    fn open() -> io::Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Rtnl {
            sock,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    /// A socket in the network namespace at `netns`.
    fn open_in(netns: &Path) -> io::Result<Rtnl> {
        crate::dns::in_netns(netns, Rtnl::open)
    }

    /// Sends `msg` and collects the replies: the messages of a dump (`NLM_F_DUMP` in
    /// `flags`), or nothing once the kernel acknowledges a change.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags | if dump { 0 } else { NLM_F_ACK };
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out);
        self.sock.send(&out, 0)?;

        let mut replies = Vec::new();
        loop {
            let n = self.sock.recv(&mut &mut self.buf[..], 0)?;
            let mut offset = 0;
            while offset < n {
                let reply: NetlinkMessage<RouteNetlinkMessage> =
                    NetlinkMessage::deserialize(&self.buf[offset..n])
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = reply.header.length as usize;
                if reply.header.sequence_number == self.seq {
                    match reply.payload {
                        NetlinkPayload::Done(_) => return Ok(replies),
                        NetlinkPayload::Error(e) => {
                            return match e.code {
                                None => Ok(replies),
                                Some(_) => Err(e.to_io()),
                            }
                        }
                        NetlinkPayload::InnerMessage(m) => replies.push(m),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
    }

    fn change(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        self.request(msg, flags).map(|_| ())
    }

    fn link_names(&mut self) -> io::Result<Vec<String>> {
        let replies = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => link_name(&l),
                _ => None,
            })
            .collect())
    }

    /// The index of link `name` (`ENODEV` when there is none).
    fn index_of(&mut self, name: &str) -> io::Result<u32> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let replies = self.request(RouteNetlinkMessage::GetLink(msg), 0)?;
        replies
            .into_iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))
    }

    /// Sets link `index` up (or applies `attrs` to it, with `up` deciding the flag change).
    fn set_link(&mut self, index: u32, attrs: Vec<LinkAttribute>, up: bool) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        if up {
            msg.header.flags = LinkFlags::Up;
            msg.header.change_mask = LinkFlags::Up;
        }
        msg.attributes = attrs;
        self.change(RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// `ip addr replace ADDR/LEN dev INDEX`.
    fn replace_address(&mut self, index: u32, addr: Ipv4Net) -> io::Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = addr.prefix_len();
        msg.header.index = index;
        let ip = IpAddr::V4(addr.addr());
        msg.attributes.push(AddressAttribute::Local(ip));
        msg.attributes.push(AddressAttribute::Address(ip));
        if addr.prefix_len() < 31 {
            msg.attributes
                .push(AddressAttribute::Broadcast(addr.broadcast()));
        }
        self.change(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
    }
}

fn link_name(l: &LinkMessage) -> Option<String> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })
}

/// `02:42:ac:11:00:02` as bytes.
fn parse_mac(mac: &str) -> Result<Vec<u8>, NetworkError> {
    let bytes: Result<Vec<u8>, _> = mac.split(':').map(|b| u8::from_str_radix(b, 16)).collect();
    match bytes {
        Ok(b) if b.len() == 6 => Ok(b),
        _ => Err(NetworkError::InvalidArgument(format!(
            "invalid MAC address: {mac}"
        ))),
    }
}

/// Route destinations of the main table's IPv4 routes, the default route left out.
fn route_destinations(replies: Vec<RouteNetlinkMessage>) -> Vec<Ipv4Net> {
    let mut out = Vec::new();
    for m in replies {
        let RouteNetlinkMessage::NewRoute(r) = m else {
            continue;
        };
        let table = r
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::Table(t) => Some(*t),
                _ => None,
            })
            .unwrap_or(u32::from(r.header.table));
        if table != u32::from(RouteHeader::RT_TABLE_MAIN) || r.header.destination_prefix_length == 0
        {
            continue;
        }
        let dst = r.attributes.iter().find_map(|a| match a {
            RouteAttribute::Destination(RouteAddress::Inet(a)) => Some(*a),
            _ => None,
        });
        if let Some(net) =
            dst.and_then(|a| Ipv4Net::new(a, r.header.destination_prefix_length).ok())
        {
            out.push(net);
        }
    }
    out
}

impl Netlink for KernelNetlink {
    fn route_destinations(&self) -> Result<Vec<Ipv4Net>, NetworkError> {
        let what = "dumping routes";
        let mut rtnl = Rtnl::open().map_err(|e| failed(what, e))?;
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        let replies = rtnl
            .request(RouteNetlinkMessage::GetRoute(msg), NLM_F_DUMP)
            .map_err(|e| failed(what, e))?;
        Ok(route_destinations(replies))
    }

    fn links(&self) -> Result<Vec<String>, NetworkError> {
        let what = "dumping links";
        let mut rtnl = Rtnl::open().map_err(|e| failed(what, e))?;
        rtnl.link_names().map_err(|e| failed(what, e))
    }

    fn create_bridge(&self, name: &str, addr: Ipv4Net) -> Result<(), NetworkError> {
        let mut rtnl = Rtnl::open().map_err(|e| failed("opening rtnetlink", e))?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        let existed =
            match rtnl.change(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL) {
                Ok(()) => false,
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => true,
                Err(e) => return Err(failed(format!("creating bridge {name}"), e)),
            };
        let res = (|| {
            let index = rtnl.index_of(name)?;
            rtnl.replace_address(index, addr)?;
            rtnl.set_link(index, Vec::new(), true)
        })()
        .map_err(|e| failed(format!("setting up bridge {name} with {addr}"), e));
        if res.is_err() && !existed {
            let _ = self.delete_link(name);
        }
        res
    }

    fn delete_link(&self, name: &str) -> Result<(), NetworkError> {
        let what = format!("deleting link {name}");
        let mut rtnl = Rtnl::open().map_err(|e| failed(what.clone(), e))?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match rtnl.change(RouteNetlinkMessage::DelLink(msg), 0) {
            // Gone already (or its namespace died and took the pair with it).
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
            r => r.map_err(|e| failed(what, e)),
        }
    }

    fn create_veth(
        &self,
        host: &str,
        peer: &str,
        bridge: &str,
        netns: &Path,
    ) -> Result<(), NetworkError> {
        let what = format!(
            "creating veth {host} on {bridge} with {peer} in {}",
            netns.display()
        );
        let mut rtnl = Rtnl::open().map_err(|e| failed(what.clone(), e))?;
        let ns = File::open(netns).map_err(|e| failed(what.clone(), e))?;
        let bridge_index = rtnl.index_of(bridge).map_err(|e| failed(what.clone(), e))?;

        let mut peer_msg = LinkMessage::default();
        peer_msg
            .attributes
            .push(LinkAttribute::IfName(peer.to_string()));
        peer_msg
            .attributes
            .push(LinkAttribute::NetNsFd(ns.as_raw_fd()));
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(host.to_string()));
        msg.attributes.push(LinkAttribute::Controller(bridge_index));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
        ]));
        rtnl.change(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
            .map_err(|e| failed(what.clone(), e))?;
        drop(ns);
        // Hairpin on the bridge port, so a container reaches its own published ports.
        let hairpin = PathBuf::from("/sys/class/net")
            .join(host)
            .join("brport/hairpin_mode");
        if let Err(e) = std::fs::write(&hairpin, "1") {
            let _ = self.delete_link(host);
            return Err(NetworkError::io(
                format!("writing {}", hairpin.display()),
                e,
            ));
        }
        Ok(())
    }

    fn configure_peer(
        &self,
        netns: &Path,
        peer: &str,
        cfg: &PeerConfig,
    ) -> Result<String, NetworkError> {
        let mac = parse_mac(&cfg.mac)?;
        let what = format!("configuring {peer} ({}) in {}", cfg.addr, netns.display());
        let mut rtnl = Rtnl::open_in(netns).map_err(|e| failed(what.clone(), e))?;
        (|| {
            let links = rtnl.link_names()?;
            let ifname = first_free_eth(links.iter().map(String::as_str));
            let index = rtnl.index_of(peer)?;
            rtnl.set_link(
                index,
                vec![
                    LinkAttribute::IfName(ifname.clone()),
                    LinkAttribute::Address(mac),
                ],
                false,
            )?;
            rtnl.replace_address(index, cfg.addr)?;
            rtnl.set_link(index, Vec::new(), true)?;
            let lo = rtnl.index_of("lo")?;
            rtnl.set_link(lo, Vec::new(), true)?;
            if let Some(gw) = cfg.default_gateway {
                rtnl.change(
                    RouteNetlinkMessage::NewRoute(default_route(gw, index)),
                    NLM_F_CREATE | NLM_F_REPLACE,
                )?;
            }
            Ok(ifname)
        })()
        .map_err(|e| failed(what, e))
    }

    fn link_exists(&self, name: &str) -> bool {
        Path::new("/sys/class/net").join(name).exists()
    }

    fn set_sysctl(&self, key: &str, value: &str) -> Result<(), NetworkError> {
        write_sysctl(key, value)
    }

    fn bind_test(&self, ip: Ipv4Addr, port: u16, proto: Proto) -> io::Result<u16> {
        bind_test_on_host(ip, port, proto)
    }
}

/// `default via GW dev INDEX` in the main table.
fn default_route(gw: Ipv4Addr, index: u32) -> RouteMessage {
    let mut r = RouteMessage::default();
    r.header.address_family = AddressFamily::Inet;
    r.header.table = RouteHeader::RT_TABLE_MAIN;
    r.header.protocol = RouteProtocol::Boot;
    r.header.scope = RouteScope::Universe;
    r.header.kind = RouteType::Unicast;
    r.attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(gw)));
    r.attributes.push(RouteAttribute::Oif(index));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parsing() {
        assert_eq!(
            parse_mac("02:42:ac:11:00:02").unwrap(),
            vec![2, 0x42, 0xac, 0x11, 0, 2]
        );
        assert!(parse_mac("02:42:ac:11:00").is_err());
        assert!(parse_mac("zz:42:ac:11:00:02").is_err());
    }

    fn route(table: u8, dst: Option<(Ipv4Addr, u8)>) -> RouteNetlinkMessage {
        let mut r = RouteMessage::default();
        r.header.table = table;
        if let Some((a, len)) = dst {
            r.header.destination_prefix_length = len;
            r.attributes
                .push(RouteAttribute::Destination(RouteAddress::Inet(a)));
        }
        RouteNetlinkMessage::NewRoute(r)
    }

    #[test]
    fn main_table_routes_without_default() {
        let replies = vec![
            route(254, None),
            route(254, Some((Ipv4Addr::new(10, 0, 2, 0), 24))),
            route(255, Some((Ipv4Addr::new(127, 0, 0, 0), 8))),
            route(254, Some((Ipv4Addr::new(192, 168, 1, 7), 32))),
        ];
        let got: Vec<String> = route_destinations(replies)
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(got, ["10.0.2.0/24", "192.168.1.7/32"]);
    }

    #[test]
    fn default_route_message() {
        let r = default_route(Ipv4Addr::new(172, 17, 0, 1), 7);
        assert_eq!(r.header.table, RouteHeader::RT_TABLE_MAIN);
        assert!(r
            .attributes
            .contains(&RouteAttribute::Gateway(RouteAddress::Inet(Ipv4Addr::new(
                172, 17, 0, 1
            )))));
        assert!(r.attributes.contains(&RouteAttribute::Oif(7)));
    }
}
