//! A minimal IPv4 prefix type (`172.17.0.0/16`) with the arithmetic IPAM and subnet
//! selection need: containment, overlap, host enumeration. Serialises as its string form.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::NetworkError;

/// An IPv4 address with a prefix length. The address need not be the network address
/// (`172.17.0.1/16` is a valid interface address); use [`Ipv4Net::trunc`] for the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// Builds a prefix; `prefix` must be at most 32.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, NetworkError> {
        if prefix > 32 {
            return Err(NetworkError::InvalidArgument(format!(
                "invalid prefix length /{prefix} for {addr}"
            )));
        }
        Ok(Ipv4Net { addr, prefix })
    }

    /// The address part as given.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// The netmask as a number.
    pub fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The broadcast address (host bits set).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// The same prefix with host bits cleared.
    pub fn trunc(&self) -> Ipv4Net {
        Ipv4Net {
            addr: self.network(),
            prefix: self.prefix,
        }
    }

    /// Whether `ip` lies inside this prefix.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    /// Whether the two prefixes share at least one address.
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }

    /// Number of addresses in the prefix (2^(32-prefix)).
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// The `n`-th address of the prefix (0 is the network address), if inside.
    pub fn nth(&self, n: u64) -> Option<Ipv4Addr> {
        if n >= self.size() {
            return None;
        }
        Some(Ipv4Addr::from(u32::from(self.network()) + n as u32))
    }

    /// Splits this prefix into consecutive sub-prefixes of length `size` (for address pools).
    pub fn subnets(&self, size: u8) -> impl Iterator<Item = Ipv4Net> {
        let base = u64::from(u32::from(self.network()));
        let step = if size >= self.prefix && size <= 32 {
            1u64 << (32 - u32::from(size))
        } else {
            0
        };
        let count = self.size().checked_div(step).unwrap_or(0);
        (0..count).map(move |i| Ipv4Net {
            addr: Ipv4Addr::from((base + i * step) as u32),
            prefix: size,
        })
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = NetworkError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || NetworkError::InvalidArgument(format!("invalid IPv4 CIDR {s:?}"));
        let (a, p) = s.trim().split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        Ipv4Net::new(addr, prefix).map_err(|_| bad())
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_arith() {
        let n: Ipv4Net = "172.17.0.1/16".parse().unwrap();
        assert_eq!(n.network(), Ipv4Addr::new(172, 17, 0, 0));
        assert_eq!(n.broadcast(), Ipv4Addr::new(172, 17, 255, 255));
        assert!(n.contains(Ipv4Addr::new(172, 17, 3, 4)));
        assert!(!n.contains(Ipv4Addr::new(172, 18, 0, 1)));
        assert_eq!(n.trunc().to_string(), "172.17.0.0/16");
        assert_eq!(n.size(), 65536);
        assert_eq!(n.nth(2), Some(Ipv4Addr::new(172, 17, 0, 2)));
        assert!("1.2.3.4".parse::<Ipv4Net>().is_err());
        assert!("1.2.3.4/33".parse::<Ipv4Net>().is_err());
        assert!("x/3".parse::<Ipv4Net>().is_err());
    }

    #[test]
    fn overlap_and_subnets() {
        let a: Ipv4Net = "10.0.0.0/8".parse().unwrap();
        let b: Ipv4Net = "10.1.0.0/16".parse().unwrap();
        let c: Ipv4Net = "192.168.0.0/16".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        let pool: Ipv4Net = "172.17.0.0/12".parse().unwrap();
        let v: Vec<String> = pool.subnets(16).take(3).map(|n| n.to_string()).collect();
        assert_eq!(v, ["172.16.0.0/16", "172.17.0.0/16", "172.18.0.0/16"]);
        assert_eq!(pool.subnets(16).count(), 16);
    }
}
