//! Digest verification while a blob streams: a reader that hashes what passes through it,
//! counts bytes for progress, and fails at the end when the content is not what was expected.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// Wraps a blob stream; [`VerifyingReader::finish`] drains it and checks the digest. Reading
/// past the expected size, or an early end, is an error.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    expected: String,
    expected_size: Option<u64>,
    read: u64,
    progress: Box<dyn FnMut(u64) + Send>,
}

impl<R: Read> VerifyingReader<R> {
    /// `expected` is `sha256:<hex>`; `progress` gets the running byte count.
    pub fn new(
        inner: R,
        expected: &str,
        expected_size: Option<u64>,
        progress: Box<dyn FnMut(u64) + Send>,
    ) -> Self {
        VerifyingReader {
            inner,
            hasher: Sha256::new(),
            expected: expected.to_string(),
            expected_size,
            read: 0,
            progress,
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Reads what is left and verifies size and digest.
    pub fn finish(mut self) -> crate::Result<u64> {
        io::copy(&mut self, &mut io::sink())
            .map_err(|e| crate::RegistryError::Transport(format!("reading blob: {e}")))?;
        let actual = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        if actual != self.expected {
            return Err(crate::RegistryError::DigestMismatch {
                expected: self.expected,
                actual,
            });
        }
        if let Some(size) = self.expected_size {
            if size != self.read {
                return Err(crate::RegistryError::Transport(format!(
                    "blob {}: expected {size} bytes, got {}",
                    self.expected, self.read
                )));
            }
        }
        Ok(self.read)
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        if let Some(size) = self.expected_size {
            if self.read > size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("blob {} is larger than its {size} bytes", self.expected),
                ));
            }
        }
        if n > 0 {
            (self.progress)(self.read);
        }
        Ok(n)
    }
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    /// A fake transport: a body that arrives in small chunks.
    struct Chunked<'a> {
        data: &'a [u8],
        pos: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(3).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    #[test]
    fn good_blob_passes_and_reports_progress() {
        let data = b"hello registry";
        let seen = Arc::new(AtomicU64::new(0));
        let s = seen.clone();
        let mut r = VerifyingReader::new(
            Chunked { data, pos: 0 },
            &sha256_digest(data),
            Some(data.len() as u64),
            Box::new(move |n| s.store(n, Ordering::SeqCst)),
        );
        let mut first = [0u8; 4];
        r.read_exact(&mut first).unwrap();
        assert_eq!(r.finish().unwrap(), data.len() as u64);
        assert_eq!(seen.load(Ordering::SeqCst), data.len() as u64);
    }

    #[test]
    fn tampered_blob_is_refused() {
        let r = VerifyingReader::new(
            Chunked {
                data: b"evil",
                pos: 0,
            },
            &sha256_digest(b"good"),
            None,
            Box::new(|_| {}),
        );
        let e = r.finish().unwrap_err();
        assert!(matches!(e, crate::RegistryError::DigestMismatch { .. }));
        assert!(e
            .to_string()
            .starts_with("digest mismatch: expected sha256:"));
    }

    #[test]
    fn oversized_blob_is_refused() {
        let mut r = VerifyingReader::new(
            Chunked {
                data: b"0123456789",
                pos: 0,
            },
            &sha256_digest(b"0123456789"),
            Some(4),
            Box::new(|_| {}),
        );
        let mut v = Vec::new();
        assert!(r.read_to_end(&mut v).is_err());
    }
}
