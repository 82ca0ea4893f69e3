//! Signed images, interoperable with the sigstore/cosign key-based format that skopeo and podman
//! use: cosign key pairs in their encrypted file format ([`keys`]), the "simple signing" payload
//! signed with ECDSA P-256 ([`payload`]), the `sha256-<hex>.sig` OCI manifest that carries the
//! signatures in a registry ([`attachment`]), the containers-policy.json policy with its
//! requirements and scopes ([`policy`]), and registries.d configuration of where signatures
//! live ([`registries_d`]). Pure logic: no network and no image store.

#![forbid(unsafe_code)]

pub mod attachment;
pub mod error;
pub mod keys;
pub mod payload;
pub mod policy;
pub mod reference;
pub mod registries_d;

pub use attachment::{SignatureLayer, SignatureManifest};
pub use error::{Result, TrustError};
pub use keys::{generate_key_pair, PublicKey, SigningKey};
pub use payload::{SignedPayload, VerifiedSignature};
pub use policy::{Decision, Policy, Requirement};
pub use reference::DockerReference;
pub use registries_d::RegistriesDir;
