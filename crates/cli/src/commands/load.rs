//! `load` / `image load`.

use std::io::Read;

use anyhow::Result;
use clap::Args;
use hyper::Method;

use crate::client::{json_stream, Client, Exit};
use crate::tty;

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long = "input")]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Load a specific platform
    #[arg(long = "platform")]
    pub platform: Vec<String>,
}

/// Prints a JSON message stream; returns the error message if one came.
pub fn print_message(v: &serde_json::Value, err: &mut Option<String>) {
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        *err = Some(e.to_string());
        return;
    }
    if let Some(m) = v
        .get("errorDetail")
        .and_then(|e| e.get("message"))
        .and_then(|m| m.as_str())
    {
        *err = Some(m.to_string());
        return;
    }
    if let Some(s) = v.get("stream").and_then(|s| s.as_str()) {
        print!("{s}");
    } else if let Some(s) = v.get("status").and_then(|s| s.as_str()) {
        match v.get("id").and_then(|i| i.as_str()) {
            Some(id) => println!("{id}: {s}"),
            None => println!("{s}"),
        }
    }
}

pub async fn run(c: &Client, a: LoadArgs) -> Result<i32> {
    let data = match &a.input {
        Some(p) => std::fs::read(p).map_err(|e| Exit::msg(1, format!("open {p}: {e}")))?,
        None => {
            if tty::stdin_is_tty() {
                return Err(Exit::msg(
                    1,
                    "requested load from stdin, but stdin is empty",
                ));
            }
            let mut v = Vec::new();
            std::io::stdin().read_to_end(&mut v)?;
            v
        }
    };
    let mut q = Vec::new();
    if a.quiet {
        q.push(("quiet", "1".to_string()));
    }
    let resp = c
        .request(
            Method::POST,
            "/images/load",
            &q,
            Some((data, "application/x-tar")),
        )
        .await?;
    let mut err = None;
    json_stream(resp, |v| {
        print_message(v, &mut err);
        Ok(())
    })
    .await?;
    if let Some(e) = err {
        return Err(Exit::msg(1, e));
    }
    Ok(0)
}
