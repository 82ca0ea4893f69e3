//! Who is on the other end of a connection: every request carries its [`Peer`] in its
//! extensions (set by `listeners`, read by authorization).

use std::net::SocketAddr;

use crate::tls::ClientCert;

/// Who is on the other end of a connection; every request carries it in its extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A unix-socket client, from `SO_PEERCRED`.
    Unix { uid: u32, gid: u32 },
    /// A tcp client in the clear (loopback only).
    Tcp { addr: SocketAddr },
    /// A TLS client; `cert` is its verified certificate (none without `--tlsverify`).
    Tls {
        addr: SocketAddr,
        cert: Option<ClientCert>,
    },
}
