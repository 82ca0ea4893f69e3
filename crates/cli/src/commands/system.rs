//! `system df` and `system prune`.

use anyhow::Result;
use berth_api::{
    ContainerPruneResponse, ImagePruneResponse, NetworkPruneResponse, SystemDf, VolumePruneResponse,
};
use clap::Args;
use serde_json::{json, Value};

use super::ps::filters_json;
use crate::client::{read_json, Client};
use crate::format::{headers, Format};
use crate::human::{ago, human_size, short_id};

#[derive(Args, Debug)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Prune anonymous volumes
    #[arg(long = "volumes")]
    pub volumes: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

fn reclaim(size: i64, reclaimable: i64) -> String {
    if size > 0 {
        format!(
            "{} ({}%)",
            human_size(reclaimable as f64),
            reclaimable * 100 / size
        )
    } else {
        human_size(reclaimable as f64)
    }
}

/// The summary rows `docker system df` prints.
pub fn summary_rows(df: &SystemDf) -> Vec<Value> {
    let active_images = df.images.iter().filter(|i| i.containers > 0).count();
    let used: i64 = df
        .images
        .iter()
        .filter(|i| i.containers > 0)
        .map(|i| i.size - i.shared_size.max(0))
        .sum();
    let img_reclaim = (df.layers_size - used).max(0);
    let c_size: i64 = df.containers.iter().map(|c| c.size_rw.unwrap_or(0)).sum();
    let c_active = df
        .containers
        .iter()
        .filter(|c| c.state == "running")
        .count();
    let c_reclaim: i64 = df
        .containers
        .iter()
        .filter(|c| c.state != "running")
        .map(|c| c.size_rw.unwrap_or(0))
        .sum();
    let usage = |v: &berth_api::Volume| {
        v.usage_data
            .as_ref()
            .map(|u| (u.size, u.ref_count))
            .unwrap_or((0, 0))
    };
    let v_size: i64 = df.volumes.iter().map(|v| usage(v).0).sum();
    let v_active = df.volumes.iter().filter(|v| usage(v).1 > 0).count();
    let v_reclaim: i64 = df
        .volumes
        .iter()
        .filter(|v| usage(v).1 == 0)
        .map(|v| usage(v).0)
        .sum();
    vec![
        json!({"Type": "Images", "TotalCount": df.images.len().to_string(), "Active": active_images.to_string(),
               "Size": human_size(df.layers_size as f64), "Reclaimable": reclaim(df.layers_size, img_reclaim)}),
        json!({"Type": "Containers", "TotalCount": df.containers.len().to_string(), "Active": c_active.to_string(),
               "Size": human_size(c_size as f64), "Reclaimable": reclaim(c_size, c_reclaim)}),
        json!({"Type": "Local Volumes", "TotalCount": df.volumes.len().to_string(), "Active": v_active.to_string(),
               "Size": human_size(v_size as f64), "Reclaimable": reclaim(v_size, v_reclaim)}),
        json!({"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"}),
    ]
}

