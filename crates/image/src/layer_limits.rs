//! Caps on what one image layer (or build context) may expand to when unpacked: a small
//! compressed layer must not be able to fill the disk. [`crate::layer_tar::apply_layer`]
//! checks them as it reads, stops at the first byte past them, and its caller removes what was
//! unpacked.

use std::io::{self, Read};

/// Caps on what one layer may expand to, so that a small compressed layer cannot fill the
/// disk (a 2 MiB gzip stream can hold 2 GiB of zeros). Generous by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerLimits {
    /// The most bytes a layer's uncompressed tar stream may hold.
    pub max_size: u64,
    /// The most uncompressed bytes per compressed byte, checked once the stream is past
    /// [`LayerLimits::ratio_floor`] (small layers of zeros are fine).
    pub max_ratio: u64,
    /// The uncompressed size below which the ratio is not checked.
    pub ratio_floor: u64,
}

impl Default for LayerLimits {
    fn default() -> Self {
        LayerLimits {
            max_size: 256 << 30,
            max_ratio: 100,
            ratio_floor: 1 << 30,
        }
    }
}

impl LayerLimits {
    /// Why `size` uncompressed bytes from `compressed` stream bytes break the limits, if they do.
    pub(crate) fn broken_by(&self, size: u64, compressed: u64) -> Option<String> {
        if size > self.max_size {
            return Some(format!(
                "layer expands to more than {} bytes (the daemon's max-layer-size)",
                self.max_size
            ));
        }
        if size > self.ratio_floor && size > compressed.saturating_mul(self.max_ratio) {
            return Some(format!(
                "layer expands more than {} times its compressed size ({size} bytes from \
                 {compressed}; the daemon's max-layer-ratio)",
                self.max_ratio
            ));
        }
        None
    }
}

/// Counts the bytes read through it into a shared cell.
pub(crate) struct CountingReader<'a> {
    pub(crate) inner: &'a mut dyn Read,
    pub(crate) count: std::rc::Rc<std::cell::Cell<u64>>,
}

impl Read for CountingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer_tar::apply_layer;
    use crate::ImageError;
    use std::io::Write;

    /// A gzip'd tar holding one file of `mib` MiB of zeros (about 1000 times smaller).
    fn zero_bomb(mib: usize) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size((mib as u64) << 20);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, "zeros", io::repeat(0).take((mib as u64) << 20))
            .unwrap();
        let plain = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&plain).unwrap();
        gz.finish().unwrap()
    }

    fn unpack(data: &[u8], limits: LayerLimits) -> Result<u64, String> {
        let dir = tempfile::tempdir().unwrap();
        match apply_layer(&mut &data[..], dir.path(), None, limits) {
            Ok(a) => Ok(a.size),
            Err(ImageError::InvalidArgument(m)) => Err(m),
            Err(e) => panic!("unexpected error kind: {e}"),
        }
    }

    #[test]
    fn a_layer_past_its_size_cap_is_refused() {
        let bomb = zero_bomb(16);
        let limits = LayerLimits {
            max_size: 8 << 20,
            ..LayerLimits::default()
        };
        let e = unpack(&bomb, limits).unwrap_err();
        assert!(e.contains("max-layer-size"), "{e}");
        assert!(unpack(&bomb, LayerLimits::default()).unwrap() > 16 << 20);
    }

    #[test]
    fn a_layer_that_expands_too_much_is_refused_past_the_floor() {
        let bomb = zero_bomb(16);
        assert!(bomb.len() < 64 << 10, "{} bytes compressed", bomb.len());
        let limits = LayerLimits {
            max_ratio: 100,
            ratio_floor: 1 << 20,
            ..LayerLimits::default()
        };
        let e = unpack(&bomb, limits).unwrap_err();
        assert!(e.contains("max-layer-ratio"), "{e}");
        // Below the floor small layers of zeros are fine, whatever their ratio.
        let small = zero_bomb(1);
        let limits = LayerLimits {
            max_ratio: 10,
            ratio_floor: 4 << 20,
            ..LayerLimits::default()
        };
        assert!(unpack(&small, limits).is_ok());
    }

    #[test]
    fn limits_say_which_broke() {
        let l = LayerLimits {
            max_size: 100,
            max_ratio: 10,
            ratio_floor: 50,
        };
        assert!(l.broken_by(40, 1).is_none());
        assert!(l.broken_by(60, 10).is_none());
        assert!(l.broken_by(60, 5).unwrap().contains("max-layer-ratio"));
        assert!(l.broken_by(101, 100).unwrap().contains("max-layer-size"));
    }
}
