//! berth's "tags remember" operations over the image store's tag log: `image log` and
//! `image rollback` (Docker has neither). A rollback is announced like a tag (`image tag`).

use berth_api::{TagLogItem, TagRollback};

use crate::context::Context;
use crate::{EngineError, Result};
use std::sync::Arc;

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Internal(format!("task failed: {e}")))?
}

/// The moves of tag `name` (`busybox` = `busybox:latest`), newest first.
pub(crate) async fn image_tag_log(ctx: &Arc<Context>, name: &str) -> Result<Vec<TagLogItem>> {
    let (images, name) = (ctx.images.clone(), name.to_string());
    blocking(move || Ok(images.tag_log(&name)?)).await
}

/// Points tag `name` back at its previous image and emits an `image tag` event for it.
pub(crate) async fn image_rollback(ctx: &Arc<Context>, name: &str) -> Result<TagRollback> {
    let (images, name) = (ctx.images.clone(), name.to_string());
    let done = blocking(move || Ok(images.rollback(&name)?)).await?;
    ctx.event("image", "tag", &done.to, &[("name", done.tag.clone())]);
    Ok(done)
}
