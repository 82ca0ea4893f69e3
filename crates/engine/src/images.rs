//! The local image operations: list (with filters), inspect, history, tag, remove, prune, load,
//! save and import, each over [`berth_image::ImageStore`] off the async workers, with their events.

use std::fs::File;
use std::sync::Arc;

use berth_api::*;

use crate::context::{blocking, internal, Context};
use crate::util::label_matches;
use crate::{EngineError, Filters, Result};

pub(crate) async fn image_list(
    ctx: &Arc<Context>,
    all: bool,
    filters: Filters,
    digests: bool,
) -> Result<Vec<ImageSummary>> {
    let _ = digests;
    for k in filters.keys() {
        if !["dangling", "reference", "label", "before", "since"].contains(&k.as_str()) {
            return Err(EngineError::InvalidArgument(format!(
                "invalid filter '{k}'"
            )));
        }
    }
    let images = ctx.images.clone();
    let mut list = blocking(move || Ok(images.list(all)?)).await?;
    let in_use = ctx.images_in_use();
    for i in &mut list {
        i.containers = in_use.iter().filter(|id| **id == i.id).count() as i64;
    }
    if let Some(d) = filters.get("dangling") {
        let want = match d.first().map(|s| s.as_str()) {
            Some("true") | Some("1") => true,
            Some("false") | Some("0") => false,
            Some(v) => {
                return Err(EngineError::InvalidArgument(format!(
                    "Invalid filter 'dangling={v}'"
                )))
            }
            None => true,
        };
        list.retain(|i| i.repo_tags.is_empty() == want);
    }
    if let Some(refs) = filters.get("reference") {
        list.retain(|i| {
            i.repo_tags
                .iter()
                .any(|t| refs.iter().any(|r| reference_matches(r, t)))
        });
        for i in &mut list {
            i.repo_tags
                .retain(|t| refs.iter().any(|r| reference_matches(r, t)));
        }
    }
    if let Some(labels) = filters.get("label") {
        list.retain(|i| labels.iter().all(|l| label_matches(l, &i.labels)));
    }
    Ok(list)
}

pub(crate) async fn image_inspect(ctx: &Arc<Context>, name: &str) -> Result<ImageInspect> {
    let (images, name) = (ctx.images.clone(), name.to_string());
    let data_root = ctx.config.data_root.clone();
    blocking(move || {
        let mut inspect = images.inspect(&name)?;
        inspect.berth_signatures = crate::registry::recorded(&data_root, &inspect.repo_digests);
        Ok(inspect)
    })
    .await
}

pub(crate) async fn image_history(ctx: &Arc<Context>, name: &str) -> Result<Vec<HistoryItem>> {
    let (images, name) = (ctx.images.clone(), name.to_string());
    blocking(move || Ok(images.history(&name)?)).await
}

/// `repo` may hold a tag (`repo:tag`); `tag` empty means `latest` unless `repo` has one.
pub(crate) async fn image_tag(ctx: &Arc<Context>, name: &str, repo: &str, tag: &str) -> Result<()> {
    if repo.is_empty() {
        return Err(EngineError::InvalidArgument(
            "repository name must have at least one component".into(),
        ));
    }
    let target = if tag.is_empty() {
        repo.to_string()
    } else {
        format!("{repo}:{tag}")
    };
    let (images, name, t) = (ctx.images.clone(), name.to_string(), target.clone());
    let id = blocking(move || {
        images.tag(&name, &t)?;
        Ok(images.resolve(&t)?.id)
    })
    .await?;
    let target = berth_image::Reference::parse(&target)
        .map(|r| r.familiar())
        .unwrap_or(target);
    ctx.event("image", "tag", &id, &[("name", target)]);
    Ok(())
}

pub(crate) async fn image_remove(
    ctx: &Arc<Context>,
    name: &str,
    force: bool,
    noprune: bool,
) -> Result<Vec<ImageDeleteItem>> {
    let _ = noprune;
    let in_use = ctx.images_in_use();
    let (images, name) = (ctx.images.clone(), name.to_string());
    let items =
        blocking(move || Ok(images.remove(&name, force, &|id| in_use.iter().any(|u| u == id))?))
            .await?;
    image_delete_events(ctx, &items);
    Ok(items)
}

fn image_delete_events(ctx: &Arc<Context>, items: &[ImageDeleteItem]) {
    for it in items {
        if let Some(u) = &it.untagged {
            ctx.event("image", "untag", u, &[("name", u.clone())]);
        }
        if let Some(d) = &it.deleted {
            ctx.event("image", "delete", d, &[("name", d.clone())]);
        }
    }
}

