//! `attach`, and the attach session shared by `run`, `start -a` and `exec`.

use anyhow::Result;
use clap::{ArgAction, Args};
use hyper::body::Incoming;
use hyper::Response;

use crate::client::{read_json, seg, Client, Exit, Hijacked};
use crate::stream::{copy_input, copy_output};
use crate::tty;

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", num_args = 0..=1, default_missing_value = "true", require_equals = true, action = ArgAction::Set, default_value = "true")]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    pub container: String,
}

/// How an attached session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The output ended (the process exited or the daemon closed the stream).
    Output,
    /// The user typed the detach keys: the container goes on.
    Detached,
}

/// What `docker attach` and `docker exec` print when the user detached (their exit status
/// is 1 then; `run` and `start -a` exit 0 silently).
pub const DETACHED_MESSAGE: &str = "read escape sequence";

/// The detach keys in force: the `--detach-keys` flag, else `detachKeys` of the client's
/// config.json, as the docker CLI chooses.
pub fn detach_keys(flag: Option<&str>) -> Option<String> {
    flag.filter(|k| !k.is_empty())
        .map(str::to_string)
        .or_else(super::credentials::config_detach_keys)
}

/// Pumps a hijacked stream: output to stdout/stderr (demuxed unless `tty`), stdin to the
/// stream when `stdin`. Returns when the output ends, or at once when the user types the
/// detach keys on a TTY session (`keys`, else ctrl-p,ctrl-q; an unknown key name falls back
/// to the default with a warning, as the docker CLI does).
pub async fn pump(h: Hijacked, tty: bool, stdin: bool, keys: Option<&str>) -> Result<Ended> {
    use berth_sys::detach;
    let Hijacked { reader, writer } = h;
    let (detached_tx, detached_rx) = tokio::sync::oneshot::channel::<()>();
    if stdin {
        if let Some(w) = writer {
            let scanner = tty.then(|| {
                let bytes = detach::keys_or_default(keys.unwrap_or("")).unwrap_or_else(|e| {
                    eprintln!("invalid detach escape keys, using default: {e}");
                    detach::DEFAULT_KEYS.to_vec()
                });
                detach::Scanner::new(bytes)
            });
            tokio::spawn(async move {
                if let Ok(true) = copy_input(w, scanner).await {
                    let _ = detached_tx.send(());
                }
            });
        }
    }
    tokio::select! {
        out = copy_output(reader, tty) => out.map(|()| Ended::Output),
        Ok(()) = detached_rx => Ok(Ended::Detached),
    }
}

/// Raw mode when the session is interactive on a terminal.
pub fn setup_terminal(tty: bool, stdin: bool) {
    if tty && stdin && tty::stdin_is_tty() {
        tty::make_raw();
    }
}

/// Forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 to the container.
pub fn proxy_signals(c: &Client, id: &str) {
    use tokio::signal::unix::{signal, SignalKind};
    let sigs = [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::quit(), "SIGQUIT"),
        (SignalKind::user_defined1(), "SIGUSR1"),
        (SignalKind::user_defined2(), "SIGUSR2"),
    ];
    for (kind, name) in sigs {
        let c = c.clone();
        let path = format!("/containers/{}/kill", seg(id));
        tokio::spawn(async move {
            let Ok(mut s) = signal(kind) else { return };
            while s.recv().await.is_some() {
                let _ = c.post(&path, &[("signal", name.to_string())]).await;
            }
        });
    }
}

/// Reads the wait body: the container's status code.
pub async fn wait_status(resp: Response<Incoming>) -> Result<i64> {
    let w: berth_api::WaitResponse = read_json(resp).await?;
    if let Some(e) = w.error {
        if !e.message.is_empty() {
            eprintln!("{}", e.message);
        }
    }
    Ok(w.status_code)
}

/// The attach query for a container.
pub fn attach_query(
    stdin: bool,
    logs: bool,
    detach_keys: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut q = vec![
        ("stream", "1".to_string()),
        ("stdout", "1".to_string()),
        ("stderr", "1".to_string()),
    ];
    if stdin {
        q.push(("stdin", "1".to_string()));
    }
    if logs {
        q.push(("logs", "1".to_string()));
    }
    if let Some(k) = detach_keys.filter(|k| !k.is_empty()) {
        q.push(("detachKeys", k.to_string()));
    }
    q
}

pub async fn run(c: &Client, a: AttachArgs) -> Result<i32> {
    let info = super::inspect_container(c, &a.container)
        .await
        .map_err(|e| Exit::msg(1, e.to_string()))?;
    let state = &info["State"];
    if !state["Running"].as_bool().unwrap_or(false) {
        return Err(Exit::msg(
            1,
            "You cannot attach to a stopped container, start it first",
        ));
    }
    if state["Paused"].as_bool().unwrap_or(false) {
        return Err(Exit::msg(
            1,
            "You cannot attach to a paused container, unpause it first",
        ));
    }
    let id = info["Id"].as_str().unwrap_or(&a.container).to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let open_stdin = info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let stdin = open_stdin && !a.no_stdin;
    let keys = detach_keys(a.detach_keys.as_deref());
    let h = c
        .hijack(
            &format!("/containers/{}/attach", seg(&id)),
            &attach_query(stdin, false, keys.as_deref()),
            None,
        )
        .await?;
    if tty && tty::stdout_is_tty() {
        tty::monitor_size(c.clone(), format!("/containers/{}/resize", seg(&id)));
    }
    if a.sig_proxy && !tty {
        proxy_signals(c, &id);
    }
    setup_terminal(tty, stdin);
    let ended = pump(h, tty, stdin, keys.as_deref()).await;
    tty::restore();
    if ended? == Ended::Detached {
        return Err(Exit::msg(1, DETACHED_MESSAGE));
    }
    // the exit code of the container, as docker does
    let info = super::inspect_container(c, &id).await;
    if let Ok(info) = info {
        if !info["State"]["Running"].as_bool().unwrap_or(false) {
            return Ok(info["State"]["ExitCode"].as_i64().unwrap_or(0) as i32);
        }
    }
    Ok(0)
}
