//! `docker version` and `docker info`.

use std::path::Path;
use std::sync::Arc;

use berth_api::*;

use crate::container::Container;
use crate::context::Context;

pub(crate) async fn version() -> SystemVersion {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let arch = crate::seccomp::Target::host_arch().to_string();
    SystemVersion {
        platform: serde_json::json!({"Name": "berth"}),
        components: vec![ComponentVersion {
            name: "Engine".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            details: None,
        }],
        version: env!("CARGO_PKG_VERSION").into(),
        api_version: API_VERSION.into(),
        min_api_version: MIN_API_VERSION.into(),
        git_commit: "berth".into(),
        go_version: "rust".into(),
        os: "linux".into(),
        arch,
        kernel_version: kernel,
        build_time: String::new(),
    }
}

pub(crate) async fn info(ctx: &Arc<Context>) -> SystemInfo {
    let (mut running, mut stopped) = (0, 0);
    let all: Vec<Arc<Container>> = ctx.containers.lock().unwrap().values().cloned().collect();
    for c in &all {
        if c.running() {
            running += 1
        } else {
            stopped += 1
        }
    }
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let mem_total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<i64>().ok())
        })
        .unwrap_or(0)
        * 1024;
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_default();
    let runtimes: serde_json::Map<String, serde_json::Value> = ctx
        .config
        .runtimes
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::json!({"path": v})))
        .collect();
    SystemInfo {
        id: String::new(),
        containers: all.len() as i64,
        containers_running: running,
        containers_stopped: stopped,
        images: ctx.images.count() as i64,
        driver: "overlay2".into(),
        driver_status: vec![vec!["Backing Filesystem".into(), "extfs".into()]],
        memory_limit: true,
        swap_limit: true,
        cpu_cfs_period: true,
        cpu_cfs_quota: true,
        cpu_shares: true,
        cpu_set: true,
        pids_limit: true,
        ipv4_forwarding: true,
        logging_driver: ctx.config.log_driver.clone(),
        cgroup_driver: "cgroupfs".into(),
        cgroup_version: if v2 { "2" } else { "1" }.into(),
        kernel_version: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .into(),
        operating_system: os,
        os_version: String::new(),
        os_type: "linux".into(),
        architecture: std::env::consts::ARCH.into(),
        ncpu: std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1),
        mem_total,
        docker_root_dir: ctx.config.data_root.display().to_string(),
        name: nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default(),
        server_version: env!("CARGO_PKG_VERSION").into(),
        runtimes: serde_json::Value::Object(runtimes),
        default_runtime: ctx.config.default_runtime.clone(),
        live_restore_enabled: ctx.config.live_restore,
        isolation: String::new(),
        init_binary: ctx.config.init_path.display().to_string(),
        security_options: vec!["name=seccomp,profile=builtin".into()],
        swarm: serde_json::json!({
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": false,
            "Error": "",
            "RemoteManagers": null
        }),
        system_time: ctx.now_rfc3339(),
        ..Default::default()
    }
}
