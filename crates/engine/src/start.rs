//! `docker start`: mounts the root filesystem, writes the per-container `/etc` files, builds
//! the OCI bundle, launches the shim, joins the networks, and records the start; a failed
//! start is recorded as an exit (126/127/128, as dockerd) and leaves nothing mounted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api::*;
use berth_shim::protocol::Frame;
use tokio::sync::oneshot;

use crate::container::Container;
use crate::context::{blocking, internal, rlimit_hard, Context, Followup};
use crate::lifecycle::Transition;
use crate::shim_client::{self, ShimLaunch};
use crate::{spec, user, EngineError, Result};

pub(crate) async fn container_start(ctx: &Arc<Context>, key: &str) -> Result<()> {
    let c = ctx.lookup(key)?;
    let _op = c.op.lock().await;
    if c.removed.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(EngineError::NotFound(format!("No such container: {key}")));
    }
    if c.running() {
        return Err(EngineError::NotModified("container already started".into()));
    }
    c.rec.lock().unwrap().manually_stopped = false;
    match start_locked(ctx, &c).await {
        Ok(()) => {
            ctx.container_event(&c, "start", &[]);
            crate::health::start_health_monitor(ctx, &c);
            Ok(())
        }
        Err(e) => {
            if c.running() {
                // The shim ran the container and will report its exit; finish() records it.
                let rx = c.exits.subscribe();
                crate::exit::wait_exit(&c, rx, Some(std::time::Duration::from_secs(10))).await;
            }
            let _ = ctx.host.kernel.unmount(&ctx.rootfs(&c.id));
            if !c.running() {
                crate::volumes::release_volumes(ctx, &c.record());
            }
            let code = match &e {
                EngineError::InvalidArgument(m) if m.contains("permission denied") => 126,
                EngineError::InvalidArgument(_) => 127,
                _ => 128,
            };
            let auto_remove = {
                let mut r = c.rec.lock().unwrap();
                let failed = Transition::StartFailed {
                    exit_code: code,
                    error: e.to_string(),
                };
                if let Err(illegal) = r.state.apply(failed) {
                    tracing::warn!("container {}: {illegal}", c.id);
                }
                r.host_config.auto_remove
            };
            let _ = ctx.persist(&c);
            // As dockerd: a failed start ends attach sessions and answers waiters.
            c.close_subscribers();
            c.notify_waiters(
                false,
                &WaitResponse {
                    status_code: code,
                    error: None,
                },
            );
            if auto_remove {
                ctx.follow_up(Followup::AutoRemove(c.id.clone()));
            }
            Err(e)
        }
    }
}

