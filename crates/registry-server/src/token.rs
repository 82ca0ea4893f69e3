//! The Docker token protocol: `WWW-Authenticate: Bearer realm=…,service=…,scope=…` challenges,
//! a token endpoint (`GET /token?service=…&scope=…` with Basic credentials from an htpasswd
//! file) that grants what the configured access rules allow, and HS256 JWTs verified on every
//! request. The signing key is random per process: a restart invalidates tokens, and clients
//! fetch new ones on the next 401.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::auth::{Denied, Htpasswd};

/// One access rule: `account` (a user, `*` for any authenticated user, `anonymous` for none)
/// may do `actions` (pull, push, delete, or `*`) on repositories matching `repository` (exact,
/// or with one `*` matching any run of characters, `/` included).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    pub account: String,
    pub repository: String,
    pub actions: Vec<String>,
}

/// A resource and the actions on it (`repository:NAME:pull,push`, `registry:catalog:*`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Access {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    nbf: u64,
    iat: u64,
    access: Vec<Access>,
}

fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((pre, post)) => {
            s.len() >= pre.len() + post.len() && s.starts_with(pre) && s.ends_with(post)
        }
    }
}

/// Parses one `scope` parameter: `TYPE:NAME:ACTIONS` (NAME may hold `:` for a port).
pub fn parse_scope(scope: &str) -> Option<Access> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some(Access {
        kind: kind.to_string(),
        name: name.to_string(),
        actions: actions
            .split(',')
            .filter(|a| !a.is_empty())
            .map(String::from)
            .collect(),
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The token service and verifier.
pub struct TokenAuth {
    pub realm: Option<String>,
    pub service: String,
    pub lifetime_s: u64,
    users: Htpasswd,
    rules: Vec<AccessRule>,
    key: [u8; 32],
}

/// Why a token endpoint request failed.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenDenied {
    BadCredentials,
}

impl TokenAuth {
    pub fn new(
        realm: Option<String>,
        service: String,
        lifetime_s: u64,
        users: Htpasswd,
        rules: Vec<AccessRule>,
    ) -> TokenAuth {
        TokenAuth {
            realm,
            service,
            lifetime_s,
            users,
            rules,
            key: rand::random(),
        }
    }

    /// What `account` (None: anonymous) may do of what `wanted` asks.
    fn grant(&self, account: Option<&str>, wanted: &Access) -> Access {
        let mut actions: Vec<String> = Vec::new();
        for r in &self.rules {
            let who = match account {
                None => r.account == "anonymous",
                Some(a) => r.account == "*" || r.account == a,
            };
            let kind_ok =
                wanted.kind == "repository" || (wanted.kind == "registry" && r.repository == "*");
            if !who || !kind_ok || !glob(&r.repository, &wanted.name) {
                continue;
            }
            for a in &wanted.actions {
                if (r.actions.iter().any(|x| x == a || x == "*")) && !actions.contains(a) {
                    actions.push(a.clone());
                }
            }
        }
        Access {
            kind: wanted.kind.clone(),
            name: wanted.name.clone(),
            actions,
        }
    }

    /// Answers the token endpoint: a signed token for what the caller may do of `scopes`.
    pub fn issue(
        &self,
        authorization: Option<&str>,
        scopes: &[String],
    ) -> Result<serde_json::Value, TokenDenied> {
        let account = match self.users.check(authorization) {
            Ok(u) => Some(u),
            Err(Denied::Missing) => None,
            Err(Denied::Invalid) => return Err(TokenDenied::BadCredentials),
        };
        let access: Vec<Access> = scopes
            .iter()
            .filter_map(|s| parse_scope(s))
            .map(|w| self.grant(account.as_deref(), &w))
            .filter(|a| !a.actions.is_empty())
            .collect();
        let t = now();
        let claims = Claims {
            iss: self.service.clone(),
            sub: account.unwrap_or_default(),
            aud: self.service.clone(),
            exp: t + self.lifetime_s,
            nbf: t.saturating_sub(5),
            iat: t,
            access,
        };
        let token = self.sign(&claims);
        Ok(serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": self.lifetime_s,
        }))
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length")
    }

    fn sign(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let mut mac = self.mac();
        mac.update(format!("{header}.{body}").as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{header}.{body}.{sig}")
    }

    /// The access a valid, current `Authorization: Bearer` token grants; `None` when there is
    /// no such token.
    pub fn verify(&self, authorization: Option<&str>) -> Option<Vec<Access>> {
        let token = authorization?.strip_prefix("Bearer ")?.trim();
        let mut parts = token.split('.');
        let (h, b, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let mut mac = self.mac();
        mac.update(format!("{h}.{b}").as_bytes());
        mac.verify_slice(&URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(b).ok()?).ok()?;
        let t = now();
        if claims.aud != self.service || claims.exp <= t || claims.nbf > t {
            return None;
        }
        Some(claims.access)
    }
}

/// Whether `granted` covers `action` on `kind:name`.
pub fn allows(granted: &[Access], kind: &str, name: &str, action: &str) -> bool {
    granted.iter().any(|a| {
        a.kind == kind && a.name == name && a.actions.iter().any(|x| x == action || x == "*")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> TokenAuth {
        let h = bcrypt::hash("pw", 4).unwrap();
        let users = Htpasswd::parse(&format!("alice:{h}\nbob:{h}\n"), "f").unwrap();
        let rule = |a: &str, r: &str, x: &[&str]| AccessRule {
            account: a.into(),
            repository: r.into(),
            actions: x.iter().map(|s| s.to_string()).collect(),
        };
        TokenAuth::new(
            None,
            "svc".into(),
            60,
            users,
            vec![
                rule("alice", "team/*", &["pull", "push", "delete"]),
                rule("*", "*", &["pull"]),
                rule("anonymous", "public/*", &["pull"]),
            ],
        )
    }

    fn basic(s: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }

    fn bearer(t: &serde_json::Value) -> String {
        format!("Bearer {}", t["token"].as_str().unwrap())
    }

    #[test]
    fn grants_follow_the_rules() {
        let a = auth();
        let scopes = vec!["repository:team/x:pull,push".to_string()];
        let t = a.issue(Some(&basic("alice:pw")), &scopes).unwrap();
        let g = a.verify(Some(&bearer(&t))).unwrap();
        assert!(allows(&g, "repository", "team/x", "push"));
        let t = a.issue(Some(&basic("bob:pw")), &scopes).unwrap();
        let g = a.verify(Some(&bearer(&t))).unwrap();
        assert!(allows(&g, "repository", "team/x", "pull"));
        assert!(!allows(&g, "repository", "team/x", "push"));
        let t = a
            .issue(
                None,
                &[
                    "repository:public/p:pull".into(),
                    "repository:team/x:pull".into(),
                ],
            )
            .unwrap();
        let g = a.verify(Some(&bearer(&t))).unwrap();
        assert!(allows(&g, "repository", "public/p", "pull"));
        assert!(!allows(&g, "repository", "team/x", "pull"));
        assert_eq!(
            a.issue(Some(&basic("alice:no")), &scopes),
            Err(TokenDenied::BadCredentials)
        );
    }

    #[test]
    fn forged_and_foreign_tokens_are_refused() {
        let a = auth();
        let t = a
            .issue(Some(&basic("alice:pw")), &["repository:team/x:push".into()])
            .unwrap();
        let tok = t["token"].as_str().unwrap();
        let (hb, _) = tok.rsplit_once('.').unwrap();
        assert!(a.verify(Some(&format!("Bearer {hb}.AAAA"))).is_none());
        assert!(
            auth().verify(Some(&format!("Bearer {tok}"))).is_none(),
            "another key"
        );
        assert!(a.verify(Some("Bearer x.y")).is_none());
        assert!(a.verify(None).is_none());
    }

    #[test]
    fn scopes_and_globs() {
        assert_eq!(
            parse_scope("repository:127.0.0.1:5000/a:pull,push")
                .unwrap()
                .name,
            "127.0.0.1:5000/a"
        );
        assert!(glob("team/*", "team/a/b"));
        assert!(!glob("team/*", "teams"));
        assert!(glob("*", "x"));
    }
}
