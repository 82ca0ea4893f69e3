//! `start`.

use anyhow::Result;
use clap::Args;

use super::run::attach_start_wait;
use crate::client::{seg, Client, Exit};

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long = "attach")]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long = "interactive")]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub async fn run(c: &Client, a: StartArgs) -> Result<i32> {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            return Err(Exit::msg(
                1,
                "you cannot start and attach multiple containers at once",
            ));
        }
        let name = &a.containers[0];
        let info = super::inspect_container(c, name)
            .await
            .map_err(|e| Exit::msg(1, e.to_string()))?;
        let id = info["Id"].as_str().unwrap_or(name).to_string();
        let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
        let stdin = a.interactive && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
        let auto_remove = info["HostConfig"]["AutoRemove"].as_bool().unwrap_or(false);
        return attach_start_wait(
            c,
            &id,
            tty,
            stdin,
            true,
            auto_remove,
            a.detach_keys.as_deref(),
        )
        .await;
    }
    let mut failed = Vec::new();
    for n in &a.containers {
        match c.post(&format!("/containers/{}/start", seg(n)), &[]).await {
            Ok(_) => println!("{n}"),
            Err(e) => {
                if is_connect(&e) {
                    return Err(e);
                }
                eprintln!("{e}");
                failed.push(n.clone());
            }
        }
    }
    if !failed.is_empty() {
        return Err(Exit::msg(
            1,
            format!("Error: failed to start containers: {}", failed.join(", ")),
        ));
    }
    Ok(0)
}

pub fn is_connect(e: &anyhow::Error) -> bool {
    e.downcast_ref::<Exit>().is_some_and(|x| x.code == 125)
}
