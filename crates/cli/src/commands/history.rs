//! `history` / `image history`.

use anyhow::Result;
use berth_api::HistoryItem;
use clap::Args;
use serde_json::{json, Value};

use crate::client::{seg, Client, Exit};
use crate::format::{headers, Format};
use crate::human::{ago, ellipsis, go_time, human_size, short_id};

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(long = "human", default_value = "true", num_args = 0..=1, default_missing_value = "true", require_equals = true, action = clap::ArgAction::Set)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    pub image: String,
}

pub const DEFAULT_FORMAT: &str =
    "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";

fn row(h: &HistoryItem, trunc: bool, human: bool) -> Value {
    let id = if h.id == "<missing>" || !trunc {
        h.id.clone()
    } else {
        short_id(&h.id)
    };
    let created_by = h.created_by.replace('\t', " ");
    let created_by = if trunc {
        ellipsis(&created_by, 45)
    } else {
        created_by
    };
    json!({
        "ID": id,
        "CreatedSince": if human { ago(h.created) } else { go_time(h.created) },
        "CreatedAt": if human { go_time(h.created) } else { chrono::DateTime::from_timestamp(h.created, 0).map(|t| t.to_rfc3339()).unwrap_or_default() },
        "CreatedBy": created_by,
        "Size": if human { human_size(h.size as f64) } else { h.size.to_string() },
        "Comment": h.comment,
        "Tags": h.tags.join(", "),
    })
}

pub async fn run(c: &Client, a: HistoryArgs) -> Result<i32> {
    let items: Vec<HistoryItem> = c
        .get_json(&format!("/images/{}/history", seg(&a.image)), &[])
        .await?;
    let trunc = !a.no_trunc;
    if a.quiet && a.format.is_none() {
        for h in &items {
            println!(
                "{}",
                if h.id == "<missing>" || !trunc {
                    h.id.clone()
                } else {
                    short_id(&h.id)
                }
            );
        }
        return Ok(0);
    }
    let fmt = Format::new(a.format.as_deref().unwrap_or(""), DEFAULT_FORMAT)
        .map_err(|e| Exit::msg(125, e.to_string()))?;
    let rows: Vec<Value> = items.iter().map(|h| row(h, trunc, a.human)).collect();
    let hdr = headers(&[
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
        ("Tags", "TAGS"),
    ]);
    print!(
        "{}",
        fmt.render_all(&rows, &hdr)
            .map_err(|e| Exit::msg(125, e.to_string()))?
    );
    Ok(0)
}
