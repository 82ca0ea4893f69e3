//! `cp [-a] [-L] SRC DEST`: copies between a container (`CONTAINER:PATH`) and the local
//! filesystem (a path, or `-` for a tar stream on stdin/stdout), with the docker CLI's rules:
//! `SRC/.` copies a directory's contents, a missing destination is created when its parent
//! exists, a directory never overwrites a file, and the archive's top entry is renamed to the
//! destination's name where needed (`PrepareArchiveCopy`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use hyper::Method;
use serde_json::Value;

use crate::client::{read_bytes, seg, Client, Exit};

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long = "archive")]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    #[arg(value_name = "SRC_PATH")]
    pub src: String,
    #[arg(value_name = "DEST_PATH")]
    pub dest: String,
}

/// docker's `splitCpArg`: `(container, path)`; an absolute path or one starting with `.` is
/// local even when it holds a colon.
pub fn split_cp_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') => (Some(c), p),
        _ => (None, arg),
    }
}

/// `archive.SplitPathDirEntry`: the directory and the last element (`.` kept).
pub fn split_dir_entry(p: &str) -> (String, String) {
    let cleaned = clean(p);
    let (dir, base) = match cleaned.rsplit_once('/') {
        Some(("", b)) => ("/".to_string(), b.to_string()),
        Some((d, b)) => (d.to_string(), b.to_string()),
        None => (".".to_string(), cleaned.clone()),
    };
    if p.ends_with("/.") || p == "." {
        return (cleaned, ".".into());
    }
    (dir, if base.is_empty() { "/".into() } else { base })
}

