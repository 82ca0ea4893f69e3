//! Address management: choosing a subnet for a new network from the address pools (avoiding
//! the host's routes and other networks), and allocating container addresses in a subnet.
//! Allocations are persisted by the manager as part of each network's record.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::ipnet::Ipv4Net;
use crate::NetworkError;

/// A `default-address-pools` entry: `base` split into subnets of prefix length `size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPool {
    /// The pool.
    pub base: Ipv4Net,
    /// Prefix length of the subnets taken from it.
    pub size: u8,
}

/// Docker's built-in pools: 172.17.0.0/16 ... 172.31.0.0/16, then 192.168.0.0/16 in /20s.
pub fn default_pools() -> Vec<AddressPool> {
    let mut v: Vec<AddressPool> = (17..=31)
        .map(|b| AddressPool {
            base: Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).expect("valid"),
            size: 16,
        })
        .collect();
    v.push(AddressPool {
        base: Ipv4Net::new(Ipv4Addr::new(192, 168, 0, 0), 16).expect("valid"),
        size: 20,
    });
    v
}

/// The first subnet of the pools that overlaps none of `taken` (host routes and the subnets
/// of existing networks).
pub fn choose_subnet(pools: &[AddressPool], taken: &[Ipv4Net]) -> Result<Ipv4Net, NetworkError> {
    pools
        .iter()
        .flat_map(|p| p.base.subnets(p.size))
        .find(|s| !taken.iter().any(|t| t.overlaps(s)))
        .ok_or_else(|| {
            NetworkError::Conflict(
                "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
            )
        })
}

/// Whether `ip` can be given to a container in `subnet` (not network/broadcast/gateway).
fn usable(subnet: Ipv4Net, gateway: Ipv4Addr, ip: Ipv4Addr) -> bool {
    subnet.contains(ip)
        && ip != gateway
        && (subnet.prefix_len() >= 31 || (ip != subnet.network() && ip != subnet.broadcast()))
}

/// Validates a gateway for `subnet` (inside it, not its network or broadcast address).
pub fn check_gateway(subnet: Ipv4Net, gateway: Ipv4Addr) -> Result<(), NetworkError> {
    if !subnet.contains(gateway)
        || (subnet.prefix_len() < 31
            && (gateway == subnet.network() || gateway == subnet.broadcast()))
    {
        return Err(NetworkError::InvalidArgument(format!(
            "invalid gateway {gateway}: not a host address of subnet {subnet}"
        )));
    }
    Ok(())
}

/// Allocates an address: the requested one if free (error otherwise), else the lowest free one
/// in `range` (or the whole subnet).
pub fn allocate(
    subnet: Ipv4Net,
    range: Option<Ipv4Net>,
    gateway: Ipv4Addr,
    used: &BTreeSet<Ipv4Addr>,
    requested: Option<Ipv4Addr>,
) -> Result<Ipv4Addr, NetworkError> {
    if let Some(ip) = requested {
        if !usable(subnet, gateway, ip) {
            return Err(NetworkError::InvalidArgument(format!(
                "invalid address {ip}: not a usable address of subnet {subnet}"
            )));
        }
        if used.contains(&ip) {
            return Err(NetworkError::Conflict(format!(
                "Address already in use: {ip}"
            )));
        }
        return Ok(ip);
    }
    let pool = range.unwrap_or(subnet);
    (0..pool.size())
        .filter_map(|n| pool.nth(n))
        .find(|ip| usable(subnet, gateway, *ip) && !used.contains(ip))
        .ok_or_else(|| {
            NetworkError::Conflict(format!(
                "no available IPv4 addresses on network subnet {subnet}"
            ))
        })
}

/// Docker's MAC for an IPv4 address: `02:42:` followed by the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn subnet_choice_skips_routes() {
        let pools = default_pools();
        assert_eq!(choose_subnet(&pools, &[]).unwrap(), n("172.17.0.0/16"));
        let taken = [n("172.17.0.0/16"), n("172.18.5.0/24"), n("10.0.0.0/8")];
        assert_eq!(choose_subnet(&pools, &taken).unwrap(), n("172.19.0.0/16"));
        let all: Vec<Ipv4Net> = vec![n("172.16.0.0/12"), n("192.168.0.0/17")];
        assert_eq!(choose_subnet(&pools, &all).unwrap(), n("192.168.128.0/20"));
        let everything = [n("0.0.0.0/0")];
        assert!(matches!(
            choose_subnet(&pools, &everything),
            Err(NetworkError::Conflict(_))
        ));
    }

    #[test]
    fn allocation() {
        let s = n("10.1.0.0/29");
        let gw = Ipv4Addr::new(10, 1, 0, 1);
        let mut used = BTreeSet::new();
        let a = allocate(s, None, gw, &used, None).unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 1, 0, 2));
        used.insert(a);
        assert_eq!(
            allocate(s, None, gw, &used, None).unwrap(),
            Ipv4Addr::new(10, 1, 0, 3)
        );
        for i in 3..=6 {
            used.insert(Ipv4Addr::new(10, 1, 0, i));
        }
        assert!(matches!(
            allocate(s, None, gw, &used, None),
            Err(NetworkError::Conflict(_))
        ));
        let used = BTreeSet::new();
        let r = allocate(s, Some(n("10.1.0.4/30")), gw, &used, None).unwrap();
        assert_eq!(r, Ipv4Addr::new(10, 1, 0, 4));
        assert!(matches!(
            allocate(s, None, gw, &used, Some(Ipv4Addr::new(10, 1, 0, 7))),
            Err(NetworkError::InvalidArgument(_))
        ));
        assert!(allocate(s, None, gw, &used, Some(gw)).is_err());
        assert!(allocate(s, None, gw, &used, Some(Ipv4Addr::new(10, 2, 0, 2))).is_err());
        assert_eq!(
            allocate(s, None, gw, &used, Some(Ipv4Addr::new(10, 1, 0, 5))).unwrap(),
            Ipv4Addr::new(10, 1, 0, 5)
        );
    }

    #[test]
    fn gateway_and_mac() {
        let s = n("10.1.0.0/24");
        assert!(check_gateway(s, Ipv4Addr::new(10, 1, 0, 254)).is_ok());
        assert!(check_gateway(s, Ipv4Addr::new(10, 1, 0, 0)).is_err());
        assert!(check_gateway(s, Ipv4Addr::new(10, 1, 0, 255)).is_err());
        assert!(check_gateway(s, Ipv4Addr::new(10, 1, 1, 1)).is_err());
        assert_eq!(mac_for(Ipv4Addr::new(172, 17, 0, 2)), "02:42:ac:11:00:02");
    }
}
