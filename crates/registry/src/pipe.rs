//! A read-ahead pipe: a thread reads a stream into a bounded queue of chunks while the caller
//! consumes it, so that the network (and hashing) overlap with decompression and unpacking.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

/// The reading side; [`ReadAhead::finish`] returns what the producer thread returned.
pub struct ReadAhead<T> {
    rx: Option<Receiver<io::Result<Vec<u8>>>>,
    current: Vec<u8>,
    pos: usize,
    handle: Option<JoinHandle<T>>,
}

impl<T: Send + 'static> ReadAhead<T> {
    /// Starts a thread that reads `src` in chunks of `chunk` bytes (the last one shorter; at
    /// most `depth` chunks ahead), then hands `src` to `done` and keeps its result for
    /// [`Self::finish`]. A read error is passed on after the bytes read before it.
    pub fn spawn<R, F>(mut src: R, chunk: usize, depth: usize, done: F) -> Self
    where
        R: Read + Send + 'static,
        F: FnOnce(R) -> T + Send + 'static,
    {
        let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(depth.max(1));
        let handle = std::thread::spawn(move || {
            // Each chunk is filled before it is handed over: sources that return a few KiB per
            // read (sockets, decompressors) would otherwise cost a whole zeroed chunk each.
            'chunks: loop {
                let mut buf = vec![0u8; chunk.max(1)];
                let mut filled = 0;
                let mut failure = None;
                while filled < buf.len() {
                    match src.read(&mut buf[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                let at_end = filled < buf.len();
                if filled > 0 {
                    buf.truncate(filled);
                    if tx.send(Ok(buf)).is_err() {
                        break 'chunks;
                    }
                }
                if let Some(e) = failure {
                    let _ = tx.send(Err(e));
                    break 'chunks;
                }
                if at_end {
                    break 'chunks;
                }
            }
            drop(tx);
            done(src)
        });
        ReadAhead {
            rx: Some(rx),
            current: Vec::new(),
            pos: 0,
            handle: Some(handle),
        }
    }

    /// Stops reading (the producer drains what is left) and returns the producer's result.
    pub fn finish(mut self) -> T {
        self.rx = None;
        let h = self.handle.take().expect("finish is called once");
        match h.join() {
            Ok(t) => t,
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

impl<T> Read for ReadAhead<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.current.len() {
            let Some(rx) = &self.rx else {
                return Ok(0);
            };
            match rx.recv() {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_everything_through_and_returns_the_result() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut r = ReadAhead::spawn(io::Cursor::new(data.clone()), 4096, 4, |c| c.position());
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        assert_eq!(r.finish(), data.len() as u64);
    }

    /// Gives `data` a few bytes per read, then fails.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        fail_at_end: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.data.len() && self.fail_at_end {
                return Err(io::Error::other("cut off"));
            }
            let n = buf.len().min(7).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    #[test]
    fn small_reads_are_gathered_and_errors_come_after_the_data() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 13) as u8).collect();
        let src = Trickle {
            data: data.clone(),
            pos: 0,
            fail_at_end: false,
        };
        let mut r = ReadAhead::spawn(src, 4096, 2, |t| t.pos);
        let mut first = [0u8; 4096];
        assert_eq!(r.read(&mut first).unwrap(), 4096);
        let mut out = first.to_vec();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        assert_eq!(r.finish(), data.len());
        let src = Trickle {
            data: data.clone(),
            pos: 0,
            fail_at_end: true,
        };
        let mut r = ReadAhead::spawn(src, 4096, 2, |t| t.pos);
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).unwrap_err();
        assert_eq!(e.to_string(), "cut off");
        assert_eq!(out, data);
    }

    #[test]
    fn early_finish_drains_the_source() {
        let data = vec![7u8; 50_000];
        let mut r = ReadAhead::spawn(io::Cursor::new(data), 1000, 2, |mut c| {
            io::copy(&mut c, &mut io::sink()).unwrap();
            c.position()
        });
        let mut first = [0u8; 10];
        r.read_exact(&mut first).unwrap();
        assert_eq!(r.finish(), 50_000);
    }
}
