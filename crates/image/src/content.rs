//! The content store: immutable blobs addressed by their sha256 digest.
//!
//! Blobs live at `<root>/blobs/sha256/<hex>`. A write goes to `<root>/ingest/<random>`, is hashed
//! while written, fsync'd, verified against the expected digest when one is known, and only then
//! renamed into place, so a partially written blob is never visible under its digest.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{io_err, ImageError, Result};

/// Random lowercase-hex name for temporary files and directories.
pub(crate) fn random_name() -> String {
    let bytes: [u8; 12] = rand::random();
    hex::encode(bytes)
}

/// fsyncs a directory so that renames into it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    berth_sys::fs::sync_dir(dir).map_err(|e| io_err(format!("sync {}", dir.display()), e))
}

/// Writes `data` to `path` durably (image content and layer metadata are durable records):
/// temp file, fsync, rename, fsync of the directory.
pub(crate) fn atomic_write(path: &Path, data: &[u8]) -> Result<()> {
    berth_sys::write_atomic(path, data, berth_sys::Durability::Durable)
        .map_err(|e| io_err(format!("write {}", path.display()), e))
}

/// `sha256:<hex>` of `data`.
pub fn digest_bytes(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The hex part of a `sha256:<hex>` digest (or the string itself when it has no prefix).
pub fn digest_hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// The content store.
#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    /// Opens the store under `root`, creating its directories and removing leftover ingests.
    pub fn open(root: &Path) -> Result<Self> {
        let blobs = root.join("blobs").join("sha256");
        let ingest = root.join("ingest");
        for d in [&blobs, &ingest] {
            fs::create_dir_all(d).map_err(|e| io_err(format!("create {}", d.display()), e))?;
        }
        if let Ok(rd) = fs::read_dir(&ingest) {
            for ent in rd.flatten() {
                let _ = fs::remove_file(ent.path());
            }
        }
        Ok(ContentStore { blobs, ingest })
    }

    /// The path of the blob with `digest` (which need not exist).
    pub fn path(&self, digest: &str) -> PathBuf {
        self.blobs.join(digest_hex(digest))
    }

    /// Whether the blob exists.
    pub fn exists(&self, digest: &str) -> bool {
        crate::reference::valid_digest(digest) && self.path(digest).is_file()
    }

    /// The size of a blob in bytes.
    pub fn size(&self, digest: &str) -> Option<u64> {
        fs::metadata(self.path(digest)).ok().map(|m| m.len())
    }

    /// Reads a whole blob.
    pub fn read(&self, digest: &str) -> Result<Vec<u8>> {
        if !crate::reference::valid_digest(digest) {
            return Err(ImageError::InvalidArgument(format!(
                "invalid digest {digest}"
            )));
        }
        fs::read(self.path(digest)).map_err(|e| io_err(format!("read blob {digest}"), e))
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, digest: &str) -> Result<File> {
        File::open(self.path(digest)).map_err(|e| io_err(format!("open blob {digest}"), e))
    }

    /// Starts a new write.
    pub fn writer(&self) -> Result<IngestWriter> {
        self.new_writer(true)
    }

    /// Starts a write whose bytes the caller hashes itself (a layer's tar, hashed for its diff
    /// ID as it is unpacked): finished with [`IngestWriter::finish_hashed_by_caller`], so the
    /// same bytes are not hashed twice.
    pub(crate) fn writer_hashed_by_caller(&self) -> Result<IngestWriter> {
        self.new_writer(false)
    }

    fn new_writer(&self, hashed: bool) -> Result<IngestWriter> {
        let path = self.ingest.join(random_name());
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_err(format!("create {}", path.display()), e))?;
        Ok(IngestWriter {
            path: Some(path),
            file,
            hasher: hashed.then(Sha256::new),
            size: 0,
            written_back: 0,
            blobs: self.blobs.clone(),
        })
    }

    /// Writes `data` as a blob, returning its digest.
    pub fn write_blob(&self, data: &[u8], expected: Option<&str>) -> Result<String> {
        let mut w = self.writer()?;
        w.write_all(data).map_err(|e| io_err("write blob", e))?;
        let staged = w.finish(expected)?;
        staged.commit()
    }

    /// Removes a blob (missing is fine).
    pub fn remove(&self, digest: &str) {
        let _ = fs::remove_file(self.path(digest));
    }
}

/// While a large blob is written, the disk writes of each such step are started at once
/// (`sync_file_range`, not waiting), so that the fsync of `finish` has only the tail left to
/// write instead of the whole blob.
const WRITEBACK_STEP: u64 = 8 << 20;

/// Starts writing `len` bytes of `file` from `offset` to disk, without waiting; best effort.
fn start_writeback(file: &File, offset: u64, len: u64) {
    let (Ok(offset), Ok(len)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return;
    };
    let _ = berth_sys::file::sync_file_range_write(file, offset, len);
}

/// An in-progress blob write; dropped without `finish`, the ingest file is removed.
pub struct IngestWriter {
    path: Option<PathBuf>,
    file: File,
    /// None when the caller hashes what it writes.
    hasher: Option<Sha256>,
    size: u64,
    /// Bytes whose writeback has been started (see [`WRITEBACK_STEP`]).
    written_back: u64,
    blobs: PathBuf,
}

