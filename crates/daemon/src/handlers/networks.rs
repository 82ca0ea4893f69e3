//! `/networks/…`.

use berth_api::{NetworkConnectRequest, NetworkCreateRequest};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::{no_content, read_json, Ctx};
use crate::body;
use crate::error::ApiResult;
use crate::router::Query;

pub async fn list(ctx: &Ctx, q: &Query) -> ApiResult {
    let filters = q.filters()?;
    Ok(body::json(
        StatusCode::OK,
        &ctx.engine()?.network_list(filters).await?,
    ))
}

pub async fn inspect(ctx: &Ctx, id: &str) -> ApiResult {
    Ok(body::json(
        StatusCode::OK,
        &ctx.engine()?.network_inspect(id).await?,
    ))
}

pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> ApiResult {
    let body: NetworkCreateRequest = read_json(ctx, req, false).await?;
    Ok(body::json(
        StatusCode::CREATED,
        &ctx.engine()?.network_create(body).await?,
    ))
}

pub async fn remove(ctx: &Ctx, id: &str) -> ApiResult {
    ctx.engine()?.network_remove(id).await?;
    Ok(no_content())
}

pub async fn prune(ctx: &Ctx, q: &Query) -> ApiResult {
    let filters = q.filters()?;
    Ok(body::json(
        StatusCode::OK,
        &ctx.engine()?.network_prune(filters).await?,
    ))
}

/// `connect` (true) or `disconnect` (false).
pub async fn connect(ctx: &Ctx, id: &str, req: Request<Incoming>, join: bool) -> ApiResult {
    let body: NetworkConnectRequest = read_json(ctx, req, false).await?;
    let engine = ctx.engine()?;
    if join {
        engine.network_connect(id, body).await?;
    } else {
        engine.network_disconnect(id, body).await?;
    }
    Ok(body::empty(StatusCode::OK))
}
