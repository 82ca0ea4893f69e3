//! Blobs (`GET`/`HEAD` with `Range`, `DELETE`) and uploads (`POST` with `?digest=` or
//! `?mount=&from=`, chunked `PATCH`, `PUT ?digest=`, status and cancel).

use std::sync::Arc;

use futures_util::TryStreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use hyper::{Request, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::{blocking, empty, header, set, set_named, Resp};
use crate::digest::Digest;
use crate::error::{ApiError, Code};
use crate::proxy::Upstream;
use crate::router::param;
use crate::uploads::parse_content_range;
use crate::Registry;

fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    Digest::parse(s).map_err(|e| {
        ApiError::new(Code::DigestInvalid, e.to_string())
            .with_detail(serde_json::json!({ "digest": s }))
    })
}

fn blob_unknown(d: &str) -> ApiError {
    ApiError::new(Code::BlobUnknown, "blob unknown to registry")
        .with_detail(serde_json::json!({ "digest": d }))
}

/// A `Range: bytes=A-B` / `bytes=A-` / `bytes=-N` request against `size` bytes.
fn parse_range(v: &str, size: u64) -> Option<(u64, u64)> {
    let spec = v.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (size.checked_sub(n.min(size))?, size.checked_sub(1)?)
        }
        (a, "") => (a.parse().ok()?, size.checked_sub(1)?),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.min(size.checked_sub(1)?),
        ),
    };
    (start <= end && end < size).then_some((start, end))
}

pub async fn get(
    reg: &Arc<Registry>,
    name: &str,
    digest: &str,
    req: &Request<Incoming>,
    head: bool,
) -> Result<Resp, ApiError> {
    let d = parse_digest(digest)?;
    if reg.proxy.is_some() && reg.store.repo_blob_size(name, &d)?.is_none() {
        let reg2 = reg.clone();
        let (n, dd) = (name.to_string(), d.clone());
        let got = blocking(move || {
            let p = reg2
                .proxy
                .as_ref()
                .ok_or_else(|| ApiError::internal("no proxy"))?;
            Ok(p.fetch_blob(&reg2.store, &n, &dd))
        })
        .await?;
        match got {
            Upstream::Found(_) | Upstream::NotFound => {}
            Upstream::Failed(why) => tracing::warn!("upstream blob {name}@{digest}: {why}"),
        }
    }
    let store = reg.store.clone();
    let (n, dd) = (name.to_string(), d.clone());
    let size = blocking(move || {
        let s = store.repo_blob_size(&n, &dd)?;
        if head && s.is_some() {
            // A client that saw the blob may reference it next: keep it out of gc's grace.
            store.touch_blob(&dd);
        }
        Ok(s)
    })
    .await?
    .ok_or_else(|| blob_unknown(digest))?;
    let range = match header(req, "range") {
        Some(v) => Some(parse_range(v, size).ok_or_else(|| {
            ApiError::new(Code::RangeInvalid, format!("range {v} not satisfiable"))
                .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
        })?),
        None => None,
    };
    let (status, start, len) = match range {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        None => (StatusCode::OK, 0, size),
    };
    let mut r = if head {
        empty(status)
    } else {
        let mut f = tokio::fs::File::open(reg.store.blob_path(&d))
            .await
            .map_err(|_| blob_unknown(digest))?;
        if start > 0 {
            f.seek(std::io::SeekFrom::Start(start)).await?;
        }
        let stream = ReaderStream::with_capacity(f.take(len), 256 * 1024).map_ok(Frame::data);
        reg.metrics.add_bytes_out(len);
        let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
        *r.status_mut() = status;
        r
    };
    set(&mut r, CONTENT_LENGTH, &len.to_string());
    set(&mut r, CONTENT_TYPE, "application/octet-stream");
    set_named(&mut r, "docker-content-digest", digest);
    set_named(&mut r, "accept-ranges", "bytes");
    set_named(&mut r, "etag", &format!("\"{digest}\""));
    if let Some((a, b)) = range {
        set_named(&mut r, "content-range", &format!("bytes {a}-{b}/{size}"));
    }
    Ok(r)
}

