//! `docker rm` (with `-f` and `-v`) and the auto-remove of `--rm` containers: a removal
//! either completes or leaves the container `dead`, ready for another try.

use std::sync::Arc;

use berth_api::*;

use crate::context::{blocking, Context};
use crate::lifecycle::{Status, Transition};
use crate::{EngineError, RemoveOptions, Result};

/// Removes an `--rm` container and its anonymous volumes, as `docker run --rm` does once
/// the container is done; a failure is logged (nobody waits on it).
pub(crate) async fn auto_remove(ctx: &Arc<Context>, id: &str) {
    let opts = RemoveOptions {
        force: true,
        volumes: true,
        ..Default::default()
    };
    if let Err(e) = container_remove(ctx, id, opts).await {
        tracing::warn!("auto-removing {id}: {e}");
    }
}

pub(crate) async fn container_remove(
    ctx: &Arc<Context>,
    key: &str,
    opts: RemoveOptions,
) -> Result<()> {
    let c = ctx.lookup(key)?;
    if c.status() == Status::Restarting {
        if !opts.force {
            return Err(EngineError::Conflict(format!(
                "You cannot remove a restarting container {}. Stop the container before attempting removal or force remove",
                c.id
            )));
        }
        crate::control::cancel_restart(ctx, &c);
    }
    if c.running() {
        if !opts.force {
            // dockerd's words (scripts match them)
            return Err(EngineError::Conflict(if c.status() == Status::Paused {
                format!("You cannot remove a paused container {}. Unpause and then stop the container before attempting removal or force remove", c.id)
            } else {
                format!("You cannot remove a running container {}. Stop the container before attempting removal or force remove", c.id)
            }));
        }
        let rx = c.exits.subscribe();
        crate::oci_runtime::runtime_kill(ctx, &c, 9).await?;
        if !crate::exit::wait_exit(&c, rx, Some(std::time::Duration::from_secs(30))).await {
            return Err(EngineError::Internal(format!(
                "could not kill container {}",
                c.id
            )));
        }
    }
    let _op = c.op.lock().await;
    if c.removed.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return Ok(());
    }
    if let Err(illegal) = c.apply(Transition::Remove) {
        c.removed.store(false, std::sync::atomic::Ordering::SeqCst);
        return Err(EngineError::Conflict(illegal.to_string()));
    }
    let id = c.id.clone();
    let rootfs = ctx.rootfs(&id);
    let _ = ctx.host.kernel.unmount(&rootfs);
    let runtime = c.rec.lock().unwrap().runtime_path.clone();
    let (images, cid) = (ctx.images.clone(), id.clone());
    let remove_layer = blocking(move || Ok(images.remove_rw_layer(&cid)?));
    let delete_runtime_state = async {
        // The shim runs `runtime delete` before it reports the exit; the state is left only
        // when the shim died first.
        if ctx.runc_root().join(&id).exists() {
            crate::oci_runtime::runtime_delete(ctx, &runtime, &id).await;
        }
    };
    let (layer_removed, ()) = tokio::join!(remove_layer, delete_runtime_state);
    if let Err(e) = layer_removed {
        // As dockerd: a removal that failed half way leaves the container dead; another
        // removal may try again.
        let _ = c.apply(Transition::RemoveFailed);
        let _ = ctx.persist(&c);
        c.removed.store(false, std::sync::atomic::Ordering::SeqCst);
        return Err(e);
    }
    let _ = std::fs::remove_dir_all(ctx.container_dir(&id));
    let _ = std::fs::remove_dir_all(ctx.bundle_dir(&id));
    let _ = std::fs::remove_dir_all(ctx.shim_dir(&id));
    ctx.containers.lock().unwrap().remove(&id);
    if opts.volumes {
        crate::volumes::remove_anonymous_volumes(ctx, &c.record());
    }
    ctx.container_event(&c, "destroy", &[]);
    ctx.execs
        .lock()
        .unwrap()
        .retain(|_, e| e.container_id != id);
    let code = c.rec.lock().unwrap().state.exit_code;
    c.notify_waiters(
        true,
        &WaitResponse {
            status_code: code,
            error: None,
        },
    );
    Ok(())
}
