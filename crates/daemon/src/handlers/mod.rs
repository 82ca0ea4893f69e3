//! The dispatcher: version prefix → route → handler, errors mapped once, common headers added.

mod archive;
mod authorization;
mod build;
mod containers;
mod events;
mod exec;
mod images;
mod networks;
mod observe;
mod registry;
mod system;
mod taglog;
mod volumes;

use std::path::PathBuf;
use std::sync::Arc;

use berth_engine::{Engine, EngineError};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Request, StatusCode};
use serde::de::DeserializeOwned;
use tokio::io::AsyncWriteExt;

use crate::body::Resp;
use crate::error::{bad_request, error_response, ApiResult};
use crate::router::{self, Query, Route};

/// What handlers share. `engine` is `None` only in tests of the HTTP layer.
pub struct Ctx {
    pub engine: Option<Arc<Engine>>,
    /// Where uploaded archives are spooled (`<data-root>/tmp`).
    pub tmp_dir: PathBuf,
    /// The largest JSON body [`read_body`] accepts.
    pub max_json_body: u64,
    /// The `authorization` section; `None`: everyone who reaches a socket may do anything.
    pub authz: Option<Arc<crate::authz::Policy>>,
}

impl Ctx {
    pub fn engine(&self) -> Result<&Engine, EngineError> {
        self.engine
            .as_deref()
            .ok_or_else(|| EngineError::Internal("the engine is not available".into()))
    }

    pub fn engine_arc(&self) -> Result<Arc<Engine>, EngineError> {
        self.engine
            .clone()
            .ok_or_else(|| EngineError::Internal("the engine is not available".into()))
    }
}

/// Serves one request; never fails (errors become `{"message":…}` responses).
pub async fn handle(ctx: Arc<Ctx>, mut req: Request<Incoming>) -> Resp {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    if let Some(policy) = ctx.authz.clone() {
        if let Err(e) = authorization::check(&ctx, &policy, &mut req).await {
            let mut resp = error_response(&e);
            add_common_headers(&mut resp);
            return resp;
        }
    }
    let mut resp = match dispatch(&ctx, req).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!("{method} {path}: {e}");
            error_response(&e)
        }
    };
    tracing::debug!("{method} {path} → {}", resp.status());
    add_common_headers(&mut resp);
    resp
}

