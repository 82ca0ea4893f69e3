//! Published ports: choosing and checking the host ports of a container's port bindings
//! against each other, the ports already bound and the host.

use std::net::Ipv4Addr;

use super::Inner;
use crate::ports::PortBinding;
use crate::NetworkError;

impl Inner {
    fn used_ports(&self) -> Vec<PortBinding> {
        self.nets
            .values()
            .flat_map(|n| n.endpoints.values())
            .flat_map(|e| e.endpoint.ports.iter().copied())
            .collect()
    }

    pub(super) fn bind_ports(&self, req: &[PortBinding]) -> Result<Vec<PortBinding>, NetworkError> {
        let mut used = self.used_ports();
        let mut out = Vec::new();
        let clash = |used: &[PortBinding], p: &PortBinding| {
            used.iter().any(|u| {
                u.proto == p.proto
                    && u.host_port == p.host_port
                    && (u.host_ip.is_none() || p.host_ip.is_none() || u.host_ip == p.host_ip)
            })
        };
        for p in req {
            if p.container_port == 0 {
                return Err(NetworkError::InvalidArgument(format!(
                    "invalid container port 0 in {p}"
                )));
            }
            let ip = p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
            let mut b = *p;
            if p.host_port == 0 {
                let mut found = None;
                for _ in 0..64 {
                    let port = self.nl.bind_test(ip, 0, p.proto).map_err(|e| {
                        NetworkError::Conflict(format!("no free host port on {ip} for {p}: {e}"))
                    })?;
                    if !clash(
                        &used,
                        &PortBinding {
                            host_port: port,
                            ..b
                        },
                    ) {
                        found = Some(port);
                        break;
                    }
                }
                b.host_port = found.ok_or_else(|| {
                    NetworkError::Conflict(format!("no free host port on {ip} for {p}"))
                })?;
            } else {
                let taken = || {
                    NetworkError::Conflict(format!(
                        "Bind for {ip}:{} failed: port is already allocated",
                        p.host_port
                    ))
                };
                if clash(&used, &b) {
                    return Err(taken());
                }
                self.nl
                    .bind_test(ip, p.host_port, p.proto)
                    .map_err(|_| taken())?;
            }
            used.push(b);
            out.push(b);
        }
        Ok(out)
    }
}
