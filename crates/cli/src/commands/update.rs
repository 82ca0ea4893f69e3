//! `update` (limits and restart policy of containers) and `rename`.

use anyhow::{bail, Result};
use clap::Args;
use serde_json::{json, Map, Value};

use super::opts::{memory_bytes, parse_restart, ResourceFlags};
use crate::client::{seg, Client};

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub resources: ResourceFlags,
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
    let r = &a.resources;
    let mut m = Map::new();
    for (key, flag, v) in [
        ("Memory", "memory", &r.memory),
        ("MemorySwap", "memory-swap", &r.memory_swap),
        (
            "MemoryReservation",
            "memory-reservation",
            &r.memory_reservation,
        ),
    ] {
        if let Some(v) = v {
            m.insert(key.into(), json!(memory_bytes(v, &format!("--{flag}"))?));
        }
    }
    if let Some(n) = r.nano_cpus()? {
        m.insert("NanoCpus".into(), json!(n));
    }
    for (k, v) in [
        ("CpuShares", r.cpu_shares),
        ("CpuPeriod", r.cpu_period),
        ("CpuQuota", r.cpu_quota),
        ("PidsLimit", r.pids_limit),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    if let Some(v) = &r.cpuset_cpus {
        m.insert("CpusetCpus".into(), json!(v));
    }
    if let Some(v) = &r.cpuset_mems {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(resources: ResourceFlags) -> UpdateArgs {
        UpdateArgs {
            resources,
            blkio_weight: None,
            restart: None,
            containers: vec!["c".into()],
        }
    }

    #[test]
    fn cpus_round_like_run_and_memory_errors_name_the_flag() {
        let b = body(&args(ResourceFlags {
            cpus: Some("0.3".into()),
            memory: Some("-1".into()),
            ..Default::default()
        }))
        .unwrap();
        // 0.3 * 1e9 is 299999999.99999994 as a float: rounded, as `run --cpus` and Docker do
        assert_eq!(b["NanoCpus"], 300_000_000);
        assert_eq!(b["Memory"], -1);
        let e = body(&args(ResourceFlags {
            memory_swap: Some("lots".into()),
            ..Default::default()
        }))
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid argument \"lots\" for \"--memory-swap\" flag"),
            "{e}"
        );
        assert!(body(&args(ResourceFlags::default())).is_err());
    }
}