pub async fn df(c: &Client, a: DfArgs) -> Result<i32> {
    let df: SystemDf = read_json(c.get("/system/df", &[]).await?).await?;
    if !a.verbose {
        let fmt = Format::new(
            a.format.as_deref().unwrap_or(""),
            "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
        )?;
        let h = headers(&[
            ("Type", "TYPE"),
            ("TotalCount", "TOTAL"),
            ("Active", "ACTIVE"),
            ("Size", "SIZE"),
            ("Reclaimable", "RECLAIMABLE"),
        ]);
        print!("{}", fmt.render_all(&summary_rows(&df), &h)?);
        return Ok(0);
    }
    println!("Images space usage:\n");
    let mut rows = Vec::new();
    for i in &df.images {
        let (repo, tag) = i
            .repo_tags
            .first()
            .and_then(|t| t.rsplit_once(':'))
            .map(|(r, t)| (r.to_string(), t.to_string()))
            .unwrap_or(("<none>".into(), "<none>".into()));
        let shared = i.shared_size.max(0);
        rows.push(json!({"Repository": repo, "Tag": tag, "ID": short_id(&i.id),
            "CreatedSince": ago(i.created), "Size": human_size(i.size as f64),
            "SharedSize": human_size(shared as f64), "UniqueSize": human_size((i.size - shared) as f64),
            "Containers": i.containers.to_string()}));
    }
    let fmt = Format::new("", "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}")?;
    print!(
        "{}",
        fmt.render_all(
            &rows,
            &headers(&[
                ("Repository", "REPOSITORY"),
                ("Tag", "TAG"),
                ("ID", "IMAGE ID"),
                ("CreatedSince", "CREATED"),
                ("Size", "SIZE"),
                ("SharedSize", "SHARED SIZE"),
                ("UniqueSize", "UNIQUE SIZE"),
                ("Containers", "CONTAINERS")
            ])
        )?
    );
    println!("\nContainers space usage:\n");
    let rows: Vec<Value> = df
        .containers
        .iter()
        .map(|c| {
            json!({"ID": short_id(&c.id), "Image": c.image, "Command": format!("\"{}\"", crate::human::ellipsis(&c.command, 20)),
                "LocalVolumes": c.mounts.iter().filter(|m| m.kind == "volume").count().to_string(),
                "Size": human_size(c.size_rw.unwrap_or(0) as f64), "CreatedSince": ago(c.created),
                "Status": c.status, "Names": c.names.first().map(|n| n.trim_start_matches('/')).unwrap_or("")})
        })
        .collect();
    let fmt = Format::new("", "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.CreatedSince}}\t{{.Status}}\t{{.Names}}")?;
    print!(
        "{}",
        fmt.render_all(
            &rows,
            &headers(&[
                ("ID", "CONTAINER ID"),
                ("Image", "IMAGE"),
                ("Command", "COMMAND"),
                ("LocalVolumes", "LOCAL VOLUMES"),
                ("Size", "SIZE"),
                ("CreatedSince", "CREATED"),
                ("Status", "STATUS"),
                ("Names", "NAMES")
            ])
        )?
    );
    println!("\nLocal Volumes space usage:\n");
    let rows: Vec<Value> = df
        .volumes
        .iter()
        .map(|v| {
            let (size, links) = v
                .usage_data
                .as_ref()
                .map(|u| (u.size, u.ref_count))
                .unwrap_or((0, 0));
            json!({"Name": v.name, "Links": links.to_string(), "Size": human_size(size as f64)})
        })
        .collect();
    let fmt = Format::new("", "table {{.Name}}\t{{.Links}}\t{{.Size}}")?;
    print!(
        "{}",
        fmt.render_all(
            &rows,
            &headers(&[
                ("Name", "VOLUME NAME"),
                ("Links", "LINKS"),
                ("Size", "SIZE")
            ])
        )?
    );
    println!("\nBuild cache usage: 0B\n");
    Ok(0)
}

pub async fn prune(c: &Client, a: SystemPruneArgs) -> Result<i32> {
    if !a.force {
        let mut w = String::from("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n");
        if a.volumes {
            w.push_str("  - all anonymous volumes not used by at least one container\n");
        }
        w.push_str(if a.all {
            "  - all images without at least one container associated to them\n"
        } else {
            "  - all dangling images\n"
        });
        w.push_str("  - unused build cache\n");
        if !super::prune::confirm(&w) {
            return Ok(0);
        }
    }
    let q = |extra: &[String]| -> Result<Vec<(&'static str, String)>> {
        let mut f = a.filter.clone();
        f.extend(extra.iter().cloned());
        Ok(filters_json(&f)?
            .map(|j| vec![("filters", j)])
            .unwrap_or_default())
    };
    let mut total: u64 = 0;
    let r: ContainerPruneResponse = read_json(c.post("/containers/prune", &q(&[])?).await?).await?;
    let deleted = r.containers_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for d in &deleted {
            println!("{d}");
        }
        println!();
    }
    total += r.space_reclaimed;
    let r: NetworkPruneResponse = read_json(c.post("/networks/prune", &q(&[])?).await?).await?;
    if !r.networks_deleted.is_empty() {
        println!("Deleted Networks:");
        for n in &r.networks_deleted {
            println!("{n}");
        }
        println!();
    }
    if a.volumes {
        let label_only: Vec<String> = Vec::new();
        let r: VolumePruneResponse =
            read_json(c.post("/volumes/prune", &q(&label_only)?).await?).await?;
        if !r.volumes_deleted.is_empty() {
            println!("Deleted Volumes:");
            for v in &r.volumes_deleted {
                println!("{v}");
            }
            println!();
        }
        total += r.space_reclaimed;
    }
    let r: ImagePruneResponse = read_json(
        c.post("/images/prune", &q(&[format!("dangling={}", !a.all)])?)
            .await?,
    )
    .await?;
    let deleted = r.images_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Images:");
        super::rmi::print_deleted(&deleted);
        println!();
    }
    total += r.space_reclaimed;
    println!("Total reclaimed space: {}", human_size(total as f64));
    Ok(0)
}
