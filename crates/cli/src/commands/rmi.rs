//! `rmi` / `image rm`.

use anyhow::Result;
use berth_api::ImageDeleteItem;
use clap::Args;

use crate::client::{read_json, seg, Client};

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
    super::for_each(&a.images, |n| {
        let q = q.clone();
        async move {
            let resp = c.delete(&format!("/images/{}", seg(&n)), &q).await?;
            let items: Vec<ImageDeleteItem> = read_json(resp).await?;
            print_deleted(&items);
            Ok(())
        }
    })
    .await
}
