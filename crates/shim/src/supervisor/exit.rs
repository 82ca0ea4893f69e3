//! The exit path: reaping the supervised process (and, as subreaper, any other child), then
//! recording `exit.json`, sending EXIT to the clients, cleaning up and exiting.

use super::{debug, lock, Encoded, Shim};
use crate::{jsonlog, sys};
use berth_shim::protocol::{self, ExitRecord, Frame};
use std::fs;
use std::thread;
use std::time::{Duration, Instant};

impl Shim {
    /// Waits for the supervised process to exit; returns its exit code.
    pub(super) fn reap(&self) -> i32 {
        loop {
            let (pid, busy, failed) = {
                let st = lock(&self.proc_state);
                (st.pid, st.busy > 0, st.failed)
            };
            if let (None, Some(code)) = (pid, failed) {
                return code;
            }
            let block = pid.is_some() && !busy;
            match sys::peek_exited(block) {
                Ok(Some(z)) if Some(z) == pid => {
                    let code = sys::wait_exit_code(z).unwrap_or_else(|e| {
                        debug(format_args!("waitpid {z}: {e}"));
                        255
                    });
                    debug(format_args!("process {z} exited with {code}"));
                    return lock(&self.proc_state).failed.unwrap_or(code);
                }
                // Another child. `busy` is re-read: the snapshot above predates a blocking wait.
                // A runtime command is only reaped by its own waiter, which ends `busy` after.
                Ok(Some(z)) => {
                    if lock(&self.proc_state).busy == 0 {
                        sys::reap(z);
                    } else {
                        self.pause(Duration::from_millis(10));
                    }
                }
                Ok(None) => match pid {
                    Some(p) if block => {
                        // No children at all while the process is known: it is not ours to wait
                        // for (should not happen); poll for it to disappear.
                        if !sys::process_exists(p) {
                            debug(format_args!("process {p} vanished without being reaped"));
                            return lock(&self.proc_state).failed.unwrap_or(255);
                        }
                        self.pause(Duration::from_millis(100));
                    }
                    Some(_) => self.pause(Duration::from_millis(10)),
                    None => self.pause(Duration::from_secs(1)),
                },
                Err(e) => {
                    debug(format_args!("waitid: {e}"));
                    self.pause(Duration::from_millis(100));
                }
            }
        }
    }

    /// Sleeps up to `d`, waking early when the process state changes.
    fn pause(&self, d: Duration) {
        let st = lock(&self.proc_state);
        let _ = self.proc_cv.wait_timeout(st, d);
    }

    /// Records the exit, tells clients, cleans up and exits the process.
    pub(super) fn finish(&self, code: i32) -> ! {
        let finished_at = jsonlog::now_rfc3339();
        // Let the readers drain what the process wrote (EOF), for at most 2 s.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut n = lock(&self.readers);
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                debug(format_args!("{} output readers still open after 2s", *n));
                break;
            }
            n = self
                .readers_cv
                .wait_timeout(n, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(n);
        let record = ExitRecord {
            exit_code: code.into(),
            finished_at,
            oom_killed: self.args.cgroup.as_deref().is_some_and(oom_killed),
        };
        if let Err(e) = record.write_file(&self.args.state_dir) {
            debug(format_args!("writing {}: {e}", protocol::EXIT_FILE));
        }
        if !self.args.is_exec() {
            // Before EXIT goes out, so runtime state is gone by the time anyone acts on it.
            self.delete();
        }
        let exit = Frame::<&[u8]>::Exit(record);
        let frame: Encoded = exit.encode().into();
        let clients = {
            let _gate = lock(&self.gate);
            let mut c = lock(&self.clients);
            c.list.retain(|cl| cl.push(&frame));
            c.exit = Some(frame);
            c.list.clone()
        };
        // Every byte reaches a client that is still there, however slow (the daemon holds the
        // output back while its own client is slow, as dockerd does, and gives up on that
        // client when the container is being stopped). Short polls first: the engine waits
        // for this shim to be gone before it starts the container again.
        let started = Instant::now();
        while !clients.iter().all(|c| c.drained()) {
            let poll = if started.elapsed() < Duration::from_secs(1) {
                1
            } else {
                20
            };
            thread::sleep(Duration::from_millis(poll));
        }
        let _ = fs::remove_file(self.args.state_file(protocol::SOCKET));
        let _ = fs::remove_file(self.args.state_file(protocol::SHIM_PID_FILE));
        debug(format_args!("exiting: {exit:?}"));
        std::process::exit(0)
    }
}

/// Whether the memory controller of cgroup `path` recorded an OOM kill (v1 `memory.oom_control`,
/// v2 `memory.events`). Read before the runtime's delete removes the cgroup.
fn oom_killed(path: &str) -> bool {
    let path = path.trim_start_matches('/');
    [
        format!("/sys/fs/cgroup/memory/{path}/memory.oom_control"),
        format!("/sys/fs/cgroup/{path}/memory.events"),
    ]
    .iter()
    .filter_map(|f| fs::read_to_string(f).ok())
    .any(|s| {
        s.lines()
            .any(|l| l.strip_prefix("oom_kill ").is_some_and(|n| n.trim() != "0"))
    })
}
