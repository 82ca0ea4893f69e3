//! `image log` and `image rollback`: berth's "tags remember" (no Docker counterpart). A tag
//! without `:TAG` means `:latest`, as Docker normalises names.

use anyhow::Result;
use berth_api::{TagLogItem, TagRollback};
use clap::Args;
use serde_json::{json, Value};

use crate::client::{api_error, read_json, seg, Client, Exit};
use crate::format::{headers, Format};
use crate::human::{ago, short_id};

#[derive(Args, Debug)]
pub struct TagLogArgs {
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    #[arg(value_name = "NAME[:TAG]")]
    pub tag: String,
}

#[derive(Args, Debug)]
pub struct RollbackArgs {
    #[arg(value_name = "NAME[:TAG]")]
    pub tag: String,
}

pub const DEFAULT_FORMAT: &str = "table {{.ID}}\t{{.CreatedSince}}\t{{.When}}\t{{.How}}";

fn shown_id(id: &str, trunc: bool) -> String {
    if trunc {
        short_id(id)
    } else {
        id.to_string()
    }
}

/// A daemon's refusal ends the command with status 1, as the docker CLI's commands do.
fn exit_1_on_daemon_error(e: anyhow::Error) -> anyhow::Error {
    if api_error(&e).is_some() {
        Exit::msg(1, e.to_string())
    } else {
        e
    }
}

fn unix_of(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| t.timestamp())
}

/// One row; `CreatedSince` is `<removed>` for an image removed since it was logged.
fn row(e: &TagLogItem, trunc: bool) -> Value {
    json!({
        "ID": shown_id(&e.id, trunc),
        "CreatedSince": e.created.map(ago).unwrap_or_else(|| "<removed>".to_string()),
        "When": unix_of(&e.time).map(ago).unwrap_or_default(),
        "Time": e.time,
        "How": e.how,
        "Previous": e.previous.as_deref().map(|p| shown_id(p, trunc)).unwrap_or_default(),
    })
}

pub async fn log(c: &Client, a: TagLogArgs) -> Result<i32> {
    let items: Vec<TagLogItem> = c
        .get_json(&format!("/images/{}/log", seg(&a.tag)), &[])
        .await
        .map_err(exit_1_on_daemon_error)?;
    let trunc = !a.no_trunc;
    if a.quiet && a.format.is_none() {
        for e in &items {
            println!("{}", shown_id(&e.id, trunc));
        }
        return Ok(0);
    }
    let fmt = Format::new(a.format.as_deref().unwrap_or(""), DEFAULT_FORMAT)
        .map_err(|e| Exit::msg(125, e.to_string()))?;
    let rows: Vec<Value> = items.iter().map(|e| row(e, trunc)).collect();
    let hdr = headers(&[
        ("ID", "IMAGE ID"),
        ("CreatedSince", "CREATED"),
        ("When", "WHEN"),
        ("Time", "TIME"),
        ("How", "HOW"),
        ("Previous", "PREVIOUS"),
    ]);
    print!(
        "{}",
        fmt.render_all(&rows, &hdr)
            .map_err(|e| Exit::msg(125, e.to_string()))?
    );
    Ok(0)
}

pub async fn rollback(c: &Client, a: RollbackArgs) -> Result<i32> {
    let resp = c
        .post(&format!("/images/{}/rollback", seg(&a.tag)), &[])
        .await
        .map_err(exit_1_on_daemon_error)?;
    let done: TagRollback = read_json(resp).await?;
    println!(
        "Rolled back {}: sha256:{} -> sha256:{}",
        done.tag,
        short_id(&done.from),
        short_id(&done.to)
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_show_short_ids_and_removed_images() {
        let e = TagLogItem {
            id: format!("sha256:{}", "a".repeat(64)),
            previous: Some(format!("sha256:{}", "b".repeat(64))),
            time: "2020-01-01T00:00:00Z".into(),
            how: "build".into(),
            created: None,
        };
        let r = row(&e, true);
        assert_eq!(r["ID"], "a".repeat(12));
        assert_eq!(r["Previous"], "b".repeat(12));
        assert_eq!(r["CreatedSince"], "<removed>");
        assert!(r["When"].as_str().unwrap().ends_with(" ago"));
        assert_eq!(row(&e, false)["ID"], e.id);
    }
}
