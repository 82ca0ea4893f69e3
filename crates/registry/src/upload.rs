//! Uploads of blobs whose digest is known only once they were read (a layer compressed while
//! it goes up): small ones in one request (`POST`, then `PUT <location>?digest=` with the
//! body), large ones in chunks as the distribution spec describes (`POST`, then one `PATCH
//! <location>` per chunk with `Content-Range: start-end`, following the `Location` of every
//! answer, then `PUT <location>?digest=`). Every request has a body that can be sent again, so
//! a token that expires mid-upload costs one retried request, not the upload.

use std::io::Read;

use crate::client::{transport, Body, RegistryClient};
use crate::error::{RegistryError, Result};

/// Reads until `limit` bytes or the end of `src`.
fn read_up_to(src: &mut dyn Read, limit: u64) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    src.take(limit)
        .read_to_end(&mut buf)
        .map_err(|e| transport(format!("read the blob to upload: {e}")))?;
    Ok(buf)
}

/// `<location>` with `?digest=` (or `&digest=`) appended.
fn with_digest(location: &str, digest: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

/// The `Content-Range` of `len` bytes at `offset` (inclusive end, no unit, as the spec
/// writes it).
pub fn content_range(offset: u64, len: u64) -> String {
    format!("{offset}-{}", offset + len.max(1) - 1)
}

/// Splits what is buffered and what follows into chunks, in order.
struct Chunker<'a> {
    src: &'a mut dyn Read,
    buf: Vec<u8>,
    pos: usize,
    chunk_size: usize,
    eof: bool,
}

impl Chunker<'_> {
    /// The next chunk (at most `chunk_size` bytes); empty at the end.
    fn next_chunk(&mut self) -> Result<&[u8]> {
        if !self.eof && self.buf.len() - self.pos < self.chunk_size {
            self.buf.drain(..self.pos);
            self.pos = 0;
            let want = (self.chunk_size - self.buf.len()) as u64;
            let more = read_up_to(self.src, want)?;
            self.eof = (more.len() as u64) < want;
            self.buf.extend_from_slice(&more);
        }
        let start = self.pos;
        let end = (start + self.chunk_size).min(self.buf.len());
        self.pos = end;
        Ok(&self.buf[start..end])
    }
}

impl RegistryClient {
    /// `POST /v2/<name>/blobs/uploads/`: the upload's location.
    fn start_upload(&self) -> Result<String> {
        let resp = self.send("POST", "blobs/uploads/", &[], Body::Bytes(b""))?;
        let location = resp
            .header("location")
            .ok_or_else(|| transport("the registry answered an upload without a Location"))?;
        Ok(self.url(location))
    }

    /// Uploads a blob read from `data`, whose digest `finish` returns once `data` was read to
    /// its end; returns that digest. Blobs larger than the client's chunked threshold go in
    /// chunks.
    pub fn upload_blob_streamed(
        &self,
        mut data: Box<dyn Read + Send + '_>,
        finish: &mut dyn FnMut() -> Result<String>,
    ) -> Result<String> {
        let policy = self.upload;
        let head = read_up_to(&mut data, policy.chunked_threshold.saturating_add(1))?;
        if head.len() as u64 <= policy.chunked_threshold {
            let location = self.start_upload()?;
            let digest = finish()?;
            self.send(
                "PUT",
                &with_digest(&location, &digest),
                &[("Content-Type", "application/octet-stream")],
                Body::Bytes(&head),
            )?;
            return Ok(digest);
        }
        let mut location = self.start_upload()?;
        let mut chunks = Chunker {
            src: &mut data,
            buf: head,
            pos: 0,
            chunk_size: policy.chunk_size.clamp(1, 1 << 30) as usize,
            eof: false,
        };
        let mut offset = 0u64;
        loop {
            let chunk = chunks.next_chunk()?;
            if chunk.is_empty() {
                break;
            }
            location = self.upload_chunk(&location, offset, chunk)?;
            offset += chunk.len() as u64;
        }
        drop(chunks);
        let digest = finish()?;
        self.send(
            "PUT",
            &with_digest(&location, &digest),
            &[],
            Body::Bytes(b""),
        )?;
        Ok(digest)
    }