pub(crate) async fn image_prune(
    ctx: &Arc<Context>,
    filters: Filters,
) -> Result<ImagePruneResponse> {
    let dangling_only = !matches!(
        filters
            .get("dangling")
            .and_then(|v| v.first())
            .map(|s| s.as_str()),
        Some("false") | Some("0")
    );
    let in_use = ctx.images_in_use();
    let images = ctx.images.clone();
    let resp =
        blocking(move || Ok(images.prune(dangling_only, &|id| in_use.iter().any(|u| u == id))?))
            .await?;
    image_delete_events(ctx, resp.images_deleted.as_deref().unwrap_or_default());
    Ok(resp)
}

/// Loads an archive; returns the lines to report.
pub(crate) async fn image_load(ctx: &Arc<Context>, archive: File) -> Result<Vec<String>> {
    crate::registry::check_archive(&ctx.config.trust)?;
    let images = ctx.images.clone();
    let loaded = blocking(move || {
        let mut f = archive;
        Ok(images.load(&mut f)?)
    })
    .await?;
    let mut lines = Vec::new();
    for l in loaded {
        let name = l.tags.first().cloned().unwrap_or_else(|| l.id.clone());
        ctx.event("image", "load", &l.id, &[("name", name)]);
        if l.tags.is_empty() {
            lines.push(format!("Loaded image ID: {}", l.id));
        }
        for t in l.tags {
            lines.push(format!("Loaded image: {t}"));
        }
    }
    Ok(lines)
}

/// Saves `names` into an anonymous temporary file, rewound, for the caller to stream.
pub(crate) async fn image_save(ctx: &Arc<Context>, names: Vec<String>) -> Result<File> {
    for n in &names {
        ctx.event("image", "save", n, &[("name", n.clone())]);
    }
    let images = ctx.images.clone();
    let tmpdir = ctx.config.data_root.join("tmp");
    blocking(move || {
        std::fs::create_dir_all(&tmpdir).map_err(internal("creating tmp"))?;
        let mut f = tempfile::tempfile_in(&tmpdir).map_err(internal("creating temporary file"))?;
        images.save(&names, &mut f)?;
        use std::io::Seek;
        f.rewind().map_err(internal("rewinding"))?;
        Ok(f)
    })
    .await
}

/// Imports a rootfs tarball; `changes` are Dockerfile instructions (`CMD ["sh"]`, `ENV a=b`).
pub(crate) async fn image_import(
    ctx: &Arc<Context>,
    tarball: File,
    repo: &str,
    tag: &str,
    changes: Vec<String>,
    message: &str,
) -> Result<String> {
    crate::registry::check_archive(&ctx.config.trust)?;
    let mut config = ContainerConfig::default();
    for ch in &changes {
        crate::changes::apply(&mut config, ch).map_err(EngineError::InvalidArgument)?;
    }
    let reference = if repo.is_empty() {
        None
    } else if tag.is_empty() {
        Some(repo.to_string())
    } else {
        Some(format!("{repo}:{tag}"))
    };
    let (images, message) = (ctx.images.clone(), message.to_string());
    let id = blocking(move || {
        let mut f = tarball;
        Ok(images.import(&mut f, reference.as_deref(), config, &message)?)
    })
    .await?;
    ctx.event("image", "import", &id, &[("name", id.clone())]);
    Ok(id)
}

/// `reference=busybox` / `reference=busy*` / `reference=busybox:latest` against `repo:tag`.
fn reference_matches(pattern: &str, tag: &str) -> bool {
    let (repo, t) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
    let (prepo, ptag) = match pattern.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (pattern, None),
    };
    glob(prepo, repo) && ptag.is_none_or(|pt| glob(pt, t))
}

fn glob(p: &str, s: &str) -> bool {
    match p.find('*') {
        None => p == s,
        Some(i) => {
            let (pre, rest) = (&p[..i], &p[i + 1..]);
            if !s.starts_with(pre) {
                return false;
            }
            let s = &s[pre.len()..];
            (0..=s.len()).any(|j| s.is_char_boundary(j) && glob(rest, &s[j..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::label_matches;

    #[test]
    fn filters() {
        let mut l = std::collections::BTreeMap::new();
        l.insert("a".to_string(), "b".to_string());
        assert!(label_matches("a", &l));
        assert!(label_matches("a=b", &l));
        assert!(!label_matches("a=c", &l));
        assert!(reference_matches("busybox", "busybox:latest"));
        assert!(reference_matches("busy*", "busybox:latest"));
        assert!(reference_matches("busybox:lat*", "busybox:latest"));
        assert!(!reference_matches("alpine", "busybox:latest"));
        assert!(reference_matches("localhost:5000/a", "localhost:5000/a:t"));
    }
}
