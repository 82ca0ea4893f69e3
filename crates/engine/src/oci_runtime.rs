//! The OCI runtime's command line (`runc`, `berth-runtime`): kill, pause, resume, update and
//! delete, run against the engine's runtime root.

use std::path::Path;
use std::sync::Arc;

use crate::container::Container;
use crate::context::Context;
use crate::lifecycle::{Status, Transition};
use crate::{EngineError, Result};

pub(crate) async fn runtime_delete(ctx: &Arc<Context>, runtime: &Path, id: &str) {
    let _ = tokio::process::Command::new(runtime)
        .arg("--root")
        .arg(ctx.runc_root())
        .args(["delete", "--force", id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await;
}

/// Runs `runtime --root R ARGS…` for container `c`; the runtime's stderr is the error.
/// `runtime update --resources -` with the OCI `linux.resources` JSON.
pub(crate) async fn runtime_update(
    ctx: &Arc<Context>,
    c: &Container,
    resources: &serde_json::Value,
) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let runtime = c.rec.lock().unwrap().runtime_path.clone();
    let mut child = tokio::process::Command::new(&runtime)
        .arg("--root")
        .arg(ctx.runc_root())
        .args(["update", "--resources", "-", &c.id])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| EngineError::Internal(format!("running {}: {e}", runtime.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin
            .write_all(&serde_json::to_vec(resources).unwrap_or_default())
            .await;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| EngineError::Internal(format!("running {}: {e}", runtime.display())))?;
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

pub(crate) async fn runtime_command(
    ctx: &Arc<Context>,
    c: &Container,
    args: &[&str],
) -> Result<()> {
    let runtime = c.rec.lock().unwrap().runtime_path.clone();
    let out = tokio::process::Command::new(&runtime)
        .arg("--root")
        .arg(ctx.runc_root())
        .args(args)
        .output()
        .await
        .map_err(|e| EngineError::Internal(format!("running {}: {e}", runtime.display())))?;
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

pub(crate) async fn runtime_kill(ctx: &Arc<Context>, c: &Container, signal: i32) -> Result<()> {
    resume_if_paused(ctx, c).await?;
    let runtime = c.rec.lock().unwrap().runtime_path.clone();
    let out = tokio::process::Command::new(&runtime)
        .arg("--root")
        .arg(ctx.runc_root())
        .args(["kill", &c.id, &signal.to_string()])
        .output()
        .await
        .map_err(|e| EngineError::Internal(format!("running {}: {e}", runtime.display())))?;
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
