//! One module per command.

pub mod attach;
pub mod build;
pub mod build_secrets;
pub mod cp;
pub mod credentials;
pub mod diff;
pub mod engine;
pub mod events;
pub mod exec;
pub mod export;
pub mod history;
pub mod images;
pub mod import;
pub mod info;
pub mod inspect;
pub mod load;
pub mod login;
pub mod logs;
pub mod network;
pub mod opts;
pub mod pause;
pub mod port;
pub mod progress;
pub mod prune;
pub mod ps;
pub mod pull;
pub mod rm;
pub mod rmi;
pub mod run;
pub mod save;
pub mod start;
pub mod stats;
pub mod stop;
pub mod system;
pub mod tag;
pub mod taglog;
pub mod top;
pub mod trust;
pub mod update;
pub mod version;
pub mod volume;
pub mod wait;

use crate::client::{seg, Client};
use anyhow::Result;

/// Runs `f` for each name, printing each error on stderr as docker does; the status is 1 when
/// any failed (docker's multi-object commands: `rm`, `stop`, `kill`, `rmi`, `wait`, ...).
pub async fn for_each<F, Fut>(names: &[String], mut f: F) -> Result<i32>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut failed = false;
    for n in names {
        if let Err(e) = f(n.clone()).await {
            if let Some(x) = e.downcast_ref::<crate::client::Exit>() {
                if x.code == 125
                    && x.msg
                        .as_deref()
                        .is_some_and(|m| m.starts_with("Cannot connect"))
                {
                    return Err(e);
                }
            }
            eprintln!("{e}");
            failed = true;
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// GET /containers/{id}/json as raw JSON.
pub async fn inspect_container(c: &Client, id: &str) -> Result<serde_json::Value> {
    c.get_json(&format!("/containers/{}/json", seg(id)), &[])
        .await
}
