//! `update` (limits and restart policy of containers) and `rename`.

use anyhow::{anyhow, bail, Result};
use clap::Args;
use serde_json::{json, Map, Value};

use super::opts::parse_restart;
use crate::client::{seg, Client};
use crate::human::ram_in_bytes;

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Memory limit
    #[arg(short = 'm', long = "memory")]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Number of CPUs
    #[arg(long = "cpus")]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Restart policy to apply when a container exits
    #[arg(long = "restart")]
    pub restart: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

fn body(a: &UpdateArgs) -> Result<Value> {
    let mut m = Map::new();
    let size = |flag: &str, v: &str| -> Result<i64> {
        if v == "-1" {
            return Ok(-1);
        }
        ram_in_bytes(v).map_err(|e| anyhow!("invalid argument \"{v}\" for \"--{flag}\" flag: {e}"))
    };
    if let Some(v) = &a.memory {
        m.insert("Memory".into(), json!(size("memory", v)?));
    }
    if let Some(v) = &a.memory_swap {
        m.insert("MemorySwap".into(), json!(size("memory-swap", v)?));
    }
    if let Some(v) = &a.memory_reservation {
        m.insert(
            "MemoryReservation".into(),
            json!(size("memory-reservation", v)?),
        );
    }
    if let Some(c) = &a.cpus {
        let f: f64 = c.parse().map_err(|_| {
            anyhow!("invalid argument \"{c}\" for \"--cpus\" flag: failed to parse {c} as a rational number")
        })?;
        m.insert("NanoCpus".into(), json!((f * 1e9) as i64));
    }
    for (k, v) in [
        ("CpuShares", a.cpu_shares),
        ("CpuPeriod", a.cpu_period),
        ("CpuQuota", a.cpu_quota),
        ("PidsLimit", a.pids_limit),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    if let Some(v) = &a.cpuset_cpus {
        m.insert("CpusetCpus".into(), json!(v));
    }
    if let Some(v) = &a.cpuset_mems {
        m.insert("CpusetMems".into(), json!(v));
    }
    if let Some(w) = a.blkio_weight {
        m.insert("BlkioWeight".into(), json!(w));
    }
    if let Some(r) = &a.restart {
        m.insert(
            "RestartPolicy".into(),
            serde_json::to_value(parse_restart(r)?)?,
        );
    }
    if m.is_empty() {
        bail!("you must provide one or more flags when using this command");
    }
    Ok(Value::Object(m))
}

pub async fn update(c: &Client, a: UpdateArgs) -> Result<i32> {
    let body = body(&a)?;
    let body = &body;
    super::for_each(&a.containers, |n| async move {
        c.post_json(&format!("/containers/{}/update", seg(&n)), &[], body)
            .await?;
        println!("{n}");
        Ok(())
    })
    .await
}

pub async fn rename(c: &Client, a: RenameArgs) -> Result<i32> {
    if a.new_name.trim().is_empty() || a.container.trim().is_empty() {
        bail!("Error: Neither old nor new names may be empty");
    }
    c.post(
        &format!("/containers/{}/rename", seg(&a.container)),
        &[("name", a.new_name.clone())],
    )
    .await?;
    Ok(0)
}
