//! Image references with Docker's normalisation rules.
//!
//! `busybox` → `docker.io/library/busybox:latest`, `user/app:1` → `docker.io/user/app:1`,
//! `localhost:5000/a/b:t` stays as is. A first path component containing `.` or `:`, equal to
//! `localhost`, or holding upper-case letters names a registry. References are displayed in
//! Docker's "familiar" form (`busybox:latest`, `user/app:1`).

use std::fmt;

use crate::{ImageError, Result};

/// The default registry.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const MAX_NAME_LEN: usize = 255;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// The registry, e.g. `docker.io` or `localhost:5000`.
    pub domain: String,
    /// The repository path inside the registry, e.g. `library/busybox`.
    pub path: String,
    /// The tag, `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    /// `sha256:<hex>` when the reference is pinned to a digest.
    pub digest: Option<String>,
}

fn invalid() -> ImageError {
    ImageError::InvalidArgument("invalid reference format".into())
}

/// Whether `s` is a valid path component: `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
fn valid_component(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return false;
    }
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Whether `s` is a valid registry host with an optional port.
fn valid_domain(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    if host.is_empty() {
        return false;
    }
    host.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    })
}

/// Whether `s` is a valid tag: `[\w][\w.-]{0,127}`.
pub fn valid_tag(s: &str) -> bool {
    let b = s.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|c| word(*c) || *c == b'.' || *c == b'-')
}

/// Whether `s` is `sha256:` followed by 64 lowercase hex digits.
pub fn valid_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(is_full_hex)
}

/// Whether `s` is exactly 64 lowercase hex digits.
pub fn is_full_hex(s: &str) -> bool {
    s.len() == 64 && is_hex(s)
}

/// Whether `s` is non-empty lowercase hex.
pub fn is_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

impl Reference {
    /// Parses and normalises `s`; `InvalidArgument("invalid reference format")` when malformed.
    pub fn parse(s: &str) -> Result<Reference> {
        if s.is_empty() || s.len() > 512 {
            return Err(invalid());
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => {
                if !valid_digest(d) {
                    return Err(invalid());
                }
                (n, Some(d.to_string()))
            }
            None => (s, None),
        };
        // The tag is after the last ':' that follows the last '/'.
        let last_slash = name_tag.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => {
                let i = last_slash + i;
                (&name_tag[..i], Some(name_tag[i + 1..].to_string()))
            }
            None => (name_tag, None),
        };
        if let Some(t) = &tag {
            if !valid_tag(t) {
                return Err(invalid());
            }
        }
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(invalid());
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest)) if reads_as_domain(first) => {
                if !valid_domain(first) {
                    return Err(invalid());
                }
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        let domain = if domain == LEGACY_DOMAIN {
            DEFAULT_DOMAIN.to_string()
        } else {
            domain
        };
        if !path.split('/').all(valid_component) {
            return Err(invalid());
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("{OFFICIAL_PREFIX}{path}")
        } else {
            path
        };
        // Docker checks the length of the normalised name (`docker.io/library/…`), so a familiar
        // name close to the limit is refused too (found by the `reference` fuzz target: such a
        // name parsed, but its full form did not).
        if domain.len() + 1 + path.len() > MAX_NAME_LEN {
            return Err(invalid());
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// The full repository name, e.g. `docker.io/library/busybox`.
    pub fn repo_full(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The familiar repository name, e.g. `busybox`, `user/app`, `localhost:5000/a/b`.
    pub fn repo_familiar(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                // `docker.io/a.b/c` shortened to `a.b/c` would name registry `a.b` (Docker
                // shortens it anyway; the fuzz target found that it then names another image).
                _ if self
                    .path
                    .split_once('/')
                    .is_some_and(|(first, _)| reads_as_domain(first)) =>
                {
                    self.repo_full()
                }
                _ => self.path.clone(),
            }
        } else {
            self.repo_full()
        }
    }

    fn suffix(&self) -> String {
        let mut s = String::new();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// The full normalised form, e.g. `docker.io/library/busybox:latest`.
    pub fn full(&self) -> String {
        format!("{}{}", self.repo_full(), self.suffix())
    }

    /// Docker's familiar form, e.g. `busybox:latest`.
    pub fn familiar(&self) -> String {
        format!("{}{}", self.repo_familiar(), self.suffix())
    }

    /// Whether this reference is pinned to a digest.
    pub fn is_digest(&self) -> bool {
        self.digest.is_some()
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.familiar())
    }
}

