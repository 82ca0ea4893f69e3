//! `rename` and `update`: a container's name, and the resource limits and restart policy of a
//! container that may be running (applied through the runtime's `update`).

use berth_api::HostConfig;
use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::{restart, spec, util, EngineError, Result};
use std::sync::Arc;

/// `POST /containers/{id}/update` body: the fields of `HostConfig` that can change. Absent
/// fields keep their value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateRequest {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    pub restart_policy: Option<berth_api::RestartPolicy>,
}

/// `{"Warnings": […]}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateResponse {
    pub warnings: Vec<String>,
}

/// As dockerd reads an update: zero values and empty strings mean "unchanged" (the docker
/// CLI sends every field).
fn normalise(u: &UpdateRequest) -> UpdateRequest {
    let nz = |v: Option<i64>| v.filter(|x| *x != 0);
    UpdateRequest {
        memory: nz(u.memory),
        memory_swap: nz(u.memory_swap),
        memory_reservation: nz(u.memory_reservation),
        nano_cpus: nz(u.nano_cpus),
        cpu_shares: nz(u.cpu_shares),
        cpu_period: nz(u.cpu_period),
        cpu_quota: nz(u.cpu_quota),
        cpuset_cpus: u.cpuset_cpus.clone().filter(|s| !s.is_empty()),
        cpuset_mems: u.cpuset_mems.clone().filter(|s| !s.is_empty()),
        pids_limit: u.pids_limit,
        blkio_weight: u.blkio_weight.filter(|w| *w != 0),
        restart_policy: u.restart_policy.clone().filter(|p| !p.name.is_empty()),
    }
}

/// The host config after an update, checked as at create.
pub fn apply(h: &HostConfig, u: &UpdateRequest) -> Result<HostConfig> {
    let u = &normalise(u);
    let mut n = h.clone();
    let set = |dst: &mut i64, v: Option<i64>| {
        if let Some(v) = v {
            *dst = v;
        }
    };
    set(&mut n.memory, u.memory);
    set(&mut n.memory_reservation, u.memory_reservation);
    if u.memory.is_some()
        && u.memory_swap.is_none()
        && n.memory_swap > 0
        && n.memory > n.memory_swap
    {
        return Err(EngineError::InvalidArgument(
            "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into(),
        ));
    }
    set(&mut n.memory_swap, u.memory_swap);
    if let Some(c) = u.nano_cpus {
        n.nano_cpus = c;
        if c > 0 {
            n.cpu_quota = 0;
            n.cpu_period = 0;
        }
    }
    if u.cpu_quota.is_some_and(|q| q > 0) || u.cpu_period.is_some_and(|p| p > 0) {
        if u.nano_cpus.is_some_and(|c| c > 0) {
            return Err(EngineError::InvalidArgument(
                "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set".into(),
            ));
        }
        n.nano_cpus = 0;
    }
    set(&mut n.cpu_quota, u.cpu_quota);
    set(&mut n.cpu_period, u.cpu_period);
    set(&mut n.cpu_shares, u.cpu_shares);
    if let Some(c) = &u.cpuset_cpus {
        n.cpuset_cpus = c.clone();
    }
    if let Some(m) = &u.cpuset_mems {
        n.cpuset_mems = m.clone();
    }
    if let Some(p) = u.pids_limit {
        n.pids_limit = Some(p);
    }
    if let Some(w) = u.blkio_weight.filter(|w| *w > 0) {
        n.blkio_weight = w;
    }
    if let Some(rp) = &u.restart_policy {
        restart::validate(rp)?;
        if n.auto_remove && !rp.name.is_empty() && rp.name != "no" {
            return Err(EngineError::InvalidArgument(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    .into(),
            ));
        }
        n.restart_policy = rp.clone();
    }
    spec::limits(&n).map_err(EngineError::InvalidArgument)?;
    Ok(n)
}

