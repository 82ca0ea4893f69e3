//! The small typed messages between the runtime (parent) and the container's init or exec'd
//! process (child), one JSON object per line over a socketpair.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

/// A message on the sync socket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Msg {
    /// parent → child: maps written, cgroup joined; go on.
    Go,
    /// child → parent: mounts done, run prestart/createRuntime hooks now.
    RunHooks,
    /// parent → child: hooks done; the container's state JSON for the in-container hooks.
    HooksDone(String),
    /// child → parent: about to block on the exec FIFO (create) or exec (exec).
    Ready,
    /// child → parent: failed with this message.
    Error(String),
}

/// One end of the sync socket.
pub struct Chan {
    w: UnixStream,
    r: BufReader<UnixStream>,
}

impl Chan {
    /// Wraps a connected socket.
    pub fn new(s: UnixStream) -> Result<Chan> {
        let r = s
            .try_clone()
            .map_err(|e| Error::sys("dup sync socket", e))?;
        Ok(Chan {
            w: s,
            r: BufReader::new(r),
        })
    }

    /// Sends one message.
    pub fn send(&mut self, m: &Msg) -> Result<()> {
        let mut line = serde_json::to_vec(m).map_err(|e| Error::invalid(e.to_string()))?;
        line.push(b'\n');
        self.w
            .write_all(&line)
            .map_err(|e| Error::sys("write sync socket", e))
    }

    /// Receives one message; `None` at end of stream (the peer closed or exec'd).
    pub fn recv(&mut self) -> Result<Option<Msg>> {
        let mut line = String::new();
        let n = self
            .r
            .read_line(&mut line)
            .map_err(|e| Error::sys("read sync socket", e))?;
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| Error::invalid(format!("sync socket: {e}")))
    }

    /// The raw fd of the socket (to keep it across the fd sweep).
    pub fn fds(&self) -> [i32; 2] {
        use std::os::fd::AsRawFd;
        [self.w.as_raw_fd(), self.r.get_ref().as_raw_fd()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut a = Chan::new(a).unwrap();
        let mut b = Chan::new(b).unwrap();
        a.send(&Msg::Error("exec: \"x\"".into())).unwrap();
        a.send(&Msg::Ready).unwrap();
        drop(a);
        assert_eq!(b.recv().unwrap(), Some(Msg::Error("exec: \"x\"".into())));
        assert_eq!(b.recv().unwrap(), Some(Msg::Ready));
        assert_eq!(b.recv().unwrap(), None);
    }
}
