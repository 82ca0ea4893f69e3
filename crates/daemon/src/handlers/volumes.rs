//! `/volumes/…`.

use berth_api::VolumeCreateRequest;
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
        &ctx.engine()?.volume_list(&filters)?,
    ))
}

pub async fn inspect(ctx: &Ctx, name: &str) -> ApiResult {
    Ok(body::json(
        StatusCode::OK,
        &ctx.engine()?.volume_inspect(name)?,
    ))
}

pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> ApiResult {
    let body: VolumeCreateRequest = read_json(ctx, req, true).await?;
    Ok(body::json(
        StatusCode::CREATED,
        &ctx.engine()?.volume_create(body).await?,
    ))
}

pub async fn remove(ctx: &Ctx, name: &str, q: &Query) -> ApiResult {
    ctx.engine()?.volume_remove(name, q.bool("force")).await?;
    Ok(no_content())
}

pub async fn prune(ctx: &Ctx, q: &Query) -> ApiResult {
    let filters = q.filters()?;
    Ok(body::json(
        StatusCode::OK,
        &ctx.engine()?.volume_prune(&filters).await?,
    ))
}
