//! Blob upload sessions. An upload is a directory `ROOT/uploads/<id>/` holding `repository`
//! (whose upload it is) and `data` (the bytes so far), so a session outlives the process: after
//! a restart the client asks for its offset (`GET` → `Range`) and carries on. Completing an
//! upload verifies the digest over everything received, fsyncs, and renames `data` into the
//! blob store: a blob is visible whole or not at all, whatever happens to the server.
//!
//! The running hash of each live session is kept in memory so completion does not reread the
//! data; after a restart it is rebuilt from the file.

use std::collections::HashMap;
use std::fmt::Display;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;

use crate::digest::{hash_file, Algorithm, Digest, Hasher};
use crate::error::{ApiError, Code};
use crate::storage::Store;

/// One session's in-memory state: the hash of `data` up to `size`, when known.
#[derive(Default)]
struct Session {
    hash: Option<(Hasher, u64)>,
}

/// The upload sessions of a store.
pub struct Uploads {
    store: Store,
    live: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Session>>>>,
}

fn unknown(id: &str) -> ApiError {
    ApiError::new(Code::BlobUploadUnknown, "blob upload unknown to registry")
        .with_detail(serde_json::json!({ "uuid": id }))
}

/// Upload ids are 32 lowercase hex digits (anything else is unknown, never a path).
pub fn valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `Content-Range` of a chunk: `START-END` (the spec) or `bytes START-END/TOTAL`.
pub fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let v = v.trim();
    let v = v.strip_prefix("bytes ").unwrap_or(v);
    let v = v.split('/').next()?;
    let (a, b) = v.split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}

impl Uploads {
    pub fn new(store: Store) -> Uploads {
        Uploads {
            store,
            live: Mutex::new(HashMap::new()),
        }
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.store.uploads_dir().join(id)
    }

