//! The container's output: reader threads that pump stdout and stderr (or the pty master) into
//! the json-file log and to the clients, trimming the heap after a burst.

use super::runtime::ConsoleSocket;
use super::{debug, lock, spawn, Shim};
use crate::{jsonlog, sys};
use berth_shim::protocol::Frame;
use std::fs::File;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// Largest chunk read from the container's output at once.
const CHUNK: usize = 32 * 1024;

/// Output relayed by one reader after which a pause in the output trims the heap.
const TRIM_AFTER: usize = 64 * 1024;

/// How long the output must pause before the heap is trimmed.
const TRIM_PAUSE: Duration = Duration::from_secs(1);

/// One of the process's output streams (a terminal counts as stdout).
#[derive(Clone, Copy)]
enum Output {
    Stdout,
    Stderr,
}

impl Output {
    /// The stream's name in the json-file log.
    fn name(self) -> &'static str {
        match self {
            Output::Stdout => "stdout",
            Output::Stderr => "stderr",
        }
    }

    /// An output frame of this stream, borrowing `data`.
    fn frame(self, data: &[u8]) -> Frame<&[u8]> {
        match self {
            Output::Stdout => Frame::Stdout(data),
            Output::Stderr => Frame::Stderr(data),
        }
    }
}

impl Shim {
    /// Starts the output readers: on the pty master received on `console`, or on the pipes.
    pub(super) fn attach_output(
        self: &Arc<Self>,
        console: Option<ConsoleSocket>,
        readers: Option<(File, File)>,
    ) -> Result<(), String> {
        if let Some(console) = console {
            let master = Arc::new(console.receive()?);
            if let Some((rows, cols)) = *lock(&self.winsize) {
                let _ = sys::set_winsize(&*master, rows, cols);
            }
            *lock(&self.pty) = Some(master.clone());
            self.spawn_reader(master, Output::Stdout);
        }
        if let Some((out, err)) = readers {
            self.spawn_reader(Arc::new(out), Output::Stdout);
            self.spawn_reader(Arc::new(err), Output::Stderr);
        }
        Ok(())
    }

    fn spawn_reader(self: &Arc<Self>, src: Arc<File>, stream: Output) {
        *lock(&self.readers) += 1;
        let shim = self.clone();
        spawn("output", move || {
            shim.pump(&src, stream);
            *lock(&shim.readers) -= 1;
            shim.readers_cv.notify_all();
        });
    }

    /// Copies one output descriptor to the log and to clients until EOF (or EIO: the pty's
    /// other side is closed).
    fn pump(&self, src: &File, output: Output) {
        let stream = output.name();
        // Not zero-filled: only the pages a read actually fills become resident, so an idle
        // container's readers hold no buffer memory.
        let mut buf = Vec::with_capacity(CHUNK);
        let mut lines = jsonlog::LineSplitter::default();
        let mut records = Vec::new();
        let mut relayed_since_trim = 0usize;
        loop {
            // After a burst of output, once the container pauses, give the buffers' and frames'
            // pages back so the shim shrinks to its idle size again.
            if relayed_since_trim >= TRIM_AFTER && !sys::wait_readable(src, TRIM_PAUSE) {
                buf = Vec::new();
                records = Vec::new();
                sys::release_free_heap();
                buf.reserve_exact(CHUNK);
                relayed_since_trim = 0;
            }
            let n = match sys::read_into(src, &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if e.raw_os_error() != Some(libc::EIO) {
                        debug(format_args!("reading {stream}: {e}"));
                    }
                    break;
                }
            };
            relayed_since_trim += n;
            let data = &buf[..n];
            if self.log.is_some() {
                let time = jsonlog::now_rfc3339();
                lines.push(data, |l| {
                    jsonlog::record_into(&mut records, l, stream, &time)
                });
                self.write_log(&mut records);
            }
            self.broadcast(output.frame(data).encode().into());
        }
        if self.log.is_some() {
            let time = jsonlog::now_rfc3339();
            lines.finish(|l| jsonlog::record_into(&mut records, l, stream, &time));
            self.write_log(&mut records);
        }
    }

    /// Appends finished records to the json-file log and empties `records`.
    fn write_log(&self, records: &mut Vec<u8>) {
        if records.is_empty() {
            return;
        }
        if let Some(log) = &self.log {
            if let Err(e) = lock(log).write_records(records) {
                debug(format_args!("writing the log: {e}"));
            }
        }
        records.clear();
        if records.capacity() > 4 * CHUNK {
            *records = Vec::new();
        }
    }
}
