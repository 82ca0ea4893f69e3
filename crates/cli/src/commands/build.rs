//! `build` (the classic builder protocol: the context as a tar, honouring `.dockerignore`,
//! posted to `/build`, the JSON-line answer printed as `docker build` prints it), `commit`, and
//! `builder prune`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use berth_build::ignore::{self, EntryKind};
use clap::{ArgAction, Args, Subcommand};
use hyper::Method;

use super::images::split_ref;
use crate::client::{json_stream, read_json, Client, Exit};

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag")]
    pub tag: Vec<String>,
    /// Name of the Dockerfile (Default is "PATH/Dockerfile")
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg")]
    pub build_arg: Vec<String>,
    /// Set the target build stage to build
    #[arg(long = "target")]
    pub target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long = "pull")]
    pub pull: bool,
    /// Set metadata for an image
    #[arg(long = "label")]
    pub label: Vec<String>,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Write the image ID to the file
    #[arg(long = "iidfile")]
    pub iidfile: Option<PathBuf>,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long = "network")]
    pub network: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform")]
    pub platform: Option<String>,
    /// Size of /dev/shm (bytes)
    #[arg(long = "shm-size")]
    pub shm_size: Option<u64>,
    /// Type of progress output (plain, tty); the classic builder prints plain lines
    #[arg(long = "progress")]
    pub progress: Option<String>,
    /// Secret to expose to the build (format: "id=mysecret[,src=/local/secret]")
    #[arg(long = "secret")]
    pub secret: Vec<String>,
    /// Always remove intermediate containers
    #[arg(long = "rm", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub rm: bool,
    #[arg(value_name = "PATH|-")]
    pub context: String,
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long = "author")]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long = "message")]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long = "pause", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub pause: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum BuilderCmd {
    /// Remove build cache
    Prune(BuilderPruneArgs),
}

#[derive(Args, Debug)]
pub struct BuilderPruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

/// `KEY=VALUE` pairs; a bare `KEY` takes its value from the environment (build args).
fn key_values(items: &[String], from_env: bool) -> BTreeMap<String, Option<String>> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None if from_env => (kv.clone(), std::env::var(kv).ok()),
            None => (kv.clone(), Some(String::new())),
        })
        .collect()
}

fn tar_err(e: std::io::Error) -> anyhow::Error {
    Exit::msg(1, format!("error archiving the build context: {e}"))
}

/// The context directory as a tar: the files `.dockerignore` keeps, plus the Dockerfile and
/// `.dockerignore` themselves. `extra` is a Dockerfile from outside the context, added as
/// `name`.
pub fn context_tar(dir: &Path, dockerfile: &str, extra: Option<(&str, &[u8])>) -> Result<Vec<u8>> {
    let matcher = ignore::load(dir, Some(Path::new(dockerfile)))
        .map_err(|e| Exit::msg(1, format!("error reading .dockerignore: {}", e.0)))?;
    let entries = ignore::kept_files(dir, &matcher)
        .map_err(|e| Exit::msg(1, format!("error checking context: {e}")))?;
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let mut seen = std::collections::BTreeSet::new();
    for e in &entries {
        let p = dir.join(&e.path);
        match e.kind {
            EntryKind::Dir => b.append_dir(&e.path, &p).map_err(tar_err)?,
            EntryKind::File | EntryKind::Symlink => {
                b.append_path_with_name(&p, &e.path).map_err(tar_err)?
            }
        }
        seen.insert(e.path.clone());
    }
    for always in [dockerfile, ".dockerignore"] {
        let clean = ignore::clean_path(always);
        if !seen.contains(&clean) && dir.join(&clean).is_file() {
            b.append_path_with_name(dir.join(&clean), &clean)
                .map_err(tar_err)?;
        }
    }
    if let Some((name, data)) = extra {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        b.append_data(&mut h, name, data).map_err(tar_err)?;
    }
    b.into_inner().map_err(tar_err)
}

