//! `berth-shim`: supervises one container (or one exec session).
//!
//! ```text
//! berth-shim --id ID --state-dir DIR --runtime PATH --runtime-root DIR
//!            (--bundle DIR | --exec-process FILE) [--log-path FILE] [--tty] [--stdin]
//! ```
//!
//! The process forks; the parent waits for the supervising child to get ready, prints one line
//! — `ok <pid>` (exit status 0; the container's pid, 0 for an exec session before START) or
//! `error: <message>` (exit status 1) — and exits. The child lives on in its own session as a
//! child subreaper, serves `<state-dir>/shim.sock` (see `berth_shim::protocol`), and exits once
//! the process it supervises has exited and `exit.json` is written.
#![deny(unsafe_code)]

mod args;
mod jsonlog;
mod logfile;
mod supervisor;
#[allow(unsafe_code)] // the shim's syscall module
mod sys;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};

fn main() {
    let args = match args::parse(std::env::args_os().skip(1)).and_then(args::pin_runtime) {
        Ok(a) => a,
        Err(e) => fail(&e),
    };
    if let Err(e) = std::fs::create_dir_all(&args.state_dir) {
        fail(&format!(
            "creating state directory {}: {e}",
            args.state_dir.display()
        ));
    }
    let (ready_r, ready_w) = match sys::pipe() {
        Ok(p) => p,
        Err(e) => fail(&format!("pipe: {e}")),
    };
    match sys::fork() {
        Err(e) => fail(&format!("fork: {e}")),
        Ok(sys::Forked::Parent) => {
            drop(ready_w);
            let mut line = String::new();
            let _ = BufReader::new(File::from(ready_r)).read_line(&mut line);
            let line = line.trim_end();
            if line.starts_with("ok ") {
                println!("{line}");
                std::process::exit(0);
            }
            if line.starts_with("error:") {
                println!("{line}");
                std::process::exit(1);
            }
            fail("the shim exited before it was ready");
        }
        Ok(sys::Forked::Child) => {
            drop(ready_r);
            supervisor::run(args, File::from(ready_w));
        }
    }
}

/// Prints `error: <message>` and exits with status 1.
fn fail(msg: &str) -> ! {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "error: {msg}");
    let _ = out.flush();
    std::process::exit(1)
}
