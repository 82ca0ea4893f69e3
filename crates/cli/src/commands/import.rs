//! `import` / `image import`.

use std::io::Read;

use anyhow::Result;
use clap::Args;
use hyper::Method;

use super::images::split_ref;
use super::load::print_message;
use crate::client::{json_stream, Client, Exit};

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long = "message")]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform")]
    pub platform: Option<String>,
    #[arg(value_name = "file|URL|-")]
    pub source: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

pub async fn run(c: &Client, a: ImportArgs) -> Result<i32> {
    let mut q: Vec<(&str, String)> = Vec::new();
    let body = if a.source == "-" {
        q.push(("fromSrc", "-".to_string()));
        let mut v = Vec::new();
        std::io::stdin().read_to_end(&mut v)?;
        Some((v, "application/x-tar"))
    } else if a.source.starts_with("http://") || a.source.starts_with("https://") {
        q.push(("fromSrc", a.source.clone()));
        None
    } else {
        q.push(("fromSrc", "-".to_string()));
        let v = std::fs::read(&a.source)
            .map_err(|e| Exit::msg(1, format!("open {}: {e}", a.source)))?;
        Some((v, "application/x-tar"))
    };
    if let Some(r) = &a.reference {
        let (repo, tag) = split_ref(r);
        q.push(("repo", repo));
        if !tag.is_empty() {
            q.push(("tag", tag));
        }
    }
    if let Some(m) = &a.message {
        q.push(("message", m.clone()));
    }
    for ch in &a.change {
        q.push(("changes", ch.clone()));
    }
    if let Some(p) = &a.platform {
        q.push(("platform", p.clone()));
    }
    let resp = c.request(Method::POST, "/images/create", &q, body).await?;
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
