//! The distribution spec's error codes, each with its HTTP status, and the JSON error body
//! (`{"errors":[{"code":…,"message":…,"detail":…}]}`) every failure is answered with.

use hyper::StatusCode;

/// An error code from the OCI distribution spec (plus UNSUPPORTED, TOOMANYREQUESTS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    RangeInvalid,
    PaginationNumberInvalid,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Denied => "DENIED",
            Code::Unsupported => "UNSUPPORTED",
            Code::RangeInvalid => "BLOB_UPLOAD_INVALID",
            Code::PaginationNumberInvalid => "PAGINATION_NUMBER_INVALID",
        }
    }

    /// The status the spec gives this code.
    pub fn status(self) -> StatusCode {
        match self {
            Code::BlobUnknown
            | Code::BlobUploadUnknown
            | Code::ManifestUnknown
            | Code::NameUnknown => StatusCode::NOT_FOUND,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Denied => StatusCode::FORBIDDEN,
            Code::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            Code::RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
            Code::BlobUploadInvalid
            | Code::DigestInvalid
            | Code::ManifestBlobUnknown
            | Code::ManifestInvalid
            | Code::NameInvalid
            | Code::SizeInvalid
            | Code::PaginationNumberInvalid => StatusCode::BAD_REQUEST,
        }
    }
}

/// A failed request: the code, a message, an optional detail, and the status to answer with.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ApiError {
    pub code: Code,
    pub status: StatusCode,
    pub message: String,
    pub detail: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            status: code.status(),
            message: message.into(),
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> ApiError {
        self.detail = Some(detail);
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = status;
        self
    }

    /// A storage failure: 500, logged by the caller, described without paths' contents.
    pub fn internal(context: impl std::fmt::Display) -> ApiError {
        ApiError {
            code: Code::Unsupported,
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("internal error: {context}"),
            detail: None,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        let code = if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            "UNKNOWN"
        } else {
            self.code.as_str()
        };
        let mut e = serde_json::json!({"code": code, "message": self.message});
        if let Some(d) = &self.detail {
            e["detail"] = d.clone();
        }
        serde_json::to_vec(&serde_json::json!({ "errors": [e] })).unwrap_or_default()
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> ApiError {
        ApiError::internal(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_spec_shape() {
        let e = ApiError::new(Code::BlobUnknown, "blob unknown to registry")
            .with_detail(serde_json::json!({"digest": "sha256:x"}));
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["errors"][0]["code"], "BLOB_UNKNOWN");
        assert_eq!(v["errors"][0]["detail"]["digest"], "sha256:x");
        assert_eq!(Code::Unsupported.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            Code::RangeInvalid.status(),
            StatusCode::RANGE_NOT_SATISFIABLE
        );
    }
}
