//! `run` and `create`.

use anyhow::Result;
use clap::{ArgAction, Args};

use super::attach::{attach_query, proxy_signals, pump, setup_terminal, wait_status, Ended};
use super::opts::ContainerOpts;
use crate::client::{api_error, read_json, seg, Client, Exit};
use crate::tty;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long = "detach")]
    pub detach: bool,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", num_args = 0..=1, default_missing_value = "true", require_equals = true, action = ArgAction::Set, default_value = "true")]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach")]
    pub attach: Vec<String>,
    #[command(flatten)]
    pub opts: ContainerOpts,
    #[arg(value_name = "IMAGE", required = true)]
    pub image: Option<String>,
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub cmd: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub opts: ContainerOpts,
    #[arg(value_name = "IMAGE", required = true)]
    pub image: Option<String>,
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub cmd: Vec<String>,
}

/// `busybox` → `busybox:latest` (as docker names it in "Unable to find image").
pub fn normalize_image(image: &str) -> String {
    if image.contains('@') {
        return image.to_string();
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// POST /containers/create; prints warnings; returns the ID.
pub async fn create_container(
    c: &Client,
    opts: &ContainerOpts,
    image: &str,
    cmd: &[String],
    detach: bool,
) -> Result<String> {
    let req = opts
        .to_request(image, cmd, detach)
        .map_err(|e| Exit::msg(125, format!("{e}")))?;
    let mut q = Vec::new();
    if let Some(n) = &opts.name {
        q.push(("name", n.clone()));
    }
    // --platform is accepted and ignored (berth runs the host's platform only)
    let resp = match c.post_json("/containers/create", &q, &req).await {
        Ok(r) => r,
        Err(e) => {
            if let Some(a) = api_error(&e) {
                if a.status == 404 && a.message.contains("No such image") {
                    eprintln!("Unable to find image '{}' locally", normalize_image(image));
                }
            }
            return Err(Exit::msg(125, e.to_string()));
        }
    };
    let r: berth_api::ContainerCreateResponse = read_json(resp).await?;
    for w in &r.warnings {
        eprintln!("WARNING: {w}");
    }
    Ok(r.id)
}

/// Maps a start failure to docker's exit codes (125/126/127).
pub fn start_error_code(msg: &str) -> i32 {
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        127
    } else if msg.contains("permission denied") || msg.contains("cannot execute") {
        126
    } else {
        125
    }
}

pub async fn create(c: &Client, a: CreateArgs) -> Result<i32> {
    let image = a.image.clone().unwrap_or_default();
    let id = create_container(c, &a.opts, &image, &a.cmd, true).await?;
    println!("{id}");
    Ok(0)
}

/// Attaches (before start), waits, starts and streams: the foreground part of `run` and
/// `start -a`. Returns the container's exit status.
pub async fn attach_start_wait(
    c: &Client,
    id: &str,
    tty: bool,
    stdin: bool,
    sig_proxy: bool,
    auto_remove: bool,
    detach_keys: Option<&str>,
) -> Result<i32> {
    let keys = super::attach::detach_keys(detach_keys);
    let detach_keys = keys.as_deref();
    let h = c
        .hijack(
            &format!("/containers/{}/attach", seg(id)),
            &attach_query(stdin, false, detach_keys),
            None,
        )
        .await
        .map_err(|e| Exit::msg(125, e.to_string()))?;
    let cond = if auto_remove { "removed" } else { "next-exit" };
    let wait = c
        .post(
            &format!("/containers/{}/wait", seg(id)),
            &[("condition", cond.to_string())],
        )
        .await
        .map_err(|e| Exit::msg(125, e.to_string()))?;
    let wait = tokio::spawn(wait_status(wait));
    if let Err(e) = c.post(&format!("/containers/{}/start", seg(id)), &[]).await {
        let msg = e.to_string();
        return Err(Exit::msg(start_error_code(&msg), msg));
    }
    if tty && tty::stdout_is_tty() {
        tty::monitor_size(c.clone(), format!("/containers/{}/resize", seg(id)));
    }
    if sig_proxy && !tty {
        proxy_signals(c, id);
    }
    setup_terminal(tty, stdin);
    let out = pump(h, tty, stdin, detach_keys).await;
    tty::restore();
    if out? == Ended::Detached {
        // as the docker CLI: the container goes on, nothing printed, status 0
        return Ok(0);
    }
    let code = match wait.await {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => return Err(Exit::msg(125, e.to_string())),
        Err(e) => return Err(Exit::msg(125, e.to_string())),
    };
    Ok(code as i32)
}

pub async fn run(c: &Client, a: RunArgs) -> Result<i32> {
    let image = a.image.clone().unwrap_or_default();
    let id = create_container(c, &a.opts, &image, &a.cmd, a.detach).await?;
    if a.detach {
        if let Err(e) = c
            .post(&format!("/containers/{}/start", seg(&id)), &[])
            .await
        {
            let msg = e.to_string();
            return Err(Exit::msg(start_error_code(&msg), msg));
        }
        println!("{id}");
        return Ok(0);
    }
    attach_start_wait(
        c,
        &id,
        a.opts.tty,
        a.opts.interactive,
        a.sig_proxy,
        a.opts.rm,
        a.detach_keys.as_deref(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names() {
        assert_eq!(normalize_image("busybox"), "busybox:latest");
        assert_eq!(normalize_image("busybox:1.36"), "busybox:1.36");
        assert_eq!(
            normalize_image("localhost:5000/x"),
            "localhost:5000/x:latest"
        );
        assert_eq!(normalize_image("x@sha256:ab"), "x@sha256:ab");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(
            start_error_code("exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(start_error_code("open /x: no such file or directory"), 127);
        assert_eq!(start_error_code("exec /etc: permission denied"), 126);
        assert_eq!(start_error_code("something else"), 125);
    }
}
