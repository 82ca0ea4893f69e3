//! `/_ping`, `/version`, `/info`.

use hyper::header::{HeaderName, HeaderValue};
use hyper::StatusCode;

use super::Ctx;
use crate::body::{self, Resp};
use crate::error::ApiResult;
use crate::router::Query;

pub fn ping(head: bool) -> Resp {
    let mut r = if head {
        let mut r = body::empty(StatusCode::OK);
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    } else {
        body::full(StatusCode::OK, "text/plain; charset=utf-8", "OK")
    };
    let h = r.headers_mut();
    h.insert(
        HeaderName::from_static("builder-version"),
        HeaderValue::from_static("1"),
    );
    h.insert(
        HeaderName::from_static("swarm"),
        HeaderValue::from_static("inactive"),
    );
    r
}

pub async fn version(ctx: &Ctx) -> ApiResult {
    let v = serde_json::to_value(ctx.engine()?.version().await).unwrap_or_default();
    Ok(body::json(StatusCode::OK, &docker_version_shape(v)))
}

/// Docker's spelling (`MinAPIVersion`) and the Engine component's `Details`, which the docker
/// CLI reads for `docker version`, filled from the top-level fields when missing.
pub fn docker_version_shape(mut v: serde_json::Value) -> serde_json::Value {
    let Some(obj) = v.as_object_mut() else {
        return v;
    };
    if !obj.contains_key("MinAPIVersion") {
        let min = obj
            .remove("MinApiVersion")
            .unwrap_or_else(|| berth_api::MIN_API_VERSION.into());
        obj.insert("MinAPIVersion".into(), min);
    }
    let mut details = serde_json::Map::new();
    for (k, from) in [
        ("ApiVersion", "ApiVersion"),
        ("MinAPIVersion", "MinAPIVersion"),
        ("GitCommit", "GitCommit"),
        ("GoVersion", "GoVersion"),
        ("Os", "Os"),
        ("Arch", "Arch"),
        ("KernelVersion", "KernelVersion"),
        ("BuildTime", "BuildTime"),
    ] {
        if let Some(x) = obj.get(from) {
            details.insert(k.into(), x.clone());
        }
    }
    details.insert("Experimental".into(), "false".into());
    if let Some(serde_json::Value::Array(comps)) = obj.get_mut("Components") {
        for c in comps.iter_mut() {
            let is_engine = c.get("Name").and_then(|n| n.as_str()) == Some("Engine");
            if is_engine && matches!(c.get("Details"), None | Some(serde_json::Value::Null)) {
                c["Details"] = serde_json::Value::Object(details.clone());
            }
        }
    }
    v
}

pub async fn info(ctx: &Ctx) -> ApiResult {
    Ok(body::json(StatusCode::OK, &ctx.engine()?.info().await))
}

/// `GET /system/df?type=image&type=container…`.
pub async fn df(ctx: &Ctx, q: &Query) -> ApiResult {
    let kinds = q.all("type");
    for k in &kinds {
        if !["container", "image", "volume", "build-cache"].contains(&k.as_str()) {
            return Err(crate::error::bad_request(format!(
                "unknown object type: {k}"
            )));
        }
    }
    Ok(body::json(
        StatusCode::OK,
        &ctx.engine()?.system_df(&kinds).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_shape() {
        let v = serde_json::json!({
            "ApiVersion": "1.50", "MinApiVersion": "1.24", "Os": "linux",
            "Components": [{"Name": "Engine", "Version": "0.1.0", "Details": null}]
        });
        let v = docker_version_shape(v);
        assert_eq!(v["MinAPIVersion"], "1.24");
        assert!(v.get("MinApiVersion").is_none());
        assert_eq!(v["Components"][0]["Details"]["ApiVersion"], "1.50");
        assert_eq!(v["Components"][0]["Details"]["Os"], "linux");
    }
}
