//! `diff CONTAINER`: changes to files or directories on a container's filesystem
//! (`C` changed, `A` added, `D` deleted).

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use crate::client::{seg, Client, Exit};

#[derive(Args, Debug)]
pub struct DiffArgs {
    pub container: String,
}

/// One line of `docker diff`.
pub fn line(change: &Value) -> String {
    let kind = match change["Kind"].as_u64() {
        Some(0) => "C",
        Some(1) => "A",
        Some(2) => "D",
        _ => "?",
    };
    format!("{kind} {}", change["Path"].as_str().unwrap_or(""))
}

/// Runs the command; errors exit with status 1, as docker's do.
pub async fn run(c: &Client, a: DiffArgs) -> Result<i32> {
    run_inner(c, a).await.map_err(|e| {
        if e.downcast_ref::<Exit>().is_some() {
            e
        } else {
            Exit::msg(1, e.to_string())
        }
    })
}

async fn run_inner(c: &Client, a: DiffArgs) -> Result<i32> {
    let list: Vec<Value> = c
        .get_json(&format!("/containers/{}/changes", seg(&a.container)), &[])
        .await?;
    for ch in &list {
        println!("{}", line(ch));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_letters() {
        let v = serde_json::json!({"Path": "/etc", "Kind": 0});
        assert_eq!(line(&v), "C /etc");
        assert_eq!(line(&serde_json::json!({"Path": "/x", "Kind": 1})), "A /x");
        assert_eq!(line(&serde_json::json!({"Path": "/y", "Kind": 2})), "D /y");
    }
}
