//! `logs`.

use anyhow::Result;
use clap::Args;

use crate::client::{body_reader, seg, Client, Exit};
use crate::human::parse_timestamp;
use crate::stream::copy_output;

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long = "follow")]
    pub follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long = "tail", default_value = "all")]
    pub tail: String,
    /// Show logs since timestamp or relative (e.g. 42m for 42 minutes)
    #[arg(long = "since")]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative (e.g. 42m for 42 minutes)
    #[arg(long = "until")]
    pub until: Option<String>,
    /// Show timestamps
    #[arg(short = 't', long = "timestamps")]
    pub timestamps: bool,
    /// Show extra details provided to logs
    #[arg(long = "details")]
    pub details: bool,
    pub container: String,
}

pub async fn run(c: &Client, a: LogsArgs) -> Result<i32> {
    let info = super::inspect_container(c, &a.container).await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let mut q = vec![("stdout", "1".to_string()), ("stderr", "1".to_string())];
    if let Some(s) = &a.since {
        q.push((
            "since",
            parse_timestamp(s).map_err(|e| Exit::msg(125, e.to_string()))?,
        ));
    }
    if let Some(u) = &a.until {
        q.push((
            "until",
            parse_timestamp(u)
                .map_err(|e| Exit::msg(125, e.to_string().replace("\"since\"", "\"until\"")))?,
        ));
    }
    if a.timestamps {
        q.push(("timestamps", "1".to_string()));
    }
    if a.follow {
        q.push(("follow", "1".to_string()));
    }
    if a.details {
        q.push(("details", "1".to_string()));
    }
    q.push(("tail", a.tail.clone()));
    let resp = c
        .get(&format!("/containers/{}/logs", seg(&a.container)), &q)
        .await?;
    copy_output(body_reader(resp), tty).await?;
    Ok(0)
}
