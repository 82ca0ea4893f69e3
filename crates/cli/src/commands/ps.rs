//! `ps` / `container ls`.

use std::collections::BTreeMap;

use anyhow::Result;
use berth_api::ContainerSummary;
use clap::Args;
use serde_json::{json, Value};

use crate::client::{Client, Exit};
use crate::format::{headers, Format};
use crate::human::{ago, ellipsis, go_quote, go_time, human_size, short_id};

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", default_value_t = -1, allow_hyphen_values = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long = "latest")]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Display total file sizes
    #[arg(short = 's', long = "size")]
    pub size: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
}

/// `--filter k=v` (repeatable) → `{"k":["v",...]}`.
pub fn filters_json(filters: &[String]) -> Result<Option<String>> {
    if filters.is_empty() {
        return Ok(None);
    }
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| Exit::msg(125, format!("invalid argument \"{f}\" for \"-f, --filter\" flag: bad format of filter (expected name=value)")))?;
        m.entry(k.trim().to_lowercase())
            .or_default()
            .push(v.to_string());
    }
    Ok(Some(serde_json::to_string(&m)?))
}

pub const DEFAULT_FORMAT: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

pub fn header_map() -> serde_json::Map<String, Value> {
    headers(&[
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Ports", "PORTS"),
        ("State", "STATE"),
        ("Status", "STATUS"),
        ("Size", "SIZE"),
        ("Names", "NAMES"),
        ("Labels", "LABELS"),
        ("Label", "LABEL"),
        ("Mounts", "MOUNTS"),
        ("Networks", "NETWORKS"),
        ("LocalVolumes", "LOCAL VOLUMES"),
        ("Platform", "PLATFORM"),
    ])
}

fn ports(c: &ContainerSummary) -> String {
    let mut out: Vec<String> = c
        .ports
        .iter()
        .map(|p| match (p.public_port, &p.ip) {
            (Some(pp), ip) => {
                let ip = ip.clone().unwrap_or_else(|| "0.0.0.0".into());
                let ip = if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip
                };
                format!("{ip}:{pp}->{}/{}", p.private_port, p.kind)
            }
            (None, _) => format!("{}/{}", p.private_port, p.kind),
        })
        .collect();
    out.dedup();
    out.join(", ")
}

/// The values docker's container formatter exposes, as a JSON object.
pub fn row(c: &ContainerSummary, trunc: bool) -> Value {
    let id = if trunc { short_id(&c.id) } else { c.id.clone() };
    let mut image = c.image.clone();
    if trunc && image.starts_with("sha256:") {
        image = short_id(&image);
    }
    let command = if trunc {
        ellipsis(&c.command, 20)
    } else {
        c.command.clone()
    };
    let names: Vec<String> = c
        .names
        .iter()
        .map(|n| n.trim_start_matches('/').to_string())
        .filter(|n| !trunc || !n.contains('/'))
        .collect();
    let names = if trunc {
        names.into_iter().next().unwrap_or_default()
    } else {
        names.join(",")
    };
    let labels = c
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let size = match c.size_rw {
        None => "0B".to_string(),
        Some(rw) => {
            let mut s = human_size(rw as f64);
            if let Some(root) = c.size_root_fs {
                if root > 0 {
                    s = format!("{s} (virtual {})", human_size(root as f64));
                }
            }
            s
        }
    };
    let mounts = c
        .mounts
        .iter()
        .map(|m| {
            let n = if m.name.is_empty() {
                m.source.clone()
            } else {
                m.name.clone()
            };
            if trunc {
                ellipsis(&n, 15)
            } else {
                n
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    let mut networks: Vec<String> = c.network_settings["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let local_volumes = c.mounts.iter().filter(|m| m.driver == "local").count();
    json!({
        "Command": go_quote(&command),
        "CreatedAt": go_time(c.created),
        "ID": id,
        "Image": image,
        "Labels": labels,
        "LocalVolumes": local_volumes.to_string(),
        "Mounts": mounts,
        "Names": names,
        "Networks": networks.join(","),
        "Ports": ports(c),
        "RunningFor": ago(c.created),
        "Size": size,
        "State": c.state,
        "Status": c.status,
        "__Label": c.labels,
    })
}

pub async fn run(c: &Client, a: PsArgs) -> Result<i32> {
    let format = a.format.clone().unwrap_or_default();
    let mut last = a.last;
    if a.latest && last == -1 {
        last = 1;
    }
    let mut q = Vec::new();
    if a.all {
        q.push(("all", "1".to_string()));
    }
    if last > 0 {
        q.push(("limit", last.to_string()));
    }
    let want_size = a.size || (a.format.is_some() && format.contains(".Size"));
    if want_size {
        q.push(("size", "1".to_string()));
    }
    if let Some(f) = filters_json(&a.filter)? {
        q.push(("filters", f));
    }
    let list: Vec<ContainerSummary> = c.get_json("/containers/json", &q).await?;
    let trunc = !a.no_trunc;
    if a.quiet && a.format.is_none() {
        for ct in &list {
            println!(
                "{}",
                if trunc {
                    short_id(&ct.id)
                } else {
                    ct.id.clone()
                }
            );
        }
        return Ok(0);
    }
    let default = if a.size {
        format!("{DEFAULT_FORMAT}\t{{{{.Size}}}}")
    } else {
        DEFAULT_FORMAT.to_string()
    };
    let fmt = Format::new(&format, &default).map_err(|e| Exit::msg(125, e.to_string()))?;
    let rows: Vec<Value> = list.iter().map(|ct| row(ct, trunc)).collect();
    let out = fmt
        .render_all(&rows, &header_map())
        .map_err(|e| Exit::msg(125, e.to_string()))?;
    print!("{out}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        assert_eq!(filters_json(&[]).unwrap(), None);
        assert_eq!(
            filters_json(&[
                "status=exited".into(),
                "label=a=b".into(),
                "status=created".into()
            ])
            .unwrap()
            .unwrap(),
            r#"{"label":["a=b"],"status":["exited","created"]}"#
        );
        assert!(filters_json(&["bad".into()]).is_err());
    }

    #[test]
    fn rows() {
        let c = ContainerSummary {
            id: "0123456789abcdef0123".into(),
            names: vec!["/web".into()],
            image: "busybox".into(),
            command: "sleep 1000000000000000".into(),
            created: chrono::Utc::now().timestamp() - 5,
            status: "Up 5 seconds".into(),
            state: "running".into(),
            ..Default::default()
        };
        let r = row(&c, true);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Command"], "\"sleep 1000000000000…\"");
        assert_eq!(r["Names"], "web");
        assert_eq!(r["RunningFor"], "5 seconds ago");
        let f = Format::new("", DEFAULT_FORMAT).unwrap();
        let out = f.render_all(&[r], &header_map()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS         PORTS     NAMES");
        assert_eq!(lines[1], "0123456789ab   busybox   \"sleep 1000000000000…\"   5 seconds ago   Up 5 seconds             web");
        let f = Format::new("{{json .}}", DEFAULT_FORMAT).unwrap();
        let out = f.render_all(&[row(&c, true)], &header_map()).unwrap();
        assert!(!out.contains("__Label"));
    }
}
