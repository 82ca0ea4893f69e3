//! `tag`.

use anyhow::Result;
use clap::Args;

use super::images::split_ref;
use crate::client::{seg, Client};

#[derive(Args, Debug)]
pub struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

pub async fn run(c: &Client, a: TagArgs) -> Result<i32> {
    let (repo, tag) = if a.target.contains('@') {
        (a.target.clone(), String::new())
    } else {
        split_ref(&a.target)
    };
    let tag = if tag.is_empty() {
        "latest".to_string()
    } else {
        tag
    };
    c.post(
        &format!("/images/{}/tag", seg(&a.source)),
        &[("repo", repo), ("tag", tag)],
    )
    .await?;
    Ok(0)
}
