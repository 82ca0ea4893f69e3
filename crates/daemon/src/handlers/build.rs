//! `POST /build` (classic builder protocol: a context tar in, JSON lines out — `stream`,
//! `aux` with the image id, `errorDetail` on failure), `POST /build/prune`, and
//! `POST /commit`.

use std::collections::BTreeMap;

use berth_engine::build::{BuildRequest, Progress};
use berth_engine::CommitOptions;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};

use super::{parse_json, read_body, spool, Ctx};
use crate::body;
use crate::error::{bad_request, ApiResult};
use crate::router::Query;

/// A JSON object of strings (`buildargs`, `labels`); `null` values (an arg without a value)
/// are left out.
fn string_map(q: &Query, key: &str) -> Result<BTreeMap<String, String>, berth_engine::EngineError> {
    let Some(raw) = q.non_empty(key) else {
        return Ok(BTreeMap::new());
    };
    let v: BTreeMap<String, Option<String>> =
        serde_json::from_str(&raw).map_err(|e| bad_request(format!("error reading {key}: {e}")))?;
    Ok(v.into_iter().filter_map(|(k, v)| Some((k, v?))).collect())
}

fn line(v: &Value) -> Bytes {
    let mut out = serde_json::to_vec(v).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

/// The build request of a query.
fn build_request(q: &Query) -> Result<BuildRequest, berth_engine::EngineError> {
    let platform = q.non_empty("platform");
    if let Some(p) = &platform {
        if !p.starts_with("linux") {
            return Err(bad_request(format!(
                "\"{p}\": unsupported platform: only linux images are built"
            )));
        }
    }
    Ok(BuildRequest {
        dockerfile: q.get("dockerfile").unwrap_or("").to_string(),
        tags: q.all("t").into_iter().filter(|t| !t.is_empty()).collect(),
        build_args: string_map(q, "buildargs")?,
        labels: string_map(q, "labels")?,
        target: q.non_empty("target"),
        no_cache: q.bool("nocache"),
        pull: q.bool("pull"),
        network_mode: q.get("networkmode").unwrap_or("").to_string(),
        shm_size: q.int("shmsize")?.unwrap_or(0),
        platform,
        secrets: Default::default(),
    })
}

/// The secrets of berth's `X-Berth-Build-Secrets` header (none without it). A bad header is
/// a 400 whose message never quotes the value.
fn build_secrets(
    req: &Request<Incoming>,
) -> Result<berth_engine::build::SecretValues, berth_engine::EngineError> {
    let Some(raw) = req.headers().get(berth_engine::build::SECRETS_HEADER) else {
        return Ok(Default::default());
    };
    let text = raw.to_str().map_err(|_| {
        bad_request(format!(
            "invalid {} header",
            berth_engine::build::SECRETS_HEADER
        ))
    })?;
    berth_engine::build::SecretValues::from_header(text).map_err(|e| bad_request(e.to_string()))
}

/// `POST /build`.
pub async fn build(ctx: &Ctx, q: &Query, req: Request<Incoming>) -> ApiResult {
    let engine = ctx.engine_arc()?;
    let mut request = build_request(q)?;
    request.secrets = build_secrets(&req)?;
    for t in &request.tags {
        if !berth_engine::build::valid_tag(t) {
            return Err(bad_request(format!("invalid reference format: {t}")));
        }
    }
    let quiet = q.bool("q");
    let context = spool(ctx, req).await?;
    let (resp, tx) = body::streaming(StatusCode::OK, "application/json");
    let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel::<Progress>();
    let forward_tx = tx.clone();
    let forward = tokio::spawn(async move {
        let mut image_id = None;
        while let Some(p) = prx.recv().await {
            let msg = match p {
                Progress::Stream(s) if quiet => {
                    let _ = s;
                    continue;
                }
                Progress::Stream(s) => json!({ "stream": s }),
                Progress::Aux { id } => {
                    image_id = Some(id.clone());
                    json!({"aux": {"ID": id}})
                }
            };
            if forward_tx.send(line(&msg)).await.is_err() {
                // The client went away: dropping the receiver cancels the build.
                return image_id;
            }
        }
        image_id
    });
    tokio::spawn(async move {
        let result = engine.build(context, request, ptx).await;
        let image_id = forward.await.ok().flatten();
        match result {
            Ok(r) => {
                if quiet {
                    let id = image_id.unwrap_or(r.image_id);
                    let _ = tx.send(line(&json!({ "stream": format!("{id}\n") }))).await;
                }
            }
            Err(f) => {
                let mut detail = json!({ "message": f.message });
                if let Some(code) = f.code {
                    detail["code"] = json!(code);
                }
                let _ = tx
                    .send(line(&json!({"errorDetail": detail, "error": f.message})))
                    .await;
            }
        }
    });
    Ok(resp)
}

/// `POST /build/prune`.
pub async fn prune(ctx: &Ctx) -> ApiResult {
    let removed = ctx.engine()?.build_prune().await?;
    let deleted: Vec<String> = (0..removed).map(|i| format!("cache-entry-{i}")).collect();
    Ok(body::json(
        StatusCode::OK,
        &json!({"CachesDeleted": deleted, "SpaceReclaimed": 0}),
    ))
}

/// `POST /commit`.
pub async fn commit(ctx: &Ctx, q: &Query, req: Request<Incoming>) -> ApiResult {
    let raw = read_body(ctx, req).await?;
    let config: Option<berth_api::ContainerConfig> = parse_json::<Option<_>>(&raw, true)?;
    let container = q
        .non_empty("container")
        .ok_or_else(|| bad_request("No such container: "))?;
    let opts = CommitOptions {
        repo: q.get("repo").unwrap_or("").to_string(),
        tag: q.get("tag").unwrap_or("").to_string(),
        comment: q.get("comment").unwrap_or("").to_string(),
        author: q.get("author").unwrap_or("").to_string(),
        pause: q.bool_or("pause", true),
        changes: q.all("changes"),
        config,
    };
    let id = ctx.engine()?.container_commit(&container, opts).await?;
    Ok(body::json(StatusCode::CREATED, &json!({ "Id": id })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_queries() {
        let q = Query::parse(Some(
            "t=a&t=b%3Av1&buildargs=%7B%22X%22%3A%221%22%2C%22Y%22%3Anull%7D&nocache=1&shmsize=64",
        ));
        let r = build_request(&q).unwrap();
        assert_eq!(r.tags, vec!["a", "b:v1"]);
        assert_eq!(r.build_args.get("X").map(String::as_str), Some("1"));
        assert!(!r.build_args.contains_key("Y"));
        assert!(r.no_cache);
        assert_eq!(r.shm_size, 64);
        assert!(build_request(&Query::parse(Some("buildargs=nope"))).is_err());
    }
}
