//! `wait`.

use anyhow::Result;
use clap::Args;

use super::attach::wait_status;
use crate::client::{seg, Client};

#[derive(Args, Debug)]
pub struct WaitArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub async fn run(c: &Client, a: WaitArgs) -> Result<i32> {
    super::for_each(&a.containers, |n| async move {
        let resp = c
            .post(
                &format!("/containers/{}/wait", seg(&n)),
                &[("condition", "not-running".to_string())],
            )
            .await?;
        let code = wait_status(resp).await?;
        println!("{code}");
        Ok(())
    })
    .await
}
