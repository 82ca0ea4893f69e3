//! berth-engine owns the daemon's core, with no HTTP in it: container records and their
//! lifecycle (create, start, stop, kill, restart, remove, wait, attach, logs, exec), the
//! translation of a container's configuration into an OCI runtime bundle with Docker's default
//! security, the shims that supervise containers, and the image operations on top of
//! [`berth_image::ImageStore`]. Every operation is typed, with a typed [`EngineError`].
#![deny(unsafe_code)]

pub mod changes;
pub mod config;
pub mod defaults;
pub mod error;
pub mod etc;
pub mod events;
pub mod lifecycle;
pub mod logs;
pub mod registry;
pub mod seccomp;
pub mod spec;
pub mod types;
pub mod user;
pub mod util;

pub mod build;
mod cgstats;
mod commit;
mod container;
mod copy;
mod disk;
mod engine;
#[allow(unsafe_code)] // tar extraction by descriptors (mknodat, fchownat, utimensat)
mod extract;
mod fschanges;
mod health;
mod inroot;
mod networks;
mod observe;
mod restart;
mod shim_client;
#[allow(unsafe_code)] // mounts and the loopback ioctl
mod sys;
mod taglog;
mod tarwrite;
pub mod update;
mod volumes;

pub use berth_image::layer_tar::LayerLimits;
pub use commit::CommitOptions;
pub use config::EngineConfig;
pub use copy::PathStat;
pub use engine::Engine;
pub use error::{EngineError, Result};
pub use fschanges::FsChange;
pub use observe::TopResponse;
pub use types::*;
pub use volumes::VolumeMount;
