//! berth-shim owns the per-container supervisor process and the wire protocol the engine uses to
//! talk to it. One shim runs per container (and per exec session): it asks the OCI runtime
//! (runc's command line) to create the process, holds its stdio (pipes or a pty), writes the
//! json-file log, relays output to connected clients, feeds stdin, reaps the process and records
//! its exit status in `exit.json` so the status survives a daemon restart.
//!
//! The library half is what the engine shares with the binary: the [`protocol`] (typed frames,
//! their codec and the exit record) and [`sockpath`].
//!
//! The binary's command line (`--name value` flags):
//!
//! ```text
//! berth-shim --id ID --state-dir DIR --runtime PATH --runtime-root DIR
//!            (--bundle DIR | --exec-process FILE) [--log-path FILE] [--tty] [--stdin]
//! ```
//!
//! It prints one line and exits once the supervising (daemonized) child is ready:
//! `ok <pid>` with status 0 (the container's pid after `runtime create`; `0` for an exec
//! session, whose process only starts on START) or `error: <message>` with status 1 (for a
//! failed create: runc's error, e.g. `runc create failed: unable to start container process:
//! exec: "x": executable file not found in $PATH`; nothing is left behind then).
#![forbid(unsafe_code)]

pub mod protocol;
pub mod sockpath;
