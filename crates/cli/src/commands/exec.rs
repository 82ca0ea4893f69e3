//! `exec`.

use anyhow::Result;
use berth_api::{ExecConfig, ExecInspect, ExecStartConfig, IdResponse};
use clap::Args;

use super::attach::{pump, setup_terminal, Ended, DETACHED_MESSAGE};
use crate::client::{read_json, seg, Client, Exit};
use crate::tty;

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long = "detach")]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long = "interactive")]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty")]
    pub tty: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Give extended privileges to the command
    #[arg(long = "privileged")]
    pub privileged: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    pub container: String,
    #[arg(
        value_name = "COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub cmd: Vec<String>,
}

fn env_list(a: &ExecArgs) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in &a.env_file {
        let text =
            std::fs::read_to_string(f).map_err(|e| Exit::msg(125, format!("open {f}: {e}")))?;
        out.extend(
            text.lines()
                .map(|l| l.trim_start())
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| l.to_string()),
        );
    }
    out.extend(a.env.iter().cloned());
    Ok(out
        .into_iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e)
            } else {
                std::env::var(&e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect())
}

pub async fn run(c: &Client, a: ExecArgs) -> Result<i32> {
    let keys = super::attach::detach_keys(a.detach_keys.as_deref());
    let cfg = ExecConfig {
        attach_stdin: a.interactive && !a.detach,
        attach_stdout: !a.detach,
        attach_stderr: !a.detach,
        detach_keys: keys.clone().unwrap_or_default(),
        tty: a.tty,
        env: env_list(&a)?,
        cmd: a.cmd.clone(),
        privileged: a.privileged,
        user: a.user.clone().unwrap_or_default(),
        working_dir: a.workdir.clone().unwrap_or_default(),
        console_size: if a.tty {
            tty::size().map(|(h, w)| vec![h, w])
        } else {
            None
        },
    };
    let resp = c
        .post_json(
            &format!("/containers/{}/exec", seg(&a.container)),
            &[],
            &cfg,
        )
        .await?;
    let id: IdResponse = read_json(resp).await?;
    let start = ExecStartConfig {
        detach: a.detach,
        tty: a.tty,
        console_size: cfg.console_size.clone(),
    };
    if a.detach {
        c.post_json(&format!("/exec/{}/start", seg(&id.id)), &[], &start)
            .await?;
        return Ok(0);
    }
    let h = c
        .hijack(
            &format!("/exec/{}/start", seg(&id.id)),
            &[],
            Some(serde_json::to_vec(&start)?),
        )
        .await
        .map_err(|e| {
            let msg = e.to_string();
            match e.downcast_ref::<crate::client::ApiError>() {
                Some(_) => Exit::msg(super::run::start_error_code(&msg), msg),
                None => e,
            }
        })?;
    if a.tty && tty::stdout_is_tty() {
        tty::monitor_size(c.clone(), format!("/exec/{}/resize", seg(&id.id)));
    }
    setup_terminal(a.tty, a.interactive);
    let out = pump(h, a.tty, a.interactive, keys.as_deref()).await;
    tty::restore();
    if out? == Ended::Detached {
        return Err(Exit::msg(1, DETACHED_MESSAGE));
    }
    // the exit code may take a moment to be recorded after the stream ends
    for _ in 0..50 {
        let ins: ExecInspect = c
            .get_json(&format!("/exec/{}/json", seg(&id.id)), &[])
            .await?;
        if !ins.running {
            return Ok(ins.exit_code.unwrap_or(0) as i32);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(0)
}
