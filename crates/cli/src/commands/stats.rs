//! `stats [-a] [--no-stream] [--no-trunc] [--format] [CONTAINER...]`: live resource usage, with
//! docker's columns, computations (CPU % from the pair of samples, memory without the inactive
//! file cache) and sizes (`1.2MiB / 64MiB`, `1.3kB / 0B`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};

use crate::client::{json_stream, seg, Client, Exit};
use crate::format::{headers, Format};
use crate::human::{fmt_g, human_size};
use crate::tty;

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    pub containers: Vec<String>,
}

const DEFAULT_FORMAT: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

fn header_map() -> serde_json::Map<String, Value> {
    headers(&[
        ("Container", "CONTAINER"),
        ("ID", "CONTAINER ID"),
        ("Name", "NAME"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ])
}

/// `units.BytesSize`: binary units, 4 significant digits.
pub fn bytes_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut size = size;
    let mut i = 0;
    while size >= 1024.0 && i < UNITS.len() - 1 {
        size /= 1024.0;
        i += 1;
    }
    format!("{}{}", fmt_g(size, 4), UNITS[i])
}

fn u(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// One table row from a stats object; `container` is what the user named (or the ID).
pub fn row(v: &Value, container: &str, no_trunc: bool) -> Value {
    let id = v["id"].as_str().unwrap_or("").to_string();
    let name = v["name"].as_str().unwrap_or("").trim_start_matches('/');
    let cpu_delta = u(&v["cpu_stats"]["cpu_usage"]["total_usage"])
        - u(&v["precpu_stats"]["cpu_usage"]["total_usage"]);
    let sys_delta =
        u(&v["cpu_stats"]["system_cpu_usage"]) - u(&v["precpu_stats"]["system_cpu_usage"]);
    let cpus = u(&v["cpu_stats"]["online_cpus"]);
    let cpu = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * cpus * 100.0
    } else {
        0.0
    };
    let mem = &v["memory_stats"];
    let usage = u(&mem["usage"]);
    let stats = &mem["stats"];
    let mem_used = if let Some(x) = stats.get("total_inactive_file").and_then(Value::as_f64) {
        if x < usage {
            usage - x
        } else {
            usage
        }
    } else {
        let x = u(&stats["inactive_file"]);
        if x < usage {
            usage - x
        } else {
            usage
        }
    };
    let limit = u(&mem["limit"]);
    let mem_perc = if limit > 0.0 {
        mem_used / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    for n in v["networks"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        rx += u(&n["rx_bytes"]);
        tx += u(&n["tx_bytes"]);
    }
    let (mut r, mut w) = (0.0, 0.0);
    for e in v["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().unwrap_or("").to_ascii_lowercase().as_str() {
            "read" => r += u(&e["value"]),
            "write" => w += u(&e["value"]),
            _ => {}
        }
    }
    let shown_id = if no_trunc {
        id.clone()
    } else {
        id.chars().take(12).collect()
    };
    json!({
        "Container": container,
        "ID": shown_id,
        "Name": name,
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", bytes_size(mem_used), bytes_size(limit)),
        "MemPerc": format!("{mem_perc:.2}%"),
        "NetIO": format!("{} / {}", human_size(rx), human_size(tx)),
        "BlockIO": format!("{} / {}", human_size(r), human_size(w)),
        "PIDs": format!("{}", v["pids_stats"]["current"].as_u64().unwrap_or(0)),
    })
}

/// The containers to show: those named, or all running (all with `-a`), as (ref, id).
async fn targets(c: &Client, a: &StatsArgs) -> Result<Vec<String>> {
    if !a.containers.is_empty() {
        return Ok(a.containers.clone());
    }
    let q = [("all", if a.all { "1" } else { "0" }.to_string())];
    let list: Vec<Value> = c.get_json("/containers/json", &q).await?;
    Ok(list
        .iter()
        .filter_map(|x| x["Id"].as_str().map(String::from))
        .collect())
}

/// Runs the command; errors exit with status 1, as docker's do.
pub async fn run(c: &Client, a: StatsArgs) -> Result<i32> {
    run_inner(c, a).await.map_err(|e| {
        if e.downcast_ref::<Exit>().is_some() {
            e
        } else {
            Exit::msg(1, e.to_string())
        }
    })
}

