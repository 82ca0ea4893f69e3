//! Stopping, killing, restarting, pausing and unpausing a container: the signals go through
//! the OCI runtime ([`crate::oci_runtime`]); the exit itself is recorded by the exit path
//! ([`crate::exit`]), which these operations wait on.

use std::sync::Arc;

use crate::container::Container;
use crate::context::Context;
use crate::lifecycle::{Status, Transition};
use crate::util;
use crate::{EngineError, Result};

/// `docker pause`: freezes every process of the container (the runtime's freezer).
pub(crate) async fn container_pause(ctx: &Arc<Context>, key: &str) -> Result<()> {
    let c = ctx.lookup(key)?;
    let _op = c.op.lock().await;
    let (running, paused) = {
        let r = c.rec.lock().unwrap();
        (r.state.running(), r.state.paused())
    };
    if !running {
        return Err(EngineError::Conflict(format!(
            "Container {} is not running",
            c.id
        )));
    }
    if paused {
        return Err(EngineError::Conflict(format!(
            "Container {} is already paused",
            c.id
        )));
    }
    crate::oci_runtime::runtime_command(ctx, &c, &["pause", &c.id]).await?;
    c.apply(Transition::Pause)
        .map_err(|e| EngineError::Conflict(e.to_string()))?;
    ctx.container_event(&c, "pause", &[]);
    ctx.persist(&c)
}

/// `docker unpause`.
pub(crate) async fn container_unpause(ctx: &Arc<Context>, key: &str) -> Result<()> {
    let c = ctx.lookup(key)?;
    let _op = c.op.lock().await;
    if c.status() != Status::Paused {
        return Err(EngineError::Conflict(format!(
            "Container {} is not paused",
            c.id
        )));
    }
    crate::oci_runtime::resume_if_paused(ctx, &c).await?;
    ctx.container_event(&c, "unpause", &[]);
    Ok(())
}

pub(crate) async fn container_stop(
    ctx: &Arc<Context>,
    key: &str,
    signal: Option<String>,
    timeout: Option<i64>,
) -> Result<()> {
    let c = ctx.lookup(key)?;
    if cancel_restart(ctx, &c) {
        return Ok(());
    }
    if !c.running() {
        return Err(EngineError::NotModified("container already stopped".into()));
    }
    mark_manually_stopped(ctx, &c);
    let (stop_signal, stop_timeout) = {
        let r = c.rec.lock().unwrap();
        (r.config.stop_signal.clone(), r.config.stop_timeout)
    };
    let sig_name = signal
        .filter(|s| !s.is_empty())
        .or(stop_signal)
        .unwrap_or_else(|| "SIGTERM".into());
    let sig = util::parse_signal(&sig_name)
        .ok_or_else(|| EngineError::InvalidArgument(format!("Invalid signal: {sig_name}")))?;
    let t = timeout.or(stop_timeout).unwrap_or(10);
    let rx = c.exits.subscribe();
    // A client that stopped reading must not hold the exit back (`Container::publish`).
    c.output_release.send_replace(true);
    crate::oci_runtime::runtime_kill(ctx, &c, sig).await?;
    ctx.container_event(&c, "kill", &[("signal", sig.to_string())]);
    let limit = if t < 0 {
        None
    } else {
        Some(std::time::Duration::from_secs(t as u64))
    };
    if !crate::exit::wait_exit(&c, rx.clone(), limit).await {
        crate::oci_runtime::runtime_kill(ctx, &c, 9).await?;
        exited_after_sigkill(&c, rx, std::time::Duration::from_secs(30)).await?;
    }
    ctx.container_event(&c, "stop", &[]);
    Ok(())
}

/// A container waiting out its restart back-off stays stopped; `true` if it was one.
pub(crate) fn cancel_restart(ctx: &Arc<Context>, c: &Container) -> bool {
    let mut r = c.rec.lock().unwrap();
    if r.state.apply(Transition::CancelRestart).is_err() {
        return false;
    }
    r.manually_stopped = true;
    drop(r);
    let _ = ctx.persist(c);
    true
}

fn mark_manually_stopped(ctx: &Arc<Context>, c: &Container) {
    c.rec.lock().unwrap().manually_stopped = true;
    let _ = ctx.persist(c);
}

pub(crate) async fn container_restart(
    ctx: &Arc<Context>,
    key: &str,
    signal: Option<String>,
    timeout: Option<i64>,
) -> Result<()> {
    use std::sync::atomic::Ordering;
    let c = ctx.lookup(key)?;
    c.restarting_by_user.store(true, Ordering::SeqCst);
    let restarted = async {
        match container_stop(ctx, key, signal, timeout).await {
            Ok(()) | Err(EngineError::NotModified(_)) => {}
            Err(e) => return Err(e),
        }
        crate::start::container_start(ctx, key).await
    }
    .await;
    c.restarting_by_user.store(false, Ordering::SeqCst);
    restarted?;
    ctx.container_event(&c, "restart", &[]);
    Ok(())
}

/// `signal`: name (`KILL`, `SIGKILL`) or number; default KILL. Conflict when not running.
pub(crate) async fn container_kill(
    ctx: &Arc<Context>,
    key: &str,
    signal: Option<String>,
) -> Result<()> {
    let c = ctx.lookup(key)?;
    let sig_name = signal
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "KILL".into());
    let sig = util::parse_signal(&sig_name)
        .ok_or_else(|| EngineError::InvalidArgument(format!("Invalid signal: {sig_name}")))?;
    if cancel_restart(ctx, &c) {
        return Ok(());
    }
    if !c.running() {
        return Err(EngineError::Conflict(format!(
            "Cannot kill container: {key}: Container {} is not running",
            c.id
        )));
    }
    mark_manually_stopped(ctx, &c);
    let exits = c.exits.subscribe();
    crate::oci_runtime::runtime_kill(ctx, &c, sig).await?;
    ctx.container_event(&c, "kill", &[("signal", sig.to_string())]);
    // As dockerd: a SIGKILL is answered once the container is seen exited, so that an
    // `inspect` right after `kill` shows it stopped.
    if sig == libc::SIGKILL {
        exited_after_sigkill(&c, exits, std::time::Duration::from_secs(10)).await?;
    }
    Ok(())
}

/// Waits (at most `limit`) for the exit a SIGKILL sent after `exits` was taken must bring.
async fn exited_after_sigkill(
    c: &Container,
    exits: tokio::sync::watch::Receiver<u64>,
    limit: std::time::Duration,
) -> Result<()> {
    if crate::exit::wait_exit(c, exits, Some(limit)).await {
        Ok(())
    } else {
        Err(EngineError::Internal(format!(
            "container {} did not exit after SIGKILL",
            c.id
        )))
    }
}
