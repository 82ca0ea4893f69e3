//! `export [-o FILE] CONTAINER`: the container's filesystem as a tar archive.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use http_body_util::BodyExt;

use crate::client::{seg, Client, Exit};
use crate::tty;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    pub container: String,
}

/// Runs the command; errors exit with status 1, as docker's do.
pub async fn run(c: &Client, a: ExportArgs) -> Result<i32> {
    run_inner(c, a).await.map_err(|e| {
        if e.downcast_ref::<Exit>().is_some() {
            e
        } else {
            Exit::msg(1, e.to_string())
        }
    })
}

async fn run_inner(c: &Client, a: ExportArgs) -> Result<i32> {
    if a.output.is_none() && tty::stdout_is_tty() {
        return Err(Exit::msg(
            1,
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let resp = c
        .get(&format!("/containers/{}/export", seg(&a.container)), &[])
        .await?;
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(
            std::fs::File::create(p)
                .map_err(|e| Exit::msg(1, format!("failed to export container: {e}")))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        if let Some(d) = frame?.data_ref() {
            out.write_all(d)?;
        }
    }
    out.flush()?;
    Ok(0)
}
