//! Parallel gzip (as pigz does it) for pushing layers the store holds uncompressed: the input
//! is cut into fixed blocks, worker threads deflate each block on its own and end it with a
//! sync flush (so it stops on a byte boundary), and the blocks are joined, in order, into ONE
//! gzip member: header, the deflate blocks, an empty final block, then the CRC-32 (the blocks'
//! CRCs combined) and the length. Any gzip reader takes it as an ordinary single-member file.
//!
//! The output depends only on the input, the block size and the level, never on the number
//! of threads or their timing, so the same layer always gets the same digest.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use flate2::{Compress, Compression, FlushCompress, Status};

/// The block size pigz uses by default (128 KiB) is tuned for memory; 1 MiB blocks lose less
/// to block boundaries and still spread over the cores.
pub const DEFAULT_BLOCK_SIZE: usize = 1 << 20;

/// An empty final deflate block (fixed Huffman, BFINAL set, end-of-block code).
const FINAL_EMPTY_BLOCK: [u8; 2] = [0x03, 0x00];

/// One block, deflated.
struct DeflatedBlock {
    data: Vec<u8>,
    crc: crc32fast::Hasher,
    len: u64,
}

/// What comes back for each block: the block, or `None` after the last one.
type BlockResult = io::Result<Option<DeflatedBlock>>;

/// A block waiting for a worker, with where its result goes.
type Job = (Vec<u8>, SyncSender<BlockResult>);

