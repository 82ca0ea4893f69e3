//! Registry authentication: `WWW-Authenticate` challenges, credentials, and the Bearer token
//! flow (`GET realm?service=…&scope=repository:NAME:pull,push`, with Basic credentials when
//! there are some, anonymous otherwise).

use std::collections::BTreeMap;

use base64::Engine as _;

/// Credentials for one registry, as `X-Registry-Auth` and `~/.docker/config.json` carry them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// An OAuth2 refresh token, used instead of the password when set.
    pub identity_token: String,
}

impl Credentials {
    /// Whether there is anything to send.
    pub fn is_empty(&self) -> bool {
        self.username.is_empty() && self.password.is_empty() && self.identity_token.is_empty()
    }

    /// `Basic base64(user:pass)`.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// How a registry asks to be authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: String,
    },
    Bearer {
        realm: String,
        service: String,
        scope: String,
    },
}

/// Parses `auth-params` (`k="v", k2=v2`), honouring quoted commas and escapes.
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let key = s[ks..i].trim().to_ascii_lowercase();
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                let ch_len = s[i..].chars().next().map_or(1, char::len_utf8);
                val.push_str(&s[i..i + ch_len]);
                i += ch_len;
            }
            i += 1;
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            val = s[vs..i].trim().to_string();
        }
        if !key.is_empty() {
            out.insert(key, val);
        }
    }
    out
}

/// Parses a `WWW-Authenticate` header value; `None` for schemes other than Basic and Bearer.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    let get = |k: &str| params.get(k).cloned().unwrap_or_default();
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic {
            realm: get("realm"),
        }),
        "bearer" => Some(Challenge::Bearer {
            realm: get("realm"),
            service: get("service"),
            scope: get("scope"),
        }),
        _ => None,
    }
}

/// The scope of a repository operation, e.g. `repository:library/busybox:pull,push`.
pub fn repository_scope(repository: &str, actions: &[&str]) -> String {
    format!("repository:{repository}:{}", actions.join(","))
}

/// The token endpoint URL for a Bearer challenge and scopes.
pub fn token_url(realm: &str, service: &str, scopes: &[String]) -> String {
    let mut url = realm.to_string();
    let mut sep = if realm.contains('?') { '&' } else { '?' };
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|c| match c {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (c as char).to_string()
                }
                _ => format!("%{c:02X}"),
            })
            .collect()
    };
    if !service.is_empty() {
        url.push(sep);
        url.push_str("service=");
        url.push_str(&enc(service));
        sep = '&';
    }
    for s in scopes.iter().filter(|s| !s.is_empty()) {
        url.push(sep);
        url.push_str("scope=");
        url.push_str(&enc(s));
        sep = '&';
    }
    url
}

/// The token in a token server's answer (`token`, or OAuth2's `access_token`).
pub fn token_from_response(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["token", "access_token"]
        .iter()
        .filter_map(|k| v.get(*k).and_then(|t| t.as_str()))
        .find(|t| !t.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: "registry.docker.io".into(),
                scope: "repository:library/busybox:pull,push".into(),
            }
        );
    }

    #[test]
    fn basic_and_odd_challenges() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic {
                realm: "Registry Realm".into()
            })
        );
        assert_eq!(
            parse_challenge(r#"bearer realm=http://x/t, service = "a\"b""#),
            Some(Challenge::Bearer {
                realm: "http://x/t".into(),
                service: "a\"b".into(),
                scope: String::new(),
            })
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
    }

    #[test]
    fn token_urls() {
        let u = token_url(
            "http://127.0.0.1:1/token",
            "reg svc",
            &[repository_scope("a/b", &["pull", "push"])],
        );
        assert_eq!(
            u,
            "http://127.0.0.1:1/token?service=reg%20svc&scope=repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(token_url("http://x/t?a=1", "", &[]), "http://x/t?a=1");
        assert_eq!(
            token_from_response(br#"{"access_token":"xyz"}"#),
            Some("xyz".into())
        );
        assert_eq!(token_from_response(br#"{"token":""}"#), None);
    }

    #[test]
    fn basic_header() {
        let c = Credentials {
            username: "u".into(),
            password: "p".into(),
            identity_token: String::new(),
        };
        assert_eq!(c.basic_header(), "Basic dTpw");
        assert!(!c.is_empty());
        assert!(Credentials::default().is_empty());
    }
}
