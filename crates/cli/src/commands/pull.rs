//! `pull` / `image pull` and `push` / `image push`.

use anyhow::Result;
use clap::Args;
use hyper::Method;

use super::credentials::{domain_of_image, registry_auth_header};
use super::progress::ProgressPrinter;
use crate::client::{json_stream, Client, Exit};
use crate::tty;

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform", default_value = "")]
    pub platform: String,
    /// Skip image verification (accepted for compatibility)
    #[arg(long = "disable-content-trust", default_value_t = true)]
    pub disable_content_trust: bool,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Skip image signing (accepted for compatibility)
    #[arg(long = "disable-content-trust", default_value_t = true)]
    pub disable_content_trust: bool,
    /// Sign what was pushed with this private key (cosign format; berth only)
    #[arg(long = "sign-by", value_name = "KEY")]
    pub sign_by: Option<std::path::PathBuf>,
    /// The signing key's passphrase file (else $BERTH_SIGN_PASSPHRASE or $COSIGN_PASSWORD)
    #[arg(
        long = "sign-passphrase-file",
        value_name = "FILE",
        requires = "sign_by"
    )]
    pub sign_passphrase_file: Option<std::path::PathBuf>,
    pub name: String,
}

/// Splits `name[:tag|@digest]` into the name and the tag or digest.
pub fn split_name(name: &str) -> (String, Option<String>) {
    if let Some((n, d)) = name.split_once('@') {
        return (n.to_string(), Some(d.to_string()));
    }
    let last_slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    match name[last_slash..].rfind(':') {
        Some(i) => (
            name[..last_slash + i].to_string(),
            Some(name[last_slash + i + 1..].to_string()),
        ),
        None => (name.to_string(), None),
    }
}

/// The fully-qualified form Docker prints after a pull (`docker.io/library/busybox:latest`).
fn qualified(name: &str, tag: &str) -> String {
    let domain = domain_of_image(name);
    let path = if name.starts_with(&format!("{domain}/")) {
        name[domain.len() + 1..].to_string()
    } else if domain == "docker.io" && !name.contains('/') {
        format!("library/{name}")
    } else {
        name.to_string()
    };
    let sep = if tag.starts_with("sha256:") { '@' } else { ':' };
    format!("{domain}/{path}{sep}{tag}")
}

/// The docker CLI's pull and push end with status 1 when the daemon refuses (not 125).
fn exit_one(e: anyhow::Error) -> anyhow::Error {
    match crate::client::api_error(&e) {
        Some(a) => Exit::msg(1, a.to_string()),
        None => e,
    }
}

pub async fn pull(c: &Client, a: PullArgs) -> Result<i32> {
    let (name, tag) = split_name(&a.name);
    if a.all_tags && tag.is_some() {
        return Err(Exit::msg(1, "tag can't be used with --all-tags/-a"));
    }
    let tag = if a.all_tags {
        String::new()
    } else {
        tag.unwrap_or_else(|| {
            if !a.quiet {
                println!("Using default tag: latest");
            }
            "latest".into()
        })
    };
    let mut q = vec![("fromImage", name.clone()), ("tag", tag.clone())];
    if !a.platform.is_empty() {
        q.push(("platform", a.platform.clone()));
    }
    let auth = registry_auth_header(&domain_of_image(&name))?;
    let resp = c
        .request_with_headers(
            Method::POST,
            "/images/create",
            &q,
            None,
            &[("X-Registry-Auth", auth)],
        )
        .await
        .map_err(exit_one)?;
    let mut printer = ProgressPrinter::new(tty::stdout_is_tty(), a.quiet);
    json_stream(resp, |v| {
        printer.message(v);
        Ok(())
    })
    .await?;
    if let Some(e) = printer.error {
        return Err(Exit::msg(1, e));
    }
    if !a.all_tags {
        println!("{}", qualified(&name, &tag));
    }
    Ok(0)
}

pub async fn push(c: &Client, a: PushArgs) -> Result<i32> {
    let (name, tag) = split_name(&a.name);
    if a.all_tags && tag.is_some() {
        return Err(Exit::msg(1, "tag can't be used with --all-tags/-a"));
    }
    let tag = if a.all_tags {
        String::new()
    } else {
        tag.unwrap_or_else(|| {
            if !a.quiet {
                println!("Using default tag: latest");
            }
            "latest".into()
        })
    };
    // The key is read first: a wrong passphrase fails before anything is pushed.
    let key = match &a.sign_by {
        Some(k) => Some(super::trust::load_key(
            k,
            a.sign_passphrase_file.as_deref(),
        )?),
        None => None,
    };
    let auth = registry_auth_header(&domain_of_image(&name))?;
    let path = format!("/images/{}/push", crate::client::seg(&name));
    let resp = c
        .request_with_headers(
            Method::POST,
            &path,
            &[("tag", tag.clone())],
            None,
            &[("X-Registry-Auth", auth)],
        )
        .await
        .map_err(exit_one)?;
    let mut printer = ProgressPrinter::new(tty::stdout_is_tty(), a.quiet);
    json_stream(resp, |v| {
        printer.message(v);
        Ok(())
    })
    .await?;
    if let Some(e) = printer.error {
        return Err(Exit::msg(1, e));
    }
    if let Some(key) = &key {
        for aux in &printer.aux {
            let (Some(t), Some(d)) = (aux["Tag"].as_str(), aux["Digest"].as_str()) else {
                continue;
            };
            super::trust::sign_and_store(c, key, &format!("{name}:{t}"), d).await?;
        }
    }
    if a.quiet {
        println!("{}", a.name);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(split_name("busybox"), ("busybox".into(), None));
        assert_eq!(
            split_name("localhost:5000/a:v1"),
            ("localhost:5000/a".into(), Some("v1".into()))
        );
        assert_eq!(
            split_name("localhost:5000/a"),
            ("localhost:5000/a".into(), None)
        );
        assert_eq!(
            qualified("busybox", "latest"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(qualified("127.0.0.1:5000/x", "v1"), "127.0.0.1:5000/x:v1");
    }
}
