//! `/containers/{id}/changes`, `/containers/{id}/top` and `/containers/{id}/stats`.

use std::time::Duration;

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::Value;

use super::Ctx;
use crate::body::{self, JSON};
use crate::error::ApiResult;
use crate::router::Query;

pub async fn changes(ctx: &Ctx, id: &str) -> ApiResult {
    let list = ctx.engine()?.container_changes(id).await?;
    Ok(body::json(StatusCode::OK, &list))
}

pub async fn top(ctx: &Ctx, id: &str, q: &Query) -> ApiResult {
    let ps_args = q.get("ps_args").unwrap_or("");
    let t = ctx.engine()?.container_top(id, ps_args).await?;
    Ok(body::json(StatusCode::OK, &t))
}

/// `current` with the previous sample's CPU figures and time as `precpu_stats`/`preread`.
pub fn with_previous(mut current: Value, previous: Option<&Value>) -> Value {
    if let Some(p) = previous {
        current["precpu_stats"] = p["cpu_stats"].clone();
        current["preread"] = p["read"].clone();
    }
    current
}

fn not_running(v: &Value) -> bool {
    v["read"].as_str() == Some(berth_engine::util::ZERO_TIME)
}

pub async fn stats(ctx: &Ctx, id: &str, q: &Query) -> ApiResult {
    let engine = ctx.engine_arc()?;
    let stream = q.bool_or("stream", true);
    let one_shot = q.bool("one-shot");
    let first = engine.container_stats_sample(id).await?;
    if !stream {
        if one_shot || not_running(&first) {
            return Ok(body::json(StatusCode::OK, &first));
        }
        // As dockerd: a second sample so that CPU usage can be computed from the pair.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let second = engine.container_stats_sample(id).await?;
        return Ok(body::json(
            StatusCode::OK,
            &with_previous(second, Some(&first)),
        ));
    }
    let (resp, tx) = body::streaming(StatusCode::OK, JSON);
    let id = id.to_string();
    tokio::spawn(async move {
        let mut previous: Option<Value> = None;
        let mut current = first;
        loop {
            let v = with_previous(current.clone(), previous.as_ref());
            let mut line = serde_json::to_vec(&v).unwrap_or_default();
            line.push(b'\n');
            if tx.send(Bytes::from(line)).await.is_err() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = tx.closed() => break,
            }
            previous = Some(current);
            current = match engine.container_stats_sample(&id).await {
                Ok(v) => v,
                Err(_) => break, // removed
            };
        }
    });
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precpu_comes_from_the_previous_sample() {
        let a = serde_json::json!({"read": "t1", "cpu_stats": {"x": 1}, "precpu_stats": {}});
        let b = serde_json::json!({"read": "t2", "cpu_stats": {"x": 2}, "precpu_stats": {}});
        let v = with_previous(b, Some(&a));
        assert_eq!(v["precpu_stats"]["x"], 1);
        assert_eq!(v["preread"], "t1");
    }
}
