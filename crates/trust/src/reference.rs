//! Docker references as containers/image normalises them (`docker.io/library/busybox:latest`):
//! what the policy's scopes and `signedIdentity` rules compare.

use crate::error::{Result, TrustError};

const DEFAULT_DOMAIN: &str = "docker.io";

/// A normalised docker reference: `domain/path` with an optional tag and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerReference {
    /// The repository, fully qualified: `docker.io/library/busybox`, `127.0.0.1:5000/a/b`.
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

fn valid_component(c: &str) -> bool {
    !c.is_empty()
        && c.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && c.as_bytes()[0].is_ascii_alphanumeric()
        && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
}

pub(crate) fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

impl DockerReference {
    /// Parses and normalises (`busybox` → `docker.io/library/busybox`, as Docker's
    /// `ParseNormalizedNamed`).
    pub fn parse(s: &str) -> Result<DockerReference> {
        let bad = || TrustError::Reference(s.to_string());
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let hex = d.strip_prefix("sha256:").ok_or_else(bad)?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad());
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        if let Some(t) = &tag {
            if t.is_empty()
                || t.len() > 128
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                return Err(bad());
            }
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        if !valid_domain(&domain) || path.is_empty() || !path.split('/').all(valid_component) {
            return Err(bad());
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        Ok(DockerReference {
            name: format!("{domain}/{path}"),
            tag,
            digest,
        })
    }

    /// Whether the reference names only a repository (no tag, no digest).
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// The registry part of the name.
    pub fn domain(&self) -> &str {
        self.name.split('/').next().unwrap_or("")
    }

    /// The scopes a policy or registries.d looks the reference up by, most specific first:
    /// the reference itself, then the repository and each namespace up to the registry, then
    /// `*.`-wildcarded domains (as containers/image's `PolicyConfigurationNamespaces`).
    pub fn scopes(&self) -> Vec<String> {
        let mut out = vec![self.to_string()];
        let mut name = self.name.as_str();
        loop {
            out.push(name.to_string());
            match name.rfind('/') {
                Some(i) => name = &name[..i],
                None => break,
            }
        }
        let mut host = name.split(':').next().unwrap_or("");
        while let Some(i) = host.find('.') {
            host = &host[i + 1..];
            out.push(format!("*.{host}"));
        }
        out.dedup();
        out
    }
}

impl std::fmt::Display for DockerReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_as_docker() {
        let r = DockerReference::parse("busybox").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox");
        assert!(r.is_name_only());
        let r = DockerReference::parse("127.0.0.1:5000/a/b:v1").unwrap();
        assert_eq!(
            (r.name.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000/a/b", Some("v1"))
        );
        assert_eq!(r.domain(), "127.0.0.1:5000");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = DockerReference::parse(&format!("localhost/x@{d}")).unwrap();
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert!(r.tag.is_none());
        for bad in ["", "UPPER", "a@sha256:12", "a:", "a//b", "-a"] {
            assert!(DockerReference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scopes_most_specific_first() {
        let r = DockerReference::parse("reg.example.com:5000/ns/repo:tag").unwrap();
        assert_eq!(
            r.scopes(),
            vec![
                "reg.example.com:5000/ns/repo:tag",
                "reg.example.com:5000/ns/repo",
                "reg.example.com:5000/ns",
                "reg.example.com:5000",
                "*.example.com",
                "*.com",
            ]
        );
    }
}
