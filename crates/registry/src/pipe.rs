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
    /// Starts a thread that reads `src` in chunks of up to `chunk` bytes (at most `depth`
    /// chunks ahead), then hands `src` to `done` and keeps its result for [`Self::finish`].
    pub fn spawn<R, F>(mut src: R, chunk: usize, depth: usize, done: F) -> Self
    where
        R: Read + Send + 'static,
        F: FnOnce(R) -> T + Send + 'static,
    {
        let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(depth.max(1));
        let handle = std::thread::spawn(move || {
            loop {
                let mut buf = vec![0u8; chunk];
                match src.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.send(Ok(buf)).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
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
