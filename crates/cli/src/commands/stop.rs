//! `stop`, `restart` and `kill`.

use anyhow::Result;
use clap::Args;

use crate::client::{seg, Client};

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        allow_hyphen_values = true
    )]
    pub time: Option<i64>,
    /// Signal to send to the container
    #[arg(short = 's', long = "signal")]
    pub signal: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long = "signal")]
    pub signal: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub async fn stop(c: &Client, a: StopArgs, restart: bool) -> Result<i32> {
    let mut q = Vec::new();
    if let Some(t) = a.time {
        q.push(("t", t.to_string()));
    }
    if let Some(s) = &a.signal {
        q.push(("signal", s.clone()));
    }
    let action = if restart { "restart" } else { "stop" };
    super::for_each(&a.containers, |n| {
        let q = q.clone();
        async move {
            c.post(&format!("/containers/{}/{action}", seg(&n)), &q)
                .await?;
            println!("{n}");
            Ok(())
        }
    })
    .await
}

pub async fn kill(c: &Client, a: KillArgs) -> Result<i32> {
    let mut q = Vec::new();
    if let Some(s) = &a.signal {
        q.push(("signal", s.clone()));
    }
    super::for_each(&a.containers, |n| {
        let q = q.clone();
        async move {
            c.post(&format!("/containers/{}/kill", seg(&n)), &q).await?;
            println!("{n}");
            Ok(())
        }
    })
    .await
}
