//! berth-engine owns the daemon's core, with no HTTP in it: container records and their
//! lifecycle (create, start, stop, kill, restart, remove, wait, attach, logs, exec), the
//! translation of a container's configuration into an OCI runtime bundle with Docker's default
//! security, the shims that supervise containers, and the image operations on top of
//! [`berth_image::ImageStore`]. Every operation is typed, with a typed [`EngineError`].

pub mod changes;
pub mod config;
pub mod defaults;
pub mod error;
pub mod etc;
pub mod logs;
pub mod seccomp;
pub mod spec;
pub mod types;
pub mod user;
pub mod util;

mod container;
mod engine;
mod networks;
mod shim_client;
mod sys;

pub use config::EngineConfig;
pub use engine::Engine;
pub use error::{EngineError, Result};
pub use types::*;
