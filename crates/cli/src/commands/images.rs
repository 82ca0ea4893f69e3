//! `images` / `image ls`.

use anyhow::Result;
use berth_api::ImageSummary;
use clap::Args;
use serde_json::{json, Value};

use super::ps::filters_json;
use crate::client::{Client, Exit};
use crate::format::{headers, Format};
use crate::human::{ago, go_time, human_size, short_id};

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Only show image IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Show digests
    #[arg(long = "digests")]
    pub digests: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Only show images matching REPOSITORY[:TAG]
    pub reference: Option<String>,
}

pub const DEFAULT_FORMAT: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
pub const DIGESTS_FORMAT: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

pub fn header_map() -> serde_json::Map<String, Value> {
    headers(&[
        ("ID", "IMAGE ID"),
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("Digest", "DIGEST"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("Size", "SIZE"),
        ("Containers", "CONTAINERS"),
        ("SharedSize", "SHARED SIZE"),
        ("UniqueSize", "UNIQUE SIZE"),
        ("VirtualSize", "VIRTUAL SIZE"),
    ])
}

/// Splits `repo:tag` (the tag is after the last colon that follows the last slash).
pub fn split_ref(r: &str) -> (String, String) {
    let slash = r.rfind('/').map(|i| i + 1).unwrap_or(0);
    match r[slash..].rfind(':') {
        Some(i) => (r[..slash + i].to_string(), r[slash + i + 1..].to_string()),
        None => (r.to_string(), String::new()),
    }
}

/// One row per RepoTag (`<none>` for dangling images), like docker's image formatter.
pub fn rows(img: &ImageSummary, trunc: bool) -> Vec<Value> {
    let id = if trunc {
        short_id(&img.id)
    } else {
        img.id.clone()
    };
    let digest_of = |repo: &str| -> String {
        img.repo_digests
            .iter()
            .find_map(|d| {
                let (r, dg) = d.split_once('@')?;
                (r == repo).then(|| dg.to_string())
            })
            .unwrap_or_else(|| "<none>".into())
    };
    let mk = |repo: &str, tag: &str, digest: String| {
        json!({
            "Containers": if img.containers < 0 { "N/A".to_string() } else { img.containers.to_string() },
            "CreatedAt": go_time(img.created),
            "CreatedSince": ago(img.created),
            "Digest": digest,
            "ID": id,
            "Repository": repo,
            "SharedSize": if img.shared_size < 0 { "N/A".to_string() } else { human_size(img.shared_size as f64) },
            "Size": human_size(img.size as f64),
            "Tag": tag,
            "UniqueSize": if img.shared_size < 0 { "N/A".to_string() } else { human_size((img.size - img.shared_size) as f64) },
            "VirtualSize": human_size(img.size as f64),
            "__Label": img.labels,
        })
    };
    let mut out = Vec::new();
    for t in &img.repo_tags {
        if t == "<none>:<none>" {
            continue;
        }
        let (repo, tag) = split_ref(t);
        let d = digest_of(&repo);
        out.push(mk(&repo, &tag, d));
    }
    if out.is_empty() {
        if let Some(d) = img.repo_digests.iter().find(|d| *d != "<none>@<none>") {
            let (repo, dg) = d.split_once('@').unwrap_or((d, "<none>"));
            out.push(mk(repo, "<none>", dg.to_string()));
        } else {
            out.push(mk("<none>", "<none>", "<none>".into()));
        }
    }
    out
}

pub async fn run(c: &Client, a: ImagesArgs) -> Result<i32> {
    let mut filters = a.filter.clone();
    if let Some(r) = &a.reference {
        filters.push(format!("reference={r}"));
    }
    let mut q = Vec::new();
    if a.all {
        q.push(("all", "1".to_string()));
    }
    if let Some(f) = filters_json(&filters)? {
        q.push(("filters", f));
    }
    if a.digests {
        q.push(("digests", "1".to_string()));
    }
    let list: Vec<ImageSummary> = c.get_json("/images/json", &q).await?;
    let trunc = !a.no_trunc;
    if a.quiet && a.format.is_none() {
        let mut seen = std::collections::HashSet::new();
        for img in &list {
            let id = if trunc {
                short_id(&img.id)
            } else {
                img.id.clone()
            };
            if seen.insert(id.clone()) {
                println!("{id}");
            }
        }
        return Ok(0);
    }
    let default = if a.digests {
        DIGESTS_FORMAT
    } else {
        DEFAULT_FORMAT
    };
    let fmt = Format::new(a.format.as_deref().unwrap_or(""), default)
        .map_err(|e| Exit::msg(125, e.to_string()))?;
    let rows: Vec<Value> = list.iter().flat_map(|i| rows(i, trunc)).collect();
    let out = fmt
        .render_all(&rows, &header_map())
        .map_err(|e| Exit::msg(125, e.to_string()))?;
    print!("{out}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs() {
        assert_eq!(
            split_ref("busybox:latest"),
            ("busybox".into(), "latest".into())
        );
        assert_eq!(
            split_ref("localhost:5000/a/b:1"),
            ("localhost:5000/a/b".into(), "1".into())
        );
        assert_eq!(
            split_ref("localhost:5000/a"),
            ("localhost:5000/a".into(), "".into())
        );
    }

    #[test]
    fn table() {
        let img = ImageSummary {
            id: "sha256:0123456789abcdef".into(),
            repo_tags: vec!["busybox:latest".into(), "mine:v1".into()],
            created: chrono::Utc::now().timestamp() - 3 * 24 * 3600,
            size: 4_261_000,
            ..Default::default()
        };
        let dangling = ImageSummary {
            id: "sha256:fedcba9876543210".into(),
            size: 0,
            created: chrono::Utc::now().timestamp() - 3 * 24 * 3600,
            ..Default::default()
        };
        let mut r = rows(&img, true);
        r.extend(rows(&dangling, true));
        let f = Format::new("", DEFAULT_FORMAT).unwrap();
        let out = f.render_all(&r, &header_map()).unwrap();
        assert_eq!(
            out,
            "REPOSITORY   TAG       IMAGE ID       CREATED      SIZE\n\
             busybox      latest    0123456789ab   3 days ago   4.26MB\n\
             mine         v1        0123456789ab   3 days ago   4.26MB\n\
             <none>       <none>    fedcba987654   3 days ago   0B\n"
        );
    }
}