impl Write for IngestWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        self.size += n as u64;
        if self.size - self.written_back >= WRITEBACK_STEP {
            start_writeback(&self.file, self.written_back, self.size - self.written_back);
            self.written_back = self.size;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl IngestWriter {
    /// The number of bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Fsyncs the data and verifies it against `expected`. The result is still invisible until
    /// [`StagedBlob::commit`].
    pub fn finish(mut self, expected: Option<&str>) -> Result<StagedBlob> {
        let Some(hasher) = self.hasher.take() else {
            return Err(ImageError::InvalidArgument(
                "a blob hashed by its writer's caller must be finished with its digest".into(),
            ));
        };
        let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
        let staged = self.stage(digest)?;
        if let Some(exp) = expected {
            if exp != staged.digest {
                return Err(ImageError::InvalidArgument(format!(
                    "digest mismatch: expected {exp}, got {}",
                    staged.digest
                )));
            }
        }
        Ok(staged)
    }

    /// Finishes a [`ContentStore::writer_hashed_by_caller`] write: `digest` is the caller's
    /// hash of exactly the `size` bytes it wrote (a different byte count is an error).
    pub(crate) fn finish_hashed_by_caller(self, digest: &str, size: u64) -> Result<StagedBlob> {
        if self.size != size || !crate::reference::valid_digest(digest) {
            return Err(ImageError::InvalidArgument(format!(
                "blob {digest}: {size} bytes hashed but {} written",
                self.size
            )));
        }
        self.stage(digest.to_string())
    }

    /// Fsyncs the data; the blob is named `digest` once committed.
    fn stage(mut self, digest: String) -> Result<StagedBlob> {
        let path = self.path.take().expect("path is set until finish");
        let staged = StagedBlob {
            path: Some(path),
            digest,
            size: self.size,
            blobs: self.blobs.clone(),
        };
        self.file.sync_all().map_err(|e| io_err("sync ingest", e))?;
        Ok(staged)
    }
}

impl Drop for IngestWriter {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// A verified blob waiting to be renamed into place; dropped uncommitted, it is removed.
pub struct StagedBlob {
    path: Option<PathBuf>,
    /// `sha256:<hex>` of the content.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    blobs: PathBuf,
}

impl StagedBlob {
    /// Renames the blob into place (a no-op when it already exists) and returns its digest.
    pub fn commit(mut self) -> Result<String> {
        let path = self.path.take().expect("path is set until commit");
        let dest = self.blobs.join(digest_hex(&self.digest));
        if dest.is_file() {
            let _ = fs::remove_file(&path);
        } else {
            fs::rename(&path, &dest).map_err(|e| {
                let _ = fs::remove_file(&path);
                io_err(format!("commit blob {}", self.digest), e)
            })?;
            sync_dir(&self.blobs)?;
        }
        Ok(self.digest.clone())
    }
}

impl Drop for StagedBlob {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// Hashes a stream to its `sha256:<hex>` digest, returning also its length.
pub fn digest_reader(r: &mut dyn Read) -> io::Result<(String, u64)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((format!("sha256:{}", hex::encode(h.finalize())), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingest_empty(root: &Path) -> bool {
        fs::read_dir(root.join("ingest")).unwrap().next().is_none()
    }

    #[test]
    fn write_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let d = cs.write_blob(b"hello", None).unwrap();
        assert_eq!(d, digest_bytes(b"hello"));
        assert!(cs.exists(&d));
        assert_eq!(cs.read(&d).unwrap(), b"hello");
        assert_eq!(cs.size(&d), Some(5));
        // Writing again is idempotent.
        assert_eq!(cs.write_blob(b"hello", Some(&d)).unwrap(), d);
        assert!(ingest_empty(dir.path()));
    }

    #[test]
    fn verification_failure_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let wrong = digest_bytes(b"other");
        let e = cs.write_blob(b"hello", Some(&wrong)).unwrap_err();
        assert!(matches!(e, ImageError::InvalidArgument(_)));
        assert!(!cs.exists(&wrong));
        assert!(!cs.exists(&digest_bytes(b"hello")));
        assert!(ingest_empty(dir.path()));
    }

    #[test]
    fn partial_write_invisible_and_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let mut w = cs.writer().unwrap();
        w.write_all(b"partial").unwrap();
        assert!(!cs.exists(&digest_bytes(b"partial")));
        // Simulate a crash: the ingest file stays (forgetting the writer skips its clean-up).
        #[allow(clippy::mem_forget)]
        std::mem::forget(w);
        assert!(!ingest_empty(dir.path()));
        let _cs = ContentStore::open(dir.path()).unwrap();
        assert!(ingest_empty(dir.path()));
        // Staged but not committed: invisible, removed on drop.
        let mut w = cs.writer().unwrap();
        w.write_all(b"staged").unwrap();
        let s = w.finish(None).unwrap();
        assert!(!cs.exists(&s.digest));
        drop(s);
        assert!(ingest_empty(dir.path()));
    }

    #[test]
    fn writes_hashed_by_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let d = digest_bytes(b"layer");
        // Such a write cannot be finished without the caller's digest...
        let mut w = cs.writer_hashed_by_caller().unwrap();
        w.write_all(b"layer").unwrap();
        assert!(w.finish(None).is_err());
        // ...nor with a byte count other than what was written, nor a malformed digest.
        let mut w = cs.writer_hashed_by_caller().unwrap();
        w.write_all(b"layer").unwrap();
        assert!(w.finish_hashed_by_caller(&d, 4).is_err());
        let mut w = cs.writer_hashed_by_caller().unwrap();
        w.write_all(b"layer").unwrap();
        assert!(w.finish_hashed_by_caller("sha256:xyz", 5).is_err());
        assert!(ingest_empty(dir.path()));
        let mut w = cs.writer_hashed_by_caller().unwrap();
        w.write_all(b"layer").unwrap();
        assert_eq!(
            w.finish_hashed_by_caller(&d, 5).unwrap().commit().unwrap(),
            d
        );
        assert_eq!(cs.read(&d).unwrap(), b"layer");
    }
}
