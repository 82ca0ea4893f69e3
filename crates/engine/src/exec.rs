//! `docker exec`: exec records, and running one through its own shim with the container's
//! process spec patched by the exec's command, user, environment and working directory.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use berth_api::*;
use berth_shim::protocol::{self, Frame};
use tokio::sync::{mpsc, oneshot};

use crate::container::{Container, Exec, ExecState, ShimFrame};
use crate::context::{internal, Context};
use crate::io::input_to_shim;
use crate::shim_client::{self, ShimLaunch};
use crate::util;
use crate::{spec, user, EngineError, IoSession, Output, Result, StreamKind};

pub(crate) async fn exec_create(ctx: &Arc<Context>, key: &str, cfg: ExecConfig) -> Result<String> {
    let c = ctx.lookup(key)?;
    if !c.running() {
        return Err(EngineError::Conflict(format!(
            "Container {} is not running",
            c.id
        )));
    }
    if cfg.cmd.is_empty() {
        return Err(EngineError::InvalidArgument(
            "No exec command specified".into(),
        ));
    }
    // dockerd answers an unknown key name here with a plain error: 500.
    berth_sys::detach::keys_or_default(&cfg.detach_keys).map_err(|_| {
        EngineError::Internal(format!(
            "Invalid escape keys ({}) provided",
            cfg.detach_keys
        ))
    })?;
    let id = util::new_id();
    ctx.container_event(
        &c,
        &format!("exec_create: {}", cfg.cmd.join(" ")),
        &[("execID", id.clone())],
    );
    let e = Arc::new(Exec {
        id: id.clone(),
        container_id: c.id.clone(),
        config: cfg,
        state: Mutex::new(ExecState::default()),
    });
    ctx.execs.lock().unwrap().insert(id.clone(), e);
    Ok(id)
}

/// Drops an exec record (health probes do not keep theirs).
pub(crate) fn forget_exec(ctx: &Arc<Context>, id: &str) {
    ctx.execs.lock().unwrap().remove(id);
}

fn exec_lookup(ctx: &Arc<Context>, id: &str) -> Result<Arc<Exec>> {
    ctx.execs
        .lock()
        .unwrap()
        .get(id)
        .cloned()
        .ok_or_else(|| EngineError::NotFound(format!("No such exec instance: {id}")))
}

/// Starts an exec. With `detach`, the returned session's output is already closed.
/// `detach_keys` overrides the exec's own (`DetachKeys` of its create body).
pub(crate) async fn exec_start(
    ctx: &Arc<Context>,
    exec_id: &str,
    detach: bool,
    detach_keys: Option<&str>,
) -> Result<IoSession> {
    let e = exec_lookup(ctx, exec_id)?;
    let c = ctx.lookup(&e.container_id)?;
    let keys = crate::io::detach_keys(detach_keys.unwrap_or(&e.config.detach_keys))?;
    {
        let mut st = e.state.lock().unwrap();
        if st.started {
            return Err(EngineError::Conflict(format!(
                "Error: Exec command {exec_id} has already run"
            )));
        }
        st.started = true;
    }
    let launched = exec_launch(ctx, &e, &c, detach, keys).await;
    if launched.is_err() {
        // As dockerd: an exec that could not start reads as exited with 126, so that
        // `docker exec` (which inspects the exit code after the stream) fails.
        let mut st = e.state.lock().unwrap();
        st.running = false;
        st.exit_code.get_or_insert(126);
    }
    launched
}

