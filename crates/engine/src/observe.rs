//! `docker top` and `docker stats` on the engine side: the container's processes from its cgroup
//! filtered out of the host's `ps` output, and one stats sample in dockerd's JSON shape (the
//! daemon pairs consecutive samples into `precpu_stats`).

use serde::Serialize;
use serde_json::{json, Value};

use crate::cgstats::{self, CgroupDirs, CgroupSample};
use crate::container::Container;
use crate::context::Context;
use crate::{util, EngineError, Result};
use std::sync::Arc;

/// `GET /containers/{id}/top`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TopResponse {
    #[serde(rename = "Titles")]
    pub titles: Vec<String>,
    #[serde(rename = "Processes")]
    pub processes: Vec<Vec<String>>,
}

/// dockerd's `parsePSOutput`: the header's fields are the titles; the rows whose PID is in
/// `pids` are kept (with thread lines, PID `-`, that follow a kept row), the last column taking
/// the rest of the line.
pub fn parse_ps(output: &str, pids: &[i32]) -> std::result::Result<TopResponse, String> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(String::from)
        .collect();
    let pid_index = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| "Couldn't find PID field in ps output".to_string())?;
    let mut out = TopResponse {
        titles,
        processes: Vec::new(),
    };
    let n = out.titles.len();
    let mut previous_kept = false;
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() <= pid_index {
            continue;
        }
        let keep = if fields[pid_index] == "-" {
            previous_kept
        } else {
            let p: i32 = fields[pid_index]
                .parse()
                .map_err(|e| format!("Unexpected pid '{}': {e}", fields[pid_index]))?;
            previous_kept = pids.contains(&p);
            previous_kept
        };
        if keep {
            let mut row: Vec<String> = fields[..n.min(fields.len()).saturating_sub(1)]
                .iter()
                .map(|s| s.to_string())
                .collect();
            row.push(fields[(n.max(1) - 1).min(fields.len())..].join(" "));
            out.processes.push(row);
        }
    }
    Ok(out)
}

/// The host's figures a stats sample carries.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostFigures {
    /// Total CPU time of the host, in nanoseconds.
    pub system_cpu_ns: u64,
    pub online_cpus: u32,
    /// Host memory in bytes: the limit shown when the container has none.
    pub mem_total: u64,
}

/// dockerd's stats JSON for one sample; `None` sample: a container that does not run.
pub fn stats_json(
    c_id: &str,
    name: &str,
    read: &str,
    sample: Option<&CgroupSample>,
    host: HostFigures,
    networks: Option<std::collections::BTreeMap<String, Value>>,
) -> Value {
    let HostFigures {
        system_cpu_ns,
        online_cpus,
        mem_total: host_mem,
    } = host;
    let empty_cpu = json!({
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    });
    let mut v = json!({
        "name": name,
        "id": c_id,
        "read": read,
        "preread": util::ZERO_TIME,
        "pids_stats": {},
        "blkio_stats": {
            "io_service_bytes_recursive": null, "io_serviced_recursive": null,
            "io_queue_recursive": null, "io_service_time_recursive": null,
            "io_wait_time_recursive": null, "io_merged_recursive": null,
            "io_time_recursive": null, "sectors_recursive": null,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": empty_cpu.clone(),
        "precpu_stats": empty_cpu,
        "memory_stats": {},
    });
    let Some(s) = sample else {
        return v;
    };
    v["pids_stats"] = match s.pids_limit {
        Some(l) => json!({"current": s.pids_current, "limit": l}),
        None => json!({"current": s.pids_current}),
    };
    v["blkio_stats"]["io_service_bytes_recursive"] =
        serde_json::to_value(&s.io_bytes).unwrap_or(Value::Null);
    v["cpu_stats"] = json!({
        "cpu_usage": {
            "total_usage": s.cpu_total_ns,
            "usage_in_kernelmode": s.cpu_kernel_ns,
            "usage_in_usermode": s.cpu_user_ns,
        },
        "system_cpu_usage": system_cpu_ns,
        "online_cpus": online_cpus,
        "throttling_data": {
            "periods": s.periods,
            "throttled_periods": s.throttled_periods,
            "throttled_time": s.throttled_ns,
        },
    });
    let limit = match s.mem_limit {
        Some(l) if host_mem == 0 || l < host_mem => l,
        _ => host_mem,
    };
    v["memory_stats"] = json!({"usage": s.mem_usage, "stats": s.mem_stats, "limit": limit});
    if let Some(n) = networks {
        v["networks"] = serde_json::to_value(n).unwrap_or(Value::Null);
    }
    v
}

/// The container's cgroup directories: its cgroup path (`/berth/<id>`, or under its
/// `CgroupParent`) under the mounts, else where `/proc/<pid>/cgroup` says its init is.
fn cgroup_dirs(c: &Container, pid: i64) -> Option<CgroupDirs> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let path = crate::spec::cgroups_path(&c.rec.lock().unwrap().host_config, &c.id).ok()?;
    let dirs = cgstats::locate(&mi, &path.display().to_string())?;
    if dirs.exists() || pid <= 0 {
        return Some(dirs);
    }
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let rel = own.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let wanted = match dirs {
            CgroupDirs::V1(_) => ctrls.split(',').any(|c| c == "memory"),
            CgroupDirs::V2(_) => ctrls.is_empty(),
        };
        wanted.then(|| path.to_string())
    })?;
    cgstats::locate(&mi, &rel)
}

