//! Docker's lexical path rules for `docker cp` (`filepath.Join("/", p)` keeping a trailing `/`
//! or `/.`), over the confined access of [`berth_sys::root`]: every lookup inside a container's
//! root goes through `openat2(RESOLVE_IN_ROOT)` there, so symbolic links can never reach a host
//! path (CVE-2018-15664).

pub(crate) use berth_sys::root::{fstat, is_type, lstat_at, Root};

/// Docker's `filepath.Join("/", p)` (lexical cleaning, `..` stops at `/`), keeping a trailing
/// `/` or `/.` of `p` (`PreserveTrailingDotOrSeparator`).
pub fn abs_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    let mut s = format!("/{}", out.join("/"));
    if s != "/" {
        if p.ends_with("/.") || p == "." {
            s.push_str("/.");
        } else if p.ends_with('/') {
            s.push('/');
        }
    }
    s
}

/// Splits a path from [`abs_path`] into its directory and last element (`""` for a trailing
/// slash or `/`, `"."` for a trailing `/.`), as Go's `filepath.Split`.
pub fn split_dir_base(abs: &str) -> (&str, &str) {
    match abs.rfind('/') {
        Some(i) => (&abs[..=i], &abs[i + 1..]),
        None => ("", abs),
    }
}

/// Go's `filepath.Base` of a path from [`abs_path`] (the name stat reports).
pub fn base_name(abs: &str) -> String {
    let t = abs.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_path_rules() {
        assert_eq!(abs_path("a/b"), "/a/b");
        assert_eq!(abs_path("/a/../../b/"), "/b/");
        assert_eq!(abs_path("/a/b/."), "/a/b/.");
        assert_eq!(abs_path("/"), "/");
        assert_eq!(abs_path("../../etc/passwd"), "/etc/passwd");
        assert_eq!(split_dir_base("/a/b"), ("/a/", "b"));
        assert_eq!(split_dir_base("/a/b/"), ("/a/b/", ""));
        assert_eq!(split_dir_base("/a/b/."), ("/a/b/", "."));
        assert_eq!(base_name("/a/b/"), "b");
        assert_eq!(base_name("/"), "/");
        assert_eq!(base_name("/a/."), ".");
    }
}
