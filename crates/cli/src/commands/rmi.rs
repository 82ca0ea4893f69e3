//! `rmi` / `image rm`.

use anyhow::Result;
use berth_api::ImageDeleteItem;
use clap::Args;

use crate::client::{read_json, seg, ApiError, Client};

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

pub fn print_deleted(items: &[ImageDeleteItem]) {
    for i in items {
        if let Some(u) = &i.untagged {
            println!("Untagged: {u}");
        }
        if let Some(d) = &i.deleted {
            println!("Deleted: {d}");
        }
    }
}

pub async fn run(c: &Client, a: RmiArgs) -> Result<i32> {
    let mut q = Vec::new();
    if a.force {
        q.push(("force", "1".to_string()));
    }
    if a.no_prune {
        q.push(("noprune", "1".to_string()));
    }
    // As the docker CLI: every image is tried; with -f an image that does not exist is
    // reported but does not fail the command (exit 0), any other error does.
    let mut errors = Vec::new();
    let mut fatal = false;
    for n in &a.images {
        match remove(c, n, &q).await {
            Ok(()) => {}
            Err(e) => {
                if super::start::is_connect(&e) {
                    return Err(e);
                }
                let not_found = e
                    .downcast_ref::<ApiError>()
                    .is_some_and(|api| api.status == 404);
                fatal |= !not_found;
                errors.push(e.to_string());
            }
        }
    }
    if errors.is_empty() {
        return Ok(0);
    }
    eprintln!("{}", errors.join("\n"));
    Ok(if !a.force || fatal { 1 } else { 0 })
}

async fn remove(c: &Client, name: &str, q: &[(&'static str, String)]) -> Result<()> {
    let resp = c.delete(&format!("/images/{}", seg(name)), q).await?;
    let items: Vec<ImageDeleteItem> = read_json(resp).await?;
    print_deleted(&items);
    Ok(())
}