/// Go's `filepath.Clean` (enough of it: no `..` above the root, no empty elements).
fn clean(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !abs {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    let s = out.join("/");
    match (abs, s.is_empty()) {
        (true, _) => format!("/{s}"),
        (false, true) => ".".into(),
        (false, false) => s,
    }
}

/// Whether a path asserts a directory (`/` or `/.` at its end).
fn asserts_dir(p: &str) -> bool {
    p.ends_with('/') || p.ends_with("/.")
}

/// What is known of one side of the copy.
#[derive(Debug, Clone, Default)]
pub struct Info {
    pub path: String,
    pub exists: bool,
    pub is_dir: bool,
}

/// `PrepareArchiveCopy`: the directory to extract into and `(from, to)` for renaming the
/// archive's top entry, or docker's error.
pub fn prepare(
    src: &Info,
    dst: &Info,
) -> std::result::Result<(String, Option<(String, String)>), String> {
    let (dst_dir, dst_base) = split_dir_entry(&dst.path);
    let (_, src_base) = split_dir_entry(&src.path);
    if dst.exists && dst.is_dir {
        return Ok((dst.path.clone(), None));
    }
    if dst.exists && src.is_dir {
        return Err("cannot copy directory".into());
    }
    if !dst.exists && !src.is_dir && asserts_dir(&dst.path) {
        return Err("no such directory".into());
    }
    Ok((dst_dir, Some((src_base, dst_base))))
}

/// Renames entry `from` (and everything under it) to `to` in a tar stream.
pub fn rebase(tar_data: &[u8], from: &str, to: &str) -> Result<Vec<u8>> {
    let mut ar = tar::Archive::new(tar_data);
    let mut out = tar::Builder::new(Vec::new());
    for e in ar.entries()? {
        let mut e = e?;
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let trimmed = name.trim_start_matches("./");
        let trimmed = if name == "./" || name == "." {
            "."
        } else {
            trimmed
        };
        let new = if from == "." {
            if trimmed == "." {
                format!("{to}/")
            } else {
                format!("{to}/{trimmed}")
            }
        } else if trimmed == from || trimmed == format!("{from}/") {
            name.replacen(from, to, 1)
        } else if let Some(rest) = trimmed.strip_prefix(&format!("{from}/")) {
            format!("{to}/{rest}")
        } else {
            name.clone()
        };
        let mut h = e.header().clone();
        let link = e.link_name_bytes().map(|l| l.into_owned());
        let mut data = Vec::new();
        e.read_to_end(&mut data)?;
        match link {
            Some(l) if h.entry_type().is_hard_link() => {
                let l = String::from_utf8_lossy(&l).into_owned();
                let l = if let Some(rest) = l.strip_prefix(&format!("{from}/")) {
                    format!("{to}/{rest}")
                } else {
                    l
                };
                out.append_link(&mut h, &new, l)?;
            }
            Some(l) if h.entry_type().is_symlink() => {
                out.append_link(&mut h, &new, String::from_utf8_lossy(&l).into_owned())?;
            }
            _ => out.append_data(&mut h, &new, &data[..])?,
        }
    }
    Ok(out.into_inner()?)
}

fn decode_stat(v: Option<&hyper::header::HeaderValue>) -> Value {
    let Some(v) = v.and_then(|v| v.to_str().ok()) else {
        return Value::Null;
    };
    let bytes = base64_decode(v);
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// Standard base64 decoding (padding optional; bad characters skipped).
pub fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

const DIR_BIT: u64 = 1 << 31;
const LINK_BIT: u64 = 1 << 27;

async fn stat_path(c: &Client, container: &str, path: &str) -> Result<Value> {
    let q = [("path", path.to_string())];
    let resp = c
        .request(
            Method::HEAD,
            &format!("/containers/{}/archive", seg(container)),
            &q,
            None,
        )
        .await?;
    Ok(decode_stat(
        resp.headers().get("x-docker-container-path-stat"),
    ))
}

fn absolute_local(p: &str) -> String {
    if p.starts_with('/') {
        return p.to_string();
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let mut s = cwd.join(p).to_string_lossy().into_owned();
    // keep the trailing `/` or `/.` that Join drops
    if (p.ends_with("/.") || p == ".") && !s.ends_with("/.") {
        s = format!("{}/.", s.trim_end_matches("/."));
    } else if p.ends_with('/') && !s.ends_with('/') {
        s.push('/');
    }
    s
}

fn local_err(e: impl std::fmt::Display) -> anyhow::Error {
    Exit::msg(1, format!("{e}"))
}

/// Runs the command; errors exit with status 1, as docker's do.
pub async fn run(c: &Client, a: CpArgs) -> Result<i32> {
    run_inner(c, a).await.map_err(|e| {
        if e.downcast_ref::<Exit>().is_some() {
            e
        } else {
            Exit::msg(1, e.to_string())
        }
    })
}

async fn run_inner(c: &Client, a: CpArgs) -> Result<i32> {
    let (src_c, src_p) = split_cp_arg(&a.src);
    let (dst_c, dst_p) = split_cp_arg(&a.dest);
    match (src_c, dst_c) {
        (Some(sc), None) => from_container(c, &a, sc, src_p, dst_p).await,
        (None, Some(dc)) => to_container(c, &a, src_p, dc, dst_p).await,
        (Some(_), Some(_)) => Err(local_err("copying between containers is not supported")),
        (None, None) => Err(local_err("must specify at least one container source")),
    }
}

async fn from_container(
    c: &Client,
    a: &CpArgs,
    container: &str,
    src: &str,
    dst: &str,
) -> Result<i32> {
    let mut src_path = src.to_string();
    let mut rebase_name: Option<String> = None;
    if a.follow_link {
        if let Ok(st) = stat_path(c, container, src).await {
            if st["mode"].as_u64().unwrap_or(0) & LINK_BIT != 0 {
                let target = st["linkTarget"].as_str().unwrap_or("").to_string();
                let target = if target.starts_with('/') {
                    target
                } else {
                    format!("{}/{target}", split_dir_entry(src).0)
                };
                let (_, sb) = split_dir_entry(src);
                let (_, tb) = split_dir_entry(&target);
                if sb != tb {
                    rebase_name = Some(sb);
                }
                src_path = target;
            }
        }
    }
    let q = [("path", src_path.clone())];
    let resp = c
        .get(&format!("/containers/{}/archive", seg(container)), &q)
        .await?;
    let st = decode_stat(resp.headers().get("x-docker-container-path-stat"));
    let data = read_bytes(resp).await?;
    if dst == "-" {
        std::io::stdout().write_all(&data)?;
        return Ok(0);
    }
    let mut data = data.to_vec();
    if let Some(rn) = &rebase_name {
        let (_, sb) = split_dir_entry(&src_path);
        data = rebase(&data, &sb, rn)?;
    }
    let src_info = Info {
        path: match &rebase_name {
            Some(rn) => format!("{}/{rn}", split_dir_entry(&src_path).0),
            None => src_path.clone(),
        },
        exists: true,
        is_dir: st["mode"].as_u64().unwrap_or(0) & DIR_BIT != 0,
    };
    let dst_abs = absolute_local(dst);
    let probe = dst_abs.trim_end_matches("/.");
    let meta = std::fs::metadata(if probe.is_empty() { "/" } else { probe });
    let dst_info = Info {
        path: dst_abs.clone(),
        exists: meta.is_ok(),
        is_dir: meta.as_ref().is_ok_and(|m| m.is_dir()),
    };
    let (dir, rename) = prepare(&src_info, &dst_info).map_err(local_err)?;
    if !Path::new(&dir).is_dir() {
        return Err(local_err(format!("lstat {dir}: no such file or directory")));
    }
    let data = match rename {
        Some((from, to)) if from != to => rebase(&data, &from, &to)?,
        _ => data,
    };
    let mut ar = tar::Archive::new(&data[..]);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_overwrite(true);
    ar.set_preserve_ownerships(nix::unistd::geteuid().is_root());
    ar.unpack(&dir).map_err(local_err)?;
    if !a.quiet && crate::tty::is_tty(2) {
        eprintln!(
            "Successfully copied {} to {}",
            crate::human::human_size(data.len() as f64),
            dst_abs
        );
    }
    Ok(0)
}

/// A tar of local `path` whose top entry is named `name`.
fn tar_local(path: &Path, name: &str, follow: bool) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(follow);
    let meta = if follow {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    }
    .map_err(|e| local_err(format!("lstat {}: {}", path.display(), strip_os(&e))))?;
    if meta.is_dir() {
        b.append_dir_all(name, path)?;
    } else {
        b.append_path_with_name(path, name)?;
    }
    Ok(b.into_inner()?)
}

fn strip_os(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_lowercase(),
        None => s,
    }
}

async fn to_container(
    c: &Client,
    a: &CpArgs,
    src: &str,
    container: &str,
    dst: &str,
) -> Result<i32> {
    let mut dst_info = Info {
        path: dst.to_string(),
        ..Default::default()
    };
    let mut st = stat_path(c, container, dst).await;
    if let Ok(s) = &st {
        if s["mode"].as_u64().unwrap_or(0) & LINK_BIT != 0 {
            let target = s["linkTarget"].as_str().unwrap_or("").to_string();
            let target = if target.starts_with('/') {
                target
            } else {
                format!("{}/{target}", split_dir_entry(dst).0)
            };
            dst_info.path = target.clone();
            st = stat_path(c, container, &target).await;
        }
    }
    if let Ok(s) = &st {
        dst_info.exists = true;
        dst_info.is_dir = s["mode"].as_u64().unwrap_or(0) & DIR_BIT != 0;
    }
    let (dir, data) = if src == "-" {
        if !dst_info.is_dir {
            return Err(local_err(format!(
                "destination \"{container}:{dst}\" must be a directory"
            )));
        }
        let mut data = Vec::new();
        std::io::stdin().read_to_end(&mut data)?;
        (dst_info.path.clone(), data)
    } else {
        let src_abs = absolute_local(src);
        let (src_dir, src_base) = split_dir_entry(&src_abs);
        let local = if src_base == "." {
            PathBuf::from(&src_dir)
        } else {
            Path::new(&src_dir).join(&src_base)
        };
        let meta = if a.follow_link {
            std::fs::metadata(&local)
        } else {
            std::fs::symlink_metadata(&local)
        }
        .map_err(|e| local_err(format!("lstat {}: {}", local.display(), strip_os(&e))))?;
        let src_info = Info {
            path: src_abs.clone(),
            exists: true,
            is_dir: meta.is_dir(),
        };
        let (dir, rename) = prepare(&src_info, &dst_info).map_err(local_err)?;
        let name = match rename {
            Some((_, to)) => to,
            None => src_base.clone(),
        };
        (dir, tar_local(&local, &name, a.follow_link)?)
    };
    let q = [
        ("path", dir),
        ("noOverwriteDirNonDir", "true".to_string()),
        ("copyUIDGID", a.archive.to_string()),
    ];
    let size = data.len();
    c.request(
        Method::PUT,
        &format!("/containers/{}/archive", seg(container)),
        &q,
        Some((data, "application/x-tar")),
    )
    .await?;
    if !a.quiet && src != "-" && crate::tty::is_tty(2) {
        eprintln!(
            "Successfully copied {} to {container}:{dst}",
            crate::human::human_size(size as f64)
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_args() {
        assert_eq!(split_cp_arg("c:/etc"), (Some("c"), "/etc"));
        assert_eq!(split_cp_arg("/a:b"), (None, "/a:b"));
        assert_eq!(split_cp_arg("./a:b"), (None, "./a:b"));
        assert_eq!(split_cp_arg("-"), (None, "-"));
        assert_eq!(split_dir_entry("/a/b"), ("/a".into(), "b".into()));
        assert_eq!(split_dir_entry("/a/b/"), ("/a".into(), "b".into()));
        assert_eq!(split_dir_entry("/a/b/."), ("/a/b".into(), ".".into()));
        assert_eq!(split_dir_entry("/a"), ("/".into(), "a".into()));
    }

    fn info(path: &str, exists: bool, is_dir: bool) -> Info {
        Info {
            path: path.into(),
            exists,
            is_dir,
        }
    }

    #[test]
    fn docker_path_rules() {
        // Into an existing directory: as is.
        assert_eq!(
            prepare(&info("/s/d", true, true), &info("/x", true, true)),
            Ok(("/x".into(), None))
        );
        // A directory onto a file.
        assert_eq!(
            prepare(&info("/s/d", true, true), &info("/f", true, false)),
            Err("cannot copy directory".into())
        );
        // A file onto a file: renamed to the destination's name.
        assert_eq!(
            prepare(&info("/s/a", true, false), &info("/t/b", true, false)),
            Ok(("/t".into(), Some(("a".into(), "b".into()))))
        );
        // A directory to a new name: created from the parent.
        assert_eq!(
            prepare(&info("/s/d", true, true), &info("/t/new", false, false)),
            Ok(("/t".into(), Some(("d".into(), "new".into()))))
        );
        // Contents of a directory to a new name.
        assert_eq!(
            prepare(&info("/s/d/.", true, true), &info("/t/new", false, false)),
            Ok(("/t".into(), Some((".".into(), "new".into()))))
        );
        // A file to a directory that does not exist.
        assert_eq!(
            prepare(&info("/s/a", true, false), &info("/t/nodir/", false, false)),
            Err("no such directory".into())
        );
    }

    #[test]
    fn rebase_renames_the_top_entry() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, "d/", &[][..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(2);
        b.append_data(&mut h, "d/f", &b"hi"[..]).unwrap();
        let data = b.into_inner().unwrap();
        let out = rebase(&data, "d", "new").unwrap();
        let names: Vec<String> = tar::Archive::new(&out[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["new/", "new/f"]);
        assert_eq!(base64_decode("eyJhIjoxfQ=="), b"{\"a\":1}");
    }
}