/// Whether the first component of a name is taken as a registry host, as Docker takes it.
fn reads_as_domain(first: &str) -> bool {
    first.contains('.')
        || first.contains(':')
        || first == "localhost"
        || first.to_lowercase() != first
}

/// The familiar form of a full stored reference string (falls back to the string itself).
pub fn familiar(full: &str) -> String {
    Reference::parse(full)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| full.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `reference` fuzz target: a familiar name of 250 characters parsed, but its
    /// normalised form (`docker.io/library/` + name, over 255) did not. Docker measures the
    /// normalised name: both are refused now, and whatever parses has a full form that parses.
    #[test]
    fn the_name_limit_applies_to_the_normalised_name() {
        let fits = "a".repeat(MAX_NAME_LEN - "docker.io/library/".len());
        let r = Reference::parse(&fits).unwrap();
        assert_eq!(Reference::parse(&r.full()).unwrap(), r);
        let over = format!("{fits}b");
        assert!(Reference::parse(&over).is_err());
        assert!(Reference::parse(&format!("docker.io/library/{over}")).is_err());
        let crash = "6u1z-1--1z-1-z6-1z-1z-1z6z66u1z-1-z6-1z-2z-1z-1z-1z-1z7--1-1u1zu1z-1--1z-1-z6-4z\
                     -1z-1z6z66u1z6u1z-1--1-1-z6-1z-2z-1z-1z-1z-1z7--1-1u1z-1-z6-16-6-1-1-z6-16-6-1z-\
                     1-1z-z2z-1-z6-1z-1z-1z6z66u1z-1-z6-1z-2z-1z-1z-1z-1z7--z1-1u1z-1-z6-16-6-1z-1-1z\
                     --z2z-1z1z";
        assert_eq!(crash.len(), 250);
        assert!(Reference::parse(crash).is_err());
    }

    /// Found by the `reference` fuzz target: a Docker Hub path whose first component reads as
    /// a host kept `docker.io/` out of its familiar form, which then named another registry.
    #[test]
    fn a_familiar_form_never_names_another_registry() {
        let r = Reference::parse("index.docker.io/inddae-x.docker.io/d").unwrap();
        assert_eq!(r.familiar(), "docker.io/inddae-x.docker.io/d:latest");
        assert_eq!(Reference::parse(&r.familiar()).unwrap(), r);
        assert_eq!(
            Reference::parse("docker.io/library/a.b")
                .unwrap()
                .familiar(),
            "a.b:latest"
        );
        assert_eq!(
            Reference::parse("docker.io/me/app").unwrap().familiar(),
            "me/app:latest"
        );
    }

    #[test]
    fn normalisation_table() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
            ("user/app:1", "docker.io/user/app:1", "user/app:1"),
            ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("index.docker.io/library/busybox:x", "docker.io/library/busybox:x", "busybox:x"),
            ("docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"),
            ("localhost:5000/a/b:t", "localhost:5000/a/b:t", "localhost:5000/a/b:t"),
            ("localhost/a", "localhost/a:latest", "localhost/a:latest"),
            ("quay.io/x/y", "quay.io/x/y:latest", "quay.io/x/y:latest"),
            ("my-app_x.y__z", "docker.io/library/my-app_x.y__z:latest", "my-app_x.y__z:latest"),
            (
                "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "docker.io/library/busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            ),
        ];
        for (input, full, fam) in cases {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.full(), full, "{input}");
            assert_eq!(r.familiar(), fam, "{input}");
        }
    }

    #[test]
    fn invalid_references() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-x",
            "a//b",
            "-a",
            "a-",
            "a..b",
            "busybox@sha256:abc",
            "busybox:tag:x",
            "a b",
            "busybox@md5:0123",
            &format!("a:{}", "t".repeat(129)),
        ] {
            let e = Reference::parse(bad).expect_err(bad);
            assert_eq!(e.to_string(), "invalid reference format", "{bad}");
        }
    }

    #[test]
    fn helpers() {
        assert!(valid_tag("v1.2-rc_3"));
        assert!(!valid_tag(".x"));
        assert!(is_hex("abc123"));
        assert!(!is_hex("ABC"));
        assert_eq!(
            familiar("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
    }
}
