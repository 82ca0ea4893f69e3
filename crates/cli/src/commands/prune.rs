//! `container prune` and `image prune`.

use std::io::{BufRead, Write};

use anyhow::Result;
use berth_api::{ContainerPruneResponse, ImagePruneResponse};
use clap::Args;

use super::ps::filters_json;
use crate::client::{read_json, Client};
use crate::human::human_size;

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

pub fn confirm(msg: &str) -> bool {
    print!("{msg}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
}

pub async fn containers(c: &Client, a: PruneArgs) -> Result<i32> {
    if !a.force && !confirm("WARNING! This will remove all stopped containers.") {
        return Ok(0);
    }
    let mut q = Vec::new();
    if let Some(f) = filters_json(&a.filter)? {
        q.push(("filters", f));
    }
    let r: ContainerPruneResponse = read_json(c.post("/containers/prune", &q).await?).await?;
    let deleted = r.containers_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for d in &deleted {
            println!("{d}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(r.space_reclaimed as f64)
    );
    Ok(0)
}

pub async fn images(c: &Client, a: ImagePruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !confirm(warning) {
        return Ok(0);
    }
    let mut filters = a.filter.clone();
    filters.push(format!("dangling={}", !a.all));
    let mut q = Vec::new();
    if let Some(f) = filters_json(&filters)? {
        q.push(("filters", f));
    }
    let r: ImagePruneResponse = read_json(c.post("/images/prune", &q).await?).await?;
    let deleted = r.images_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Images:");
        super::rmi::print_deleted(&deleted);
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(r.space_reclaimed as f64)
    );
    Ok(0)
}
