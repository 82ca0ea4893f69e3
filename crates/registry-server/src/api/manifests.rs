//! Manifests by tag or digest: `GET`/`HEAD`, `PUT` (validated: every referenced blob and
//! child manifest must be in the repository; a `subject` is recorded for the referrers API and
//! answered with `OCI-Subject`), `DELETE` of a manifest (with its tags) or of a tag alone.

use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use hyper::{Request, StatusCode};

use super::{blocking, empty, full, header, set, set_named, Resp};
use crate::digest::Digest;
use crate::error::{ApiError, Code};
use crate::manifest::{self, MAX_MANIFEST_SIZE};
use crate::names::valid_tag;
use crate::proxy::Upstream;
use crate::Registry;

/// A manifest reference: a tag or a digest.
enum Reference {
    Tag(String),
    Digest(Digest),
}

fn parse_reference(r: &str) -> Result<Reference, ApiError> {
    if r.contains(':') {
        Digest::parse(r).map(Reference::Digest).map_err(|e| {
            ApiError::new(Code::DigestInvalid, e.to_string())
                .with_detail(serde_json::json!({ "digest": r }))
        })
    } else if valid_tag(r) {
        Ok(Reference::Tag(r.to_string()))
    } else {
        Err(ApiError::new(Code::ManifestInvalid, "invalid tag")
            .with_detail(serde_json::json!({ "tag": r })))
    }
}

fn manifest_unknown(r: &str) -> ApiError {
    ApiError::new(Code::ManifestUnknown, "manifest unknown to registry")
        .with_detail(serde_json::json!({ "reference": r }))
}

pub async fn get(
    reg: &Arc<Registry>,
    name: &str,
    reference: &str,
    head: bool,
) -> Result<Resp, ApiError> {
    // A tag that cannot exist is simply unknown on a read (as distribution answers it).
    if !reference.contains(':') && !valid_tag(reference) {
        return Err(manifest_unknown(reference));
    }
    let r = parse_reference(reference)?;
    if reg.proxy.is_some() {
        upstream_manifest(reg, name, reference, &r).await?;
    }
    let store = reg.store.clone();
    let n = name.to_string();
    let found = blocking(move || {
        let d = match r {
            Reference::Digest(d) => d,
            Reference::Tag(t) => match store.resolve_tag(&n, &t)? {
                Some(d) => d,
                None => return Ok(None),
            },
        };
        Ok(store.get_manifest(&n, &d)?.map(|(mt, data)| (d, mt, data)))
    })
    .await?;
    let Some((d, media_type, data)) = found else {
        return Err(manifest_unknown(reference));
    };
    let len = data.len();
    let mut resp = if head {
        let mut r = empty(StatusCode::OK);
        set(&mut r, CONTENT_TYPE, &media_type);
        r
    } else {
        reg.metrics.add_bytes_out(len as u64);
        full(StatusCode::OK, &media_type, data)
    };
    set(&mut resp, CONTENT_LENGTH, &len.to_string());
    set_named(&mut resp, "docker-content-digest", &d.to_string());
    set_named(&mut resp, "etag", &format!("\"{d}\""));
    Ok(resp)
}

/// In a pull-through cache: a tag is asked upstream on every read (served from the cache when
/// the upstream fails); a digest only when it is not cached.
async fn upstream_manifest(
    reg: &Arc<Registry>,
    name: &str,
    reference: &str,
    r: &Reference,
) -> Result<(), ApiError> {
    if let Reference::Digest(d) = r {
        if reg.store.has_manifest(name, d) {
            return Ok(());
        }
    }
    let reg2 = reg.clone();
    let (n, rf) = (name.to_string(), reference.to_string());
    let got = blocking(move || {
        let p = reg2
            .proxy
            .as_ref()
            .ok_or_else(|| ApiError::internal("no proxy"))?;
        Ok(p.fetch_manifest(&reg2.store, &n, &rf))
    })
    .await?;
    match got {
        Upstream::Found(_) => Ok(()),
        Upstream::NotFound => {
            // gone upstream: a cached tag no longer names anything
            if let Reference::Tag(t) = r {
                let _ = reg.store.delete_tag(name, t);
            }
            Err(manifest_unknown(reference))
        }
        Upstream::Failed(why) => {
            tracing::warn!("upstream manifest {name}:{reference}: {why}; serving the cache");
            Ok(())
        }
    }
}

