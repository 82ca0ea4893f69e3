//! berth-build owns the Dockerfile front end of `berth build`, everything that needs no engine:
//!
//! - [`dockerfile`]: the parser (directives, continuations, heredocs, every instruction, Docker's
//!   error wording with line numbers);
//! - [`shell`]: variable substitution with the Dockerfile rules;
//! - [`ignore`]: `.dockerignore` matching and the list of context files a build keeps;
//! - [`stages`]: the stage graph (names, indexes, `--target`, dependencies, parallel levels);
//! - [`backend`]: the [`backend::BuildBackend`] trait the engine implements (resolve images,
//!   run a command and commit, copy files as a layer, commit metadata, cache entries);
//! - [`driver`]: runs a Dockerfile over a backend as dockerd's classic builder does: image
//!   config changes, history entries, cache keys, ONBUILD triggers and progress messages;
//! - [`secrets`]: `--secret` specs and the header that carries secret values to the daemon.
#![forbid(unsafe_code)]

pub mod backend;
pub mod dockerfile;
pub mod driver;
pub mod error;
pub mod gofmt;
pub mod ignore;
pub mod mounts;
pub mod secrets;
pub mod shell;
pub mod stages;

pub use backend::BuildBackend;
pub use driver::{build, BuildOptions, BuildResult, Progress};
pub use error::{BackendError, BuildError, ParseError};
