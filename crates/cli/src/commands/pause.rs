//! `pause` and `unpause`.

use anyhow::Result;
use clap::Args;

use crate::client::{seg, Client};

#[derive(Args, Debug)]
pub struct PauseArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub async fn run(c: &Client, a: PauseArgs, pause: bool) -> Result<i32> {
    let action = if pause { "pause" } else { "unpause" };
    super::for_each(&a.containers, |n| async move {
        c.post(&format!("/containers/{}/{action}", seg(&n)), &[])
            .await?;
        println!("{n}");
        Ok(())
    })
    .await
}
