//! `/containers/{id}/exec` and `/exec/{id}/…`.

use berth_api::{ExecConfig, ExecStartConfig, IdResponse};
use berth_engine::EngineError;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::{read_json, Ctx};
use crate::body;
use crate::error::{bad_request, ApiResult};
use crate::router::Query;
use crate::stream;

pub async fn create(ctx: &Ctx, container: &str, req: Request<Incoming>) -> ApiResult {
    let cfg: ExecConfig = read_json(ctx, req, false).await?;
    let id = ctx.engine()?.exec_create(container, cfg).await?;
    Ok(body::json(StatusCode::CREATED, &IdResponse { id }))
}

/// Starts an exec. The output is framed as the start body's `Tty` asks (multiplexed unless it
/// asks for a TTY), whatever the exec's own `Tty`, as dockerd; `detachKeys` in the query
/// overrides the exec's `DetachKeys`.
pub async fn start(ctx: &Ctx, id: &str, q: &Query, mut req: Request<Incoming>) -> ApiResult {
    let upgrade = stream::take_upgrade(&mut req);
    let start: ExecStartConfig = read_json(ctx, req, true).await?;
    let engine = ctx.engine()?;
    let keys = q.get("detachKeys").map(str::to_string);
    if let (Some(up), false) = (upgrade, start.detach) {
        // Checked before hijacking so that they get a status; the exec itself starts after.
        let info = engine.exec_inspect(id).await?;
        if info.running {
            return Err(EngineError::Conflict(format!(
                "Error: Exec command {id} is already running"
            )));
        }
        let c = engine.container_inspect(&info.container_id).await?;
        if !c.state.running {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let engine = ctx.engine_arc()?;
        let id = id.to_string();
        let console = start.console_size.clone();
        let framing_tty = start.tty;
        return Ok(stream::respond_deferred(up, framing_tty, async move {
            let mut session = engine.exec_start(&id, false, keys.as_deref()).await?;
            session.tty = framing_tty;
            if let Some([h, w]) = console.as_deref() {
                if *h > 0 && *w > 0 {
                    let _ = engine.exec_resize(&id, *h, *w).await;
                }
            }
            Ok(session)
        }));
    }
    let mut session = engine.exec_start(id, start.detach, keys.as_deref()).await?;
    session.tty = start.tty;
    if start.detach {
        return Ok(body::empty(StatusCode::OK));
    }
    if let Some([h, w]) = start.console_size.as_deref() {
        if *h > 0 && *w > 0 {
            let _ = engine.exec_resize(id, *h, *w).await;
        }
    }
    let stdin = session.input.is_some();
    Ok(stream::respond(None, session, stdin))
}

pub async fn inspect(ctx: &Ctx, id: &str) -> ApiResult {
    Ok(body::json(
        StatusCode::OK,
        &ctx.engine()?.exec_inspect(id).await?,
    ))
}

pub async fn resize(ctx: &Ctx, id: &str, q: &Query) -> ApiResult {
    let (h, w) = size(q)?;
    ctx.engine()?.exec_resize(id, h, w).await?;
    Ok(body::empty(StatusCode::OK))
}

pub fn size(q: &Query) -> Result<(u16, u16), berth_engine::EngineError> {
    let h = q
        .int::<u16>("h")?
        .ok_or_else(|| bad_request("invalid resize: missing h"))?;
    let w = q
        .int::<u16>("w")?
        .ok_or_else(|| bad_request("invalid resize: missing w"))?;
    Ok((h, w))
}
