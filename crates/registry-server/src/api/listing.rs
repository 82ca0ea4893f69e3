//! Content discovery: tags (`n`, `last`, `Link`), the catalog, and referrers (with the
//! `artifactType` filter and `OCI-Filters-Applied`).

use std::sync::Arc;

use hyper::StatusCode;

use super::{blocking, full, set_named, Resp};
use crate::digest::Digest;
use crate::error::{ApiError, Code};
use crate::manifest::OCI_INDEX;
use crate::router::param;
use crate::Registry;

/// One page of a sorted list: the entries after `last`, at most `n`, and whether more follow.
pub fn paginate(all: Vec<String>, n: Option<usize>, last: Option<&str>) -> (Vec<String>, bool) {
    let mut rest: Vec<String> = match last {
        Some(l) if !l.is_empty() => all.into_iter().filter(|t| t.as_str() > l).collect(),
        _ => all,
    };
    match n {
        Some(n) if rest.len() > n => {
            rest.truncate(n);
            (rest, true)
        }
        _ => (rest, false),
    }
}

fn page_params(q: &[(String, String)]) -> Result<(Option<usize>, Option<&str>), ApiError> {
    let n =
        match param(q, "n") {
            Some(v) => Some(v.parse::<usize>().map_err(|_| {
                ApiError::new(Code::PaginationNumberInvalid, format!("invalid n={v}"))
            })?),
            None => None,
        };
    Ok((n, param(q, "last")))
}

fn link(path: &str, n: Option<usize>, items: &[String]) -> Option<String> {
    let last = items.last()?;
    let enc = percent_encoding::utf8_percent_encode(last, percent_encoding::NON_ALPHANUMERIC);
    Some(format!(
        "<{path}?n={}&last={enc}>; rel=\"next\"",
        n.unwrap_or(items.len())
    ))
}

pub async fn tags(
    reg: &Arc<Registry>,
    name: &str,
    q: &[(String, String)],
) -> Result<Resp, ApiError> {
    let (n, last) = page_params(q)?;
    let store = reg.store.clone();
    let nm = name.to_string();
    let all = blocking(move || Ok(store.list_tags(&nm)?))
        .await?
        .ok_or_else(|| {
            ApiError::new(Code::NameUnknown, "repository name not known to registry")
                .with_detail(serde_json::json!({ "name": name }))
        })?;
    let (items, more) = paginate(all, n, last);
    let body = serde_json::to_vec(&serde_json::json!({"name": name, "tags": items}))
        .map_err(ApiError::internal)?;
    let mut r = full(StatusCode::OK, "application/json", body);
    if more {
        if let Some(l) = link(&format!("/v2/{name}/tags/list"), n, &items) {
            set_named(&mut r, "link", &l);
        }
    }
    Ok(r)
}

pub async fn catalog(reg: &Arc<Registry>, q: &[(String, String)]) -> Result<Resp, ApiError> {
    let (n, last) = page_params(q)?;
    let store = reg.store.clone();
    let all = blocking(move || Ok(store.catalog()?)).await?;
    let (items, more) = paginate(all, n, last);
    let body = serde_json::to_vec(&serde_json::json!({ "repositories": items }))
        .map_err(ApiError::internal)?;
    let mut r = full(StatusCode::OK, "application/json", body);
    if more {
        if let Some(l) = link("/v2/_catalog", n, &items) {
            set_named(&mut r, "link", &l);
        }
    }
    Ok(r)
}

pub async fn referrers(
    reg: &Arc<Registry>,
    name: &str,
    digest: &str,
    q: &[(String, String)],
) -> Result<Resp, ApiError> {
    let subject = Digest::parse(digest).map_err(|e| {
        ApiError::new(Code::DigestInvalid, e.to_string())
            .with_detail(serde_json::json!({ "digest": digest }))
    })?;
    let store = reg.store.clone();
    let nm = name.to_string();
    let mut list = blocking(move || Ok(store.list_referrers(&nm, &subject)?)).await?;
    let filter = param(q, "artifactType").filter(|s| !s.is_empty());
    if let Some(at) = filter {
        list.retain(|d| d.get("artifactType").and_then(|v| v.as_str()) == Some(at));
    }
    let body = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": list,
    }))
    .map_err(ApiError::internal)?;
    let mut r = full(StatusCode::OK, OCI_INDEX, body);
    if filter.is_some() {
        set_named(&mut r, "oci-filters-applied", "artifactType");
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn pages() {
        let all = v(&["a", "b", "c", "d"]);
        assert_eq!(paginate(all.clone(), Some(2), None), (v(&["a", "b"]), true));
        assert_eq!(
            paginate(all.clone(), Some(2), Some("b")),
            (v(&["c", "d"]), false)
        );
        assert_eq!(paginate(all.clone(), None, Some("c")), (v(&["d"]), false));
        assert_eq!(paginate(all.clone(), Some(0), None), (v(&[]), true));
        assert_eq!(
            link("/v2/x/tags/list", Some(2), &v(&["a", "b"])).unwrap(),
            "</v2/x/tags/list?n=2&last=b>; rel=\"next\""
        );
    }
}
