//! The trust crate's error kinds. The message is what the user sees.

/// Why a key, signature, policy or configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A key file or key data that cannot be used (format, passphrase, curve).
    #[error("{0}")]
    Key(String),
    /// A signature that does not verify or whose payload does not match the image.
    #[error("{0}")]
    Signature(String),
    /// A policy file that is malformed or asks for what berth cannot apply.
    #[error("invalid signature policy: {0}")]
    Policy(String),
    /// The policy refuses the image.
    #[error("{0}")]
    Rejected(String),
    /// A registries.d file that is malformed or asks for what berth cannot apply.
    #[error("invalid registries.d configuration: {0}")]
    RegistriesD(String),
    /// A malformed docker reference.
    #[error("invalid reference {0:?}")]
    Reference(String),
    /// Reading a file.
    #[error("{0}")]
    Io(String),
}

pub type Result<T> = std::result::Result<T, TrustError>;
