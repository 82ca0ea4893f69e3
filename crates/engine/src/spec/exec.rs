//! An exec's process (`docker exec`): the container's process with the exec's command,
//! terminal, environment, working directory, user and, for `--privileged`, capabilities.

use berth_api::ExecConfig;
use oci_spec::runtime::{Process, Spec};

use super::{capabilities, console_size, oci_user};
use crate::defaults::{within_bounding, ALL_CAPS};
use crate::user::ResolvedUser;

/// What [`exec_process`] needs besides the container's process.
pub struct ExecProcessInput<'a> {
    /// The exec as created (`POST /containers/{id}/exec`).
    pub config: &'a ExecConfig,
    /// `config.user` resolved in the container's filesystem; `None` keeps the container's user.
    pub user: Option<ResolvedUser>,
    /// The host's capability bounding set (`CapBnd`): `--privileged` grants what is in it.
    pub cap_bounding: u64,
}

/// The process of a container's bundle (its `config.json`, as berth wrote it).
pub fn bundle_process(config_json: &[u8]) -> Result<Process, String> {
    let spec: Spec = serde_json::from_slice(config_json)
        .map_err(|e| format!("reading the container's bundle: {e}"))?;
    spec.process()
        .clone()
        .ok_or_else(|| "reading the container's bundle: it has no process".to_string())
}

/// The exec's process: `base` (the container's) with the exec's args and terminal (an 80×24
/// console when it has one), its environment variables replacing those of the same name, its
/// working directory and user when given, and all capabilities the host allows when privileged.
pub fn exec_process(base: &Process, input: &ExecProcessInput<'_>) -> Result<Process, String> {
    let cfg = input.config;
    let mut p = base.clone();
    p.set_args(Some(cfg.cmd.clone()))
        .set_terminal(Some(cfg.tty))
        .set_console_size(cfg.tty.then(|| console_size(None)));
    let mut env = p.env().clone().unwrap_or_default();
    // As dockerd: `TERM=xterm` goes with the exec's terminal, not with the container's.
    env.retain(|e| cfg.tty || e != "TERM=xterm");
    if cfg.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    // The exec's user's home, as runc gives it on dockerd (the container's is another user's).
    if let Some(u) = &input.user {
        env.retain(|e| !e.starts_with("HOME="));
        let home = if u.home.is_empty() { "/" } else { &u.home };
        env.push(format!("HOME={home}"));
    }
    for kv in &cfg.env {
        let k = kv.split('=').next().unwrap_or("");
        env.retain(|e| e.split('=').next() != Some(k));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if !cfg.working_dir.is_empty() {
        p.set_cwd(cfg.working_dir.clone().into());
    }
    if let Some(u) = &input.user {
        p.set_user(oci_user(u));
    }
    if cfg.privileged {
        let all: Vec<String> = ALL_CAPS.iter().map(|c| c.to_string()).collect();
        p.set_capabilities(Some(capabilities(&within_bounding(
            all,
            input.cap_bounding,
        ))?));
    }
    Ok(p)
}
