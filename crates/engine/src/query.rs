//! Read-only views of containers: `ps` (with Docker's filters), inspect, and wait.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_api::*;
use tokio::sync::oneshot;

use crate::container::{Container, ContainerRecord};
use crate::context::{blocking, Context};
use crate::lifecycle::Status;
use crate::util::label_matches;
use crate::util::{self, ZERO_TIME};
use crate::{spec, EngineError, ListOptions, Result, WaitCondition};

fn summary(ctx: &Arc<Context>, c: &Container) -> ContainerSummary {
    let r = c.rec.lock().unwrap();
    let now = ctx.now_secs();
    let (net_settings, ports) = crate::networks::network_settings(ctx, &r);
    let status = if r.state.status == Status::Restarting {
        format!(
            "Restarting ({}) {} ago",
            r.state.exit_code,
            util::human_duration(
                now - util::parse_time(&r.state.finished_at).unwrap_or(now as f64) as i64
            )
        )
    } else if r.state.running() {
        format!(
            "Up {}{}",
            util::human_duration(
                now - util::parse_time(&r.state.started_at).unwrap_or(now as f64) as i64
            ),
            if r.state.status == Status::Paused {
                " (Paused)"
            } else {
                match r.state.health.as_ref().map(|h| h.status.as_str()) {
                    Some("starting") => " (health: starting)",
                    Some("healthy") => " (healthy)",
                    Some("unhealthy") => " (unhealthy)",
                    _ => "",
                }
            }
        )
    } else if r.state.status == Status::Exited || r.state.finished_at != ZERO_TIME {
        format!(
            "Exited ({}) {} ago",
            r.state.exit_code,
            util::human_duration(
                now - util::parse_time(&r.state.finished_at).unwrap_or(now as f64) as i64
            )
        )
    } else {
        "Created".into()
    };
    let mut command = r.path.clone();
    for a in &r.args {
        command.push(' ');
        command.push_str(a);
    }
    ContainerSummary {
        id: r.id.clone(),
        names: vec![r.name.clone()],
        image: r.config.image.clone(),
        image_id: r.image_id.clone(),
        command,
        created: util::parse_time(&r.created).unwrap_or(0.0) as i64,
        ports,
        labels: r.config.labels.clone(),
        state: r.state.status.as_str().into(),
        status,
        host_config: serde_json::json!({"NetworkMode": r.host_config.network_mode}),
        network_settings: serde_json::json!({"Networks": net_settings["Networks"]}),
        mounts: mount_points(ctx, &r),
        ..Default::default()
    }
}

pub(crate) async fn container_list(
    ctx: &Arc<Context>,
    opts: ListOptions,
) -> Result<Vec<ContainerSummary>> {
    for k in opts.filters.keys() {
        if ![
            "status",
            "name",
            "label",
            "ancestor",
            "id",
            "exited",
            "before",
            "since",
            "network",
            "volume",
            "health",
            "isolation",
            "is-task",
        ]
        .contains(&k.as_str())
        {
            return Err(EngineError::InvalidArgument(format!(
                "invalid filter '{k}'"
            )));
        }
    }
    if let Some(st) = opts.filters.get("status") {
        for s in st {
            if ![
                "created",
                "restarting",
                "running",
                "removing",
                "paused",
                "exited",
                "dead",
            ]
            .contains(&s.as_str())
            {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filter 'status={s}'"
                )));
            }
        }
    }
    let mut all: Vec<Arc<Container>> = ctx.containers.lock().unwrap().values().cloned().collect();
    all.sort_by_key(|c| std::cmp::Reverse(c.rec.lock().unwrap().created.clone()));
    let show_all = opts.all
        || opts.limit.is_some()
        || opts.filters.contains_key("status")
        || opts.filters.contains_key("exited");
    let mut ancestors: Vec<String> = Vec::new();
    if let Some(a) = opts.filters.get("ancestor") {
        for name in a {
            let (images, n) = (ctx.images.clone(), name.clone());
            if let Ok(img) = blocking(move || Ok(images.resolve(&n)?)).await {
                ancestors.push(img.id);
            }
        }
    }
    let mut out = Vec::new();
    for c in all {
        let r = c.record();
        if !show_all && !r.state.running() {
            continue;
        }
        let f = &opts.filters;
        if let Some(v) = f.get("status") {
            if !v.iter().any(|s| s == r.state.status.as_str()) {
                continue;
            }
        }
        if let Some(v) = f.get("name") {
            if !v.iter().any(|n| {
                r.name
                    .trim_start_matches('/')
                    .contains(n.trim_start_matches('/'))
            }) {
                continue;
            }
        }
        if let Some(v) = f.get("id") {
            if !v.iter().any(|p| r.id.starts_with(p.as_str())) {
                continue;
            }
        }
        if let Some(v) = f.get("label") {
            if !v.iter().all(|l| label_matches(l, &r.config.labels)) {
                continue;
            }
        }
        if let Some(v) = f.get("exited") {
            if r.state.running()
                || r.state.status != Status::Exited
                || !v
                    .iter()
                    .any(|e| e.parse::<i64>().ok() == Some(r.state.exit_code))
            {
                continue;
            }
        }
        if f.contains_key("ancestor")
            && !ancestors.contains(&r.image_id)
            && !f["ancestor"].contains(&r.config.image)
        {
            continue;
        }
        out.push(summary(ctx, &c));
    }
    if let Some(n) = opts.limit {
        out.truncate(n);
    }
    Ok(out)
}

