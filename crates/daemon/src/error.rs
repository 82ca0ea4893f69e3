//! The one place where engine errors become HTTP responses.

use berth_engine::EngineError;
use hyper::StatusCode;

use crate::body::{self, Resp};

/// Handlers fail with the engine's error kinds; the daemon adds its own with the same kinds.
pub type ApiResult = Result<Resp, EngineError>;

pub fn status_of(e: &EngineError) -> StatusCode {
    match e {
        EngineError::NotFound(_) => StatusCode::NOT_FOUND,
        EngineError::Conflict(_) => StatusCode::CONFLICT,
        EngineError::InvalidArgument(_) => StatusCode::BAD_REQUEST,
        EngineError::NotModified(_) => StatusCode::NOT_MODIFIED,
        EngineError::Forbidden(_) => StatusCode::FORBIDDEN,
        EngineError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        EngineError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        EngineError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `{"message": ...}` with the mapped status; 304 has no body.
pub fn error_response(e: &EngineError) -> Resp {
    let status = status_of(e);
    if status == StatusCode::NOT_MODIFIED {
        return body::empty(status);
    }
    body::json(
        status,
        &berth_api::ErrorResponse {
            message: e.to_string(),
        },
    )
}

pub fn bad_request(m: impl Into<String>) -> EngineError {
    EngineError::InvalidArgument(m.into())
}

pub fn page_not_found() -> EngineError {
    EngineError::NotFound("page not found".into())
}

/// What dockerd answers on every swarm endpoint when it is not in a swarm, which berth never
/// is: clients read the 503 as "no swarm" and go on (a 404 makes them fail).
pub fn not_a_swarm_manager() -> EngineError {
    EngineError::Unavailable(
        "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."
            .into(),
    )
}
