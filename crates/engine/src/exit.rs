//! The one exit path: the reader of a container's shim, `finish` (which releases what the
//! container held and records the exit), and the restart policy's back-off. What comes after
//! an exit that needs a higher service (a restart, an auto-remove) is handed to the engine as
//! a [`crate::context::Followup`].

use std::sync::Arc;

use berth_api::*;
use berth_shim::protocol::{ExitRecord, Frame};

use crate::container::{Container, ShimFrame};
use crate::context::{Context, Followup};
use crate::lifecycle::{Status, Transition};
use crate::restart::{next_delay, should_restart};
use crate::shim_client;
use crate::util;
use crate::StreamKind;
use std::time::Duration;

/// Reads frames from a container's shim until it goes away.
pub(crate) fn spawn_shim_reader(
    ctx: &Arc<Context>,
    c: Arc<Container>,
    stream: tokio::net::UnixStream,
    first: Option<ShimFrame>,
) {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let (mut r, w) = stream.into_split();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(shim_client::pump_to_shim(
            w,
            c.to_shim_rx.clone(),
            first,
            stop_rx,
        ));
        let mut exit: Option<ExitRecord> = None;
        while let Some(frame) = shim_client::next_frame(&mut r, &c.id).await {
            match frame {
                Frame::Stdout(data) => c.publish(StreamKind::Stdout, data).await,
                Frame::Stderr(data) => c.publish(StreamKind::Stderr, data).await,
                Frame::Reply(res) => {
                    if let Some(tx) = c.start_reply.lock().unwrap().take() {
                        let _ = tx.send(res);
                    }
                }
                Frame::Exit(record) => {
                    exit = Some(record);
                    break;
                }
                other => tracing::debug!(
                    "ignoring a {:?} frame from the shim of {}",
                    other.kind(),
                    c.id
                ),
            }
        }
        let _ = stop_tx.send(true);
        c.start_reply.lock().unwrap().take();
        let sdir = ctx.shim_dir(&c.id);
        let exit = match exit {
            Some(e) => e,
            None => {
                // The shim closed without an EXIT frame: give it a moment to write exit.json.
                let mut found = None;
                for _ in 0..50 {
                    if let Some(e) = shim_client::read_exit(&sdir) {
                        found = Some(e);
                        break;
                    }
                    if !ctx.host.shims.alive(&sdir) {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                match found.or_else(|| shim_client::read_exit(&sdir)) {
                    Some(e) => e,
                    None if !c.running() => return,
                    None => ExitRecord {
                        exit_code: 255,
                        finished_at: ctx.now_rfc3339(),
                        oom_killed: false,
                    },
                }
            }
        };
        finish(&ctx, &c, exit, true).await;
    });
}

/// Records a container's exit and cleans up after it.
pub(crate) async fn finish(
    ctx: &Arc<Context>,
    c: &Arc<Container>,
    exit: ExitRecord,
    auto_remove_allowed: bool,
) {
    use std::sync::atomic::Ordering;
    if !c.running() || c.finishing.swap(true, Ordering::SeqCst) {
        return;
    }
    // Release what the container held before it reads as exited, as dockerd does: a
    // `stop` or `rm -f` that returns has its networks and rootfs released.
    c.close_subscribers();
    crate::networks::release_networks_of_exited(ctx, &c.id).await;
    let _ = ctx.host.kernel.unmount(&ctx.rootfs(&c.id));
    crate::volumes::release_volumes(ctx, &c.record());
    let exited = c.apply(Transition::Exit {
        exit_code: exit.exit_code,
        oom_killed: exit.oom_killed,
        at: if exit.finished_at.is_empty() {
            ctx.now_rfc3339()
        } else {
            exit.finished_at.clone()
        },
    });
    if let Err(illegal) = exited {
        // finish() runs only for a running container: nothing else can move it meanwhile.
        tracing::error!("container {}: {illegal}", c.id);
    }
    c.finishing.store(false, Ordering::SeqCst);
    // Published before anyone waiting on the exit wakes: `die` precedes `stop`.
    if exit.oom_killed {
        ctx.container_event(c, "oom", &[]);
    }
    let ran = {
        let r = c.rec.lock().unwrap();
        let started = util::parse_time(&r.state.started_at).unwrap_or(0.0);
        let finished = util::parse_time(&r.state.finished_at).unwrap_or(started);
        std::time::Duration::from_secs_f64((finished - started).max(0.0))
    };
    ctx.container_event(
        c,
        "die",
        &[
            ("exitCode", exit.exit_code.to_string()),
            ("execDuration", ran.as_secs().to_string()),
        ],
    );
    let _ = ctx.persist(c);
    c.exits.send_modify(|n| *n += 1);
    let resp = WaitResponse {
        status_code: exit.exit_code,
        error: None,
    };
    c.notify_waiters(false, &resp);
    if auto_remove_allowed && maybe_schedule_restart(ctx, c, ran) {
        return;
    }
    let auto_remove = c.rec.lock().unwrap().host_config.auto_remove
        && !c.restarting_by_user.load(Ordering::SeqCst);
    if auto_remove && auto_remove_allowed {
        ctx.follow_up(Followup::AutoRemove(c.id.clone()));
    }
}

/// Waits until the container's exit counter passes `seen`, or `timeout` elapses.
pub(crate) async fn wait_exit(
    c: &Container,
    mut rx: tokio::sync::watch::Receiver<u64>,
    timeout: Option<std::time::Duration>,
) -> bool {
    let fut = async {
        while c.running() {
            if rx.changed().await.is_err() {
                break;
            }
        }
    };
    match timeout {
        Some(t) => tokio::time::timeout(t, fut).await.is_ok(),
        None => {
            fut.await;
            true
        }
    }
}

/// Called from the exit path: restarts the container after its back-off, unless the
/// user stops, kills or removes it meanwhile.
pub(crate) fn maybe_schedule_restart(
    ctx: &Arc<Context>,
    c: &Arc<Container>,
    ran: Duration,
) -> bool {
    let delay = {
        let mut r = c.rec.lock().unwrap();
        if r.host_config.auto_remove
            || !should_restart(
                &r.host_config.restart_policy,
                r.state.exit_code,
                r.restart_count,
                r.manually_stopped,
            )
        {
            return false;
        }
        if r.state.apply(Transition::ScheduleRestart).is_err() {
            return false;
        }
        let mut d = c.restart_delay.lock().unwrap();
        *d = next_delay(*d, ran);
        *d
    };
    let _ = ctx.persist(c);
    let ctx = ctx.clone();
    let c = c.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let go = {
            let r = c.rec.lock().unwrap();
            r.state.status == Status::Restarting && !r.manually_stopped
        } && !c.removed.load(std::sync::atomic::Ordering::SeqCst);
        if go {
            ctx.follow_up(Followup::Restart(c));
        }
    });
    true
}