/// Reads the context of `build -`: a tar (optionally compressed) as it is, or a Dockerfile.
fn stdin_context() -> Result<(Vec<u8>, Option<String>)> {
    let mut data = Vec::new();
    std::io::stdin().read_to_end(&mut data)?;
    let is_tar = data.len() > 262 && &data[257..262] == b"ustar";
    let is_gzip = data.starts_with(&[0x1f, 0x8b]);
    if is_tar || is_gzip {
        return Ok((data, None));
    }
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    b.append_data(&mut h, "Dockerfile", data.as_slice())?;
    Ok((b.into_inner()?, Some("Dockerfile".into())))
}

pub async fn build(c: &Client, a: BuildArgs) -> Result<i32> {
    let mut q: Vec<(&str, String)> = Vec::new();
    let secrets = super::build_secrets::secrets_header(&a.secret)?;
    let (body, dockerfile) = if a.context == "-" {
        stdin_context()?
    } else {
        let dir = PathBuf::from(&a.context);
        if !dir.is_dir() {
            return Err(Exit::msg(
                1,
                format!("unable to prepare context: path {:?} not found", a.context),
            ));
        }
        let (name, extra) = match &a.file {
            None => ("Dockerfile".to_string(), None),
            Some(f) => {
                let fpath = PathBuf::from(f);
                let abs_dir = std::fs::canonicalize(&dir)?;
                let abs_f = std::fs::canonicalize(&fpath).map_err(|_| {
                    Exit::msg(
                        1,
                        format!("unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {f}: no such file or directory"),
                    )
                })?;
                match abs_f.strip_prefix(&abs_dir) {
                    Ok(rel) => (rel.to_string_lossy().into_owned(), None),
                    Err(_) => {
                        let name = format!(".dockerfile.{:x}", std::process::id());
                        (name, Some(std::fs::read(&abs_f)?))
                    }
                }
            }
        };
        let tar = context_tar(&dir, &name, extra.as_deref().map(|d| (name.as_str(), d)))?;
        (tar, Some(name))
    };
    if let Some(d) = dockerfile {
        q.push(("dockerfile", d));
    }
    for t in &a.tag {
        q.push(("t", t.clone()));
    }
    let args = key_values(&a.build_arg, true);
    if !args.is_empty() {
        q.push(("buildargs", serde_json::to_string(&args)?));
    }
    let labels: BTreeMap<String, String> = key_values(&a.label, false)
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect();
    if !labels.is_empty() {
        q.push(("labels", serde_json::to_string(&labels)?));
    }
    if let Some(t) = &a.target {
        q.push(("target", t.clone()));
    }
    if a.no_cache {
        q.push(("nocache", "1".into()));
    }
    if a.pull {
        q.push(("pull", "1".into()));
    }
    if a.quiet {
        q.push(("q", "1".into()));
    }
    q.push(("rm", if a.rm { "1" } else { "0" }.into()));
    if let Some(n) = &a.network {
        q.push(("networkmode", n.clone()));
    }
    if let Some(p) = &a.platform {
        q.push(("platform", p.clone()));
    }
    if let Some(s) = a.shm_size {
        q.push(("shmsize", s.to_string()));
    }
    let headers: Vec<(&str, String)> = secrets.into_iter().collect();
    let resp = c
        .request_with_headers(
            Method::POST,
            "/build",
            &q,
            Some((body, "application/x-tar")),
            &headers,
        )
        .await?;
    let mut image_id: Option<String> = None;
    let mut error: Option<(String, i32)> = None;
    let quiet = a.quiet;
    let mut out = std::io::stdout();
    json_stream(resp, |v| {
        if let Some(detail) = v.get("errorDetail") {
            let msg = detail
                .get("message")
                .and_then(|m| m.as_str())
                .or_else(|| v.get("error").and_then(|m| m.as_str()))
                .unwrap_or("")
                .to_string();
            let code = detail.get("code").and_then(|c| c.as_i64()).unwrap_or(1) as i32;
            error = Some((msg, if code == 0 { 1 } else { code }));
        } else if let Some(id) = v.pointer("/aux/ID").and_then(|i| i.as_str()) {
            image_id = Some(id.to_string());
        } else if let Some(s) = v.get("stream").and_then(|s| s.as_str()) {
            if !quiet {
                out.write_all(s.as_bytes())?;
                out.flush()?;
            }
        }
        Ok(())
    })
    .await?;
    if let Some((msg, code)) = error {
        return Err(Exit::msg(code, msg));
    }
    let Some(id) = image_id else {
        return Err(Exit::msg(1, "the daemon did not report the built image"));
    };
    if quiet {
        println!("{id}");
    }
    if let Some(f) = &a.iidfile {
        std::fs::write(f, &id)
            .map_err(|e| Exit::msg(1, format!("failed to write image ID to file: {e}")))?;
    }
    Ok(0)
}