pub(crate) async fn container_inspect(ctx: &Arc<Context>, key: &str) -> Result<ContainerInspect> {
    let c = ctx.lookup(key)?;
    let r = c.record();
    let dir = ctx.container_dir(&r.id);
    let execs: Vec<String> = ctx
        .execs
        .lock()
        .unwrap()
        .values()
        .filter(|e| e.container_id == r.id)
        .map(|e| e.id.clone())
        .collect();
    let (images, cid) = (ctx.images.clone(), r.id.clone());
    let m = blocking(move || Ok(images.rw_layer_mount(&cid)?))
        .await
        .ok();
    let mut gd = BTreeMap::new();
    if let Some(m) = m {
        for o in m.options {
            if let Some((k, v)) = o.split_once('=') {
                let key = match k {
                    "lowerdir" => "LowerDir",
                    "upperdir" => "UpperDir",
                    "workdir" => "WorkDir",
                    _ => continue,
                };
                gd.insert(key.to_string(), v.to_string());
            }
        }
        gd.insert("MergedDir".into(), ctx.rootfs(&r.id).display().to_string());
    }
    let state = r.state.to_wire();
    Ok(ContainerInspect {
        id: r.id.clone(),
        created: r.created.clone(),
        path: r.path.clone(),
        args: r.args.clone(),
        state,
        image: r.image_id.clone(),
        resolv_conf_path: dir.join("resolv.conf").display().to_string(),
        hostname_path: dir.join("hostname").display().to_string(),
        hosts_path: dir.join("hosts").display().to_string(),
        log_path: r.log_path.clone(),
        name: r.name.clone(),
        restart_count: r.restart_count,
        driver: "overlay2".into(),
        platform: "linux".into(),
        exec_ids: if execs.is_empty() { None } else { Some(execs) },
        host_config: r.host_config.clone(),
        graph_driver: GraphDriver {
            name: "overlay2".into(),
            data: gd,
        },
        mounts: mount_points(ctx, &r),
        config: r.config.clone(),
        network_settings: crate::networks::network_settings(ctx, &r).0,
        ..Default::default()
    })
}

/// Validates at once (NotFound); the receiver yields when the condition is met.
pub(crate) async fn container_wait(
    ctx: &Arc<Context>,
    key: &str,
    condition: WaitCondition,
) -> Result<oneshot::Receiver<WaitResponse>> {
    let c = ctx.lookup(key)?;
    let (tx, rx) = oneshot::channel();
    let running = c.running();
    if condition == WaitCondition::NotRunning && !running {
        let code = c.rec.lock().unwrap().state.exit_code;
        let _ = tx.send(WaitResponse {
            status_code: code,
            error: None,
        });
    } else {
        c.waiters.lock().unwrap().push((condition, tx));
    }
    Ok(rx)
}

/// `Mounts`: the bind and tmpfs mounts asked for, then the volumes.
fn mount_points(ctx: &Arc<Context>, r: &ContainerRecord) -> Vec<MountPoint> {
    let mut out = host_mount_points(&r.host_config);
    out.extend(crate::volumes::volume_mount_points(ctx, r));
    out
}

fn host_mount_points(h: &HostConfig) -> Vec<MountPoint> {
    let mut out = Vec::new();
    for b in &h.binds {
        if let Ok(b) = spec::parse_bind(b) {
            out.push(MountPoint {
                kind: "bind".into(),
                source: b.source,
                destination: b.destination,
                mode: if b.read_only {
                    "ro".into()
                } else {
                    String::new()
                },
                rw: !b.read_only,
                propagation: b.propagation.unwrap_or_else(|| "rprivate".into()),
                ..Default::default()
            });
        }
    }
    for m in h.mounts.iter().filter(|m| m.kind != "volume") {
        out.push(MountPoint {
            kind: m.kind.clone(),
            source: m.source.clone(),
            destination: m.target.clone(),
            rw: !m.read_only,
            propagation: if m.kind == "bind" {
                "rprivate".into()
            } else {
                String::new()
            },
            ..Default::default()
        });
    }
    out
}
