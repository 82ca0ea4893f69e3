//! Which registries may be spoken to over plain HTTP, where per-registry certificates live,
//! mirrors of Docker Hub, when blobs are uploaded in chunks, and the mapping of a reference's
//! domain to its endpoint.

use std::net::IpAddr;
use std::path::PathBuf;

/// The daemon's registry settings (daemon.json `insecure-registries`, `registry-mirrors`).
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// `host[:port]` names or CIDRs (`10.0.0.0/8`) allowed over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Docker's certs.d layout: `<certs_dir>/HOST[:PORT]/{ca.crt,client.cert,client.key}`.
    pub certs_dir: PathBuf,
    /// Mirrors of docker.io, tried in order before it (`https://mirror.example`).
    pub mirrors: Vec<String>,
    /// Where docker.io is reached instead of `https://registry-1.docker.io`
    /// (`scheme://host[:port]`); for tests, which cannot reach Docker Hub.
    pub docker_io_endpoint: Option<String>,
    pub user_agent: String,
    /// When uploads go in chunks rather than in one request.
    pub upload: UploadPolicy,
}

/// Blobs larger than `chunked_threshold` bytes are uploaded in `PATCH`es of `chunk_size`
/// bytes (the distribution spec's chunked upload); smaller ones in one `PUT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadPolicy {
    pub chunked_threshold: u64,
    pub chunk_size: u64,
}

impl Default for UploadPolicy {
    fn default() -> Self {
        UploadPolicy {
            chunked_threshold: 32 << 20,
            chunk_size: 16 << 20,
        }
    }
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure_registries: Vec::new(),
            certs_dir: PathBuf::from("/etc/berth/certs.d"),
            mirrors: Vec::new(),
            docker_io_endpoint: None,
            user_agent: concat!("berth/", env!("CARGO_PKG_VERSION")).into(),
            upload: UploadPolicy::default(),
        }
    }
}

/// The registry host berth talks to for a reference's domain (Docker Hub's API lives on
/// `registry-1.docker.io`).
pub fn endpoint_host(domain: &str) -> &str {
    match domain {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        other => other,
    }
}

/// The host part of `host[:port]` (IPv6 in brackets allowed).
fn host_only(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host_port.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|c| c.is_ascii_digit()) => h,
        _ => host_port,
    }
}

fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl RegistryOptions {
    /// Whether `host` (`host[:port]`) may be spoken to over plain HTTP: loopback (127.0.0.0/8,
    /// ::1, `localhost`) as Docker allows, and the configured insecure registries.
    pub fn is_insecure(&self, host: &str) -> bool {
        let name = host_only(host);
        if name == "localhost" {
            return true;
        }
        let ip = name.parse::<IpAddr>().ok();
        if ip.is_some_and(|ip| ip.is_loopback()) {
            return true;
        }
        self.insecure_registries.iter().any(|entry| {
            let entry = entry
                .trim()
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .trim_end_matches('/');
            entry == host
                || (!entry.contains(':') && entry == name)
                || ip.is_some_and(|ip| in_cidr(ip, entry))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_rules() {
        let o = RegistryOptions {
            insecure_registries: vec!["myreg:5000".into(), "10.1.0.0/16".into(), "plain".into()],
            ..Default::default()
        };
        assert!(o.is_insecure("127.0.0.1:5000"));
        assert!(o.is_insecure("127.3.4.5"));
        assert!(o.is_insecure("localhost:443"));
        assert!(o.is_insecure("[::1]:5000"));
        assert!(o.is_insecure("myreg:5000"));
        assert!(!o.is_insecure("myreg:5001"));
        assert!(o.is_insecure("plain:1234"));
        assert!(o.is_insecure("10.1.2.3:80"));
        assert!(!o.is_insecure("10.2.0.1:80"));
        assert!(!o.is_insecure("quay.io"));
    }

    #[test]
    fn endpoints() {
        assert_eq!(endpoint_host("docker.io"), "registry-1.docker.io");
        assert_eq!(endpoint_host("localhost:5000"), "localhost:5000");
    }
}
