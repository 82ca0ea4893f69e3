//! The engine's error kinds; the API layer maps them to HTTP status codes.

/// An engine operation's failure. The message is what the client sees.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// 404: no such container, image or exec.
    #[error("{0}")]
    NotFound(String),
    /// 409: name in use, container running, image in use.
    #[error("{0}")]
    Conflict(String),
    /// 400: bad parameter.
    #[error("{0}")]
    InvalidArgument(String),
    /// 403: the operation is not allowed on this object (a predefined network).
    #[error("{0}")]
    Forbidden(String),
    /// 413: a request body over the daemon's cap.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 503: a service this daemon does not run (swarm mode).
    #[error("{0}")]
    Unavailable(String),
    /// 304: the container was already in the requested state.
    #[error("{0}")]
    NotModified(String),
    /// 500: anything else.
    #[error("{0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, EngineError>;

impl From<berth_image::ImageError> for EngineError {
    fn from(e: berth_image::ImageError) -> Self {
        use berth_image::ImageError as I;
        match e {
            I::NotFound(m) => EngineError::NotFound(m),
            I::Conflict(m) => EngineError::Conflict(m),
            I::InvalidArgument(m) => EngineError::InvalidArgument(m),
            e @ I::Io { .. } => EngineError::Internal(e.to_string()),
        }
    }
}

impl From<std::io::Error> for EngineError {
    fn from(e: std::io::Error) -> Self {
        EngineError::Internal(e.to_string())
    }
}

impl From<berth_network::NetworkError> for EngineError {
    fn from(e: berth_network::NetworkError) -> Self {
        use berth_network::NetworkError as N;
        match e {
            N::NotFound(m) => EngineError::NotFound(m),
            N::Conflict(m) => EngineError::Conflict(m),
            N::InvalidArgument(m) => EngineError::InvalidArgument(m),
            N::Forbidden(m) => EngineError::Forbidden(m),
            other => EngineError::Internal(other.to_string()),
        }
    }
}
