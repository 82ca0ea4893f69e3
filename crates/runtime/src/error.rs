//! The runtime's error type: one enum whose messages are what runc-compatible callers read
//! from `--log` (the shim reports the last error line).

use std::path::PathBuf;

/// Result with the runtime's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in the runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid input: bad flags, a malformed config.json, an unknown namespace type, ...
    #[error("{0}")]
    Invalid(String),
    /// The container does not exist in `--root`.
    #[error("container does not exist")]
    NotExist,
    /// A container with this ID already exists.
    #[error("container with id exists: {0}")]
    Exists(String),
    /// The container is not in a state that allows the operation.
    #[error("{0}")]
    State(String),
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The container's init (or exec'd process) reported a failure before execve.
    #[error("unable to start container process: {0}")]
    Start(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// seccomp filter construction failed.
    #[error("seccomp: {0}")]
    Seccomp(String),
    /// A cgroup operation failed.
    #[error("cgroup: {0}")]
    Cgroup(String),
    /// A hook failed.
    #[error("{0}")]
    Hook(String),
}

impl Error {
    /// A failed system call described by `what`, with errno taken from `e`.
    pub fn sys(what: impl Into<String>, e: impl Into<std::io::Error>) -> Self {
        Error::Sys {
            what: what.into(),
            source: e.into(),
        }
    }
    /// A failed file operation on `path`.
    pub fn io(path: impl Into<PathBuf>, e: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source: e,
        }
    }
    /// Invalid input.
    pub fn invalid(m: impl Into<String>) -> Self {
        Error::Invalid(m.into())
    }
}

impl From<nix::Error> for Error {
    fn from(e: nix::Error) -> Self {
        Error::sys("system call", std::io::Error::from(e))
    }
}
