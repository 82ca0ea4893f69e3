//! Published ports: the `-p [IP:][HOST:]CONTAINER[/tcp|udp]` syntax (with ranges) and the
//! [`PortBinding`] type the manager turns into DNAT rules.

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::NetworkError;

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// `tcp` / `udp`, as iptables and Docker spell it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Proto {
    type Err = NetworkError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" | "" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            other => Err(NetworkError::InvalidArgument(format!(
                "invalid protocol {other:?}: only tcp and udp are supported"
            ))),
        }
    }
}

/// One published port. `host_ip` `None` means all host addresses (`0.0.0.0`);
/// `host_port` 0 means "pick a free port" (the chosen one is reported back in the endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortBinding {
    /// Host address to publish on; `None` = every address.
    pub host_ip: Option<Ipv4Addr>,
    /// Host port; 0 = any free port.
    pub host_port: u16,
    /// Port inside the container.
    pub container_port: u16,
    /// Protocol.
    pub proto: Proto,
}

impl fmt::Display for PortBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}->{}/{}",
            self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            self.host_port,
            self.container_port,
            self.proto
        )
    }
}

fn parse_range(s: &str, what: &str, spec: &str) -> Result<(u16, u16), NetworkError> {
    let bad =
        || NetworkError::InvalidArgument(format!("invalid {what} {s:?} in port spec {spec:?}"));
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a, b),
        None => (s, s),
    };
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if b < a {
        return Err(bad());
    }
    Ok((a, b))
}

/// Parses one `-p` value: `80`, `8080:80`, `127.0.0.1:8080:80`, `127.0.0.1::80`,
/// `8000-8001:80-81/udp`. A host range must have as many ports as the container range.
pub fn parse_publish(spec: &str) -> Result<Vec<PortBinding>, NetworkError> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.parse::<Proto>()?),
        None => (spec, Proto::Tcp),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, ctr) = match parts.as_slice() {
        [c] => ("", "", *c),
        [h, c] => ("", *h, *c),
        [i, h, c] => (*i, *h, *c),
        _ => {
            return Err(NetworkError::InvalidArgument(format!(
                "invalid port spec {spec:?} (IPv6 host addresses are not supported)"
            )))
        }
    };
    let host_ip = match ip {
        "" | "0.0.0.0" => None,
        ip => Some(ip.parse::<Ipv4Addr>().map_err(|_| {
            NetworkError::InvalidArgument(format!("invalid host IP {ip:?} in port spec {spec:?}"))
        })?),
    };
    let (c0, c1) = parse_range(ctr, "container port", spec)?;
    if c0 == 0 {
        return Err(NetworkError::InvalidArgument(format!(
            "invalid container port 0 in port spec {spec:?}"
        )));
    }
    let hosts: Option<(u16, u16)> = if host.is_empty() {
        None
    } else {
        Some(parse_range(host, "host port", spec)?)
    };
    if let Some((h0, h1)) = hosts {
        if h1 - h0 != c1 - c0 {
            return Err(NetworkError::InvalidArgument(format!(
                "host and container port ranges differ in size in {spec:?}"
            )));
        }
        if h0 == 0 && h1 != h0 {
            return Err(NetworkError::InvalidArgument(format!(
                "invalid host port range in {spec:?}"
            )));
        }
    }
    Ok((c0..=c1)
        .map(|c| PortBinding {
            host_ip,
            host_port: hosts.map(|(h0, _)| h0 + (c - c0)).unwrap_or(0),
            container_port: c,
            proto,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> PortBinding {
        let v = parse_publish(s).unwrap();
        assert_eq!(v.len(), 1);
        v[0]
    }

    #[test]
    fn forms() {
        assert_eq!(one("80").host_port, 0);
        assert_eq!(one("80").container_port, 80);
        let b = one("8080:80");
        assert_eq!(
            (b.host_ip, b.host_port, b.container_port, b.proto),
            (None, 8080, 80, Proto::Tcp)
        );
        let b = one("127.0.0.1:8080:80/udp");
        assert_eq!(b.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(b.proto, Proto::Udp);
        let b = one("127.0.0.1::53/udp");
        assert_eq!((b.host_port, b.container_port), (0, 53));
        assert_eq!(one("0.0.0.0:1:2").host_ip, None);
        assert_eq!(b.to_string(), "127.0.0.1:0->53/udp");
    }

    #[test]
    fn ranges() {
        let v = parse_publish("8000-8002:80-82").unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!((v[2].host_port, v[2].container_port), (8002, 82));
        let v = parse_publish("80-81").unwrap();
        assert!(v.iter().all(|b| b.host_port == 0));
    }

    #[test]
    fn errors() {
        for bad in [
            "",
            "x",
            "0",
            "80/sctp",
            "1:2:3:4",
            "bad:1:2",
            "8000-8001:80",
            "90-80:1-11",
            "70000:80",
        ] {
            assert!(
                matches!(parse_publish(bad), Err(NetworkError::InvalidArgument(_))),
                "{bad}"
            );
        }
    }
}
