//! berth-registry: a client of the OCI distribution spec / Docker registry v2 protocol.
//!
//! It owns the wire side of pulling and pushing: manifests (Docker schema2, OCI, manifest
//! lists and OCI indexes, with platform selection), blobs (streaming GET verified against the
//! digest while it streams, HEAD, monolithic and chunked uploads, cross-repository mount),
//! authentication (Basic, and the Bearer token flow of `WWW-Authenticate` with tokens renewed
//! as they expire), TLS with the system roots plus
//! Docker's `certs.d` layout, and plain HTTP for loopback and insecure registries. It knows
//! nothing of the image store; the engine drives it.
#![forbid(unsafe_code)]

pub mod auth;
pub mod client;
pub mod endpoints;
pub mod error;
#[cfg(test)]
mod fake_registry;
pub mod manifest;
pub mod options;
pub mod pipe;
pub mod tls;
pub mod token;
pub mod upload;
pub mod verify;

pub use auth::Credentials;
pub use client::{FetchedManifest, RegistryClient};
pub use endpoints::Endpoint;
pub use error::{RegistryError, Result};
pub use manifest::{Descriptor, ImageIndex, ImageManifest, Manifest, Platform};
pub use options::{RegistryOptions, UploadPolicy};
pub use verify::VerifyingReader;
