//! The registry client's error kinds, worded as dockerd words them.

/// A registry operation's failure. The message is what the user sees.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The repository, tag, manifest or blob does not exist (HTTP 404 in the API).
    #[error("{0}")]
    NotFound(String),
    /// Credentials missing or wrong (`unauthorized: ...`).
    #[error("{0}")]
    Unauthorized(String),
    /// Access refused (`denied: ...`, `pull access denied for ...`).
    #[error("{0}")]
    Denied(String),
    /// Bad input: a malformed reference, platform, manifest, or an unsupported media type.
    #[error("{0}")]
    InvalidArgument(String),
    /// Content did not match its digest; nothing was stored.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    /// No manifest in an index matched the requested platform.
    #[error("no matching manifest for {0} in the manifest list entries")]
    NoMatchingPlatform(String),
    /// The registry refused an upload chunk's range (HTTP 416).
    #[error("{0}")]
    RangeNotSatisfiable(String),
    /// Connecting, TLS, or an unexpected answer.
    #[error("{0}")]
    Transport(String),
}

pub type Result<T> = std::result::Result<T, RegistryError>;

/// One entry of a registry's `{"errors":[{"code","message","detail"}]}` answer.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct ErrorEntry {
    pub code: String,
    pub message: String,
}

/// The first error of a registry error body, formatted as the distribution library's errcode
/// does: `manifest unknown: manifest unknown`.
pub fn describe_error_body(body: &[u8]) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    let e: Errors = serde_json::from_slice(body).ok()?;
    let first = e.errors.into_iter().next()?;
    let code_text = first.code.to_lowercase().replace('_', " ");
    let text = if first.message.is_empty() {
        code_text
    } else {
        format!("{code_text}: {}", first.message)
    };
    Some((first.code, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        let b = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        let (code, text) = describe_error_body(b).unwrap();
        assert_eq!(code, "MANIFEST_UNKNOWN");
        assert_eq!(text, "manifest unknown: manifest unknown");
        assert!(describe_error_body(b"not json").is_none());
        assert_eq!(
            RegistryError::NoMatchingPlatform("linux/amd64".into()).to_string(),
            "no matching manifest for linux/amd64 in the manifest list entries"
        );
    }
}
