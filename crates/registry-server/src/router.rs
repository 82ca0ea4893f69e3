//! Request paths to typed routes. Repository names contain `/`, so the route is found by the
//! last `/manifests/`, `/blobs/`, … segment (references, digests and upload ids have no `/`).

/// What a `/v2/…` path addresses.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    Manifest {
        name: String,
        reference: String,
    },
    Blob {
        name: String,
        digest: String,
    },
    /// `/v2/<name>/blobs/uploads/`
    UploadStart {
        name: String,
    },
    Upload {
        name: String,
        id: String,
    },
    Tags {
        name: String,
    },
    Referrers {
        name: String,
        digest: String,
    },
}

/// The route of `path`, `None` when it is not part of the API.
pub fn route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(Route::Base);
    }
    let rest = rest.strip_prefix('/')?;
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags { name: name.into() });
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or(rest.strip_suffix("/blobs/uploads"))
    {
        return Some(Route::UploadStart { name: name.into() });
    }
    if let Some(i) = rest.rfind("/blobs/uploads/") {
        let id = &rest[i + "/blobs/uploads/".len()..];
        if !id.contains('/') {
            return Some(Route::Upload {
                name: rest[..i].into(),
                id: id.into(),
            });
        }
    }
    for (seg, kind) in [("/manifests/", 0), ("/blobs/", 1), ("/referrers/", 2)] {
        if let Some(i) = rest.rfind(seg) {
            let (name, last) = (rest[..i].to_string(), &rest[i + seg.len()..]);
            if last.is_empty() || last.contains('/') || name.is_empty() {
                continue;
            }
            return Some(match kind {
                0 => Route::Manifest {
                    name,
                    reference: last.into(),
                },
                1 => Route::Blob {
                    name,
                    digest: last.into(),
                },
                _ => Route::Referrers {
                    name,
                    digest: last.into(),
                },
            });
        }
    }
    None
}

/// `key=value` pairs of a query string, percent-decoded.
pub fn query(q: Option<&str>) -> Vec<(String, String)> {
    let dec = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (dec(k), dec(v)),
            None => (dec(p), String::new()),
        })
        .collect()
}

/// The first value of `key`.
pub fn param<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/v2/"), Some(Route::Base));
        assert_eq!(route("/v2"), Some(Route::Base));
        assert_eq!(route("/v2/_catalog"), Some(Route::Catalog));
        assert_eq!(
            route("/v2/a/manifests/b/manifests/latest"),
            Some(Route::Manifest {
                name: "a/manifests/b".into(),
                reference: "latest".into()
            })
        );
        assert_eq!(
            route("/v2/conf/test/blobs/uploads/"),
            Some(Route::UploadStart {
                name: "conf/test".into()
            })
        );
        assert_eq!(
            route("/v2/x/blobs/uploads/abc"),
            Some(Route::Upload {
                name: "x".into(),
                id: "abc".into()
            })
        );
        assert_eq!(
            route("/v2/x/blobs/sha256:00"),
            Some(Route::Blob {
                name: "x".into(),
                digest: "sha256:00".into()
            })
        );
        assert_eq!(
            route("/v2/x/y/tags/list"),
            Some(Route::Tags { name: "x/y".into() })
        );
        assert_eq!(
            route("/v2/x/referrers/sha256:1"),
            Some(Route::Referrers {
                name: "x".into(),
                digest: "sha256:1".into()
            })
        );
        assert_eq!(route("/v1/x"), None);
        assert_eq!(route("/v2/x/manifests/"), None);
    }

    #[test]
    fn queries() {
        let q = query(Some("n=2&last=a%2Bb&flag"));
        assert_eq!(param(&q, "n"), Some("2"));
        assert_eq!(param(&q, "last"), Some("a+b"));
        assert_eq!(param(&q, "flag"), Some(""));
        assert_eq!(param(&q, "x"), None);
    }
}
