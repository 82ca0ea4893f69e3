//! OCI hooks: each runs with the container's state JSON on stdin, its own args/env, and an
//! optional timeout (seconds) after which it is killed and the hook fails.

use crate::state::OciState;
use crate::{Error, Result};
use oci_spec::runtime::Hook;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `hooks` in order; the first failure stops and is returned.
pub fn run(kind: &str, hooks: Option<&Vec<Hook>>, state: &OciState) -> Result<()> {
    let Some(hooks) = hooks else { return Ok(()) };
    let json = serde_json::to_vec(state).map_err(|e| Error::invalid(e.to_string()))?;
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, &json)
            .map_err(|m| Error::Hook(format!("error running {kind} hook #{i}: {m}")))?;
    }
    Ok(())
}

fn run_one(h: &Hook, state: &[u8]) -> std::result::Result<(), String> {
    let mut cmd = Command::new(h.path());
    if let Some(args) = h.args() {
        if let Some((a0, rest)) = args.split_first() {
            use std::os::unix::process::CommandExt;
            cmd.arg0(a0).args(rest);
        }
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{}: {e}", h.path().display()))?;
    if let Some(mut si) = child.stdin.take() {
        let _ = si.write_all(state);
    }
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(st) if st.success() => return Ok(()),
            Some(st) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                return Err(format!(
                    "{}: {st}, stderr: {}",
                    h.path().display(),
                    err.trim()
                ));
            }
            None => {}
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{}: timeout after {}s",
                h.path().display(),
                h.timeout().unwrap_or(0)
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
