//! `/containers/{id}/archive` (`HEAD` stat, `GET` tar, `PUT` extract) and
//! `/containers/{id}/export`.

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use tokio::io::AsyncReadExt;

use super::Ctx;
use crate::body::{self, Resp};
use crate::error::{bad_request, ApiResult};
use crate::router::Query;

const STAT_HEADER: &str = "x-docker-container-path-stat";

/// Standard base64 with padding (Go's `base64.StdEncoding`).
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn stat_header(resp: &mut Resp, stat: &berth_engine::PathStat) {
    let json = serde_json::to_vec(stat).unwrap_or_default();
    if let Ok(v) = HeaderValue::from_str(&base64(&json)) {
        resp.headers_mut()
            .insert(HeaderName::from_static(STAT_HEADER), v);
    }
}

/// A response streaming `file` as a tar.
fn stream_file(file: std::fs::File) -> Resp {
    let (resp, tx) = body::streaming(StatusCode::OK, "application/x-tar");
    tokio::spawn(async move {
        let mut f = tokio::fs::File::from_std(file);
        loop {
            let mut buf = vec![0u8; 64 * 1024];
            match f.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send(Bytes::from(buf)).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!("streaming an archive: {e}");
                    break;
                }
            }
        }
    });
    resp
}

pub async fn archive(ctx: &Ctx, id: &str, q: &Query, req: Request<Incoming>) -> ApiResult {
    let method = req.method().clone();
    let path = q.get("path").unwrap_or("").to_string();
    if method == Method::PUT {
        // The body is read before anything is refused, so the client sees our answer.
        let file = super::spool(ctx, req).await?;
        if path.is_empty() {
            return Err(bad_request("path is required"));
        }
        ctx.engine()?
            .container_extract(
                id,
                &path,
                file,
                q.bool("noOverwriteDirNonDir"),
                q.bool("copyUIDGID"),
            )
            .await?;
        return Ok(body::empty(StatusCode::OK));
    }
    if path.is_empty() {
        return Err(bad_request("path is required"));
    }
    if method == Method::HEAD {
        let stat = ctx.engine()?.container_stat_path(id, &path).await?;
        let mut resp = body::empty(StatusCode::OK);
        stat_header(&mut resp, &stat);
        return Ok(resp);
    }
    let (stat, file) = ctx.engine()?.container_archive(id, &path).await?;
    let mut resp = stream_file(file);
    stat_header(&mut resp, &stat);
    Ok(resp)
}

pub async fn export(ctx: &Ctx, id: &str) -> ApiResult {
    let file = ctx.engine()?.container_export(id).await?;
    Ok(stream_file(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_like_go() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }
}
