//! A container's streams: attach (with the log replayed first when asked), logs (followed
//! until the container stops) and TTY resize.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_shim::protocol::Frame;
use tokio::sync::mpsc;

use crate::container::{ShimFrame, Subscriber};
use crate::context::{blocking, internal, Context};
use crate::util;
use crate::{
    logs, AttachOptions, EngineError, Input, IoSession, LogEntry, LogsOptions, Output, Result,
};

/// Attaches; works before `start` (output produced after start is delivered, also after a
/// replay of the log with `logs`).
pub(crate) async fn container_attach(
    ctx: &Arc<Context>,
    key: &str,
    opts: AttachOptions,
) -> Result<IoSession> {
    let c = ctx.lookup(key)?;
    let keys = detach_keys(&opts.detach_keys)?;
    let (tty, open_stdin, stdin_once, log_path) = {
        let r = c.rec.lock().unwrap();
        (
            r.config.tty,
            r.config.open_stdin,
            r.config.stdin_once,
            r.log_path.clone(),
        )
    };
    let (tx, rx) = mpsc::channel(1024);
    if opts.logs && !log_path.is_empty() {
        let lo = LogsOptions {
            stdout: opts.stdout,
            stderr: opts.stderr,
            ..Default::default()
        };
        let (entries, _) =
            logs::read_all(Path::new(&log_path), &lo).map_err(internal("reading logs"))?;
        for e in entries {
            let _ = tx.try_send(Output {
                stream: e.stream,
                data: e.data,
            });
        }
    }
    // As dockerd, a streaming attach waits for output whatever the state, also after a log
    // replay: to a created or stopped container it delivers what its next start writes, from
    // the first byte.
    if opts.stream {
        c.subscribers.lock().unwrap().push(Subscriber {
            tx,
            stdout: opts.stdout,
            stderr: opts.stderr,
        });
    }
    let input = if opts.stdin && open_stdin && opts.stream {
        let (ctx, c2) = (ctx.clone(), c.clone());
        let on_detach = Box::new(move || ctx.container_event(&c2, "detach", &[]));
        Some(input_to_shim(c.to_shim.clone(), stdin_once, on_detach))
    } else {
        None
    };
    Ok(IoSession {
        tty,
        output: rx,
        detach_keys: (tty && input.is_some()).then_some(keys),
        input,
    })
}

/// Parses a client's detach keys (empty: the default), refusing an unknown key name with
/// dockerd's wording and status (400).
pub(crate) fn detach_keys(keys: &str) -> Result<Vec<u8>> {
    berth_sys::detach::keys_or_default(keys)
        .map_err(|_| EngineError::InvalidArgument(format!("Invalid detach keys ({keys}) provided")))
}

/// Log entries; with `follow` the channel stays open until the container stops.
pub(crate) async fn container_logs(
    ctx: &Arc<Context>,
    key: &str,
    opts: LogsOptions,
) -> Result<(bool, mpsc::Receiver<LogEntry>)> {
    let c = ctx.lookup(key)?;
    let (tty, log_path, driver) = {
        let r = c.rec.lock().unwrap();
        (
            r.config.tty,
            r.log_path.clone(),
            r.host_config.log_config.kind.clone(),
        )
    };
    if driver == "none" || log_path.is_empty() {
        return Err(EngineError::InvalidArgument(format!(
            "configured logging driver does not support reading: \"{driver}\""
        )));
    }
    let path = PathBuf::from(log_path);
    let (tx, rx) = mpsc::channel(256);
    let o = opts.clone();
    let p = path.clone();
    let (entries, offset) =
        blocking(move || logs::read_all(&p, &o).map_err(internal("reading logs"))).await?;
    let mut exits = c.exits.subscribe();
    tokio::spawn(async move {
        for e in entries {
            if tx.send(e).await.is_err() {
                return;
            }
        }
        if !opts.follow {
            return;
        }
        let mut offset = offset;
        loop {
            let running = c.running();
            let (p, o) = (path.clone(), opts.clone());
            let Ok(Ok((entries, off))) =
                tokio::task::spawn_blocking(move || logs::read_from(&p, offset, &o)).await
            else {
                return;
            };
            offset = off;
            for e in entries {
                if opts
                    .until
                    .is_some_and(|u| util::parse_time(&e.time).unwrap_or(0.0) > u)
                {
                    return;
                }
                if tx.send(e).await.is_err() {
                    return;
                }
            }
            if !running || c.removed.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            tokio::select! {
                _ = exits.changed() => {}
                _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                _ = tx.closed() => return,
            }
        }
    });
    Ok((tty, rx))
}

pub(crate) async fn container_resize(
    ctx: &Arc<Context>,
    key: &str,
    rows: u16,
    cols: u16,
) -> Result<()> {
    let c = ctx.lookup(key)?;
    if !c.running() {
        return Err(EngineError::Conflict(format!(
            "Container {} is not running",
            c.id
        )));
    }
    let _ = c.to_shim.send(Frame::Resize { rows, cols });
    Ok(())
}

/// What happens when a client detaches (its event).
pub(crate) type OnDetach = Box<dyn FnOnce() + Send>;

/// An attach session's input channel: stdin data and resizes become shim frames; when the
/// client closes its end, the process's stdin is closed too if `close_stdin`. A client that
/// detaches leaves stdin open (the process goes on as if nobody had attached) and runs
/// `on_detach`.
pub(crate) fn input_to_shim(
    to_shim: mpsc::UnboundedSender<ShimFrame>,
    close_stdin: bool,
    on_detach: OnDetach,
) -> mpsc::Sender<Input> {
    let (itx, mut irx) = mpsc::channel::<Input>(64);
    tokio::spawn(async move {
        while let Some(i) = irx.recv().await {
            let frame = match i {
                Input::Data(d) => Frame::Stdin(d),
                Input::Resize { rows, cols } => Frame::Resize { rows, cols },
                Input::Detach => {
                    on_detach();
                    return;
                }
            };
            if to_shim.send(frame).is_err() {
                return;
            }
        }
        if close_stdin {
            let _ = to_shim.send(Frame::StdinClose);
        }
    });
    itx
}
