//! `/containers/…`.

use berth_api::ContainerCreateRequest;
use berth_engine::{
    AttachOptions, EngineError, ListOptions, LogsOptions, RemoveOptions, WaitCondition,
};
use bytes::{BufMut, BytesMut};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;

use super::{no_content, Ctx};
use crate::body::{self, JSON};
use crate::error::{bad_request, ApiResult};
use crate::router::{valid_container_name, Query};
use crate::stream;

pub async fn create(ctx: &Ctx, q: &Query, req: Request<Incoming>) -> ApiResult {
    // The body is read before anything is refused: answering while the client still writes
    // breaks its connection instead of showing it our error.
    let raw = super::read_body(ctx, req).await?;
    let name = q.non_empty("name");
    if let Some(n) = &name {
        if !valid_container_name(n) {
            return Err(bad_request(format!(
                "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
    }
    let body: ContainerCreateRequest = super::parse_json(&raw, false)?;
    let resp = ctx.engine()?.container_create(name, body).await?;
    Ok(body::json(StatusCode::CREATED, &resp))
}

pub async fn list(ctx: &Ctx, q: &Query) -> ApiResult {
    let limit = q
        .int::<i64>("limit")?
        .filter(|n| *n > 0)
        .map(|n| n as usize);
    let opts = ListOptions {
        all: q.bool("all"),
        limit,
        size: q.bool("size"),
        filters: q.filters()?,
    };
    Ok(body::json(
        StatusCode::OK,
        &ctx.engine()?.container_list(opts).await?,
    ))
}

pub async fn prune(ctx: &Ctx, q: &Query) -> ApiResult {
    let filters = q.filters()?;
    Ok(body::json(
        StatusCode::OK,
        &ctx.engine()?.container_prune(filters).await?,
    ))
}

pub async fn inspect(ctx: &Ctx, id: &str) -> ApiResult {
    Ok(body::json(
        StatusCode::OK,
        &ctx.engine()?.container_inspect(id).await?,
    ))
}

pub async fn start(ctx: &Ctx, id: &str) -> ApiResult {
    ctx.engine()?.container_start(id).await?;
    Ok(no_content())
}

pub async fn stop(ctx: &Ctx, id: &str, q: &Query) -> ApiResult {
    ctx.engine()?
        .container_stop(id, q.non_empty("signal"), q.int("t")?)
        .await?;
    Ok(no_content())
}

pub async fn restart(ctx: &Ctx, id: &str, q: &Query) -> ApiResult {
    ctx.engine()?
        .container_restart(id, q.non_empty("signal"), q.int("t")?)
        .await?;
    Ok(no_content())
}

pub async fn kill(ctx: &Ctx, id: &str, q: &Query) -> ApiResult {
    ctx.engine()?
        .container_kill(id, q.non_empty("signal"))
        .await?;
    Ok(no_content())
}

pub async fn remove(ctx: &Ctx, id: &str, q: &Query) -> ApiResult {
    let opts = RemoveOptions {
        force: q.bool("force"),
        volumes: q.bool("v"),
        link: q.bool("link"),
    };
    ctx.engine()?.container_remove(id, opts).await?;
    Ok(no_content())
}

/// Headers go out at once; the status line follows when the condition is met.
pub async fn wait(ctx: &Ctx, id: &str, q: &Query) -> ApiResult {
    let cond: WaitCondition = q
        .get("condition")
        .unwrap_or("")
        .parse()
        .map_err(bad_request)?;
    let rx = ctx.engine()?.container_wait(id, cond).await?;
    let (resp, tx) = body::streaming(StatusCode::OK, JSON);
    tokio::spawn(async move {
        let v = match rx.await {
            Ok(w) => json!({
                "StatusCode": w.status_code,
                "Error": w.error.map(|e| json!({"Message": e.message})),
            }),
            Err(_) => json!({"StatusCode": -1, "Error": {"Message": "the wait was interrupted"}}),
        };
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        let _ = tx.send(line.into()).await;
    });
    Ok(resp)
}

pub async fn attach(ctx: &Ctx, id: &str, q: &Query, req: &mut Request<Incoming>) -> ApiResult {
    let opts = AttachOptions {
        stdin: q.bool("stdin"),
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
        logs: q.bool("logs"),
        stream: q.bool("stream"),
        detach_keys: q.get("detachKeys").unwrap_or_default().to_string(),
    };
    let upgrade = stream::take_upgrade(req);
    let stdin = opts.stdin;
    let session = ctx.engine()?.container_attach(id, opts).await?;
    Ok(stream::respond(upgrade, session, stdin))
}

pub async fn resize(ctx: &Ctx, id: &str, q: &Query) -> ApiResult {
    let (h, w) = super::exec::size(q)?;
    ctx.engine()?.container_resize(id, h, w).await?;
    Ok(body::empty(StatusCode::OK))
}

/// Unix seconds (`1700000000.5`) or RFC 3339; empty or `0` is none.
pub fn parse_time(q: &Query, k: &str) -> Result<Option<f64>, EngineError> {
    let Some(v) = q.non_empty(k) else {
        return Ok(None);
    };
    if let Ok(f) = v.parse::<f64>() {
        return Ok((f != 0.0).then_some(f));
    }
    chrono::DateTime::parse_from_rfc3339(&v)
        .map(|t| Some(t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9))
        .map_err(|_| bad_request(format!("invalid value for {k}: {v:?}")))
}

pub fn parse_tail(q: &Query) -> Result<Option<usize>, EngineError> {
    match q.get("tail").map(str::trim) {
        None | Some("") | Some("all") => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n < 0 => Ok(None),
            Ok(n) => Ok(Some(n as usize)),
            Err(_) => Err(bad_request(format!("invalid value for tail: {v:?}"))),
        },
    }
}

pub async fn logs(ctx: &Ctx, id: &str, q: &Query) -> ApiResult {
    let opts = LogsOptions {
        follow: q.bool("follow"),
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
        since: parse_time(q, "since")?,
        until: parse_time(q, "until")?,
        timestamps: q.bool("timestamps"),
        tail: parse_tail(q)?,
    };
    if !opts.stdout && !opts.stderr {
        return Err(bad_request("you must choose at least one stream"));
    }
    let timestamps = opts.timestamps;
    let (tty, mut rx) = ctx.engine()?.container_logs(id, opts).await?;
    let (resp, tx) = body::streaming(StatusCode::OK, stream::content_type(tty));
    tokio::spawn(async move {
        while let Some(entry) = rx.recv().await {
            let data = if timestamps {
                let mut b = BytesMut::with_capacity(entry.time.len() + 1 + entry.data.len());
                b.put_slice(entry.time.as_bytes());
                b.put_u8(b' ');
                b.put_slice(&entry.data);
                b.freeze()
            } else {
                entry.data
            };
            if tx
                .send(stream::encode(tty, entry.stream, data))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    Ok(resp)
}

/// `POST /containers/{id}/pause` (true) and `/unpause` (false).
pub async fn pause(ctx: &Ctx, id: &str, pause: bool) -> ApiResult {
    let engine = ctx.engine()?;
    if pause {
        engine.container_pause(id).await?;
    } else {
        engine.container_unpause(id).await?;
    }
    Ok(no_content())
}

pub async fn rename(ctx: &Ctx, id: &str, q: &Query) -> ApiResult {
    let name = q.get("name").unwrap_or_default();
    ctx.engine()?.container_rename(id, name).await?;
    Ok(no_content())
}

pub async fn update(ctx: &Ctx, id: &str, req: Request<Incoming>) -> ApiResult {
    let body: berth_engine::update::UpdateRequest = super::read_json(ctx, req, false).await?;
    Ok(body::json(
        StatusCode::OK,
        &ctx.engine()?.container_update(id, body).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_tail() {
        let q = Query::parse(Some("since=1700000000.5&until=0&tail=all"));
        assert_eq!(parse_time(&q, "since").unwrap(), Some(1_700_000_000.5));
        assert_eq!(parse_time(&q, "until").unwrap(), None);
        assert_eq!(parse_tail(&q).unwrap(), None);
        let q = Query::parse(Some("since=2023-11-14T22:13:20Z&tail=5"));
        assert_eq!(parse_time(&q, "since").unwrap(), Some(1_700_000_000.0));
        assert_eq!(parse_tail(&q).unwrap(), Some(5));
        assert!(parse_tail(&Query::parse(Some("tail=x"))).is_err());
    }
}
