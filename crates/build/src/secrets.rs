//! Build secrets between the client and the daemon: the `--secret` flag's grammar
//! (`id=ID,src=PATH`, `id=ID,env=VAR`, `type=file|env`, BuildKit's rules for a bare id), reading
//! a secret's value on the client, and berth's `X-Berth-Build-Secrets` request header that
//! carries the values to `POST /build` (the classic API has no field for them).
//!
//! The header's value is the standard base64 of a JSON object `{"ID": "<base64 of the
//! value>", …}`. Values never go into a cache key, a layer, history or a log.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;

/// The request header of `POST /build` with the build's secrets.
pub const HEADER: &str = "X-Berth-Build-Secrets";

/// The largest secret BuildKit accepts (500 KB).
pub const MAX_SECRET_SIZE: u64 = 500 * 1024;

/// A secret spec or header that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The `--secret` value is malformed (BuildKit's wording).
    #[error("{0}")]
    InvalidSpec(String),
    /// The secret's file could not be read or is too big.
    #[error("{0}")]
    Unreadable(String),
    /// The header is not base64 of a JSON object of base64 strings.
    #[error("invalid {HEADER} header: {0}")]
    InvalidHeader(String),
}

/// Where a secret's value comes from on the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// One `--secret` flag, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    pub id: String,
    pub source: SecretSource,
}

impl SecretSpec {
    /// Parses a `--secret` value as buildx does. `env_is_set` tells whether an environment
    /// variable exists (a spec with only `id=X` reads the variable `X` when it is set, else
    /// the file `X`).
    pub fn parse(value: &str, env_is_set: impl Fn(&str) -> bool) -> Result<Self, SecretError> {
        let invalid = |m: String| SecretError::InvalidSpec(m);
        let mut typ = None;
        let mut id = String::new();
        let mut file = String::new();
        let mut env = String::new();
        for field in value.split(',') {
            let Some((key, v)) = field.split_once('=') else {
                return Err(invalid(format!(
                    "invalid field '{field}' must be a key=value pair"
                )));
            };
            match key.to_ascii_lowercase().as_str() {
                "type" => {
                    if v != "file" && v != "env" {
                        return Err(invalid(format!(
                            "unsupported secret type {}",
                            crate::gofmt::quote(v)
                        )));
                    }
                    typ = Some(v.to_string());
                }
                "id" => id = v.to_string(),
                "source" | "src" => file = v.to_string(),
                "env" => env = v.to_string(),
                k => return Err(invalid(format!("unexpected key '{k}' in '{field}'"))),
            }
        }
        if typ.as_deref() == Some("env") && env.is_empty() {
            env = std::mem::take(&mut file);
        }
        if id.is_empty() {
            return Err(invalid("secret missing ID".into()));
        }
        if env.is_empty() && file.is_empty() {
            if env_is_set(&id) {
                env = id.clone();
            } else {
                file = id.clone();
            }
        }
        let source = if env.is_empty() {
            SecretSource::File(PathBuf::from(file))
        } else {
            SecretSource::Env(env)
        };
        Ok(SecretSpec { id, source })
    }

    /// Reads the value on the client. `None`: the environment variable is not set (the
    /// secret is then missing, as BuildKit treats it).
    pub fn read(&self) -> Result<Option<Vec<u8>>, SecretError> {
        match &self.source {
            SecretSource::Env(var) => Ok(std::env::var_os(var).map(|v| {
                use std::os::unix::ffi::OsStringExt;
                v.into_vec()
            })),
            SecretSource::File(path) => {
                let shown = path.display();
                let meta = std::fs::metadata(path)
                    .map_err(|e| SecretError::Unreadable(format!("failed to stat {shown}: {e}")))?;
                if meta.len() > MAX_SECRET_SIZE {
                    return Err(SecretError::Unreadable(format!(
                        "secret {} too big. max size 500KB",
                        self.id
                    )));
                }
                std::fs::read(path).map(Some).map_err(|e| {
                    SecretError::Unreadable(format!("failed to read secret {shown}: {e}"))
                })
            }
        }
    }
}

/// The header value for `secrets` (id → value).
pub fn encode_header(secrets: &BTreeMap<String, Vec<u8>>) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let inner: BTreeMap<&str, String> = secrets
        .iter()
        .map(|(id, v)| (id.as_str(), b64.encode(v)))
        .collect();
    b64.encode(serde_json::to_vec(&inner).unwrap_or_default())
}

