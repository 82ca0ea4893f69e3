//! `docker create`: validates the whole request (name, logging, restart policy, runtime, the
//! OCI spec it would produce) before anything is made, reserves the name, makes the volumes,
//! the writable layer and the record, and undoes each of them when a later step fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api::*;

use crate::container::{Container, ContainerRecord};
use crate::context::{blocking, internal, rlimit_hard, Context};
use crate::lifecycle::Lifecycle;
use crate::util;
use crate::{spec, user, EngineError, Result};

pub(crate) async fn container_create(
    ctx: &Arc<Context>,
    name: Option<String>,
    req: ContainerCreateRequest,
) -> Result<ContainerCreateResponse> {
    let ContainerCreateRequest {
        config: mut cfg,
        host_config: mut host,
        networking_config,
    } = req;
    let name = match name.filter(|n| !n.is_empty()) {
        Some(n) => {
            if !util::valid_name(&n) {
                return Err(EngineError::InvalidArgument(format!(
                    "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
            format!("/{}", n.trim_start_matches('/'))
        }
        None => String::new(),
    };
    if cfg.image.is_empty() {
        return Err(EngineError::InvalidArgument(
            "config cannot be empty in order to create a container".into(),
        ));
    }
    let endpoints = networking_config
        .map(|n| n.endpoints_config)
        .unwrap_or_default();
    let networks = crate::networks::plan_networks(ctx, &mut host, &endpoints)?;
    if host.log_config.kind.is_empty() {
        host.log_config.kind = ctx.config.log_driver.clone();
    }
    // Shown by inspect as dockerd shows its default (berth's is private on v1 and v2).
    if host.cgroupns_mode.is_empty() {
        host.cgroupns_mode = "private".into();
    }
    if !["json-file", "local", "none"].contains(&host.log_config.kind.as_str()) {
        return Err(EngineError::InvalidArgument(format!(
            "logging driver {:?} is not supported",
            host.log_config.kind
        )));
    }
    crate::logs::rotation(&host.log_config).map_err(EngineError::InvalidArgument)?;
    crate::restart::validate(&host.restart_policy)?;
    if !host.restart_policy.name.is_empty() && host.restart_policy.name != "no" && host.auto_remove
    {
        return Err(EngineError::InvalidArgument(
            "conflicting options: cannot specify both --restart and --rm".into(),
        ));
    }
    let runtime_path = ctx.runtime_path(&host.runtime)?;
    if host.runtime.is_empty() {
        host.runtime = ctx.config.default_runtime.clone();
    }

    let image_name = cfg.image.clone();
    let images = ctx.images.clone();
    let img = blocking(move || Ok(images.resolve(&image_name)?)).await?;
    merge_image_config(&mut cfg, &img.config);
    let mut args: Vec<String> = cfg
        .entrypoint
        .0
        .iter()
        .chain(cfg.cmd.0.iter())
        .cloned()
        .collect();
    if args.is_empty() {
        return Err(EngineError::InvalidArgument("No command specified".into()));
    }
    let path = args.remove(0);

    let id = util::new_id();
    // Validate the whole runtime spec now: bad input is refused before anything is made.
    let probe_user = user::ResolvedUser::default();
    let hard = rlimit_hard;
    spec::build(&spec::SpecInput {
        id: &id,
        netns_path: None,
        config: &cfg,
        host: &host,
        rootfs: Path::new("/"),
        args: vec![path.clone()],
        user: probe_user,
        etc_files: vec![],
        volumes: vec![],
        init_path: None,
        default_ulimits: &ctx.config.default_ulimits,
        rlimit_hard: &hard,
        kernel: ctx.kernel,
        cap_bounding: ctx.cap_bounding,
    })
    .map_err(EngineError::InvalidArgument)?;

    let name = if name.is_empty() {
        reserve_random_name(ctx)
    } else {
        let mut reserved = ctx.reserved_names.lock().unwrap();
        if let Ok(other) = ctx.lookup(&name) {
            if other.name() == name {
                return Err(name_conflict(&name, &other.id));
            }
        }
        if reserved.contains(&name) {
            return Err(name_conflict(&name, "(being created)"));
        }
        reserved.push(name.clone());
        name
    };
    let result = match crate::volumes::create_volumes(ctx, &cfg, &host) {
        Ok((volumes, made)) => {
            let r = create_on_disk(
                ctx,
                &id,
                &name,
                &path,
                args,
                cfg,
                host,
                img.id.clone(),
                runtime_path,
                networks,
                volumes,
            )
            .await;
            if r.is_err() {
                crate::volumes::remove_volumes_quietly(ctx, &made);
            }
            r
        }
        Err(e) => Err(e),
    };
    ctx.reserved_names.lock().unwrap().retain(|n| *n != name);
    result?;
    Ok(ContainerCreateResponse {
        id,
        warnings: vec![],
    })
}

/// Reserves a random name in use by no container and by no create in flight; after a few
/// collisions a digit is appended, as dockerd does.
fn reserve_random_name(ctx: &Arc<Context>) -> String {
    let mut reserved = ctx.reserved_names.lock().unwrap();
    for attempt in 0.. {
        let mut n = format!("/{}", util::random_name());
        if attempt >= 5 {
            n.push_str(&(attempt % 10).to_string());
        }
        if !reserved.contains(&n) && ctx.lookup(&n).map(|c| c.name() != n).unwrap_or(true) {
            reserved.push(n.clone());
            return n;
        }
    }
    unreachable!("the loop returns")
}

#[allow(clippy::too_many_arguments)]
async fn create_on_disk(
    ctx: &Arc<Context>,
    id: &str,
    name: &str,
    path: &str,
    args: Vec<String>,
    cfg: ContainerConfig,
    host: HostConfig,
    image_id: String,
    runtime_path: PathBuf,
    networks: BTreeMap<String, EndpointSettings>,
    volumes: Vec<crate::VolumeMount>,
) -> Result<()> {
    let dir = ctx.container_dir(id);
    std::fs::create_dir_all(dir.join("rootfs"))
        .map_err(internal("creating container directory"))?;
    let (images, cid, iid) = (ctx.images.clone(), id.to_string(), image_id.clone());
    // An `--rm` container's layer goes with it: no fsyncs, a volatile overlay.
    let scratch = host.auto_remove;
    let made = blocking(move || {
        Ok(if scratch {
            images.create_scratch_rw_layer(&cid, &iid)?
        } else {
            images.create_rw_layer(&cid, &iid)?
        })
    });
    if let Err(e) = made.await {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    let log_path = if host.log_config.kind == "json-file" || host.log_config.kind == "local" {
        dir.join(format!("{id}-json.log")).display().to_string()
    } else {
        String::new()
    };
    let rec = ContainerRecord {
        id: id.to_string(),
        name: name.to_string(),
        created: ctx.now_rfc3339(),
        path: path.to_string(),
        args,
        config: cfg,
        host_config: host,
        image_id,
        version: crate::container::RECORD_VERSION,
        state: Lifecycle::created(),
        restart_count: 0,
        log_path,
        runtime_path,
        networks,
        volumes,
        manually_stopped: false,
    };
    let c = Container::new(rec);
    if let Err(e) = ctx.persist(&c) {
        let _ = ctx.images.remove_rw_layer(id);
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    ctx.containers
        .lock()
        .unwrap()
        .insert(id.to_string(), c.clone());
    ctx.container_event(&c, "create", &[]);
    Ok(())
}

fn name_conflict(name: &str, id: &str) -> EngineError {
    EngineError::Conflict(format!(
        "Conflict. The container name \"{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}

/// Fills what the request left empty from the image's config, as Docker does.
fn merge_image_config(cfg: &mut ContainerConfig, image: &ContainerConfig) {
    if cfg.entrypoint.0.is_empty() {
        cfg.entrypoint = image.entrypoint.clone();
        if cfg.cmd.0.is_empty() {
            cfg.cmd = image.cmd.clone();
        }
    }
    let mut env = image.env.clone();
    for kv in &cfg.env {
        let k = kv.split('=').next().unwrap_or("");
        env.retain(|e| e.split('=').next() != Some(k));
        env.push(kv.clone());
    }
    cfg.env = env;
    if cfg.working_dir.is_empty() {
        cfg.working_dir = image.working_dir.clone();
    }
    if cfg.user.is_empty() {
        cfg.user = image.user.clone();
    }
    if cfg.stop_signal.is_none() {
        cfg.stop_signal = image.stop_signal.clone();
    }
    for (k, v) in &image.labels {
        cfg.labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if cfg.healthcheck.is_none() {
        cfg.healthcheck = image.healthcheck.clone();
    }
    if cfg.exposed_ports.is_none() {
        cfg.exposed_ports = image.exposed_ports.clone();
    }
    if let Some(iv) = &image.volumes {
        let v = cfg.volumes.get_or_insert_with(BTreeMap::new);
        for (k, x) in iv {
            v.entry(k.clone()).or_insert_with(|| x.clone());
        }
    }
    if cfg.shell.is_none() {
        cfg.shell = image.shell.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_config_merge() {
        let img = ContainerConfig {
            cmd: StrList(vec!["sh".into()]),
            env: vec!["PATH=/bin".into(), "A=1".into()],
            working_dir: "/w".into(),
            ..Default::default()
        };
        let mut c = ContainerConfig {
            env: vec!["A=2".into()],
            ..Default::default()
        };
        merge_image_config(&mut c, &img);
        assert_eq!(c.cmd.0, vec!["sh"]);
        assert_eq!(c.env, vec!["PATH=/bin", "A=2"]);
        assert_eq!(c.working_dir, "/w");
        let img = ContainerConfig {
            entrypoint: StrList(vec!["/init".into()]),
            cmd: StrList(vec!["x".into()]),
            ..Default::default()
        };
        let mut c = ContainerConfig {
            entrypoint: StrList(vec!["/other".into()]),
            ..Default::default()
        };
        merge_image_config(&mut c, &img);
        assert!(c.cmd.0.is_empty(), "a new entrypoint drops the image's cmd");
    }
}
