//! berth-engine owns the daemon's core, with no HTTP in it: container records and their
//! lifecycle (create, start, stop, kill, restart, remove, wait, attach, logs, exec), the
//! translation of a container's configuration into an OCI runtime bundle with Docker's default
//! security, the shims that supervise containers, and the image operations on top of
//! [`berth_image::ImageStore`]. Every operation is typed, with a typed [`EngineError`].
#![forbid(unsafe_code)]

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
mod build_cache;
mod cgstats;
mod commit;
mod container;
mod context;
mod control;
mod copy;
mod create;
mod disk;
mod engine;
#[cfg(test)]
mod engine_tests;
mod exec;
mod exit;
mod extract;
#[cfg(test)]
mod fakes;
mod fschanges;
mod health;
mod host;
mod images;
mod inflight;
mod inroot;
mod io;
mod networks;
mod observe;
mod oci_runtime;
mod query;
mod recovery;
mod remove;
mod restart;
mod shim_client;
mod start;
mod sys;
mod system;
mod taglog;
mod tarwrite;
pub mod update;
mod volumes;

pub use berth_image::layer_tar::LayerLimits;
pub use commit::CommitOptions;
pub use config::EngineConfig;
pub use container::VolumeMount;
pub use copy::PathStat;
pub use engine::Engine;
pub use error::{EngineError, Result};
pub use fschanges::FsChange;
pub use observe::TopResponse;
pub use types::*;
