//! berth-volume owns named volumes with Docker's `local` driver: their records under
//! `<data-root>/volumes/<name>/` (`volume.json` beside the `_data` directory, as Docker lays
//! them out), name and option validation with Docker's wording, and mounting: a volume created
//! with `-o type=… -o device=… -o o=…` is mounted on its `_data` when its first user needs it
//! and unmounted when the last one lets go. Which containers use a volume is the engine's
//! business; this crate only counts mount users.
#![forbid(unsafe_code)]

mod mounter;
mod store;

pub use mounter::{Mounter, SystemMounter};
pub use store::{disk_usage, validate_name, VolumeRecord, VolumeStore, ANONYMOUS_LABEL};

/// What can go wrong with a volume, worded as Docker words it.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("get {0}: no such volume")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, VolumeError>;

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> VolumeError {
    let context = context.into();
    move |source| VolumeError::Io { context, source }
}