    fn session(&self, id: &str) -> Arc<tokio::sync::Mutex<Session>> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.entry(id.to_string()).or_default().clone()
    }

    fn forget(&self, id: &str) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.remove(id);
    }

    /// Starts an upload for `repo`; returns its id.
    pub async fn create(&self, repo: &str) -> Result<String, ApiError> {
        let id = format!("{:032x}", rand::random::<u128>());
        let dir = self.dir(&id);
        let store = self.store.clone();
        let repo = repo.to_string();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            std::fs::File::create(dir.join("data"))?;
            store.atomic_write(&dir.join("repository"), repo.as_bytes())
        })
        .await
        .map_err(ApiError::internal)??;
        self.session(&id).lock().await.hash = Some((Hasher::new(Algorithm::Sha256), 0));
        Ok(id)
    }

    /// The number of bytes received, checking that the upload is `repo`'s.
    pub async fn size(&self, repo: &str, id: &str) -> Result<u64, ApiError> {
        if !valid_id(id) {
            return Err(unknown(id));
        }
        let dir = self.dir(id);
        match tokio::fs::read(dir.join("repository")).await {
            Ok(r) if r == repo.as_bytes() => {}
            Ok(_) => return Err(unknown(id)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(unknown(id)),
            Err(e) => return Err(e.into()),
        }
        match tokio::fs::metadata(dir.join("data")).await {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(unknown(id)),
            Err(e) => Err(e.into()),
        }
    }

    /// Appends `body` to upload `id`. With `range`, the chunk must start where the upload
    /// ends (416 otherwise) and be as long as the range says. Returns the new size.
    pub async fn append<B>(
        &self,
        repo: &str,
        id: &str,
        range: Option<(u64, u64)>,
        body: B,
    ) -> Result<u64, ApiError>
    where
        B: hyper::body::Body<Data = Bytes> + Unpin,
        B::Error: Display,
    {
        if !valid_id(id) {
            return Err(unknown(id));
        }
        let session = self.session(id);
        let mut s = session.lock().await;
        let size = match self.size(repo, id).await {
            Ok(n) => n,
            Err(e) => {
                drop(s);
                self.forget(id);
                return Err(e);
            }
        };
        if let Some((start, _)) = range {
            if start != size {
                return Err(ApiError::new(
                    Code::RangeInvalid,
                    format!("chunk starts at {start}; the upload has {size} bytes"),
                ));
            }
        }
        if s.hash.as_ref().map(|(_, n)| *n) != Some(size) {
            s.hash = None;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .append(true)
            .open(self.dir(id).join("data"))
            .await?;
        let mut written = 0u64;
        let mut body = body;
        let mut failure = None;
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    failure = Some(format!("reading the request body: {e}"));
                    break;
                }
            };
            if let Ok(data) = frame.into_data() {
                file.write_all(&data).await?;
                if let Some((h, n)) = s.hash.as_mut() {
                    h.update(&data);
                    *n += data.len() as u64;
                }
                written += data.len() as u64;
            }
        }
        file.flush().await?;
        if let Some(msg) = failure {
            return Err(ApiError::new(Code::BlobUploadInvalid, msg));
        }
        if let Some((start, end)) = range {
            if written != end - start + 1 {
                return Err(ApiError::new(
                    Code::SizeInvalid,
                    format!(
                        "Content-Range {start}-{end} announces {} bytes; {written} came",
                        end - start + 1
                    ),
                ));
            }
        }
        Ok(size + written)
    }

    /// Completes upload `id` as blob `digest` of `repo` (after appending `body`): verified,
    /// fsynced, renamed into the store, linked into `repo`. A mismatch discards the upload.
    pub async fn finish<B>(
        &self,
        repo: &str,
        id: &str,
        digest: &Digest,
        body: B,
    ) -> Result<u64, ApiError>
    where
        B: hyper::body::Body<Data = Bytes> + Unpin,
        B::Error: Display,
    {
        self.append(repo, id, None, body).await?;
        let session = self.session(id);
        let s = session.lock().await;
        let known = s
            .hash
            .clone()
            .filter(|(h, _)| h.algorithm() == digest.algorithm());
        let data = self.dir(id).join("data");
        let store = self.store.clone();
        let (want, repo_owned, id_owned) = (digest.clone(), repo.to_string(), id.to_string());
        let dir = self.dir(id);
        let r = tokio::task::spawn_blocking(move || -> Result<u64, ApiError> {
            let (got, size) = match known {
                Some((h, n)) => (h.finish(), n),
                None => hash_file(&data, want.algorithm())?,
            };
            if got != want {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(ApiError::new(
                    Code::DigestInvalid,
                    format!("the upload's content has digest {got}, not {want}"),
                )
                .with_detail(serde_json::json!({ "digest": want.to_string() })));
            }
            std::fs::File::open(&data)?.sync_all()?;
            let _lock = store.gc_lock(false)?;
            if store.blob_size(&want)?.is_some() {
                store.touch_blob(&want);
            } else {
                store.commit_blob_file(&want, &data)?;
            }
            store.link_blob(&repo_owned, &want)?;
            std::fs::remove_dir_all(&dir)?;
            tracing::debug!("upload {id_owned} committed as {want}");
            Ok(size)
        })
        .await
        .map_err(ApiError::internal)?;
        drop(s);
        self.forget(id);
        r
    }

    /// Cancels upload `id` of `repo`.
    pub async fn cancel(&self, repo: &str, id: &str) -> Result<(), ApiError> {
        self.size(repo, id).await?;
        let session = self.session(id);
        let _s = session.lock().await;
        tokio::fs::remove_dir_all(self.dir(id)).await?;
        drop(_s);
        self.forget(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    fn body(b: &'static [u8]) -> Full<Bytes> {
        Full::new(Bytes::from_static(b))
    }

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-9"), Some((0, 9)));
        assert_eq!(parse_content_range("bytes 10-19/*"), Some((10, 19)));
        assert_eq!(parse_content_range("9-0"), None);
        assert_eq!(parse_content_range("x"), None);
    }

    #[tokio::test]
    async fn chunked_upload_verifies_and_survives_a_restart() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        let u = Uploads::new(store.clone());
        let id = u.create("r").await.unwrap();
        assert_eq!(
            u.append("r", &id, Some((0, 4)), body(b"hello"))
                .await
                .unwrap(),
            5
        );
        let e = u
            .append("r", &id, Some((0, 4)), body(b"hello"))
            .await
            .unwrap_err();
        assert_eq!(e.status, hyper::StatusCode::RANGE_NOT_SATISFIABLE);
        assert!(
            u.size("other", &id).await.is_err(),
            "another repository's upload"
        );
        // A new process: no in-memory hash; the file carries the state.
        let u2 = Uploads::new(store.clone());
        assert_eq!(u2.size("r", &id).await.unwrap(), 5);
        u2.append("r", &id, Some((5, 10)), body(b" world"))
            .await
            .unwrap();
        let d = Digest::sha256_of(b"hello world");
        u2.finish("r", &id, &d, body(b"")).await.unwrap();
        assert_eq!(store.repo_blob_size("r", &d).unwrap(), Some(11));
        assert!(
            u2.size("r", &id).await.is_err(),
            "finished uploads are gone"
        );
    }

    #[tokio::test]
    async fn a_wrong_digest_stores_nothing() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        let u = Uploads::new(store.clone());
        let id = u.create("r").await.unwrap();
        let d = Digest::sha256_of(b"something else");
        let e = u.finish("r", &id, &d, body(b"data")).await.unwrap_err();
        assert_eq!(e.code, Code::DigestInvalid);
        assert_eq!(store.blob_size(&d).unwrap(), None);
        assert_eq!(store.blob_size(&Digest::sha256_of(b"data")).unwrap(), None);
    }
}
