//! The HTTP API: dispatch of routes to the blob, upload, manifest and listing handlers, and
//! the response helpers they share. Every response carries `Docker-Distribution-API-Version`.

mod blobs;
mod listing;
mod manifests;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use crate::error::{ApiError, Code};
use crate::names::valid_repository;
use crate::router::{query, route, Route};
use crate::Registry;

pub type Body = BoxBody<Bytes, std::io::Error>;
pub type Resp = Response<Body>;

pub fn empty_body() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub fn full_body(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A response with `status` and no body.
pub fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(empty_body());
    *r.status_mut() = status;
    r
}

/// A whole body with its type and length.
pub fn full(status: StatusCode, content_type: &str, data: impl Into<Bytes>) -> Resp {
    let data = data.into();
    let len = data.len();
    let mut r = Response::new(full_body(data));
    *r.status_mut() = status;
    set(&mut r, CONTENT_TYPE, content_type);
    set(&mut r, CONTENT_LENGTH, &len.to_string());
    r
}

/// Sets a header (values the registry builds are always valid; an invalid one is dropped).
pub fn set(r: &mut Resp, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

pub fn set_named(r: &mut Resp, name: &'static str, value: &str) {
    set(r, HeaderName::from_static(name), value);
}

pub fn error_response(e: &ApiError, head: bool) -> Resp {
    let body = e.body();
    let mut r = if head {
        let mut r = empty(e.status);
        set(&mut r, CONTENT_LENGTH, &body.len().to_string());
        set(&mut r, CONTENT_TYPE, "application/json");
        r
    } else {
        full(e.status, "application/json", body)
    };
    *r.status_mut() = e.status;
    r
}

pub fn header<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Checks a repository name from the path.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    if valid_repository(name) {
        Ok(())
    } else {
        Err(ApiError::new(Code::NameInvalid, "invalid repository name")
            .with_detail(serde_json::json!({ "name": name })))
    }
}

/// Runs blocking store work on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

fn method_not_allowed() -> ApiError {
    ApiError::new(Code::Unsupported, "the operation is unsupported")
}

/// Answers one request.
pub async fn handle(reg: Arc<Registry>, req: Request<Incoming>) -> Resp {
    let head = req.method() == Method::HEAD;
    let mut resp = match dispatch(&reg, req).await {
        Ok(r) => r,
        Err(e) => {
            if e.status == StatusCode::INTERNAL_SERVER_ERROR {
                tracing::error!("{}", e.message);
            }
            error_response(&e, head)
        }
    };
    set_named(&mut resp, "docker-distribution-api-version", "registry/2.0");
    resp
}

/// `GET /token`: the token endpoint of Docker token authentication.
fn token_endpoint(reg: &Registry, req: &Request<Incoming>) -> Option<Resp> {
    let t = reg.token.as_ref()?;
    if req.uri().path() != "/token" {
        return None;
    }
    let q = query(req.uri().query());
    let scopes: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(String::from))
        .collect();
    Some(match t.issue(header(req, "authorization"), &scopes) {
        Ok(body) => full(
            StatusCode::OK,
            "application/json",
            serde_json::to_vec(&body).unwrap_or_default(),
        ),
        Err(_) => {
            let e = ApiError::new(Code::Unauthorized, "invalid username or password");
            let mut r = error_response(&e, false);
            set_named(
                &mut r,
                "www-authenticate",
                "Basic realm=\"berth-registry token\"",
            );
            r
        }
    })
}

async fn dispatch(reg: &Arc<Registry>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    if let Some(r) = token_endpoint(reg, &req) {
        return Ok(r);
    }
    if let Some(r) = reg.authorize(&req) {
        return Ok(r);
    }
    if reg.proxy.is_some()
        && matches!(
            *req.method(),
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        )
    {
        return Err(ApiError::new(
            Code::Unsupported,
            "this registry is a pull-through cache: it takes no pushes or deletes",
        ));
    }
    let Some(route) = route(req.uri().path()) else {
        return Err(ApiError::new(Code::NameUnknown, "not an API endpoint")
            .with_status(StatusCode::NOT_FOUND));
    };
    let q = query(req.uri().query());
    let m = req.method().clone();
    match route {
        Route::Base => match m {
            Method::GET | Method::HEAD => Ok(full(StatusCode::OK, "application/json", "{}")),
            _ => Err(method_not_allowed()),
        },
        Route::Catalog => match m {
            Method::GET => listing::catalog(reg, &q).await,
            _ => Err(method_not_allowed()),
        },
        Route::Tags { name } => {
            check_name(&name)?;
            match m {
                Method::GET => listing::tags(reg, &name, &q).await,
                _ => Err(method_not_allowed()),
            }
        }
        Route::Referrers { name, digest } => {
            check_name(&name)?;
            match m {
                Method::GET => listing::referrers(reg, &name, &digest, &q).await,
                _ => Err(method_not_allowed()),
            }
        }
        Route::Manifest { name, reference } => {
            check_name(&name)?;
            match m {
                Method::GET => manifests::get(reg, &name, &reference, false).await,
                Method::HEAD => manifests::get(reg, &name, &reference, true).await,
                Method::PUT => manifests::put(reg, &name, &reference, req).await,
                Method::DELETE => manifests::delete(reg, &name, &reference).await,
                _ => Err(method_not_allowed()),
            }
        }
        Route::Blob { name, digest } => {
            check_name(&name)?;
            match m {
                Method::GET => blobs::get(reg, &name, &digest, &req, false).await,
                Method::HEAD => blobs::get(reg, &name, &digest, &req, true).await,
                Method::DELETE => blobs::delete(reg, &name, &digest).await,
                _ => Err(method_not_allowed()),
            }
        }
        Route::UploadStart { name } => {
            check_name(&name)?;
            match m {
                Method::POST => blobs::start_upload(reg, &name, &q, req).await,
                _ => Err(method_not_allowed()),
            }
        }
        Route::Upload { name, id } => {
            check_name(&name)?;
            match m {
                Method::GET => blobs::upload_status(reg, &name, &id).await,
                Method::PATCH => blobs::patch_upload(reg, &name, &id, req).await,
                Method::PUT => blobs::finish_upload(reg, &name, &id, &q, req).await,
                Method::DELETE => blobs::cancel_upload(reg, &name, &id).await,
                _ => Err(method_not_allowed()),
            }
        }
    }
}
