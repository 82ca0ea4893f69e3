//! The reading side of applying a layer: compression sniffing (`maybe_decompress`) and the
//! reader that hashes, counts and tees the uncompressed stream while enforcing the
//! [`LayerLimits`].

use std::io::{self, Read, Write};

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use crate::layer_limits::LayerLimits;
use crate::{io_err, ImageError, Result};

/// Wraps `r` in a decompressor when it starts with the gzip magic. zstd, xz and bzip2 streams are
/// refused as unsupported.
pub fn maybe_decompress<'a>(mut r: Box<dyn Read + 'a>) -> Result<Box<dyn Read + 'a>> {
    let mut head = [0u8; 6];
    let mut n = 0;
    while n < head.len() {
        let k = match r.read(&mut head[n..]) {
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err("read stream", e)),
        };
        if k == 0 {
            break;
        }
        n += k;
    }
    let h = &head[..n];
    let chained = io::Cursor::new(h.to_vec()).chain(r);
    if h.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(MultiGzDecoder::new(chained)))
    } else if h.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Err(ImageError::InvalidArgument(
            "zstd-compressed streams are not supported".into(),
        ))
    } else if h.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) || h.starts_with(b"BZh") {
        Err(ImageError::InvalidArgument(
            "xz/bzip2-compressed streams are not supported".into(),
        ))
    } else {
        Ok(Box::new(chained))
    }
}

/// A reader that hashes and counts what passes through it, optionally copying it to a writer,
/// and stops at the layer limits (the reason kept in `broken`).
pub(super) struct HashingReader<'a, 'b> {
    pub(super) inner: Box<dyn Read + 'a>,
    pub(super) hasher: Sha256,
    pub(super) size: u64,
    pub(super) tee: Option<&'b mut dyn Write>,
    pub(super) limits: LayerLimits,
    pub(super) compressed: std::rc::Rc<std::cell::Cell<u64>>,
    pub(super) broken: Option<String>,
}

impl Read for HashingReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        if let Some(why) = self.limits.broken_by(self.size, self.compressed.get()) {
            self.broken = Some(why.clone());
            return Err(io::Error::other(why));
        }
        if let Some(t) = self.tee.as_mut() {
            t.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}
