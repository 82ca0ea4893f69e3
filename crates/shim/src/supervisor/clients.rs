//! Clients on `shim.sock`: the accept loop, per client a reader thread (frames from the client:
//! stdin, resize, START) and a writer thread fed by a bounded queue, and broadcasting frames to
//! all of them.

use super::{debug, lock, one_line, spawn, Encoded, Shim};
use crate::sys;
use berth_shim::protocol::{self, Frame};
use std::collections::VecDeque;
use std::io::Write;
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

/// Output queued for one client beyond which output waits for it: the container's output
/// then waits too, as with dockerd, so that no byte is lost to a slow reader. The client is
/// the daemon, which keeps reading unless its own clients are slow, and which gives up on
/// those when the container is being stopped (the engine's `Container::publish`). A client
/// that goes away is dropped at once.
const MAX_BACKLOG: usize = 4 << 20;

/// Frames waiting to be written to one client.
#[derive(Default)]
struct Queue {
    frames: VecDeque<Encoded>,
    bytes: usize,
    writing: bool,
    /// Frames written so far: the client's progress.
    written: u64,
    dead: bool,
}

/// One connection on `shim.sock`.
pub(super) struct Client {
    stream: UnixStream,
    queue: Mutex<Queue>,
    cv: Condvar,
}

impl Client {
    /// Queues a frame, waiting while the client's backlog is full; `false` once it is gone.
    pub(super) fn push(&self, frame: &Encoded) -> bool {
        let mut q = lock(&self.queue);
        // Over the backlog, wait for the writer while the client is there.
        while !q.dead && q.bytes > 0 && q.bytes + frame.len() > MAX_BACKLOG {
            q = self
                .cv
                .wait_timeout(q, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if q.dead {
            return false;
        }
        q.bytes += frame.len();
        q.frames.push_back(frame.clone());
        drop(q);
        self.cv.notify_all();
        true
    }

    /// Marks the client dead and wakes its writer.
    fn kill(&self) {
        lock(&self.queue).dead = true;
        let _ = self.stream.shutdown(Shutdown::Both);
        self.cv.notify_all();
    }

    /// Whether everything queued was written (or the client is gone).
    pub(super) fn drained(&self) -> bool {
        let q = lock(&self.queue);
        q.dead || (q.frames.is_empty() && !q.writing)
    }

    /// The writer thread: writes queued frames until the client is gone.
    fn write_loop(&self) {
        loop {
            let frame = {
                let mut q = lock(&self.queue);
                loop {
                    if q.dead {
                        return;
                    }
                    if let Some(f) = q.frames.pop_front() {
                        q.writing = true;
                        break f;
                    }
                    q = self.cv.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            };
            let ok = (&self.stream).write_all(&frame).is_ok();
            let mut q = lock(&self.queue);
            q.writing = false;
            q.bytes -= frame.len();
            q.written += 1;
            if q.frames.is_empty() {
                q.frames = VecDeque::new();
            }
            drop(q);
            self.cv.notify_all();
            if !ok {
                self.kill();
                return;
            }
        }
    }
}

impl Shim {
    /// Sends a frame to every client, dropping the ones that are gone or too far behind.
    pub(super) fn broadcast(&self, frame: Encoded) {
        let _gate = lock(&self.gate);
        lock(&self.clients).list.retain(|c| c.push(&frame));
    }

    pub(super) fn accept_loop(self: Arc<Self>, listener: UnixListener) {
        for conn in listener.incoming() {
            match conn {
                Ok(stream) => self.add_client(stream),
                Err(e) => {
                    debug(format_args!("accept: {e}"));
                    thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    fn add_client(self: &Arc<Self>, stream: UnixStream) {
        let client = Arc::new(Client {
            stream,
            queue: Mutex::default(),
            cv: Condvar::new(),
        });
        {
            let mut c = lock(&self.clients);
            if let Some(exit) = &c.exit {
                client.push(exit);
            }
            c.list.push(client.clone());
        }
        let writer = client.clone();
        spawn("client-w", move || writer.write_loop());
        let shim = self.clone();
        spawn("client-r", move || shim.client_loop(&client));
    }

    /// Handles the frames one client sends, until it closes its side.
    fn client_loop(self: &Arc<Self>, client: &Client) {
        let mut r = &client.stream;
        loop {
            match protocol::read_frame(&mut r) {
                Ok(Some(frame)) => self.handle(client, frame),
                Ok(None) => return,
                // An unknown or malformed frame was consumed whole: skip it.
                Err(e) if !e.is_fatal() => debug(format_args!("ignoring a frame: {e}")),
                Err(e) => {
                    debug(format_args!("client read: {e}"));
                    client.kill();
                    return;
                }
            }
        }
    }

    fn handle(self: &Arc<Self>, client: &Client, frame: Frame) {
        match frame {
            Frame::Stdin(payload) => {
                let target = if self.args.tty {
                    if self.args.stdin {
                        lock(&self.pty).clone()
                    } else {
                        None
                    }
                } else {
                    lock(&self.stdin).clone()
                };
                if let Some(f) = target {
                    if let Err(e) = (&*f).write_all(&payload) {
                        debug(format_args!("writing stdin: {e}"));
                        if !self.args.tty {
                            *lock(&self.stdin) = None;
                        }
                    }
                }
            }
            Frame::StdinClose => {
                if !self.args.tty {
                    *lock(&self.stdin) = None;
                }
            }
            Frame::Resize { rows, cols } => {
                *lock(&self.winsize) = Some((rows, cols));
                if let Some(pty) = lock(&self.pty).clone() {
                    if let Err(e) = sys::set_winsize(&*pty, rows, cols) {
                        debug(format_args!("resize: {e}"));
                    }
                }
            }
            Frame::Start => {
                if self.started.swap(true, Ordering::SeqCst) {
                    client.push(&reply_frame(Err("already started")));
                    return;
                }
                // Output is held back until the answer is queued, so the client sees REPLY
                // before the process's first output (and before EXIT).
                let gate = lock(&self.gate);
                let r = self.start();
                client.push(&reply_frame(r.as_ref().map(|_| ()).map_err(String::as_str)));
                drop(gate);
                if let Err(msg) = r {
                    self.abandon(&msg);
                }
                sys::release_free_heap();
            }
            other => debug(format_args!(
                "ignoring a {:?} frame from a client",
                other.kind()
            )),
        }
    }
}

/// A REPLY frame: `ok` or `error: <message>` (on one line).
fn reply_frame(r: Result<(), &str>) -> Encoded {
    Frame::<&[u8]>::Reply(r.map_err(one_line)).encode().into()
}