async fn run_inner(c: &Client, a: StatsArgs) -> Result<i32> {
    let fmt = Format::new(a.format.as_deref().unwrap_or(""), DEFAULT_FORMAT)
        .map_err(|e| Exit::msg(125, e.to_string()))?;
    let names = targets(c, &a).await?;
    if a.no_stream {
        let mut rows = Vec::new();
        let mut failed = false;
        let futs = names.iter().map(|n| {
            let n = n.clone();
            async move {
                let q = [("stream", "0".to_string())];
                let v: Result<Value> = c
                    .get_json(&format!("/containers/{}/stats", seg(&n)), &q)
                    .await;
                (n, v)
            }
        });
        for (n, v) in futures_util::future::join_all(futs).await {
            match v {
                Ok(v) => rows.push(row(&v, &n, a.no_trunc)),
                Err(e) => {
                    eprintln!("{e}");
                    failed = true;
                }
            }
        }
        let out = fmt
            .render_all(&rows, &header_map())
            .map_err(|e| Exit::msg(125, e.to_string()))?;
        print!("{out}");
        return Ok(if failed { 1 } else { 0 });
    }
    // Streaming: one reader per container keeps its latest row; the table is redrawn each
    // second (the screen cleared first on a terminal).
    let latest: Arc<Mutex<BTreeMap<usize, Value>>> = Arc::new(Mutex::new(BTreeMap::new()));
    for (i, n) in names.iter().enumerate() {
        let (c, n, latest, no_trunc) = (c.clone(), n.clone(), latest.clone(), a.no_trunc);
        tokio::spawn(async move {
            let q = [("stream", "1".to_string())];
            let resp = match c.get(&format!("/containers/{}/stats", seg(&n)), &q).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{e}");
                    return;
                }
            };
            let _ = json_stream(resp, |v| {
                latest.lock().unwrap().insert(i, row(v, &n, no_trunc));
                Ok(())
            })
            .await;
            latest.lock().unwrap().remove(&i);
        });
    }
    let is_tty = tty::stdout_is_tty();
    loop {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let rows: Vec<Value> = latest.lock().unwrap().values().cloned().collect();
        let out = fmt
            .render_all(&rows, &header_map())
            .map_err(|e| Exit::msg(125, e.to_string()))?;
        if is_tty {
            print!("\x1b[2J\x1b[H{out}");
        } else {
            print!("{out}");
        }
        use std::io::Write;
        std::io::stdout().flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker_units() {
        assert_eq!(bytes_size(0.0), "0B");
        assert_eq!(bytes_size(64.0 * 1024.0 * 1024.0), "64MiB");
        assert_eq!(bytes_size(1_258_291.0), "1.2MiB");
        assert_eq!(bytes_size(1_508_000.0), "1.438MiB");
        assert_eq!(human_size(1296.0), "1.3kB");
    }

    #[test]
    fn row_computes_like_the_docker_cli() {
        let v = json!({
            "id": "0123456789abcdef0123", "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 200}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 2097152, "limit": 67108864, "stats": {"total_inactive_file": 1048576}},
            "networks": {"eth0": {"rx_bytes": 1296, "tx_bytes": 0}},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"major": 8, "minor": 0, "op": "Read", "value": 4096},
                {"major": 8, "minor": 0, "op": "Write", "value": 0}]},
            "pids_stats": {"current": 3},
        });
        let r = row(&v, "web", false);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Name"], "web");
        assert_eq!(r["CPUPerc"], "20.00%");
        assert_eq!(r["MemUsage"], "1MiB / 64MiB");
        assert_eq!(r["MemPerc"], "1.56%");
        assert_eq!(r["NetIO"], "1.3kB / 0B");
        assert_eq!(r["BlockIO"], "4.1kB / 0B");
        assert_eq!(r["PIDs"], "3");
        let f = Format::new("", DEFAULT_FORMAT).unwrap();
        let out = f.render_all(&[r], &header_map()).unwrap();
        assert!(out.starts_with("CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O      BLOCK I/O    PIDS"), "{out}");
    }
}
