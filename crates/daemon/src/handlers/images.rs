//! `/images/…`.

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;
use tokio::io::AsyncReadExt;

use super::{spool, Ctx};
use crate::body::{self, JSON};
use crate::error::{bad_request, ApiResult};
use crate::router::Query;

pub async fn list(ctx: &Ctx, q: &Query) -> ApiResult {
    let filters = q.filters()?;
    Ok(body::json(
        StatusCode::OK,
        &ctx.engine()?
            .image_list(q.bool("all"), filters, q.bool("digests"))
            .await?,
    ))
}

pub async fn prune(ctx: &Ctx, q: &Query) -> ApiResult {
    let filters = q.filters()?;
    Ok(body::json(
        StatusCode::OK,
        &ctx.engine()?.image_prune(filters).await?,
    ))
}

pub async fn inspect(ctx: &Ctx, name: &str) -> ApiResult {
    Ok(body::json(
        StatusCode::OK,
        &ctx.engine()?.image_inspect(name).await?,
    ))
}

pub async fn history(ctx: &Ctx, name: &str) -> ApiResult {
    Ok(body::json(
        StatusCode::OK,
        &ctx.engine()?.image_history(name).await?,
    ))
}

pub async fn tag(ctx: &Ctx, name: &str, q: &Query) -> ApiResult {
    let repo = q.get("repo").unwrap_or("");
    if repo.is_empty() {
        return Err(bad_request(
            "repository name must have at least one component",
        ));
    }
    ctx.engine()?
        .image_tag(name, repo, q.get("tag").unwrap_or(""))
        .await?;
    Ok(body::empty(StatusCode::CREATED))
}

pub async fn remove(ctx: &Ctx, name: &str, q: &Query) -> ApiResult {
    let items = ctx
        .engine()?
        .image_remove(name, q.bool("force"), q.bool("noprune"))
        .await?;
    Ok(body::json(StatusCode::OK, &items))
}

/// A JSON-message stream (one object per line), as `docker load`/`import` read it.
fn messages(lines: &[serde_json::Value]) -> body::Resp {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(&serde_json::to_vec(l).unwrap_or_default());
        out.push(b'\n');
    }
    body::full(StatusCode::OK, JSON, out)
}

/// `POST /images/load`.
pub async fn load(ctx: &Ctx, req: Request<Incoming>) -> ApiResult {
    let engine = ctx.engine()?;
    let file = spool(ctx, req).await?;
    // As dockerd: once the archive is in, the answer is 200 and a failure to load it is the
    // stream's error message (the docker CLI prints it and fails).
    let lines = match engine.image_load(file).await {
        Ok(lines) => lines,
        Err(e) => {
            let m = e.to_string();
            return Ok(messages(&[
                json!({"errorDetail": {"message": m}, "error": m}),
            ]));
        }
    };
    let msgs: Vec<_> = lines
        .iter()
        .map(|l| json!({"stream": format!("{}\n", l.trim_end_matches('\n'))}))
        .collect();
    Ok(messages(&msgs))
}

/// `fromSrc=-`: import the body's tarball; `fromImage`: pull (see `registry.rs`).
pub async fn create(ctx: &Ctx, q: &Query, req: Request<Incoming>) -> ApiResult {
    if q.non_empty("fromImage").is_some() {
        return super::registry::pull(ctx, q, req).await;
    }
    match q.get("fromSrc") {
        Some("-") => {}
        Some("") | None => return Err(bad_request("one of fromImage or fromSrc is required")),
        Some(src) => {
            return Err(bad_request(format!(
                "importing from {src}: only fromSrc=- (the request body) is supported"
            )))
        }
    }
    let engine = ctx.engine()?;
    let file = spool(ctx, req).await?;
    let repo = q.get("repo").unwrap_or("");
    let tag = q.get("tag").unwrap_or("");
    let id = engine
        .image_import(
            file,
            repo,
            tag,
            q.all("changes"),
            q.get("message").unwrap_or(""),
        )
        .await?;
    Ok(messages(&[json!({"status": id})]))
}

/// A tar stream of the saved images.
pub async fn save(ctx: &Ctx, name: Option<String>, q: &Query) -> ApiResult {
    let names: Vec<String> = match name {
        Some(n) => vec![n],
        None => q
            .all("names")
            .into_iter()
            .filter(|n| !n.is_empty())
            .collect(),
    };
    if names.is_empty() {
        return Err(bad_request("no images specified"));
    }
    let file = ctx.engine()?.image_save(names).await?;
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
                    tracing::warn!("streaming a saved image: {e}");
                    break;
                }
            }
        }
    });
    Ok(resp)
}
