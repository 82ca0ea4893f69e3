//! berth-api owns the wire types of the Docker Engine API (v1.24–v1.50) that berth's daemon
//! serves and its CLI consumes: container, image, exec and system objects, with Docker's JSON
//! field names. No behaviour lives here, only data and (de)serialisation.

#![forbid(unsafe_code)]

pub mod container;
pub mod event;
pub mod exec;
pub mod image;
pub mod network;
pub mod system;
pub mod taglog;
pub mod volume;

pub use container::*;
pub use event::*;
pub use exec::*;
pub use image::*;
pub use network::*;
pub use system::*;
pub use taglog::*;
pub use volume::*;

use serde::{Deserialize, Serialize};

/// The newest Engine API version berth speaks.
pub const API_VERSION: &str = "1.50";
/// The oldest Engine API version berth accepts.
pub const MIN_API_VERSION: &str = "1.24";

/// `{"message": ...}`: the body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorResponse {
    pub message: String,
}

/// Deserialises `null` as the type's default (Docker clients send `null` for empty lists/maps).
pub fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
