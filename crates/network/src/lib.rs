//! `berth-network`: Docker-style bridge networking for berth's engine.
//!
//! - [`NetworkManager`]: the default `bridge` network (Linux bridge `berth0`) and user-defined
//!   bridge networks, persistent IPAM, a veth pair per container endpoint, published ports
//!   (DNAT, including 127.0.0.1 via `route_localnet`), outbound NAT, isolation between
//!   networks, `--internal`, `icc`; stale veths and rules are cleaned at [`NetworkManager::open`].
//! - [`dns`]: the embedded DNS server (container names and aliases on user networks, the rest
//!   forwarded upstream) and [`dns::bind_in_netns`] to serve it at 127.0.0.11 in a container.
//! - Privileged operations sit behind [`Netlink`] (rtnetlink, in-process) and [`Firewall`]
//!   (iptables commands), each with a recording fake.
#![forbid(unsafe_code)]

pub mod dns;
mod drain;
mod error;
pub mod firewall;
pub mod ipam;
pub mod ipnet;
mod manager;
pub mod netlink;
pub mod ports;
mod rtnl;

pub use error::{NetworkError, Result};
pub use firewall::{FakeFirewall, Firewall, IptablesCmd, Rule};
pub use ipam::AddressPool;
pub use ipnet::Ipv4Net;
pub use manager::{
    ConfigFrom, ContainerResolver, CreateNetwork, Endpoint, EndpointRequest, Ipam, IpamConfig,
    ManagerConfig, NetworkContainer, NetworkInfo, NetworkManager, OPT_BRIDGE_NAME, OPT_ENABLE_ICC,
};
pub use netlink::{FakeNetlink, Netlink, PeerConfig};
pub use ports::{parse_publish, PortBinding, Proto};
pub use rtnl::KernelNetlink;

#[cfg(test)]
mod manager_tests;
