//! The crate's error type; the engine maps the kinds to HTTP statuses.

use std::io;

/// Everything that can go wrong in `berth-network`.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// No such network / endpoint.
    #[error("{0}")]
    NotFound(String),
    /// A name, subnet, port or endpoint is already in use, or the network is still in use.
    #[error("{0}")]
    Conflict(String),
    /// The request itself is malformed (bad CIDR, gateway outside the subnet, bad port spec...).
    #[error("{0}")]
    InvalidArgument(String),
    /// The operation is not allowed on this object (removing the predefined `bridge` network).
    #[error("{0}")]
    Forbidden(String),
    /// A host command (`ip`, `iptables`, `nsenter`) failed.
    #[error("`{cmd}` failed: {stderr}")]
    Command {
        /// The command line that ran.
        cmd: String,
        /// What it printed on stderr (or why it could not run).
        stderr: String,
    },
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A state file could not be parsed.
    #[error("corrupt network state {path}: {msg}")]
    State {
        /// The file.
        path: String,
        /// The parse error.
        msg: String,
    },
}

impl NetworkError {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        NetworkError::Io {
            what: what.into(),
            source,
        }
    }
}

/// Shorthand result type.
pub type Result<T, E = NetworkError> = std::result::Result<T, E>;
