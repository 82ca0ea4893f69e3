//! `network create|ls|inspect|rm|connect|disconnect|prune`.

use anyhow::{bail, Result};
use berth_api::{
    EndpointIpamConfig, EndpointSettings, IpamConfigRequest, IpamRequest, NetworkConnectRequest,
    NetworkCreateRequest, NetworkCreateResponse, NetworkPruneResponse,
};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::inspect::{self, Kind, TypedInspectArgs};
use super::ps::filters_json;
use crate::client::{read_json, seg, Client};
use crate::format::{headers, Format};
use crate::human::short_id;

#[derive(Subcommand, Debug)]
pub enum NetworkCmd {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks
    Inspect(TypedInspectArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[arg(short = 'd', long = "driver", default_value = "bridge")]
    pub driver: String,
    #[arg(long = "subnet")]
    pub subnet: Vec<String>,
    #[arg(long = "gateway")]
    pub gateway: Vec<String>,
    #[arg(long = "ip-range")]
    pub ip_range: Vec<String>,
    #[arg(long = "internal")]
    pub internal: bool,
    #[arg(long = "attachable")]
    pub attachable: bool,
    #[arg(long = "label")]
    pub label: Vec<String>,
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    #[arg(long = "format")]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    #[arg(required = true, value_name = "NETWORK")]
    pub networks: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ConnectArgs {
    #[arg(long = "alias")]
    pub alias: Vec<String>,
    #[arg(long = "ip")]
    pub ip: Option<String>,
    pub network: String,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct DisconnectArgs {
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    pub network: String,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

/// `KEY=VALUE` flags (`--label`, `--opt`) as a map; a bare `KEY` has an empty value.
pub(crate) fn kv(list: &[String]) -> std::collections::BTreeMap<String, String> {
    list.iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

pub async fn run(c: &Client, cmd: NetworkCmd) -> Result<i32> {
    match cmd {
        NetworkCmd::Create(a) => create(c, a).await,
        NetworkCmd::Ls(a) => ls(c, a).await,
        NetworkCmd::Inspect(a) => inspect::run_typed(c, a, Kind::Network).await,
        NetworkCmd::Rm(a) => {
            super::for_each(&a.networks, |n| async move {
                c.delete(&format!("/networks/{}", seg(&n)), &[]).await?;
                println!("{n}");
                Ok(())
            })
            .await
        }
        NetworkCmd::Connect(a) => {
            let ep = EndpointSettings {
                aliases: a.alias,
                ipam_config: a.ip.map(|ip| EndpointIpamConfig { ipv4_address: ip }),
                ..Default::default()
            };
            let body = NetworkConnectRequest {
                container: a.container,
                endpoint_config: Some(ep),
                force: false,
            };
            c.post_json(
                &format!("/networks/{}/connect", seg(&a.network)),
                &[],
                &body,
            )
            .await?;
            Ok(0)
        }
        NetworkCmd::Disconnect(a) => {
            let body = NetworkConnectRequest {
                container: a.container,
                endpoint_config: None,
                force: a.force,
            };
            c.post_json(
                &format!("/networks/{}/disconnect", seg(&a.network)),
                &[],
                &body,
            )
            .await?;
            Ok(0)
        }
        NetworkCmd::Prune(a) => {
            if !a.force && !super::prune::confirm("WARNING! This will remove all custom networks not used by at least one container.") {
                return Ok(0);
            }
            let mut q = Vec::new();
            if let Some(f) = filters_json(&a.filter)? {
                q.push(("filters", f));
            }
            let r: NetworkPruneResponse = read_json(c.post("/networks/prune", &q).await?).await?;
            if !r.networks_deleted.is_empty() {
                println!("Deleted Networks:");
                for n in r.networks_deleted {
                    println!("{n}");
                }
            }
            Ok(0)
        }
    }
}

async fn create(c: &Client, a: CreateArgs) -> Result<i32> {
    if a.gateway.len() > a.subnet.len() || a.ip_range.len() > a.subnet.len() {
        bail!("every ip-range or gateway must have a corresponding subnet");
    }
    let config = a
        .subnet
        .iter()
        .enumerate()
        .map(|(i, s)| IpamConfigRequest {
            subnet: s.clone(),
            gateway: a.gateway.get(i).cloned().unwrap_or_default(),
            ip_range: a.ip_range.get(i).cloned().unwrap_or_default(),
        })
        .collect();
    let body = NetworkCreateRequest {
        name: a.name,
        driver: a.driver,
        internal: a.internal,
        attachable: a.attachable,
        ipam: Some(IpamRequest {
            driver: "default".into(),
            config,
        }),
        options: kv(&a.opt),
        labels: kv(&a.label),
        check_duplicate: Some(true),
        ..Default::default()
    };
    let r: NetworkCreateResponse =
        read_json(c.post_json("/networks/create", &[], &body).await?).await?;
    println!("{}", r.id);
    Ok(0)
}

async fn ls(c: &Client, a: LsArgs) -> Result<i32> {
    let mut q = Vec::new();
    if let Some(f) = filters_json(&a.filter)? {
        q.push(("filters", f));
    }
    let nets: Vec<Value> = read_json(c.get("/networks", &q).await?).await?;
    let mut rows: Vec<Value> = nets
        .iter()
        .map(|n| {
            let id = n["Id"].as_str().unwrap_or_default();
            json!({
                "ID": if a.no_trunc { id.to_string() } else { short_id(id) },
                "Name": n["Name"], "Driver": n["Driver"], "Scope": n["Scope"],
                "Internal": n["Internal"].as_bool().unwrap_or(false).to_string(),
                "IPv6": "false", "CreatedAt": n["Created"], "Labels": "",
            })
        })
        .collect();
    rows.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
    if a.quiet {
        for r in rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    let fmt = Format::new(
        a.format.as_deref().unwrap_or(""),
        "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
    )?;
    let h = headers(&[
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("Internal", "INTERNAL"),
        ("IPv6", "IPV6"),
        ("CreatedAt", "CREATED AT"),
        ("Labels", "LABELS"),
    ]);
    print!("{}", fmt.render_all(&rows, &h)?);
    Ok(0)
}
