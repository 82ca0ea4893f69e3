//! `save` / `image save`.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use http_body_util::BodyExt;

use crate::client::{Client, Exit};
use crate::tty;

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    /// Save only the given platform
    #[arg(long = "platform")]
    pub platform: Vec<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

pub async fn run(c: &Client, a: SaveArgs) -> Result<i32> {
    if a.output.is_none() && tty::stdout_is_tty() {
        return Err(Exit::msg(
            1,
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let q: Vec<(&str, String)> = a.images.iter().map(|i| ("names", i.clone())).collect();
    let resp = c.get("/images/get", &q).await?;
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) => {
            // written to a temporary file first, like docker, so a failure leaves nothing
            Box::new(
                std::fs::File::create(format!("{p}.berth-tmp"))
                    .map_err(|e| Exit::msg(1, format!("failed to save image: {e}")))?,
            )
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut body = resp.into_body();
    let res: Result<()> = async {
        while let Some(frame) = body.frame().await {
            let frame = frame?;
            if let Some(d) = frame.data_ref() {
                out.write_all(d)?;
            }
        }
        out.flush()?;
        Ok(())
    }
    .await;
    drop(out);
    if let Some(p) = &a.output {
        let tmp = format!("{p}.berth-tmp");
        if let Err(e) = res {
            let _ = std::fs::remove_file(&tmp);
            return Err(Exit::msg(1, format!("failed to save image: {e}")));
        }
        std::fs::rename(&tmp, p).map_err(|e| Exit::msg(1, format!("failed to save image: {e}")))?;
    } else {
        res?;
    }
    Ok(0)
}
