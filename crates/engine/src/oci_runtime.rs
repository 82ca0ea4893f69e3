//! The OCI runtime's command line (`runc`, `berth-runtime`): kill, pause, resume, update and
//! delete, run against the engine's runtime root through the [`crate::host::RuntimeCli`] seam.

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;

use crate::container::Container;
use crate::context::Context;
use crate::lifecycle::{Status, Transition};
use crate::{EngineError, Result};

/// Runs `runtime --root R ARGS…` (with `stdin` when given).
async fn run(
    ctx: &Context,
    runtime: &Path,
    args: &[&str],
    stdin: Option<Vec<u8>>,
) -> Result<std::process::Output> {
    let mut argv: Vec<OsString> = vec!["--root".into(), ctx.runc_root().into()];
    argv.extend(args.iter().map(OsString::from));
    ctx.host
        .runtime
        .run(runtime, argv, stdin)
        .await
        .map_err(|e| EngineError::Internal(format!("running {}: {e}", runtime.display())))
}

/// `runtime delete --force ID`; what is left of a container the shim did not clean up.
pub(crate) async fn runtime_delete(ctx: &Arc<Context>, runtime: &Path, id: &str) {
    let _ = run(ctx, runtime, &["delete", "--force", id], None).await;
}

/// `runtime update --resources -` with the OCI `linux.resources` JSON.
pub(crate) async fn runtime_update(
    ctx: &Arc<Context>,
    c: &Container,
    resources: &serde_json::Value,
) -> Result<()> {
    let runtime = c.rec.lock().unwrap().runtime_path.clone();
    let data = serde_json::to_vec(resources).unwrap_or_default();
    let out = run(
        ctx,
        &runtime,
        &["update", "--resources", "-", &c.id],
        Some(data),
    )
    .await?;
    if out.status.success() {
        Ok(())
    } else {
        Err(EngineError::Internal(format!(
            "Cannot update container {}: {}",
            c.id,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Runs `runtime --root R ARGS…` for container `c`; the runtime's stderr is the error.
pub(crate) async fn runtime_command(
    ctx: &Arc<Context>,
    c: &Container,
    args: &[&str],
) -> Result<()> {
    let runtime = c.rec.lock().unwrap().runtime_path.clone();
    let out = run(ctx, &runtime, args, None).await?;
    if out.status.success() {
        Ok(())
    } else {
        Err(EngineError::Internal(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

/// Thaws a paused container (a frozen process cannot act on a signal).
pub(crate) async fn resume_if_paused(ctx: &Arc<Context>, c: &Container) -> Result<()> {
    if c.status() != Status::Paused {
        return Ok(());
    }
    runtime_command(ctx, c, &["resume", &c.id]).await?;
    c.apply(Transition::Unpause)
        .map_err(|e| EngineError::Conflict(e.to_string()))?;
    ctx.persist(c)
}

/// Sends `signal` to the container's process (thawing it first); a container that is already
/// gone is not an error.
pub(crate) async fn runtime_kill(ctx: &Arc<Context>, c: &Container, signal: i32) -> Result<()> {
    if signal == libc::SIGKILL {
        // A client that stopped reading must not hold the exit back (`Container::publish`).
        c.output_release.send_replace(true);
    }
    resume_if_paused(ctx, c).await?;
    let runtime = c.rec.lock().unwrap().runtime_path.clone();
    let out = run(ctx, &runtime, &["kill", &c.id, &signal.to_string()], None).await?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if !c.running() || msg.contains("not running") || msg.contains("does not exist") {
            return Ok(());
        }
        return Err(EngineError::Internal(format!(
            "Cannot kill container: {}: {msg}",
            c.id
        )));
    }
    Ok(())
}