pub(crate) async fn container_update(
    ctx: &Arc<Context>,
    key: &str,
    u: UpdateRequest,
) -> Result<UpdateResponse> {
    let c = ctx.lookup(key)?;
    let _op = c.op.lock().await;
    let (old, running) = {
        let r = c.rec.lock().unwrap();
        (r.host_config.clone(), r.state.running())
    };
    let new = apply(&old, &u)?;
    if running {
        let limits = spec::limits(&new).map_err(EngineError::InvalidArgument)?;
        let mut res = serde_json::to_value(limits).unwrap_or_default();
        // A limit taken away goes back to "unlimited".
        if new.pids_limit.unwrap_or(0) <= 0 && old.pids_limit.unwrap_or(0) > 0 {
            res["pids"] = serde_json::json!({"limit": -1});
        }
        if new.memory == 0 && old.memory > 0 {
            res["memory"] = serde_json::json!({"limit": -1, "swap": -1});
        }
        if let Some(w) = u.blkio_weight.filter(|w| *w > 0) {
            res["blockIO"] = serde_json::json!({"weight": w});
        }
        crate::oci_runtime::runtime_update(ctx, &c, &res).await?;
    }
    c.rec.lock().unwrap().host_config = new;
    ctx.persist(&c)?;
    ctx.container_event(&c, "update", &[]);
    Ok(UpdateResponse::default())
}

/// `docker rename`.
pub(crate) async fn container_rename(ctx: &Arc<Context>, key: &str, new_name: &str) -> Result<()> {
    let c = ctx.lookup(key)?;
    let new_name = new_name.trim_start_matches('/');
    if new_name.is_empty() {
        return Err(EngineError::InvalidArgument(
            "Neither old nor new names may be empty".into(),
        ));
    }
    if !util::valid_name(new_name) {
        return Err(EngineError::InvalidArgument(format!(
            "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    let full = format!("/{new_name}");
    let old = c.name();
    if old == full {
        return Err(EngineError::InvalidArgument(
            "Renaming a container with the same name as its current name".into(),
        ));
    }
    {
        let map = ctx.containers.lock().unwrap();
        if let Some(other) = map
            .values()
            .find(|o| o.id != c.id && o.rec.lock().unwrap().name == full)
        {
            return Err(EngineError::Conflict(format!(
                "Conflict. The container name \"{full}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                other.id
            )));
        }
        c.rec.lock().unwrap().name = full;
    }
    if let Err(e) = ctx.persist(&c) {
        c.rec.lock().unwrap().name = old;
        return Err(e);
    }
    ctx.container_event(
        &c,
        "rename",
        &[("oldName", old.trim_start_matches('/').to_string())],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_apply_and_are_checked() {
        let h = HostConfig {
            memory: 64 << 20,
            memory_swap: 128 << 20,
            ..Default::default()
        };
        let n = apply(
            &h,
            &UpdateRequest {
                memory: Some(96 << 20),
                pids_limit: Some(50),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((n.memory, n.pids_limit), (96 << 20, Some(50)));
        let e = apply(
            &h,
            &UpdateRequest {
                memory: Some(256 << 20),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e
            .to_string()
            .contains("smaller than already set memoryswap"));
        let e = apply(
            &h,
            &UpdateRequest {
                memory: Some(1 << 20),
                memory_swap: Some(-1),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("Minimum memory limit"));
        let n = apply(
            &HostConfig {
                cpu_quota: 50_000,
                ..Default::default()
            },
            &UpdateRequest {
                nano_cpus: Some(500_000_000),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((n.nano_cpus, n.cpu_quota), (500_000_000, 0));
        let e = apply(
            &HostConfig {
                auto_remove: true,
                ..Default::default()
            },
            &UpdateRequest {
                restart_policy: Some(berth_api::RestartPolicy {
                    name: "always".into(),
                    maximum_retry_count: 0,
                }),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("AutoRemove"));
    }
}
