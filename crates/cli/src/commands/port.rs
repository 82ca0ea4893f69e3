//! `port CONTAINER [PRIVATE_PORT[/PROTO]]`: the container's published ports.

use anyhow::{bail, Result};
use serde_json::Value;

use crate::client::{read_json, seg, Client};

#[derive(clap::Args, Debug)]
pub struct PortArgs {
    pub container: String,
    pub private_port: Option<String>,
}

pub async fn run(c: &Client, a: PortArgs) -> Result<i32> {
    let info: Value = read_json(
        c.get(&format!("/containers/{}/json", seg(&a.container)), &[])
            .await?,
    )
    .await?;
    let ports = info["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let want = a.private_port.as_ref().map(|p| {
        if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut found = false;
    for (port, bindings) in &ports {
        if want.as_ref().is_some_and(|w| w != port) {
            continue;
        }
        for b in bindings.as_array().into_iter().flatten() {
            let ip = b["HostIp"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("0.0.0.0");
            let hp = b["HostPort"].as_str().unwrap_or_default();
            found = true;
            if want.is_some() {
                println!("{ip}:{hp}");
            } else {
                println!("{port} -> {ip}:{hp}");
            }
        }
    }
    if let Some(w) = want {
        if !found {
            bail!("Error: No public port '{w}' published for {}", a.container);
        }
    }
    Ok(0)
}
