//! The server's settings, from `berth registry serve` flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// `berth registry serve` flags.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub addr: SocketAddr,
    /// Storage root directory
    #[arg(long, default_value = "/var/lib/berth-registry")]
    pub root: PathBuf,
    /// Allow DELETE of manifests, tags and blobs (405 UNSUPPORTED otherwise)
    #[arg(long)]
    pub delete_enabled: bool,
    /// Log level (error, warn, info, debug, trace)
    #[arg(long, default_value = "info")]
    pub log_level: tracing::Level,
}

/// What a running registry needs.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    pub addr: SocketAddr,
    pub root: PathBuf,
    pub delete_enabled: bool,
    pub log_level: tracing::Level,
}

impl RegistryConfig {
    pub fn from_args(a: &ServeArgs) -> RegistryConfig {
        RegistryConfig {
            addr: a.addr,
            root: a.root.clone(),
            delete_enabled: a.delete_enabled,
            log_level: a.log_level,
        }
    }

    /// Defaults for tests: an ephemeral port on loopback.
    pub fn for_root(root: PathBuf) -> RegistryConfig {
        RegistryConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            root,
            delete_enabled: true,
            log_level: tracing::Level::INFO,
        }
    }
}
