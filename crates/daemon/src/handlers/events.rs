//! `GET /events`: past events from `since`, then live ones until `until` or the client
//! goes; filtered as dockerd filters them.

use berth_engine::events::{matches, validate_filters};
use bytes::Bytes;
use hyper::StatusCode;
use tokio::sync::broadcast::error::RecvError;

use super::containers::parse_time;
use super::Ctx;
use crate::body;
use crate::error::ApiResult;
use crate::router::Query;

pub async fn events(ctx: &Ctx, q: &Query) -> ApiResult {
    let filters = q.filters()?;
    validate_filters(&filters)?;
    let since = parse_time(q, "since")?.map(|s| (s * 1e9) as i64);
    let until = parse_time(q, "until")?.map(|s| (s * 1e9) as i64);
    let engine = ctx.engine()?;
    // Without `since`, only what happens from now on.
    let (past, mut rx) = engine.events().subscribe(since, until);
    let (resp, tx) = body::streaming(StatusCode::OK, "application/json");
    tokio::spawn(async move {
        let line = |e: &berth_api::EventMessage| {
            let mut v = serde_json::to_vec(e).unwrap_or_default();
            v.push(b'\n');
            Bytes::from(v)
        };
        let mut last = i64::MIN;
        for e in &past {
            last = e.time_nano;
            if matches(e, &filters) && tx.send(line(e)).await.is_err() {
                return;
            }
        }
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let deadline = until.map(|u| {
            tokio::time::Instant::now()
                + std::time::Duration::from_nanos(u.saturating_sub(now).max(0) as u64)
        });
        loop {
            let next = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, rx.recv()).await.ok(),
                    None => Some(rx.recv().await),
                }
            };
            let got = tokio::select! {
                g = next => g,
                _ = tx.closed() => return,
            };
            match got {
                None => return, // `until` reached
                Some(Ok(e)) => {
                    if e.time_nano <= last || until.is_some_and(|u| e.time_nano > u) {
                        continue;
                    }
                    if matches(&e, &filters) && tx.send(line(&e)).await.is_err() {
                        return;
                    }
                }
                // A client this far behind loses events; the daemon never waits for it.
                Some(Err(RecvError::Lagged(_))) => continue,
                Some(Err(RecvError::Closed)) => return,
            }
        }
    });
    Ok(resp)
}
