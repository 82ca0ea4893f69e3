//! `volume create|ls|inspect|rm|prune`.

use anyhow::Result;
use berth_api::{Volume, VolumeCreateRequest, VolumeListResponse, VolumePruneResponse};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::inspect::{self, Kind, TypedInspectArgs};
use super::network::kv;
use super::ps::filters_json;
use crate::client::{read_json, seg, Client};
use crate::format::{headers, Format};
use crate::human::human_size;

#[derive(Subcommand, Debug)]
pub enum VolumeCmd {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(TypedInspectArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[arg(short = 'd', long = "driver", default_value = "local")]
    pub driver: String,
    #[arg(long = "label")]
    pub label: Vec<String>,
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    #[arg(long = "name")]
    pub name_flag: Option<String>,
    pub name: Option<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    #[arg(long = "format")]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    #[arg(required = true, value_name = "VOLUME")]
    pub volumes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

pub async fn run(c: &Client, cmd: VolumeCmd) -> Result<i32> {
    match cmd {
        VolumeCmd::Create(a) => {
            if let (Some(f), Some(n)) = (&a.name_flag, &a.name) {
                if f != n {
                    anyhow::bail!("conflicting options: cannot specify a volume-name through both --name and as a positional arg");
                }
            }
            let body = VolumeCreateRequest {
                name: a.name.or(a.name_flag).unwrap_or_default(),
                driver: a.driver,
                driver_opts: kv(&a.opt),
                labels: kv(&a.label),
            };
            let v: Volume = read_json(c.post_json("/volumes/create", &[], &body).await?).await?;
            println!("{}", v.name);
            Ok(0)
        }
        VolumeCmd::Ls(a) => ls(c, a).await,
        VolumeCmd::Inspect(a) => inspect::run_typed(c, a, Kind::Volume).await,
        VolumeCmd::Rm(a) => {
            let force = a.force;
            super::for_each(&a.volumes, |n| async move {
                let q: Vec<(&str, String)> = if force {
                    vec![("force", "1".into())]
                } else {
                    vec![]
                };
                c.delete(&format!("/volumes/{}", seg(&n)), &q).await?;
                println!("{n}");
                Ok(())
            })
            .await
        }
        VolumeCmd::Prune(a) => {
            let warning = if a.all {
                "WARNING! This will remove all local volumes not used by at least one container."
            } else {
                "WARNING! This will remove anonymous local volumes not used by at least one container."
            };
            if !a.force && !super::prune::confirm(warning) {
                return Ok(0);
            }
            let mut filter = a.filter.clone();
            if a.all {
                filter.push("all=true".into());
            }
            let mut q = Vec::new();
            if let Some(f) = filters_json(&filter)? {
                q.push(("filters", f));
            }
            let r: VolumePruneResponse = read_json(c.post("/volumes/prune", &q).await?).await?;
            if !r.volumes_deleted.is_empty() {
                println!("Deleted Volumes:");
                for n in &r.volumes_deleted {
                    println!("{n}");
                }
                println!();
            }
            println!(
                "Total reclaimed space: {}",
                human_size(r.space_reclaimed as f64)
            );
            Ok(0)
        }
    }
}

async fn ls(c: &Client, a: LsArgs) -> Result<i32> {
    let mut q = Vec::new();
    if let Some(f) = filters_json(&a.filter)? {
        q.push(("filters", f));
    }
    let resp: VolumeListResponse = read_json(c.get("/volumes", &q).await?).await?;
    let mut rows: Vec<Value> = resp
        .volumes
        .iter()
        .map(|v| {
            let labels: Vec<String> = v.labels.iter().map(|(k, x)| format!("{k}={x}")).collect();
            json!({
                "Name": v.name, "Driver": v.driver, "Scope": v.scope,
                "Mountpoint": v.mountpoint, "Labels": labels.join(","),
                "CreatedAt": v.created_at,
            })
        })
        .collect();
    rows.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
    if a.quiet {
        for r in rows {
            println!("{}", r["Name"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    let fmt = Format::new(
        a.format.as_deref().unwrap_or(""),
        "table {{.Driver}}\t{{.Name}}",
    )?;
    let h = headers(&[
        ("Driver", "DRIVER"),
        ("Name", "VOLUME NAME"),
        ("Scope", "SCOPE"),
        ("Mountpoint", "MOUNTPOINT"),
        ("Labels", "LABELS"),
        ("CreatedAt", "CREATED AT"),
    ]);
    print!("{}", fmt.render_all(&rows, &h)?);
    Ok(0)
}