pub async fn commit(c: &Client, a: CommitArgs) -> Result<i32> {
    let mut q: Vec<(&str, String)> = vec![("container", a.container.clone())];
    if let Some(r) = &a.reference {
        let (repo, tag) = split_ref(r);
        q.push(("repo", repo));
        if !tag.is_empty() {
            q.push(("tag", tag));
        }
    }
    if let Some(m) = &a.message {
        q.push(("comment", m.clone()));
    }
    if let Some(au) = &a.author {
        q.push(("author", au.clone()));
    }
    q.push(("pause", a.pause.to_string()));
    for ch in &a.change {
        q.push(("changes", ch.clone()));
    }
    let resp = c
        .request(
            Method::POST,
            "/commit",
            &q,
            Some((b"{}".to_vec(), "application/json")),
        )
        .await?;
    let v: serde_json::Value = read_json(resp).await?;
    println!("{}", v.get("Id").and_then(|i| i.as_str()).unwrap_or(""));
    Ok(0)
}

pub async fn builder(c: &Client, cmd: BuilderCmd) -> Result<i32> {
    match cmd {
        BuilderCmd::Prune(a) => {
            if !a.force {
                eprint!("WARNING! This will remove all dangling build cache. Are you sure you want to continue? [y/N] ");
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                if !line.trim().eq_ignore_ascii_case("y") {
                    return Ok(0);
                }
            }
            let q: Vec<(&str, String)> = if a.all {
                vec![("all", "1".into())]
            } else {
                Vec::new()
            };
            let resp = c.request(Method::POST, "/build/prune", &q, None).await?;
            let v: serde_json::Value = read_json(resp).await?;
            let deleted: Vec<&str> = v
                .get("CachesDeleted")
                .and_then(|d| d.as_array())
                .map(|d| d.iter().filter_map(|x| x.as_str()).collect())
                .unwrap_or_default();
            if !deleted.is_empty() {
                println!("Deleted build cache objects:");
                for d in deleted {
                    println!("{d}");
                }
                println!();
            }
            let bytes = v
                .get("SpaceReclaimed")
                .and_then(|s| s.as_u64())
                .unwrap_or(0);
            println!(
                "Total reclaimed space: {}",
                crate::human::human_size(bytes as f64)
            );
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_honours_dockerignore() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("Dockerfile"), "FROM busybox\n").unwrap();
        std::fs::write(d.join(".dockerignore"), "secret*\nDockerfile\n").unwrap();
        std::fs::write(d.join("secret.txt"), "x").unwrap();
        std::fs::create_dir(d.join("src")).unwrap();
        std::fs::write(d.join("src/a"), "a").unwrap();
        let tar = context_tar(d, "Dockerfile", None).unwrap();
        let mut ar = tar::Archive::new(tar.as_slice());
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(names.contains(&"Dockerfile".to_string()));
        assert!(names.contains(&"src/a".to_string()));
        assert!(!names.iter().any(|n| n.starts_with("secret")));
    }
}
