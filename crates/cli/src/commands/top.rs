//! `top CONTAINER [ps OPTIONS]`: the running processes of a container.

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use crate::client::{seg, Client, Exit};

#[derive(Args, Debug)]
pub struct TopArgs {
    pub container: String,
    /// Options passed to ps
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// The table docker prints: tab-separated, aligned as `tabwriter.NewWriter(out, 20, 1, 3, ' ',
/// 0)` does.
pub fn render(top: &Value) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|s| s.as_str().unwrap_or("").to_string())
            .collect()
    };
    rows.push(strs(&top["Titles"]));
    for p in top["Processes"].as_array().into_iter().flatten() {
        rows.push(strs(p));
    }
    let ncols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![20usize; ncols];
    for r in &rows {
        for (i, c) in r.iter().enumerate().take(r.len().saturating_sub(1)) {
            widths[i] = widths[i].max(c.chars().count() + 3);
        }
    }
    let mut out = String::new();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            out.push_str(c);
            if i + 1 < r.len() {
                out.push_str(&" ".repeat(widths[i] - c.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

/// Runs the command; errors exit with status 1, as docker's do.
pub async fn run(c: &Client, a: TopArgs) -> Result<i32> {
    run_inner(c, a).await.map_err(|e| {
        if e.downcast_ref::<Exit>().is_some() {
            e
        } else {
            Exit::msg(1, e.to_string())
        }
    })
}

async fn run_inner(c: &Client, a: TopArgs) -> Result<i32> {
    let args = a.ps_args.join(" ");
    let q: Vec<(&str, String)> = if args.is_empty() {
        Vec::new()
    } else {
        vec![("ps_args", args)]
    };
    let top: Value = c
        .get_json(&format!("/containers/{}/top", seg(&a.container)), &q)
        .await?;
    print!("{}", render(&top));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_like_docker() {
        let v = serde_json::json!({"Titles": ["UID", "PID", "CMD"],
            "Processes": [["root", "1234", "sleep 1000"]]});
        assert_eq!(
            render(&v),
            "UID                 PID                 CMD\nroot                1234                sleep 1000\n"
        );
    }
}
