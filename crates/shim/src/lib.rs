//! berth-shim owns the per-container supervisor process and the wire protocol the engine uses to
//! talk to it. One shim runs per container (and per exec session): it asks the OCI runtime
//! (runc's command line) to create the process, holds its stdio (pipes or a pty), writes the
//! json-file log, relays output to connected clients, feeds stdin, reaps the process and records
//! its exit status in `exit.json` so the status survives a daemon restart.
//!
//! The library half is only the protocol: [`protocol`] framing shared by shim and engine.

pub mod protocol;
