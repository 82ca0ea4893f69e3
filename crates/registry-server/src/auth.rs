//! htpasswd (bcrypt) Basic authentication. A verified user/password pair is remembered (by a
//! SHA-256 of the password) so a client that sends credentials with every request pays for one
//! bcrypt check, not one per request.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("reading htpasswd file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("htpasswd file {path}, line {line}: {why}")]
    Line {
        path: String,
        line: usize,
        why: String,
    },
}

/// Users and their bcrypt hashes.
pub struct Htpasswd {
    users: HashMap<String, String>,
    verified: Mutex<HashSet<(String, [u8; 32])>>,
}

/// Why a request's credentials were refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Basic …` header.
    Missing,
    /// Unknown user or wrong password.
    Invalid,
}

impl Htpasswd {
    pub fn load(path: &Path) -> Result<Htpasswd, AuthError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
            path: p.clone(),
            source,
        })?;
        Htpasswd::parse(&text, &p)
    }

    pub fn parse(text: &str, path: &str) -> Result<Htpasswd, AuthError> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |why: String| AuthError::Line {
                path: path.to_string(),
                line: i + 1,
                why,
            };
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| err("expected USER:HASH".into()))?;
            if !(hash.starts_with("$2y$") || hash.starts_with("$2a$") || hash.starts_with("$2b$")) {
                return Err(err(format!(
                    "user {user}: only bcrypt hashes are accepted (htpasswd -B)"
                )));
            }
            users.insert(user.to_string(), hash.to_string());
        }
        Ok(Htpasswd {
            users,
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// Checks an `Authorization` header value; the user name when it is valid.
    pub fn check(&self, authorization: Option<&str>) -> Result<String, Denied> {
        let v = authorization.ok_or(Denied::Missing)?;
        let b64 = v
            .strip_prefix("Basic ")
            .or_else(|| v.strip_prefix("basic "))
            .ok_or(Denied::Missing)?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| Denied::Invalid)?;
        let raw = String::from_utf8(raw).map_err(|_| Denied::Invalid)?;
        let (user, pass) = raw.split_once(':').ok_or(Denied::Invalid)?;
        let hash = self.users.get(user).ok_or(Denied::Invalid)?;
        let key = (user.to_string(), Sha256::digest(pass.as_bytes()).into());
        {
            let v = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if v.contains(&key) {
                return Ok(user.to_string());
            }
        }
        if bcrypt::verify(pass, hash).unwrap_or(false) {
            self.verified
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key);
            Ok(user.to_string())
        } else {
            Err(Denied::Invalid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(s: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }

    #[test]
    fn checks_bcrypt_users() {
        let h = bcrypt::hash("s3cret", 4).unwrap();
        let f = Htpasswd::parse(&format!("# users\nalice:{h}\n"), "f").unwrap();
        assert_eq!(f.check(Some(&basic("alice:s3cret"))), Ok("alice".into()));
        assert_eq!(
            f.check(Some(&basic("alice:s3cret"))),
            Ok("alice".into()),
            "cached"
        );
        assert_eq!(f.check(Some(&basic("alice:wrong"))), Err(Denied::Invalid));
        assert_eq!(f.check(Some(&basic("bob:s3cret"))), Err(Denied::Invalid));
        assert_eq!(f.check(None), Err(Denied::Missing));
        assert_eq!(f.check(Some("Bearer x")), Err(Denied::Missing));
    }

    #[test]
    fn refuses_other_hashes() {
        let e = Htpasswd::parse("bob:{SHA}abc\n", "f").err().unwrap();
        assert!(e.to_string().contains("only bcrypt"), "{e}");
        assert!(Htpasswd::parse("nocolon\n", "f").is_err());
    }
}