/// Deflates `input` as raw deflate ending in a sync flush (byte-aligned, not final).
fn deflate_block(input: &[u8], level: Compression) -> io::Result<DeflatedBlock> {
    let mut c = Compress::new(level, false);
    let mut out = Vec::with_capacity(input.len() / 2 + 1024);
    loop {
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&input[consumed..], &mut out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        // The flush is complete once all input is in and the output did not fill up.
        if c.total_in() as usize == input.len() && out.len() < out.capacity() {
            break;
        }
        if status == Status::BufError && out.len() < out.capacity() {
            return Err(io::Error::other("deflate made no progress"));
        }
        out.reserve(out.capacity().max(64 * 1024));
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(input);
    Ok(DeflatedBlock {
        data: out,
        crc,
        len: input.len() as u64,
    })
}

/// Reads until `buf` is full or `src` ends; the number of bytes read.
fn fill(src: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The gzip header berth writes: no name, mtime 0, OS "unknown", XFL from the level.
fn header(level: Compression) -> Vec<u8> {
    let xfl = match level.level() {
        0..=1 => 4,
        9.. => 2,
        _ => 0,
    };
    vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

/// A gzip stream of `src`, compressed by worker threads as it is read.
pub struct ParallelGzipReader {
    /// The results of the blocks, in input order.
    order: Option<Receiver<Receiver<BlockResult>>>,
    pending: Vec<u8>,
    pos: usize,
    crc: crc32fast::Hasher,
    total: u64,
    finished: bool,
}

impl ParallelGzipReader {
    /// Starts compressing `src` in `block_size` blocks on `threads` workers (at least one).
    pub fn new<R: Read + Send + 'static>(
        src: R,
        level: Compression,
        threads: usize,
        block_size: usize,
    ) -> ParallelGzipReader {
        let threads = threads.max(1);
        let block_size = block_size.max(1);
        // At most this many blocks are read ahead of the reader.
        let (order_tx, order_rx) = sync_channel(threads * 2);
        let (job_tx, job_rx) = sync_channel::<Job>(threads);
        let job_rx = Arc::new(Mutex::new(job_rx));
        for _ in 0..threads {
            let jobs = job_rx.clone();
            std::thread::spawn(move || loop {
                let job = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
                let Ok((input, result)) = job else {
                    return;
                };
                let _ = result.send(deflate_block(&input, level).map(Some));
            });
        }
        std::thread::spawn(move || {
            let mut src = src;
            loop {
                let mut block = vec![0u8; block_size];
                let (tx, rx) = sync_channel(1);
                if order_tx.send(rx).is_err() {
                    return;
                }
                match fill(&mut src, &mut block) {
                    Ok(0) => {
                        let _ = tx.send(Ok(None));
                        return;
                    }
                    Ok(n) => {
                        block.truncate(n);
                        if job_tx.send((block, tx)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        });
        ParallelGzipReader {
            order: Some(order_rx),
            pending: header(level),
            pos: 0,
            crc: crc32fast::Hasher::new(),
            total: 0,
            finished: false,
        }
    }

    /// Refills `pending` with the next block, or the end of the stream.
    fn next_piece(&mut self) -> io::Result<()> {
        // A thread that went away without answering (a panic) must not pass for the end.
        let lost = || io::Error::other("parallel gzip: a compressing thread stopped");
        let order = self.order.as_ref().ok_or_else(lost)?;
        let block = order
            .recv()
            .map_err(|_| lost())?
            .recv()
            .map_err(|_| lost())?;
        match block {
            Ok(Some(b)) => {
                self.crc.combine(&b.crc);
                self.total += b.len;
                self.pending = b.data;
            }
            Err(e) => {
                self.order = None;
                return Err(e);
            }
            Ok(None) => {
                self.order = None;
                let mut tail = FINAL_EMPTY_BLOCK.to_vec();
                tail.extend_from_slice(&self.crc.clone().finalize().to_le_bytes());
                tail.extend_from_slice(&(self.total as u32).to_le_bytes());
                self.pending = tail;
                self.finished = true;
            }
        }
        self.pos = 0;
        Ok(())
    }
}

impl Read for ParallelGzipReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.pending.len() {
            if self.finished {
                return Ok(0);
            }
            self.next_piece()?;
        }
        let n = buf.len().min(self.pending.len() - self.pos);
        buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The number of compressing threads for this machine.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::{GzDecoder, MultiGzDecoder};

    fn sample(len: usize) -> Vec<u8> {
        // Compressible but not trivial: text-like runs mixed with pseudo-random bytes.
        let mut x: u32 = 0x1234_5678;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if (i / 4096) % 2 == 0 {
                    b"layer data "[i % 11]
                } else {
                    x as u8
                }
            })
            .collect()
    }

    fn gzip(data: &[u8], threads: usize, block: usize) -> Vec<u8> {
        let mut out = Vec::new();
        ParallelGzipReader::new(
            io::Cursor::new(data.to_vec()),
            Compression::fast(),
            threads,
            block,
        )
        .read_to_end(&mut out)
        .unwrap();
        out
    }

    #[test]
    fn round_trips_through_single_and_multi_member_decoders() {
        for len in [0, 1, 1000, 64 * 1024, 64 * 1024 + 1, 300_000] {
            let data = sample(len);
            let gz = gzip(&data, 3, 64 * 1024);
            let mut a = Vec::new();
            GzDecoder::new(&gz[..]).read_to_end(&mut a).unwrap();
            assert_eq!(a, data, "GzDecoder, len {len}");
            let mut b = Vec::new();
            MultiGzDecoder::new(&gz[..]).read_to_end(&mut b).unwrap();
            assert_eq!(b, data, "MultiGzDecoder, len {len}");
            // One member: the trailer is the whole input's CRC and length.
            let t = &gz[gz.len() - 8..];
            assert_eq!(t[..4], crc32fast::hash(&data).to_le_bytes());
            assert_eq!(t[4..], (len as u32).to_le_bytes());
            assert_eq!(gz[..3], [0x1f, 0x8b, 8]);
        }
    }

    #[test]
    fn output_does_not_depend_on_threads() {
        let data = sample(700_000);
        let one = gzip(&data, 1, 100_000);
        assert_eq!(gzip(&data, 4, 100_000), one);
        assert_eq!(gzip(&data, 2, 100_000), one);
        assert_ne!(
            gzip(&data, 2, 200_000),
            one,
            "the block size is part of the format"
        );
        assert!(
            one.len() < data.len() * 3 / 4,
            "{} of {}",
            one.len(),
            data.len()
        );
    }

    /// A source that hands out a few bytes at a time, then fails.
    struct Flaky(usize);

    impl Read for Flaky {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.0).min(7);
            buf[..n].fill(b'z');
            self.0 -= n;
            Ok(n)
        }
    }

    #[test]
    fn short_reads_are_joined_and_errors_come_through() {
        let mut out = Vec::new();
        let e = ParallelGzipReader::new(Flaky(5000), Compression::fast(), 2, 1024)
            .read_to_end(&mut out)
            .unwrap_err();
        assert_eq!(e.to_string(), "disk on fire");
        // Blocks are filled whatever the reads' sizes: same output as from one buffer.
        struct Trickle(io::Cursor<Vec<u8>>);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(3);
                self.0.read(&mut buf[..n])
            }
        }
        let data = sample(10_000);
        let mut trickled = Vec::new();
        ParallelGzipReader::new(
            Trickle(io::Cursor::new(data.clone())),
            Compression::fast(),
            2,
            4096,
        )
        .read_to_end(&mut trickled)
        .unwrap();
        assert_eq!(trickled, gzip(&data, 1, 4096));
    }
}
