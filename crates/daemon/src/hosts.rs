//! `-H` / `hosts`: where the daemon listens, parsed as dockerd parses it (`unix://PATH`,
//! `tcp://HOST:PORT`, `HOST:PORT`, `fd://`, `fd://NAME-OR-NUMBER`).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

pub const DEFAULT_UNIX_SOCKET: &str = "/run/berth/berth.sock";
/// dockerd's default ports: 2375 in the clear, 2376 with TLS.
pub const DEFAULT_HTTP_PORT: u16 = 2375;
pub const DEFAULT_TLS_PORT: u16 = 2376;

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
    /// `host:port` (the host a name or an address; IPv6 in brackets).
    Tcp {
        host: String,
        port: u16,
    },
    /// Sockets passed by systemd: all of them (`None`), or one by number or name.
    Fd(Option<String>),
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Unix(p) => write!(f, "unix://{}", p.display()),
            Host::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            Host::Fd(None) => write!(f, "fd://"),
            Host::Fd(Some(n)) => write!(f, "fd://{n}"),
        }
    }
}

/// Parses one `-H` value; `tls` picks the default port (2376 with TLS, 2375 without).
pub fn parse_host(s: &str, tls: bool) -> Result<Host, String> {
    let s = s.trim();
    if let Some(p) = s.strip_prefix("unix://") {
        let p = if p.is_empty() { DEFAULT_UNIX_SOCKET } else { p };
        return Ok(Host::Unix(PathBuf::from(p)));
    }
    if s.starts_with('/') {
        return Ok(Host::Unix(PathBuf::from(s)));
    }
    if let Some(name) = s.strip_prefix("fd://") {
        return Ok(Host::Fd(
            (!name.is_empty() && name != "*").then(|| name.to_string()),
        ));
    }
    let addr = if let Some(a) = s.strip_prefix("tcp://") {
        a
    } else if s.contains("://") {
        return Err(format!("Invalid bind address format: {s}"));
    } else {
        s
    };
    parse_tcp(addr, tls).map_err(|e| format!("Invalid bind address format: {s}: {e}"))
}

fn parse_tcp(addr: &str, tls: bool) -> Result<Host, String> {
    let default_port = if tls {
        DEFAULT_TLS_PORT
    } else {
        DEFAULT_HTTP_PORT
    };
    if addr.contains('/') {
        return Err("a tcp address has no path".into());
    }
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address needs its closing ']'")?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err("unexpected text after the IPv6 address".into()),
        };
        (format!("[{h}]"), port)
    } else {
        match addr.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err("an IPv6 address must be in brackets".into())
            }
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (addr.to_string(), None),
        }
    };
    let port = match port {
        None | Some("") => default_port,
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("invalid port {p:?}"))?,
    };
    let host = if host.is_empty() {
        "127.0.0.1".to_string()
    } else {
        host
    };
    Ok(Host::Tcp { host, port })
}

/// The addresses `host:port` resolves to.
pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = (bare, port)
        .to_socket_addrs()
        .map_err(|e| format!("resolving {host}: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("resolving {host}: no address"));
    }
    Ok(addrs)
}

/// The refusal of a clear-text listener that is not on loopback (as dockerd 27+).
pub fn plain_tcp_refusal(shown: &str) -> String {
    format!(
        "refusing to listen on {shown} without TLS: API is accessible on http://{} without \
         encryption. Access to the remote API is equivalent to root access on the host. \
         Use --tlsverify with --tlscacert, --tlscert and --tlskey (or listen on a loopback \
         address). See https://docs.docker.com/go/attack-surface/",
        shown.trim_start_matches("tcp://")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(h: &str, p: u16) -> Host {
        Host::Tcp {
            host: h.into(),
            port: p,
        }
    }

    #[test]
    fn unix_and_fd() {
        assert_eq!(
            parse_host("unix:///tmp/s.sock", false).unwrap(),
            Host::Unix("/tmp/s.sock".into())
        );
        assert_eq!(
            parse_host("unix://", false).unwrap(),
            Host::Unix(DEFAULT_UNIX_SOCKET.into())
        );
        assert_eq!(parse_host("fd://", false).unwrap(), Host::Fd(None));
        assert_eq!(parse_host("fd://*", false).unwrap(), Host::Fd(None));
        assert_eq!(
            parse_host("fd://3", false).unwrap(),
            Host::Fd(Some("3".into()))
        );
    }

    #[test]
    fn tcp_forms_and_default_ports() {
        assert_eq!(
            parse_host("tcp://0.0.0.0:2376", true).unwrap(),
            tcp("0.0.0.0", 2376)
        );
        assert_eq!(parse_host("tcp://", true).unwrap(), tcp("127.0.0.1", 2376));
        assert_eq!(parse_host("tcp://", false).unwrap(), tcp("127.0.0.1", 2375));
        assert_eq!(parse_host(":4000", false).unwrap(), tcp("127.0.0.1", 4000));
        assert_eq!(
            parse_host("tcp://localhost", false).unwrap(),
            tcp("localhost", 2375)
        );
        assert_eq!(parse_host("tcp://[::1]:9", false).unwrap(), tcp("[::1]", 9));
        assert!(parse_host("tcp://::1:9", false).is_err());
        assert!(parse_host("tcp://h:99999", false).is_err());
        assert!(parse_host("tcp://h:2/x", false).is_err());
        assert!(parse_host("ssh://h", false).is_err());
    }

    #[test]
    fn resolving() {
        assert_eq!(
            resolve("[::1]", 5).unwrap(),
            vec!["[::1]:5".parse().unwrap()]
        );
        assert!(resolve("localhost", 5)
            .unwrap()
            .iter()
            .all(|a| a.ip().is_loopback()));
    }
}