async fn start_locked(ctx: &Arc<Context>, c: &Arc<Container>) -> Result<()> {
    c.output_release.send_replace(false);
    let rec = c.record();
    let id = rec.id.clone();
    let rootfs = ctx.rootfs(&id);
    // Root filesystem.
    let (images, cid) = (ctx.images.clone(), id.clone());
    let m = blocking(move || Ok(images.rw_layer_mount(&cid)?)).await?;
    std::fs::create_dir_all(&rootfs).map_err(internal("creating rootfs mount point"))?;
    if ctx.host.kernel.is_mounted(&rootfs) {
        let _ = ctx.host.kernel.unmount(&rootfs);
    }
    ctx.host
        .kernel
        .mount(&m.fstype, &m.source, &rootfs, &m.options)
        .map_err(internal("mounting container root filesystem"))?;
    // Identity and the per-container /etc files.
    let u = user::lookup_in_container(&rec.config.user, &rec.host_config.group_add, rootfs.clone())
        .await?;
    let dir = ctx.container_dir(&id);
    let host_net = rec.host_config.network_mode == "host";
    let hostname = spec::hostname(&id, &rec.config);
    let etc_files = write_etc_files(&dir, &hostname, host_net, &rec.host_config)?;
    let init_path = if rec.host_config.init == Some(true) {
        Some(ctx.config.init_path.as_path())
    } else {
        None
    };
    if let Some(p) = init_path {
        if !p.exists() {
            return Err(EngineError::Internal(format!(
                "init binary {} not found",
                p.display()
            )));
        }
    }
    let mut args = vec![rec.path.clone()];
    args.extend(rec.args.iter().cloned());
    let hard = rlimit_hard;
    let shared_netns = crate::networks::shared_netns(ctx, &rec.host_config.network_mode)?;
    let volume_binds = crate::volumes::mount_volumes(ctx, &rec, &rootfs)?;
    let spec = spec::build(&spec::SpecInput {
        id: &id,
        netns_path: shared_netns.clone(),
        config: &rec.config,
        host: &rec.host_config,
        rootfs: &rootfs,
        args,
        user: u,
        etc_files,
        volumes: volume_binds,
        init_path,
        default_ulimits: &ctx.config.default_ulimits,
        rlimit_hard: &hard,
        kernel: ctx.kernel,
        cap_bounding: ctx.cap_bounding,
    })
    .map_err(EngineError::InvalidArgument)?;
    // Docker creates missing bind-mount sources (`-v /new/dir:/x`).
    for b in &rec.host_config.binds {
        if let Ok(b) = spec::parse_bind(b) {
            if !Path::new(&b.source).exists() {
                std::fs::create_dir_all(&b.source)
                    .map_err(internal("creating bind mount source"))?;
            }
        }
    }
    let bundle = ctx.bundle_dir(&id);
    std::fs::create_dir_all(&bundle).map_err(internal("creating bundle"))?;
    std::fs::write(bundle.join("config.json"), spec::to_json(&spec))
        .map_err(internal("writing config.json"))?;
    // The shim.
    let sdir = ctx.shim_dir(&id);
    // The previous run's shim reports the exit before it runs `runtime delete` and removes
    // its socket; a restart must not start the next one under its feet.
    ctx.host
        .wait_shim_gone(&sdir, std::time::Duration::from_secs(10))
        .await;
    let _ = std::fs::remove_dir_all(&sdir);
    let launch = ShimLaunch {
        shim_path: ctx.config.shim_path.clone(),
        id: id.clone(),
        state_dir: sdir.clone(),
        runtime: ctx.shim_runtime(&rec.runtime_path),
        runtime_root: ctx.runc_root(),
        bundle: Some(bundle),
        exec_process: None,
        log_path: if rec.log_path.is_empty() {
            None
        } else {
            Some(PathBuf::from(&rec.log_path))
        },
        log_rotation: crate::logs::rotation(&rec.host_config.log_config)
            .ok()
            .flatten(),
        tty: rec.config.tty,
        stdin: rec.config.open_stdin,
        cgroup: crate::spec::cgroups_path(&rec.host_config, &id)
            .ok()
            .map(|p| p.display().to_string()),
    };
    let pid = ctx.host.shims.launch(&launch).await?;
    // Joining a network brings `lo` up too.
    if !host_net && shared_netns.is_none() && rec.networks.is_empty() && pid > 0 {
        if let Err(e) = ctx.host.kernel.loopback_up(pid as i32) {
            tracing::warn!("bringing up lo in {id}: {e}");
        }
    }
    if let Err(e) = crate::networks::connect_container(ctx, c, pid).await {
        crate::oci_runtime::runtime_delete(ctx, &rec.runtime_path, &id).await;
        return Err(e);
    }
    let stream = match shim_client::connect(&sdir).await {
        Ok(s) => s,
        Err(e) => {
            crate::networks::disconnect_container(ctx, &id).await;
            crate::oci_runtime::runtime_delete(ctx, &rec.runtime_path, &id).await;
            return Err(EngineError::Internal(format!("connecting to shim: {e}")));
        }
    };
    // Running from here on: the container may exit before START's reply is read, and
    // finish() must then see it as running to record that exit.
    {
        let started = c.apply(Transition::Start {
            pid,
            at: ctx.now_rfc3339(),
        });
        if let Err(illegal) = started {
            crate::networks::disconnect_container(ctx, &id).await;
            crate::oci_runtime::runtime_delete(ctx, &rec.runtime_path, &id).await;
            return Err(EngineError::Conflict(illegal.to_string()));
        }
    }
    let (tx, rx) = oneshot::channel();
    *c.start_reply.lock().unwrap() = Some(tx);
    crate::exit::spawn_shim_reader(ctx, c.clone(), stream, Some(Frame::Start));
    match rx.await {
        Ok(Ok(())) => {}
        Ok(Err(m)) => return Err(shim_client::classify_start_error(m)),
        Err(_) if !c.running() => {}
        Err(_) => {
            return Err(EngineError::Internal(
                "shim exited before starting the container".into(),
            ))
        }
    }
    ctx.persist(c)?;
    Ok(())
}

fn write_etc_files(
    dir: &Path,
    hostname: &str,
    host_net: bool,
    host: &HostConfig,
) -> Result<Vec<(PathBuf, &'static str)>> {
    let hosts_path = dir.join("hosts");
    let hn_path = dir.join("hostname");
    let resolv_path = dir.join("resolv.conf");
    let mut hosts = if host_net {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
            .to_string()
    };
    for h in &host.extra_hosts {
        if let Some((name, ip)) = h.split_once(':') {
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    std::fs::write(&hosts_path, hosts).map_err(internal("writing hosts"))?;
    std::fs::write(&hn_path, format!("{hostname}\n")).map_err(internal("writing hostname"))?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let want = crate::etc::DnsSettings {
        servers: &host.dns,
        search: &host.dns_search,
        options: &host.dns_options,
    };
    let resolv = if host_net
        && host.dns.is_empty()
        && host.dns_search.is_empty()
        && host.dns_options.is_empty()
    {
        host_resolv // the host's own resolvers, loopback ones included, work in its namespace
    } else {
        crate::etc::resolv_conf(&host_resolv, &want, false)
    };
    std::fs::write(&resolv_path, resolv).map_err(internal("writing resolv.conf"))?;
    Ok(vec![
        (hn_path, "/etc/hostname"),
        (hosts_path, "/etc/hosts"),
        (resolv_path, "/etc/resolv.conf"),
    ])
}

/// A start made by the restart policy (back-off over, or the daemon started).
pub(crate) async fn start_by_policy(ctx: &Arc<Context>, c: &Arc<Container>) -> Result<()> {
    match container_start(ctx, &c.id).await {
        Ok(()) | Err(EngineError::NotModified(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A restart the policy scheduled (its back-off is over): counts it and starts the container.
pub(crate) async fn restart_by_policy(ctx: &Arc<Context>, c: &Arc<Container>) {
    c.rec.lock().unwrap().restart_count += 1;
    if let Err(e) = start_by_policy(ctx, c).await {
        tracing::warn!("restarting {}: {e}", c.id);
        // The failed start left it exited; a start that failed before it began (the
        // container was meanwhile removed, say) leaves the policy's wait to cancel.
        let _ = c.apply(Transition::CancelRestart);
        let _ = ctx.persist(c);
    }
}