pub fn add_common_headers(resp: &mut Resp) {
    let h = resp.headers_mut();
    for (k, v) in [
        ("api-version", berth_api::API_VERSION),
        ("ostype", "linux"),
        ("docker-experimental", "false"),
        ("server", "Docker/28.0.0 (linux)"),
        ("cache-control", "no-cache, no-store, must-revalidate"),
        ("pragma", "no-cache"),
    ] {
        h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
}

async fn dispatch(ctx: &Ctx, mut req: Request<Incoming>) -> ApiResult {
    let path = req.uri().path().to_string();
    let (_version, rest) = router::split_version(&path)?;
    let route = router::route(req.method(), rest)?;
    let q = Query::parse(req.uri().query());
    use Route::*;
    match route {
        Ping => Ok(system::ping(req.method() == hyper::Method::HEAD)),
        Version => system::version(ctx).await,
        Info => system::info(ctx).await,
        PluginList => Ok(crate::body::json(
            StatusCode::OK,
            &Vec::<serde_json::Value>::new(),
        )),
        SystemDf => system::df(ctx, &q).await,
        ContainerCreate => containers::create(ctx, &q, req).await,
        ContainerList => containers::list(ctx, &q).await,
        ContainerPrune => containers::prune(ctx, &q).await,
        ContainerInspect(id) => containers::inspect(ctx, &id).await,
        ContainerStart(id) => containers::start(ctx, &id).await,
        ContainerStop(id) => containers::stop(ctx, &id, &q).await,
        ContainerRestart(id) => containers::restart(ctx, &id, &q).await,
        ContainerKill(id) => containers::kill(ctx, &id, &q).await,
        ContainerRemove(id) => containers::remove(ctx, &id, &q).await,
        ContainerWait(id) => containers::wait(ctx, &id, &q).await,
        ContainerAttach(id) => containers::attach(ctx, &id, &q, &mut req).await,
        ContainerResize(id) => containers::resize(ctx, &id, &q).await,
        ContainerLogs(id) => containers::logs(ctx, &id, &q).await,
        ContainerPause(id) => containers::pause(ctx, &id, true).await,
        ContainerRename(id) => containers::rename(ctx, &id, &q).await,
        ContainerUpdate(id) => containers::update(ctx, &id, req).await,
        ContainerUnpause(id) => containers::pause(ctx, &id, false).await,
        ContainerArchive(id) => archive::archive(ctx, &id, &q, req).await,
        ContainerExport(id) => archive::export(ctx, &id).await,
        ContainerChanges(id) => observe::changes(ctx, &id).await,
        ContainerTop(id) => observe::top(ctx, &id, &q).await,
        ContainerStats(id) => observe::stats(ctx, &id, &q).await,
        ExecCreate(id) => exec::create(ctx, &id, req).await,
        ExecStart(id) => exec::start(ctx, &id, &q, req).await,
        ExecInspect(id) => exec::inspect(ctx, &id).await,
        ExecResize(id) => exec::resize(ctx, &id, &q).await,
        ImageList => images::list(ctx, &q).await,
        ImagePrune => images::prune(ctx, &q).await,
        ImageLoad => images::load(ctx, req).await,
        ImageCreate => images::create(ctx, &q, req).await,
        ImageSave(name) => images::save(ctx, name, &q).await,
        ImageInspect(name) => images::inspect(ctx, &name).await,
        ImageHistory(name) => images::history(ctx, &name).await,
        ImageTag(name) => images::tag(ctx, &name, &q).await,
        ImageRemove(name) => images::remove(ctx, &name, &q).await,
        ImagePush(name) => registry::push(ctx, &name, &q, req).await,
        ImageSignatures(name) => registry::add_signature(ctx, &name, req).await,
        ImageTagLog(name) => taglog::log(ctx, &name).await,
        ImageRollback(name) => taglog::rollback(ctx, &name).await,
        Auth => registry::auth(ctx, req).await,
        DistributionInspect(name) => registry::distribution(ctx, &name, req).await,
        Events => events::events(ctx, &q).await,
        VolumeList => volumes::list(ctx, &q).await,
        VolumeCreate => volumes::create(ctx, req).await,
        VolumePrune => volumes::prune(ctx, &q).await,
        VolumeInspect(name) => volumes::inspect(ctx, &name).await,
        VolumeRemove(name) => volumes::remove(ctx, &name, &q).await,
        NetworkList => networks::list(ctx, &q).await,
        NetworkCreate => networks::create(ctx, req).await,
        NetworkPrune => networks::prune(ctx, &q).await,
        NetworkInspect(id) => networks::inspect(ctx, &id).await,
        NetworkRemove(id) => networks::remove(ctx, &id).await,
        NetworkConnect(id) => networks::connect(ctx, &id, req, true).await,
        NetworkDisconnect(id) => networks::connect(ctx, &id, req, false).await,
        ContainerCommit => build::commit(ctx, &q, req).await,
        Build => build::build(ctx, &q, req).await,
        BuildPrune => build::prune(ctx).await,
    }
}

/// Reads a JSON body. A missing Content-Type is accepted; another than JSON is refused.
/// An empty body is the type's default when `allow_empty`.
pub async fn read_json<T: DeserializeOwned + Default>(
    ctx: &Ctx,
    req: Request<Incoming>,
    allow_empty: bool,
) -> Result<T, EngineError> {
    let raw = read_body(ctx, req).await?;
    parse_json(&raw, allow_empty)
}

/// A request body read whole, with its Content-Type.
#[derive(Clone)]
pub struct RawBody {
    content_type: Option<String>,
    data: Bytes,
}

/// Reads the whole body, at most `ctx.max_json_body` bytes: a larger one is 413, and its rest
/// is read and dropped (never kept), so that the client sees the error instead of a broken
/// pipe. Handlers read the body before refusing anything, for the same reason.
pub async fn read_body(ctx: &Ctx, mut req: Request<Incoming>) -> Result<RawBody, EngineError> {
    // Authorization may have read it already (to decide on it).
    if let Some(raw) = req.extensions_mut().remove::<RawBody>() {
        return Ok(raw);
    }
    read_body_in_place(ctx, &mut req).await
}

/// [`read_body`] leaving the (now drained) request with the caller.
pub async fn read_body_in_place(
    ctx: &Ctx,
    req: &mut Request<Incoming>,
) -> Result<RawBody, EngineError> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let cap = ctx.max_json_body;
    let body = req.body_mut();
    let mut data = bytes::BytesMut::new();
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| bad_request(format!("reading the request body: {e}")))?;
        let Some(chunk) = frame.data_ref() else {
            continue;
        };
        total += chunk.len() as u64;
        if total <= cap {
            data.extend_from_slice(chunk);
        } else if !data.is_empty() {
            data = bytes::BytesMut::new();
        }
    }
    if total > cap {
        return Err(EngineError::PayloadTooLarge(format!(
            "request body of {total} bytes is larger than the daemon's limit of {cap} bytes \
             (max-json-body)"
        )));
    }
    Ok(RawBody {
        content_type,
        data: data.freeze(),
    })
}

/// Decodes a JSON body read by [`read_body`].
pub fn parse_json<T: DeserializeOwned + Default>(
    raw: &RawBody,
    allow_empty: bool,
) -> Result<T, EngineError> {
    if let Some(ct) = raw.content_type.as_deref() {
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !mime.is_empty() && !mime.eq_ignore_ascii_case("application/json") {
            return Err(bad_request(format!(
                "unsupported Content-Type header ({ct}): must be 'application/json'"
            )));
        }
    }
    if raw.data.iter().all(u8::is_ascii_whitespace) {
        return if allow_empty {
            Ok(T::default())
        } else {
            Err(bad_request("invalid JSON: empty request body"))
        };
    }
    serde_json::from_slice(&raw.data).map_err(|e| bad_request(e.to_string()))
}

/// Streams the request body into an unlinked temporary file under `tmp_dir`, rewound.
pub async fn spool(ctx: &Ctx, req: Request<Incoming>) -> Result<std::fs::File, EngineError> {
    std::fs::create_dir_all(&ctx.tmp_dir)
        .map_err(|e| EngineError::Internal(format!("creating {}: {e}", ctx.tmp_dir.display())))?;
    let file = tempfile::tempfile_in(&ctx.tmp_dir)
        .map_err(|e| EngineError::Internal(format!("creating a temporary file: {e}")))?;
    let mut w = tokio::fs::File::from_std(file.try_clone()?);
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| bad_request(format!("reading the request body: {e}")))?;
        if let Some(data) = frame.data_ref() {
            w.write_all(data).await?;
        }
    }
    w.flush().await?;
    drop(w);
    use std::io::Seek;
    let mut file = file;
    file.rewind()?;
    Ok(file)
}

pub fn no_content() -> Resp {
    crate::body::empty(StatusCode::NO_CONTENT)
}