async fn exec_launch(
    ctx: &Arc<Context>,
    e: &Arc<Exec>,
    c: &Arc<Container>,
    detach: bool,
    keys: Vec<u8>,
) -> Result<IoSession> {
    let exec_id = e.id.as_str();
    if !c.running() {
        return Err(EngineError::Conflict(format!(
            "Container {} is not running",
            c.id
        )));
    }
    let rec = c.record();
    ctx.container_event(
        c,
        &format!("exec_start: {}", e.config.cmd.join(" ")),
        &[("execID", e.id.clone())],
    );
    // The exec's process: the container's, with the exec's command, env, user and cwd.
    let base = std::fs::read(ctx.bundle_dir(&c.id).join("config.json"))
        .map_err(|e| format!("reading the container's bundle: {e}"))
        .and_then(|d| spec::bundle_process(&d))
        .map_err(EngineError::Internal)?;
    let cfg = &e.config;
    let user = match cfg.user.as_str() {
        "" => None,
        u => {
            let group_add = c.rec.lock().unwrap().host_config.group_add.clone();
            Some(user::lookup_in_container(u, &group_add, ctx.rootfs(&c.id)).await?)
        }
    };
    let input = spec::ExecProcessInput {
        config: cfg,
        user,
        cap_bounding: ctx.cap_bounding,
    };
    let process = spec::exec_process(&base, &input).map_err(EngineError::Internal)?;
    let sdir = ctx
        .config
        .exec_root
        .join("shims")
        .join(format!("exec-{exec_id}"));
    let _ = std::fs::remove_dir_all(&sdir);
    std::fs::create_dir_all(&sdir).map_err(internal("creating exec state"))?;
    let pfile = sdir.join("process.json");
    std::fs::write(&pfile, spec::process_to_json(&process))
        .map_err(internal("writing process.json"))?;
    let launch = ShimLaunch {
        shim_path: ctx.config.shim_path.clone(),
        id: c.id.clone(),
        state_dir: sdir.clone(),
        runtime: ctx.shim_runtime(&rec.runtime_path),
        runtime_root: ctx.runc_root(),
        bundle: None,
        exec_process: Some(pfile),
        log_path: None,
        log_rotation: None,
        tty: cfg.tty,
        stdin: cfg.attach_stdin && !detach,
        cgroup: None,
    };
    ctx.host.shims.launch(&launch).await?;
    let stream = shim_client::connect(&sdir)
        .await
        .map_err(|err| EngineError::Internal(format!("connecting to exec shim: {err}")))?;
    let (mut r, mut w) = stream.into_split();
    let (out_tx, out_rx) = mpsc::channel::<Output>(1024);
    let (to_shim_tx, mut to_shim_rx) = mpsc::unbounded_channel::<ShimFrame>();
    e.state.lock().unwrap().to_shim = Some(to_shim_tx.clone());
    let (reply_tx, reply_rx) = oneshot::channel::<std::result::Result<(), String>>();
    let (want_out, want_err) = (cfg.attach_stdout && !detach, cfg.attach_stderr && !detach);
    let exec = e.clone();
    let sdir2 = sdir.clone();
    tokio::spawn(async move {
        let mut reply_tx = Some(reply_tx);
        let mut code = None;
        let who = format!("exec {}", exec.id);
        while let Some(frame) = shim_client::next_frame(&mut r, &who).await {
            let (stream, data) = match frame {
                Frame::Stdout(data) if want_out => (StreamKind::Stdout, data),
                Frame::Stderr(data) if want_err => (StreamKind::Stderr, data),
                Frame::Reply(res) => {
                    if let Some(tx) = reply_tx.take() {
                        let _ = tx.send(res);
                    }
                    continue;
                }
                Frame::Exit(record) => {
                    code = Some(record.exit_code);
                    break;
                }
                _ => continue,
            };
            let _ = out_tx.send(Output { stream, data }).await;
        }
        let code = code
            .or_else(|| shim_client::read_exit(&sdir2).map(|x| x.exit_code))
            .unwrap_or(126);
        {
            let mut st = exec.state.lock().unwrap();
            st.running = false;
            st.exit_code = Some(code);
            st.to_shim = None;
        }
        drop(out_tx);
        let _ = std::fs::remove_dir_all(&sdir2);
    });
    tokio::spawn(async move {
        while let Some(frame) = to_shim_rx.recv().await {
            if shim_client::write_frame(&mut w, &frame).await.is_err() {
                return;
            }
        }
    });
    let _ = to_shim_tx.send(Frame::Start);
    match reply_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(m)) => {
            e.state.lock().unwrap().exit_code = Some(126);
            return Err(shim_client::classify_start_error(m));
        }
        Err(_) => {
            return Err(EngineError::Internal(
                "exec shim exited before starting".into(),
            ))
        }
    }
    {
        let mut st = e.state.lock().unwrap();
        st.running = st.exit_code.is_none();
        st.pid = std::fs::read_to_string(sdir.join(protocol::PID_FILE))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
    }
    let input = if cfg.attach_stdin && !detach {
        let (ctx, c, id) = (ctx.clone(), c.clone(), e.id.clone());
        let on_detach = Box::new(move || ctx.container_event(&c, "exec_detach", &[("execID", id)]));
        Some(input_to_shim(to_shim_tx.clone(), true, on_detach))
    } else {
        None
    };
    let output = if detach {
        let (_tx, rx) = mpsc::channel(1);
        rx
    } else {
        out_rx
    };
    Ok(IoSession {
        tty: cfg.tty,
        output,
        detach_keys: (cfg.tty && input.is_some()).then_some(keys),
        input,
    })
}

pub(crate) async fn exec_inspect(ctx: &Arc<Context>, exec_id: &str) -> Result<ExecInspect> {
    let e = exec_lookup(ctx, exec_id)?;
    let st = e.state.lock().unwrap();
    Ok(ExecInspect {
        id: e.id.clone(),
        running: st.running,
        exit_code: st.exit_code,
        process_config: berth_api::ProcessConfig {
            privileged: e.config.privileged,
            user: e.config.user.clone(),
            tty: e.config.tty,
            entrypoint: e.config.cmd.first().cloned().unwrap_or_default(),
            arguments: e.config.cmd.iter().skip(1).cloned().collect(),
        },
        open_stdin: e.config.attach_stdin,
        open_stderr: e.config.attach_stderr,
        open_stdout: e.config.attach_stdout,
        can_remove: false,
        container_id: e.container_id.clone(),
        detach_keys: match e.config.detach_keys.as_str() {
            "" => String::new(),
            // checked at create
            k => base64::engine::general_purpose::STANDARD
                .encode(berth_sys::detach::parse_keys(k).unwrap_or_default()),
        },
        pid: st.pid,
    })
}

pub(crate) async fn exec_resize(
    ctx: &Arc<Context>,
    exec_id: &str,
    rows: u16,
    cols: u16,
) -> Result<()> {
    let e = exec_lookup(ctx, exec_id)?;
    let st = e.state.lock().unwrap();
    match &st.to_shim {
        Some(tx) => {
            let _ = tx.send(Frame::Resize { rows, cols });
            Ok(())
        }
        None => Err(EngineError::Conflict(format!(
            "Exec {exec_id} is not running"
        ))),
    }
}
