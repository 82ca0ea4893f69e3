//! Registry routes: `POST /images/create?fromImage=` (pull), `POST /images/{name}/push`,
//! `POST /auth`, `GET /distribution/{name}/json`, with the `X-Registry-Auth` header. Pull and
//! push resolve first (so a missing image is a plain HTTP error, as with dockerd), then stream
//! Docker's JSON progress messages; a later failure is an `errorDetail` message.

use berth_engine::registry::{AuthConfig, Progress};
use berth_engine::EngineError;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{parse_json, read_body, Ctx};
use crate::body::{self, JSON};
use crate::error::ApiResult;
use crate::router::Query;

/// The credentials of the `X-Registry-Auth` header, if any.
fn header_auth<B>(req: &Request<B>) -> Option<AuthConfig> {
    req.headers()
        .get("x-registry-auth")
        .and_then(|v| v.to_str().ok())
        .and_then(AuthConfig::from_header)
}

fn error_message(e: &EngineError) -> Value {
    let m = e.to_string();
    json!({"errorDetail": {"message": m}, "error": m})
}

/// Streams the messages of `run` as the response body.
fn stream_messages<F, Fut>(run: F) -> body::Resp
where
    F: FnOnce(Progress) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), EngineError>> + Send + 'static,
{
    let (resp, tx) = body::streaming(StatusCode::OK, JSON);
    let (ptx, mut prx) = mpsc::unbounded_channel::<Value>();
    tokio::spawn(async move {
        let forward = tokio::spawn({
            let tx = tx.clone();
            async move {
                while let Some(m) = prx.recv().await {
                    let mut line = serde_json::to_vec(&m).unwrap_or_default();
                    line.extend_from_slice(b"\r\n");
                    if tx.send(Bytes::from(line)).await.is_err() {
                        break;
                    }
                }
            }
        });
        let res = run(ptx).await;
        let _ = forward.await;
        if let Err(e) = res {
            let mut line = serde_json::to_vec(&error_message(&e)).unwrap_or_default();
            line.extend_from_slice(b"\r\n");
            let _ = tx.send(Bytes::from(line)).await;
        }
    });
    resp
}

/// `POST /images/create?fromImage=NAME&tag=TAG&platform=P`.
pub async fn pull(ctx: &Ctx, q: &Query, req: Request<Incoming>) -> ApiResult {
    let auth = header_auth(&req);
    let _ = read_body(ctx, req).await?;
    let engine = ctx.engine_arc()?;
    let image = q.get("fromImage").unwrap_or("").to_string();
    let tag = q.get("tag").unwrap_or("").to_string();
    let platform = q.get("platform").unwrap_or("").to_string();
    let plans = engine
        .image_pull_resolve(&image, &tag, &platform, auth)
        .await?;
    Ok(stream_messages(move |p| async move {
        engine.image_pull_run(plans, p).await
    }))
}

/// `POST /images/{name}/push?tag=TAG`.
pub async fn push(ctx: &Ctx, name: &str, q: &Query, req: Request<Incoming>) -> ApiResult {
    let auth = header_auth(&req);
    let _ = read_body(ctx, req).await?;
    let engine = ctx.engine_arc()?;
    let refs = engine
        .image_push_resolve(name, q.get("tag").unwrap_or(""))
        .await?;
    Ok(stream_messages(move |p| async move {
        engine.image_push_run(refs, auth, p).await
    }))
}

/// `POST /auth`.
pub async fn auth(ctx: &Ctx, req: Request<Incoming>) -> ApiResult {
    let raw = read_body(ctx, req).await?;
    let cfg: AuthConfigBody = parse_json(&raw, false)?;
    ctx.engine()?.registry_login(cfg.0).await?;
    Ok(body::json(
        StatusCode::OK,
        &json!({"Status": "Login Succeeded", "IdentityToken": ""}),
    ))
}

/// `GET /distribution/{name}/json`.
pub async fn distribution(ctx: &Ctx, name: &str, req: Request<Incoming>) -> ApiResult {
    let auth = header_auth(&req);
    let v = ctx.engine()?.distribution_inspect(name, auth).await?;
    Ok(body::json(StatusCode::OK, &v))
}

/// The body of `POST /images/{name}/signatures`.
#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct SignatureBody {
    /// base64 of the simple-signing payload.
    payload: String,
    /// base64 of the DER ECDSA signature over it.
    signature: String,
}

/// `POST /images/{name}/signatures` (berth's own): stores a signature the client made.
pub async fn add_signature(ctx: &Ctx, name: &str, req: Request<Incoming>) -> ApiResult {
    use base64::Engine as _;
    let auth = header_auth(&req);
    let raw = read_body(ctx, req).await?;
    let b: SignatureBody = parse_json(&raw, false)?;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(b.payload.trim())
        .map_err(|e| EngineError::InvalidArgument(format!("Payload is not base64: {e}")))?;
    let v = ctx
        .engine()?
        .image_add_signature(name, payload, b.signature, auth)
        .await?;
    let status = if v["Added"] == true {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(body::json(status, &v))
}

/// [`AuthConfig`] as a JSON body (Default for [`parse_json`]).
#[derive(Default)]
struct AuthConfigBody(AuthConfig);

impl<'de> serde::Deserialize<'de> for AuthConfigBody {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        AuthConfig::deserialize(d).map(AuthConfigBody)
    }
}