pub async fn put(
    reg: &Arc<Registry>,
    name: &str,
    reference: &str,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let r = parse_reference(reference)?;
    let content_type = header(&req, "content-type").map(str::to_string);
    let _guard = reg.inflight.enter();
    let data = Limited::new(req.into_body(), MAX_MANIFEST_SIZE + 1)
        .collect()
        .await
        .map_err(|e| {
            ApiError::new(Code::SizeInvalid, format!("reading the manifest: {e}"))
                .with_status(StatusCode::PAYLOAD_TOO_LARGE)
        })?
        .to_bytes();
    let m = manifest::parse(&data, content_type.as_deref())?;
    let d = match &r {
        Reference::Digest(want) => {
            let got = want.of_same_kind(&data);
            if &got != want {
                return Err(ApiError::new(
                    Code::DigestInvalid,
                    format!("the manifest's digest is {got}, not {want}"),
                )
                .with_detail(serde_json::json!({ "digest": want.to_string() })));
            }
            got
        }
        Reference::Tag(_) => Digest::sha256_of(&data),
    };
    let store = reg.store.clone();
    let n = name.to_string();
    let dd = d.clone();
    let subject = m.subject.clone();
    blocking(move || {
        let _lock = store.gc_lock(false)?;
        for b in &m.blobs {
            if store.repo_blob_size(&n, b)?.is_none() {
                return Err(
                    ApiError::new(Code::ManifestBlobUnknown, "blob unknown to registry")
                        .with_detail(serde_json::json!({ "digest": b.to_string() })),
                );
            }
            store.touch_blob(b);
        }
        for c in &m.children {
            if !store.has_manifest(&n, c) {
                return Err(ApiError::new(
                    Code::ManifestBlobUnknown,
                    "manifest unknown to registry",
                )
                .with_detail(serde_json::json!({ "digest": c.to_string() })));
            }
        }
        store.put_manifest(&n, &dd, &m.media_type, &data)?;
        if let Some(s) = &m.subject {
            store.add_referrer(&n, s, &dd, &m.referrer_descriptor(&dd, data.len()))?;
        }
        if let Reference::Tag(t) = &r {
            store.put_tag(&n, t, &dd)?;
        }
        Ok(())
    })
    .await?;
    let mut resp = empty(StatusCode::CREATED);
    set(&mut resp, LOCATION, &format!("/v2/{name}/manifests/{d}"));
    set(&mut resp, CONTENT_LENGTH, "0");
    set_named(&mut resp, "docker-content-digest", &d.to_string());
    if let Some(s) = subject {
        set_named(&mut resp, "oci-subject", &s.to_string());
    }
    Ok(resp)
}

pub async fn delete(reg: &Arc<Registry>, name: &str, reference: &str) -> Result<Resp, ApiError> {
    if !reg.config.delete_enabled {
        return Err(ApiError::new(
            Code::Unsupported,
            "deletion is disabled on this registry",
        ));
    }
    let r = parse_reference(reference)?;
    let store = reg.store.clone();
    let n = name.to_string();
    let found = blocking(move || match r {
        Reference::Tag(t) => Ok(store.delete_tag(&n, &t)?),
        Reference::Digest(d) => {
            let Some((mt, data)) = store.get_manifest(&n, &d)? else {
                return Ok(false);
            };
            if let Ok(m) = manifest::parse(&data, Some(&mt)) {
                if let Some(s) = m.subject {
                    store.remove_referrer(&n, &s, &d)?;
                }
            }
            Ok(store.delete_manifest(&n, &d)?)
        }
    })
    .await?;
    if !found {
        return Err(manifest_unknown(reference));
    }
    let mut resp = empty(StatusCode::ACCEPTED);
    set(&mut resp, CONTENT_LENGTH, "0");
    Ok(resp)
}
