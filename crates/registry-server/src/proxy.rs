//! Pull-through cache (`--proxy URL`): a read of a manifest or blob this registry lacks is
//! fetched from the upstream registry (with its credentials, through berth's registry client:
//! Basic or Bearer, TLS with `certs.d`), verified, stored like a push, and served. Tags are
//! asked upstream on every read so they follow it; when the upstream cannot be reached, what
//! is cached is served. A proxy takes no pushes or deletes (405 UNSUPPORTED).
//!
//! Every call blocks (the client is synchronous): the server runs them on the blocking pool.

use std::io::{Read, Write};

use berth_registry::{Credentials, Endpoint, RegistryClient, RegistryError, RegistryOptions};

use crate::digest::{Digest, Hasher};
use crate::manifest;
use crate::storage::Store;

/// The upstream and how to reach it.
pub struct Proxy {
    opts: RegistryOptions,
    endpoint: Endpoint,
    creds: Option<Credentials>,
}

/// What the upstream said.
#[derive(Debug)]
pub enum Upstream<T> {
    Found(T),
    NotFound,
    /// Unreachable, refused, or answered wrongly: the caller may serve what it has cached.
    Failed(String),
}

fn classify<T>(e: RegistryError) -> Upstream<T> {
    match e {
        RegistryError::NotFound(_) => Upstream::NotFound,
        e => Upstream::Failed(e.to_string()),
    }
}

impl Proxy {
    /// `url` is `http(s)://host[:port]`.
    pub fn new(
        url: &str,
        username: Option<String>,
        password: Option<String>,
    ) -> Result<Proxy, String> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() < 9 {
            return Err(format!(
                "proxy URL {url:?}: expected http://HOST[:PORT] or https://HOST[:PORT]"
            ));
        }
        let creds = match (username, password) {
            (Some(u), Some(p)) => Some(Credentials {
                username: u,
                password: p,
                identity_token: String::new(),
            }),
            (None, None) => None,
            _ => return Err("proxy credentials need both username and password".into()),
        };
        Ok(Proxy {
            opts: RegistryOptions::default(),
            endpoint: Endpoint {
                base,
                mirror: false,
            },
            creds,
        })
    }

    pub fn url(&self) -> &str {
        &self.endpoint.base
    }

    fn client(&self, repo: &str) -> Result<RegistryClient, RegistryError> {
        RegistryClient::connect_to(
            &self.opts,
            &self.endpoint,
            repo,
            self.creds.clone(),
            &["pull"],
        )
    }

    /// Fetches manifest `reference` of `repo` and caches it (with the tag, for a tag).
    pub fn fetch_manifest(&self, store: &Store, repo: &str, reference: &str) -> Upstream<Digest> {
        let fetched = match self.client(repo).and_then(|c| c.get_manifest(reference)) {
            Ok(f) => f,
            Err(e) => return classify(e),
        };
        let m = match manifest::parse(&fetched.body, Some(&fetched.media_type)) {
            Ok(m) => m,
            Err(e) => return Upstream::Failed(format!("upstream manifest: {}", e.message)),
        };
        let d = Digest::sha256_of(&fetched.body);
        if reference.contains(':') && Digest::parse(reference).ok().as_ref() != Some(&d) {
            return Upstream::Failed(format!("upstream sent {d} for {reference}"));
        }
        let r = (|| -> std::io::Result<()> {
            let _lock = store.gc_lock(false)?;
            store.put_manifest(repo, &d, &m.media_type, &fetched.body)?;
            if let Some(s) = &m.subject {
                store.add_referrer(repo, s, &d, &m.referrer_descriptor(&d, fetched.body.len()))?;
            }
            if !reference.contains(':') {
                store.put_tag(repo, reference, &d)?;
            }
            Ok(())
        })();
        match r {
            Ok(()) => Upstream::Found(d),
            Err(e) => Upstream::Failed(format!("caching the manifest: {e}")),
        }
    }

    /// Fetches blob `d` of `repo` into the store: verified, fsynced, renamed into place, linked.
    pub fn fetch_blob(&self, store: &Store, repo: &str, d: &Digest) -> Upstream<u64> {
        let mut body = match self.client(repo).and_then(|c| c.get_blob(&d.to_string())) {
            Ok(b) => b,
            Err(e) => return classify(e),
        };
        let tmp = store.tmp_path();
        let r = (|| -> Result<u64, String> {
            let mut f = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
            let mut h = Hasher::new(d.algorithm());
            let mut buf = vec![0u8; 256 * 1024];
            let mut total = 0u64;
            loop {
                let n = body
                    .read(&mut buf)
                    .map_err(|e| format!("reading upstream: {e}"))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                f.write_all(&buf[..n]).map_err(|e| e.to_string())?;
                total += n as u64;
            }
            let got = h.finish();
            if &got != d {
                return Err(format!("upstream sent {got} for blob {d}"));
            }
            f.sync_all().map_err(|e| e.to_string())?;
            let _lock = store.gc_lock(false).map_err(|e| e.to_string())?;
            store.commit_blob_file(d, &tmp).map_err(|e| e.to_string())?;
            store.link_blob(repo, d).map_err(|e| e.to_string())?;
            Ok(total)
        })();
        match r {
            Ok(n) => Upstream::Found(n),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Upstream::Failed(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_its_settings() {
        assert!(Proxy::new("http://127.0.0.1:5000/", None, None).is_ok());
        assert_eq!(
            Proxy::new("https://r.example", None, None).unwrap().url(),
            "https://r.example"
        );
        assert!(Proxy::new("r.example", None, None).is_err());
        assert!(Proxy::new("http://x", Some("u".into()), None).is_err());
    }
}
