//! The authorization gate in front of the dispatcher: the connection's [`Peer`] → a role
//! (`authz::Policy`), the decision, and for a refusal a 403 naming the rule, a log line and a
//! `daemon` event (`authorization-denied`).

use std::collections::BTreeMap;

use berth_engine::EngineError;
use hyper::body::Incoming;
use hyper::Request;

use super::{read_body_in_place, Ctx};
use crate::authz::{resolve_host_path, Policy};
use crate::peer::Peer;
use crate::router::{self, Query};

/// `Ok` lets the request through (its body, when read here, kept for the handler).
pub async fn check(
    ctx: &Ctx,
    policy: &Policy,
    req: &mut Request<Incoming>,
) -> Result<(), EngineError> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    // Unrouted paths get the dispatcher's 404/400 for anyone with a role.
    let route = router::split_version(&path)
        .ok()
        .and_then(|(_, rest)| router::route(&method, rest).ok());
    let (identity, role) = match req.extensions().get::<Peer>() {
        Some(peer) => policy.role_of(peer),
        None => ("unknown".to_string(), None),
    };
    let body = match &route {
        Some(r) if Policy::needs_body(role, r) => {
            let raw = read_body_in_place(ctx, req).await?;
            let value = if raw.data.iter().all(u8::is_ascii_whitespace) {
                serde_json::Value::Null
            } else {
                // Unparsable JSON gets the handler's 400.
                serde_json::from_slice(&raw.data).unwrap_or(serde_json::Value::Null)
            };
            req.extensions_mut().insert(raw);
            Some(value)
        }
        _ => None,
    };
    let Some(route) = route else {
        return match role {
            Some(_) => Ok(()),
            None => {
                let e = refuse(
                    ctx,
                    &identity,
                    None,
                    &method,
                    &path,
                    "no-role",
                    "this client has no role",
                );
                drain(ctx, req).await;
                Err(e)
            }
        };
    };
    let q = Query::parse(req.uri().query());
    let decision = policy.authorize(
        role,
        &method,
        &route,
        &|k| q.get(k).map(str::to_string),
        body.as_ref(),
        &resolve_host_path,
    );
    match decision {
        Ok(()) => Ok(()),
        Err(d) => {
            let e = refuse(
                ctx,
                &identity,
                role.map(|r| r.name()),
                &method,
                &path,
                d.rule,
                &d.reason,
            );
            drain(ctx, req).await;
            Err(e)
        }
    }
}

/// Reads and drops what is left of a refused request's body (at most `max-json-body` bytes,
/// for at most 5 s), so that a client still sending it reads the 403 rather than a broken
/// pipe; a larger or slower body is cut off with the connection.
async fn drain(ctx: &Ctx, req: &mut Request<Incoming>) {
    use http_body_util::BodyExt;
    let limit = ctx.max_json_body;
    let body = req.body_mut();
    let read = async {
        let mut seen: u64 = 0;
        while seen <= limit {
            match body.frame().await {
                Some(Ok(frame)) => {
                    seen += frame.data_ref().map_or(0, |d| d.len() as u64);
                }
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), read).await;
}

fn refuse(
    ctx: &Ctx,
    identity: &str,
    role: Option<&str>,
    method: &hyper::Method,
    path: &str,
    rule: &str,
    reason: &str,
) -> EngineError {
    let role_shown = role.unwrap_or("none");
    tracing::warn!(
        "authorization denied: {identity} (role {role_shown}) {method} {path}: {reason} (rule {rule})"
    );
    if let Ok(engine) = ctx.engine() {
        let attrs: BTreeMap<String, String> = [
            ("identity", identity),
            ("role", role_shown),
            ("rule", rule),
            ("method", method.as_str()),
            ("path", path),
            ("reason", reason),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        engine
            .events()
            .publish("daemon", "authorization-denied", "berth", attrs);
    }
    EngineError::Forbidden(format!(
        "authorization denied by berth (rule {rule}): {identity} with role {role_shown}: {reason}"
    ))
}
