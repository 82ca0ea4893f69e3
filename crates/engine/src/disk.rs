//! Disk usage (`system df`) and container prune with its filters: what each object holds on
//! disk, measured from the files themselves.

use std::sync::Arc;

use berth_api::{ContainerPruneResponse, SystemDf};

use crate::context::Context;
use crate::types::{ListOptions, RemoveOptions};
use crate::{EngineError, Filters, Result};

/// `until=` (unix seconds, RFC 3339 or a Go duration before now) as unix seconds.
pub fn parse_until(v: &str) -> Result<f64> {
    if let Ok(f) = v.parse::<f64>() {
        return Ok(f);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp() as f64);
    }
    if let Some(secs) = go_duration_secs(v) {
        return Ok(chrono::Utc::now().timestamp() as f64 - secs);
    }
    Err(EngineError::InvalidArgument(format!(
        "failed to parse value as time or duration: \"{v}\""
    )))
}

/// A Go duration (`10m`, `1h30m`, `-45s`, `500ms`) in seconds.
fn go_duration_secs(s: &str) -> Option<f64> {
    berth_sys::units::go_duration_nanos(s)
        .ok()
        .map(|n| n as f64 / 1e9)
}

fn label_filter_ok(labels: &std::collections::BTreeMap<String, String>, f: &Filters) -> bool {
    let has = |l: &str| match l.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(l),
    };
    f.get("label").is_none_or(|ls| ls.iter().all(|l| has(l)))
        && f.get("label!").is_none_or(|ls| ls.iter().all(|l| !has(l)))
}

/// Bytes in a container's writable layer.
pub(crate) fn rw_size(ctx: &Arc<Context>, id: &str) -> u64 {
    berth_volume::disk_usage(&ctx.images.root().join("rw").join(id).join("upper"))
}

/// `docker container prune`: stopped containers matching `until` / `label` filters.
pub(crate) async fn container_prune(
    ctx: &Arc<Context>,
    filters: Filters,
) -> Result<ContainerPruneResponse> {
    for k in filters.keys() {
        if !["until", "label", "label!"].contains(&k.as_str()) {
            return Err(EngineError::InvalidArgument(format!(
                "invalid filter '{k}'"
            )));
        }
    }
    let until = match filters.get("until").and_then(|v| v.first()) {
        Some(v) => Some(parse_until(v)?),
        None => None,
    };
    let all: Vec<Arc<crate::container::Container>> =
        ctx.containers.lock().unwrap().values().cloned().collect();
    let mut deleted = Vec::new();
    let mut reclaimed = 0;
    for c in all {
        let r = c.record();
        if r.state.running() || r.state.restarting() {
            continue;
        }
        if !label_filter_ok(&r.config.labels, &filters) {
            continue;
        }
        if let Some(u) = until {
            if crate::util::parse_time(&r.created).unwrap_or(0.0) >= u {
                continue;
            }
        }
        let size = rw_size(ctx, &c.id);
        if crate::remove::container_remove(ctx, &c.id, RemoveOptions::default())
            .await
            .is_ok()
        {
            reclaimed += size;
            deleted.push(c.id.clone());
        }
    }
    Ok(ContainerPruneResponse {
        containers_deleted: Some(deleted),
        space_reclaimed: reclaimed,
    })
}

/// `GET /system/df`; `kinds` narrows it (`image`, `container`, `volume`, `build-cache`).
pub(crate) async fn system_df(ctx: &Arc<Context>, kinds: &[String]) -> Result<SystemDf> {
    let want = |k: &str| kinds.is_empty() || kinds.iter().any(|x| x == k);
    let mut df = SystemDf::default();
    if want("image") {
        df.images = crate::images::image_list(ctx, false, Filters::new(), false).await?;
        let layers = ctx.images.root().join("layers");
        df.layers_size = tokio::task::spawn_blocking(move || berth_volume::disk_usage(&layers))
            .await
            .unwrap_or(0) as i64;
    }
    if want("container") {
        let mut cs = crate::query::container_list(
            ctx,
            ListOptions {
                all: true,
                ..Default::default()
            },
        )
        .await?;
        let sizes: std::collections::BTreeMap<String, i64> =
            df.images.iter().map(|i| (i.id.clone(), i.size)).collect();
        for c in &mut cs {
            let rw = rw_size(ctx, &c.id) as i64;
            c.size_rw = Some(rw);
            c.size_root_fs = Some(rw + sizes.get(&c.image_id).copied().unwrap_or(0));
        }
        df.containers = cs;
    }
    if want("volume") {
        df.volumes = crate::volumes::volume_usage(ctx);
    }
    Ok(df)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_values() {
        assert_eq!(parse_until("1700000000").unwrap(), 1_700_000_000.0);
        assert_eq!(
            parse_until("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000.0
        );
        let now = chrono::Utc::now().timestamp() as f64;
        assert!((parse_until("1h").unwrap() - (now - 3600.0)).abs() < 5.0);
        assert!((parse_until("1h30m").unwrap() - (now - 5400.0)).abs() < 5.0);
        assert!(parse_until("yesterday").is_err());
    }
}