/// Decodes a header value made by [`encode_header`]. Errors never quote the value.
pub fn decode_header(value: &str) -> Result<BTreeMap<String, Vec<u8>>, SecretError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let bad = |m: &str| SecretError::InvalidHeader(m.to_string());
    let json = b64.decode(value.trim()).map_err(|_| bad("not base64"))?;
    let inner: BTreeMap<String, String> =
        serde_json::from_slice(&json).map_err(|_| bad("not a JSON object of strings"))?;
    let mut out = BTreeMap::new();
    for (id, v) in inner {
        if id.is_empty() {
            return Err(bad("empty secret id"));
        }
        let value = b64
            .decode(v)
            .map_err(|_| SecretError::InvalidHeader(format!("secret {id}: value not base64")))?;
        if value.len() as u64 > MAX_SECRET_SIZE {
            return Err(SecretError::InvalidHeader(format!(
                "secret {id} too big. max size 500KB"
            )));
        }
        out.insert(id, value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Result<SecretSpec, SecretError> {
        SecretSpec::parse(v, |name| name == "SET_VAR")
    }

    #[test]
    fn specs() {
        assert_eq!(
            parse("id=tok,src=/run/tok").unwrap(),
            SecretSpec {
                id: "tok".into(),
                source: SecretSource::File("/run/tok".into())
            }
        );
        assert_eq!(
            parse("id=tok,source=f,type=file").unwrap().source,
            SecretSource::File("f".into())
        );
        assert_eq!(
            parse("id=tok,env=MY").unwrap().source,
            SecretSource::Env("MY".into())
        );
        // type=env takes src as the variable's name.
        assert_eq!(
            parse("type=env,id=tok,src=MY").unwrap().source,
            SecretSource::Env("MY".into())
        );
        // A bare id: the variable when it is set, else the file.
        assert_eq!(
            parse("id=SET_VAR").unwrap().source,
            SecretSource::Env("SET_VAR".into())
        );
        assert_eq!(
            parse("id=other").unwrap().source,
            SecretSource::File("other".into())
        );
    }

    #[test]
    fn bad_specs() {
        let msg = |v: &str| parse(v).unwrap_err().to_string();
        assert_eq!(msg("tok"), "invalid field 'tok' must be a key=value pair");
        assert_eq!(msg("id=a,type=ssh"), "unsupported secret type \"ssh\"");
        assert_eq!(msg("id=a,foo=bar"), "unexpected key 'foo' in 'foo=bar'");
        assert_eq!(msg("src=/x"), "secret missing ID");
    }

    #[test]
    fn reading_values() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tok");
        std::fs::write(&f, b"s3cret").unwrap();
        let spec = SecretSpec {
            id: "tok".into(),
            source: SecretSource::File(f.clone()),
        };
        assert_eq!(spec.read().unwrap(), Some(b"s3cret".to_vec()));
        std::fs::write(&f, vec![0u8; MAX_SECRET_SIZE as usize + 1]).unwrap();
        assert_eq!(
            spec.read().unwrap_err().to_string(),
            "secret tok too big. max size 500KB"
        );
        let missing = SecretSpec {
            id: "m".into(),
            source: SecretSource::File(dir.path().join("nope")),
        };
        assert!(missing
            .read()
            .unwrap_err()
            .to_string()
            .starts_with("failed to stat "));
        let env = SecretSpec {
            id: "e".into(),
            source: SecretSource::Env("BERTH_TEST_SURELY_UNSET_VARIABLE".into()),
        };
        assert_eq!(env.read().unwrap(), None);
    }

    #[test]
    fn header_round_trip_and_errors() {
        let mut m = BTreeMap::new();
        m.insert("tok".to_string(), b"s3cret".to_vec());
        m.insert("bin".to_string(), vec![0, 255, 10]);
        let h = encode_header(&m);
        assert!(!h.contains("s3cret"));
        assert_eq!(decode_header(&h).unwrap(), m);
        assert!(decode_header("%%%").is_err());
        let b64 = base64::engine::general_purpose::STANDARD;
        assert!(decode_header(&b64.encode("[1]")).is_err());
        assert!(decode_header(&b64.encode(r#"{"a":"***"}"#)).is_err());
        assert!(decode_header(&b64.encode(r#"{"":""}"#)).is_err());
        assert_eq!(decode_header(&b64.encode("{}")).unwrap(), BTreeMap::new());
    }
}
