//! What the engine does when it opens: load container records, reconnect to the shims of the
//! containers that still run, record the exits that happened while the daemon was down, remove
//! `--rm` leftovers, finish or undo the operations a dead daemon left in flight, and start the
//! containers whose restart policy says so.

use std::sync::Arc;

use berth_shim::protocol::ExitRecord;

use crate::container::{Container, ContainerRecord};
use crate::context::Context;
use crate::shim_client;

/// Loads container records and reconciles them with what the shims say.
pub(crate) async fn restore(ctx: &Arc<Context>) {
    let dir = ctx.config.data_root.join("containers");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut gone_auto_remove = Vec::new();
    for e in entries.flatten() {
        let path = e.path().join("config.v2.json");
        // A directory without a record (or with an empty one: an `--rm` container's record
        // is not fsynced) is a create that never finished.
        let Some(data) = std::fs::read(&path).ok().filter(|d| !d.is_empty()) else {
            let _ = ctx.host.kernel.unmount(&e.path().join("rootfs"));
            let _ = std::fs::remove_dir_all(e.path());
            continue;
        };
        let Ok(mut rec) = serde_json::from_slice::<ContainerRecord>(&data) else {
            tracing::warn!("skipping unreadable container record {}", path.display());
            continue;
        };
        // Older records were read into the current form; the next write stores it so.
        rec.version = crate::container::RECORD_VERSION;
        let c = Container::new(rec);
        ctx.containers
            .lock()
            .unwrap()
            .insert(c.id.clone(), c.clone());
        if c.running() {
            let sdir = ctx.shim_dir(&c.id);
            match shim_client::connect(&sdir).await {
                Ok(stream) if ctx.host.shims.alive(&sdir) => {
                    tracing::info!("reconnected to running container {}", c.id);
                    crate::volumes::adopt_volumes(ctx, &c.record());
                    crate::exit::spawn_shim_reader(ctx, c.clone(), stream, None);
                }
                _ => {
                    let exit = shim_client::read_exit(&sdir).unwrap_or(ExitRecord {
                        exit_code: 255,
                        finished_at: ctx.now_rfc3339(),
                        oom_killed: false,
                    });
                    tracing::info!(
                        "container {} exited ({}) while the daemon was down",
                        c.id,
                        exit.exit_code
                    );
                    crate::exit::finish(ctx, &c, exit, false).await;
                }
            }
        } else if ctx.host.kernel.is_mounted(&ctx.rootfs(&c.id)) {
            let _ = ctx.host.kernel.unmount(&ctx.rootfs(&c.id));
        }
        if !c.running() && c.rec.lock().unwrap().host_config.auto_remove {
            gone_auto_remove.push(c.id.clone());
        }
    }
    // As dockerd does: an `--rm` container that is not running when the daemon starts
    // (it exited, or was never started, while the daemon was down) is removed.
    for id in gone_auto_remove {
        tracing::info!("removing --rm container {id}, not running at start-up");
        crate::remove::auto_remove(ctx, &id).await;
    }
}

/// After the daemon started: containers whose policy brings them back are started.
pub(crate) async fn restart_on_boot(ctx: &Arc<Context>) {
    let todo: Vec<Arc<Container>> = ctx
        .containers
        .lock()
        .unwrap()
        .values()
        .filter(|c| {
            let r = c.rec.lock().unwrap();
            !r.state.running()
                && crate::restart::restart_on_boot(
                    &r.host_config.restart_policy,
                    r.state.exit_code,
                    r.restart_count,
                    r.manually_stopped,
                )
        })
        .cloned()
        .collect();
    for c in todo {
        c.rec.lock().unwrap().manually_stopped = false;
        if let Err(e) = crate::start::start_by_policy(ctx, &c).await {
            tracing::warn!("starting {} for its restart policy: {e}", c.id);
        }
    }
}

/// Finishes or undoes what a dead daemon's operations left; runs once at open, after the
/// containers were restored and before anything else can start an operation.
pub(crate) async fn finish_interrupted(ctx: &Arc<Context>) {
    for (path, op) in crate::inflight::leftovers(&ctx.config.data_root) {
        match op {
            Some(crate::inflight::Operation::CommitPause { container }) => {
                thaw(ctx, &container).await
            }
            Some(crate::inflight::Operation::BuildStep { name }) => {
                remove_build_step(ctx, &name).await
            }
            None => tracing::warn!("dropping unreadable in-flight entry {}", path.display()),
        }
        let _ = std::fs::remove_file(&path);
    }
    crate::build::sweep_scratch_at_open(ctx);
    remove_unowned_rw_layers(ctx).await;
}

/// A commit froze `id` and died before thawing it.
async fn thaw(ctx: &Arc<Context>, id: &str) {
    let Ok(c) = ctx.lookup(id) else {
        return;
    };
    if c.status() == crate::lifecycle::Status::Paused {
        match crate::control::container_unpause(ctx, id).await {
            Ok(()) => tracing::info!("thawed container {id}, frozen by an interrupted commit"),
            Err(e) => tracing::warn!("thawing container {id} after an interrupted commit: {e}"),
        }
    } else if c.running() {
        // The daemon may have died between the runtime's freeze and the record of it: the
        // record says running, the cgroup is frozen. Resuming a running container is refused
        // by the runtime, harmlessly.
        match crate::oci_runtime::runtime_command(ctx, &c, &["resume", &c.id]).await {
            Ok(()) => tracing::info!("thawed container {id}, frozen by an interrupted commit"),
            Err(e) => tracing::debug!("resume of {id} after an interrupted commit: {e}"),
        }
    }
}

/// A build step's container outlived its build.
async fn remove_build_step(ctx: &Arc<Context>, name: &str) {
    if ctx.lookup(name).is_err() {
        return;
    }
    let opts = crate::types::RemoveOptions {
        force: true,
        volumes: true,
        link: false,
    };
    match crate::remove::container_remove(ctx, name, opts).await {
        Ok(()) => tracing::info!("removed build container {name} of an interrupted build"),
        Err(e) => tracing::warn!("removing build container {name} of an interrupted build: {e}"),
    }
}

/// Writable layers whose container is gone: a build's image mounts (`build-…`) and the layer
/// of a create or remove that died half-way.
async fn remove_unowned_rw_layers(ctx: &Arc<Context>) {
    // A container directory whose record did not load still owns its layer: only layers with
    // no container directory at all are removed.
    let mut owned: std::collections::BTreeSet<String> =
        ctx.containers.lock().unwrap().keys().cloned().collect();
    if let Ok(rd) = std::fs::read_dir(ctx.config.data_root.join("containers")) {
        owned.extend(
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string)),
        );
    }
    let images = ctx.images.clone();
    let stale: Vec<String> = images
        .rw_layer_names()
        .into_iter()
        .filter(|n| !owned.contains(n))
        .collect();
    for name in stale {
        let images = images.clone();
        let n = name.clone();
        match tokio::task::spawn_blocking(move || images.remove_rw_layer(&n)).await {
            Ok(Ok(())) => tracing::info!("removed writable layer {name}, owned by no container"),
            Ok(Err(e)) => tracing::warn!("removing writable layer {name}: {e}"),
            Err(e) => tracing::warn!("removing writable layer {name}: {e}"),
        }
    }
}
