//! berth's own tag-log endpoints ("tags remember"): `GET /images/{name}/log` lists a tag's
//! moves, newest first; `POST /images/{name}/rollback` points the tag back at its previous image.

use hyper::StatusCode;

use super::Ctx;
use crate::body;
use crate::error::ApiResult;

pub async fn log(ctx: &Ctx, name: &str) -> ApiResult {
    Ok(body::json(
        StatusCode::OK,
        &ctx.engine()?.image_tag_log(name).await?,
    ))
}

pub async fn rollback(ctx: &Ctx, name: &str) -> ApiResult {
    Ok(body::json(
        StatusCode::OK,
        &ctx.engine()?.image_rollback(name).await?,
    ))
}