    /// `PATCH <location>` with one chunk at `offset`; returns the location to use next.
    fn upload_chunk(&self, location: &str, offset: u64, chunk: &[u8]) -> Result<String> {
        let range = content_range(offset, chunk.len() as u64);
        let resp = self
            .send(
                "PATCH",
                location,
                &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Range", &range),
                ],
                Body::Bytes(chunk),
            )
            .map_err(|e| match e {
                RegistryError::RangeNotSatisfiable(answer) => {
                    let held = self
                        .upload_progress(location)
                        .map(|r| format!(" (the registry holds bytes {r})"))
                        .unwrap_or_default();
                    RegistryError::RangeNotSatisfiable(format!(
                        "chunked blob upload failed: the registry refused the chunk of bytes \
                         {range} with {answer}{held}"
                    ))
                }
                e => e,
            })?;
        Ok(resp
            .header("location")
            .map(|l| self.url(l))
            .unwrap_or_else(|| location.to_string()))
    }

    /// `GET <location>`: the `Range` the registry has received so far.
    fn upload_progress(&self, location: &str) -> Option<String> {
        let resp = self.send("GET", location, &[], Body::Empty).ok()?;
        resp.header("range").map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_registry::{FakeConfig, FakeRegistry};
    use crate::options::{RegistryOptions, UploadPolicy};
    use crate::verify::sha256_digest;

    fn client(fake: &FakeRegistry, threshold: u64, chunk: u64) -> RegistryClient {
        let opts = RegistryOptions {
            upload: UploadPolicy {
                chunked_threshold: threshold,
                chunk_size: chunk,
            },
            ..Default::default()
        };
        RegistryClient::connect(&opts, &fake.host, "a/b", None, &["pull", "push"], false).unwrap()
    }

    fn upload(c: &RegistryClient, data: &[u8]) -> Result<String> {
        let digest = sha256_digest(data);
        let mut finish = || Ok(digest.clone());
        c.upload_blob_streamed(Box::new(std::io::Cursor::new(data.to_vec())), &mut finish)
    }

    #[test]
    fn large_blobs_go_in_chunks_following_each_location() {
        let fake = FakeRegistry::start(FakeConfig::default());
        let c = client(&fake, 1000, 300);
        let data: Vec<u8> = (0..2500u32).map(|i| (i * 7 % 256) as u8).collect();
        let digest = upload(&c, &data).unwrap();
        assert_eq!(fake.blob(&digest).as_deref(), Some(&data[..]));
        let seen = fake.seen();
        let patches: Vec<_> = seen.iter().filter(|r| r.method == "PATCH").collect();
        assert_eq!(patches.len(), 9);
        for (i, p) in patches.iter().enumerate() {
            let start = i * 300;
            let end = (start + 300).min(2500) - 1;
            assert_eq!(p.headers["content-range"], format!("{start}-{end}"));
            assert_eq!(p.headers["content-type"], "application/octet-stream");
            assert_eq!(p.path, format!("/v2/a/b/blobs/uploads/u?n={i}"));
            assert_eq!(p.status, 202);
        }
        let put = seen.iter().find(|r| r.method == "PUT").unwrap();
        assert_eq!(put.body_len, 0);
        assert_eq!(
            put.path,
            format!("/v2/a/b/blobs/uploads/u?n=9&digest={digest}")
        );
    }

    #[test]
    fn small_blobs_go_in_one_put() {
        let fake = FakeRegistry::start(FakeConfig::default());
        let c = client(&fake, 1000, 300);
        for len in [0usize, 999, 1000] {
            let data = vec![5u8; len];
            let digest = upload(&c, &data).unwrap();
            assert_eq!(fake.blob(&digest).map(|b| b.len()), Some(len));
        }
        let seen = fake.seen();
        assert!(seen.iter().all(|r| r.method != "PATCH"));
        assert_eq!(seen.iter().filter(|r| r.method == "PUT").count(), 3);
    }

    #[test]
    fn refused_range_is_a_clear_error() {
        let fake = FakeRegistry::start(FakeConfig {
            refuse_ranges: true,
            ..Default::default()
        });
        let c = client(&fake, 10, 4);
        let e = upload(&c, b"0123456789abcdef").unwrap_err();
        assert!(matches!(e, RegistryError::RangeNotSatisfiable(_)), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(
                "chunked blob upload failed: the registry refused the chunk of bytes 0-3 with 416"
            ),
            "{msg}"
        );
        assert!(msg.ends_with("(the registry holds bytes 0-0)"), "{msg}");
        assert!(fake.seen().iter().all(|r| r.method != "PUT"));
    }

    #[test]
    fn ranges_and_digest_urls() {
        assert_eq!(content_range(0, 10), "0-9");
        assert_eq!(content_range(10, 5), "10-14");
        assert_eq!(
            with_digest("http://r/v2/a/blobs/uploads/u?_state=x", "sha256:1"),
            "http://r/v2/a/blobs/uploads/u?_state=x&digest=sha256:1"
        );
        assert_eq!(
            with_digest("http://r/u", "sha256:1"),
            "http://r/u?digest=sha256:1"
        );
    }

    #[test]
    fn chunker_splits_buffer_and_rest_in_order() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let mut rest = std::io::Cursor::new(data[300..].to_vec());
        let mut c = Chunker {
            src: &mut rest,
            buf: data[..300].to_vec(),
            pos: 0,
            chunk_size: 128,
            eof: false,
        };
        let mut out = Vec::new();
        let mut sizes = Vec::new();
        loop {
            let ch = c.next_chunk().unwrap();
            if ch.is_empty() {
                break;
            }
            sizes.push(ch.len());
            out.extend_from_slice(ch);
        }
        assert_eq!(out, data);
        assert!(
            sizes[..sizes.len() - 1].iter().all(|&n| n == 128),
            "{sizes:?}"
        );
    }
}