/// `GET /containers/{id}/top?ps_args=`.
pub(crate) async fn container_top(
    ctx: &Arc<Context>,
    key: &str,
    ps_args: &str,
) -> Result<TopResponse> {
    let c = ctx.lookup(key)?;
    let (running, pid) = {
        let r = c.rec.lock().unwrap();
        (r.state.running(), r.state.pid)
    };
    if !running {
        return Err(EngineError::Conflict(format!(
            "container {} is not running",
            c.id
        )));
    }
    let pids = cgroup_dirs(&c, pid)
        .map(|d| d.pids())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| vec![pid as i32]);
    // ps_args is the client's: what ps refuses (and output without a PID column) is a bad
    // parameter, 400, not a daemon failure.
    if ps_args.contains('\0') {
        return Err(EngineError::InvalidArgument(
            "ps: nul byte found in ps_args".into(),
        ));
    }
    let args: Vec<String> = if ps_args.trim().is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.split_whitespace().map(String::from).collect()
    };
    let list: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
    let mut with_q = args.clone();
    with_q.push("-q".into());
    with_q.push(list.join(","));
    let mut out = tokio::process::Command::new("ps")
        .args(&with_q)
        .output()
        .await;
    if !out.as_ref().is_ok_and(|o| o.status.success()) {
        // Some options (such as f) cannot be combined with -q.
        out = tokio::process::Command::new("ps")
            .args(&args)
            .output()
            .await;
    }
    let out = out.map_err(|e| EngineError::Internal(format!("ps: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap_or("ps failed");
        return Err(EngineError::InvalidArgument(format!("ps: {first}")));
    }
    parse_ps(&String::from_utf8_lossy(&out.stdout), &pids).map_err(EngineError::InvalidArgument)
}

/// One stats sample of the container (`precpu_stats` left empty).
pub(crate) async fn container_stats_sample(ctx: &Arc<Context>, key: &str) -> Result<Value> {
    let c = ctx.lookup(key)?;
    let (running, pid, name, net_mode) = {
        let r = c.rec.lock().unwrap();
        (
            r.state.running(),
            r.state.pid,
            r.name.clone(),
            r.host_config.network_mode.clone(),
        )
    };
    let dirs = if running { cgroup_dirs(&c, pid) } else { None };
    let id = c.id.clone();
    let read = ctx.now_rfc3339();
    tokio::task::spawn_blocking(move || {
        let (sys_cpu, cpus) =
            cgstats::system_cpu(&std::fs::read_to_string("/proc/stat").unwrap_or_default());
        let host_mem =
            cgstats::mem_total(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default());
        let sample = dirs.map(|d| d.sample());
        let networks = if running && pid > 0 && net_mode != "host" && net_mode != "none" {
            std::fs::read_to_string(format!("/proc/{pid}/net/dev"))
                .ok()
                .map(|t| cgstats::net_dev(&t))
        } else {
            None
        };
        if !running {
            return stats_json(
                &id,
                &name,
                util::ZERO_TIME,
                None,
                HostFigures::default(),
                None,
            );
        }
        stats_json(
            &id,
            &name,
            &read,
            sample.as_ref(),
            HostFigures {
                system_cpu_ns: sys_cpu,
                online_cpus: cpus,
                mem_total: host_mem,
            },
            networks,
        )
    })
    .await
    .map_err(|e| EngineError::Internal(format!("task failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS: &str = "UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init splash
root         100       1  0 10:01 ?        00:00:00 sleep 1000
root         101     100  0 10:01 ?        00:00:00 sh -c echo hi there
";

    #[test]
    fn top_filters_to_the_container_pids() {
        let t = parse_ps(PS, &[100, 101]).unwrap();
        assert_eq!(
            t.titles,
            vec!["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        );
        assert_eq!(t.processes.len(), 2);
        assert_eq!(t.processes[0][1], "100");
        assert_eq!(t.processes[1][7], "sh -c echo hi there");
        assert!(parse_ps("USER COMMAND\nroot x\n", &[1]).is_err());
        // Thread lines (`ps -eLf`-like "m" output) follow their process.
        let m = "PID TTY CMD\n100 ? sleep\n- - -\n200 ? other\n- - -\n";
        let t = parse_ps(m, &[100]).unwrap();
        assert_eq!(t.processes.len(), 2);
    }

    #[test]
    fn stats_shape_like_dockerd() {
        let s = CgroupSample {
            cpu_total_ns: 10,
            mem_usage: 1 << 20,
            mem_limit: Some(u64::MAX),
            pids_current: 2,
            ..Default::default()
        };
        let mut nets = std::collections::BTreeMap::new();
        nets.insert("eth0".to_string(), json!({"rx_bytes": 1}));
        let v = stats_json(
            "id",
            "/c",
            "2024-01-01T00:00:00Z",
            Some(&s),
            HostFigures {
                system_cpu_ns: 100,
                online_cpus: 2,
                mem_total: 1 << 30,
            },
            Some(nets),
        );
        for k in [
            "read",
            "preread",
            "pids_stats",
            "cpu_stats",
            "precpu_stats",
            "memory_stats",
            "blkio_stats",
            "networks",
            "name",
            "id",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert_eq!(
            v["memory_stats"]["limit"],
            1u64 << 30,
            "no limit is the host's memory"
        );
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 10);
        assert_eq!(v["cpu_stats"]["online_cpus"], 2);
        assert_eq!(v["cpu_stats"]["system_cpu_usage"], 100);
        assert!(v["cpu_stats"]["throttling_data"]["periods"].is_u64());
        assert_eq!(v["pids_stats"]["current"], 2);
        assert_eq!(v["networks"]["eth0"]["rx_bytes"], 1);
        let limited = CgroupSample {
            mem_limit: Some(64 << 20),
            ..Default::default()
        };
        let v = stats_json(
            "id",
            "/c",
            "t",
            Some(&limited),
            HostFigures {
                online_cpus: 1,
                mem_total: 1 << 30,
                ..Default::default()
            },
            None,
        );
        assert_eq!(v["memory_stats"]["limit"], 64u64 << 20);
        assert!(v.get("networks").is_none());
    }
}