pub async fn delete(reg: &Arc<Registry>, name: &str, digest: &str) -> Result<Resp, ApiError> {
    if !reg.config.delete_enabled {
        return Err(ApiError::new(
            Code::Unsupported,
            "deletion is disabled on this registry",
        ));
    }
    let d = parse_digest(digest)?;
    let store = reg.store.clone();
    let n = name.to_string();
    if !blocking(move || Ok(store.unlink_blob(&n, &d)?)).await? {
        return Err(blob_unknown(digest));
    }
    let mut r = empty(StatusCode::ACCEPTED);
    set(&mut r, CONTENT_LENGTH, "0");
    Ok(r)
}

fn upload_location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

fn upload_response(status: StatusCode, name: &str, id: &str, size: u64) -> Resp {
    let mut r = empty(status);
    set(&mut r, LOCATION, &upload_location(name, id));
    set(&mut r, CONTENT_LENGTH, "0");
    set_named(&mut r, "range", &format!("0-{}", size.saturating_sub(1)));
    set_named(&mut r, "docker-upload-uuid", id);
    r
}

fn created(name: &str, d: &Digest) -> Resp {
    let mut r = empty(StatusCode::CREATED);
    set(&mut r, LOCATION, &format!("/v2/{name}/blobs/{d}"));
    set(&mut r, CONTENT_LENGTH, "0");
    set_named(&mut r, "docker-content-digest", &d.to_string());
    r
}

pub async fn start_upload(
    reg: &Arc<Registry>,
    name: &str,
    q: &[(String, String)],
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    if let (Some(mount), Some(from)) = (param(q, "mount"), param(q, "from")) {
        // Cross-repository mount; anything that does not work falls back to an upload.
        if let (Ok(d), true) = (Digest::parse(mount), crate::names::valid_repository(from)) {
            if reg.allowed_pull(&req, from) {
                let store = reg.store.clone();
                let (n, f, dd) = (name.to_string(), from.to_string(), d.clone());
                let mounted = blocking(move || {
                    let _lock = store.gc_lock(false)?;
                    if store.repo_blob_size(&f, &dd)?.is_none() {
                        return Ok(false);
                    }
                    store.touch_blob(&dd);
                    store.link_blob(&n, &dd)?;
                    Ok(true)
                })
                .await?;
                if mounted {
                    return Ok(created(name, &d));
                }
            }
        }
    }
    if let Some(digest) = param(q, "digest") {
        let d = parse_digest(digest)?;
        let _guard = reg.inflight.enter();
        let id = reg.uploads.create(name).await?;
        let started = std::time::Instant::now();
        let size = reg.uploads.finish(name, &id, &d, req.into_body()).await?;
        reg.metrics.upload_done(size, started.elapsed());
        return Ok(created(name, &d));
    }
    let id = reg.uploads.create(name).await?;
    Ok(upload_response(StatusCode::ACCEPTED, name, &id, 0))
}

pub async fn upload_status(reg: &Arc<Registry>, name: &str, id: &str) -> Result<Resp, ApiError> {
    let size = reg.uploads.size(name, id).await?;
    Ok(upload_response(StatusCode::NO_CONTENT, name, id, size))
}

pub async fn patch_upload(
    reg: &Arc<Registry>,
    name: &str,
    id: &str,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let range = match header(&req, "content-range") {
        Some(v) => Some(parse_content_range(v).ok_or_else(|| {
            ApiError::new(Code::RangeInvalid, format!("invalid Content-Range {v}"))
        })?),
        None => None,
    };
    let _guard = reg.inflight.enter();
    let size = reg.uploads.append(name, id, range, req.into_body()).await?;
    Ok(upload_response(StatusCode::ACCEPTED, name, id, size))
}

pub async fn finish_upload(
    reg: &Arc<Registry>,
    name: &str,
    id: &str,
    q: &[(String, String)],
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let Some(digest) = param(q, "digest") else {
        // Still a known upload? Then the digest is what is missing.
        reg.uploads.size(name, id).await?;
        return Err(ApiError::new(
            Code::DigestInvalid,
            "the digest parameter is required",
        ));
    };
    let d = parse_digest(digest)?;
    let _guard = reg.inflight.enter();
    let started = std::time::Instant::now();
    let size = reg.uploads.finish(name, id, &d, req.into_body()).await?;
    reg.metrics.upload_done(size, started.elapsed());
    Ok(created(name, &d))
}

pub async fn cancel_upload(reg: &Arc<Registry>, name: &str, id: &str) -> Result<Resp, ApiError> {
    reg.uploads.cancel(name, id).await?;
    let mut r = empty(StatusCode::NO_CONTENT);
    set(&mut r, CONTENT_LENGTH, "0");
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("bytes=0-1,3-4", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }
}
