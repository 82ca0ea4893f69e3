//! Registry credentials shared with docker: `~/.docker/config.json` (or `$DOCKER_CONFIG`),
//! `auths` with base64 `user:pass`, and `credsStore` / `credHelpers` that run
//! `docker-credential-NAME get|store|erase`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{anyhow, Result};
use base64::Engine as _;
use serde_json::{json, Map, Value};

/// Docker Hub's key in config.json.
pub const INDEX_SERVER: &str = "https://index.docker.io/v1/";

/// A username and secret for one registry. A helper's username `<token>` means the secret is
/// an identity token (Docker's convention).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub secret: String,
}

/// The username a credential helper returns for an identity token.
pub const TOKEN_USERNAME: &str = "<token>";

fn config_path() -> PathBuf {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".docker")
        });
    dir.join("config.json")
}

fn load() -> Result<Map<String, Value>> {
    let p = config_path();
    match std::fs::read(&p) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
        Ok(b) => match serde_json::from_slice(&b) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(anyhow!("loading config file {}: invalid JSON", p.display())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(anyhow!("loading config file {}: {e}", p.display())),
    }
}

/// `detachKeys` of the client's config.json (the docker CLI's default for `--detach-keys`);
/// none when the file, or the key, is absent or unreadable.
pub fn config_detach_keys() -> Option<String> {
    load()
        .ok()?
        .get("detachKeys")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
}

fn save(cfg: &Map<String, Value>) -> Result<()> {
    let p = config_path();
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = p.with_extension("json.tmp");
    let mut data = serde_json::to_vec_pretty(cfg)?;
    data.push(b'\n');
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, &p)?;
    Ok(())
}

/// The config.json key of a registry domain (`docker.io` → Docker Hub's URL).
pub fn server_key(domain: &str) -> String {
    match domain {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => INDEX_SERVER.into(),
        d => d.to_string(),
    }
}

fn helper_for(cfg: &Map<String, Value>, key: &str) -> Option<String> {
    cfg.get("credHelpers")
        .and_then(|h| h.get(key))
        .and_then(Value::as_str)
        .or_else(|| cfg.get("credsStore").and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn run_helper(helper: &str, action: &str, input: &str) -> Result<String> {
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            anyhow!("error getting credentials - err: exec: \"docker-credential-{helper}\": {e}")
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper may exit without reading its input (a locked keyring): its own answer
        // below says why, not the broken pipe.
        match stdin.write_all(input.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
            _ => {}
        }
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if action == "get" && msg.contains(NOT_FOUND) {
            return Err(HelperNotFound.into());
        }
        return Err(anyhow!(
            "error calling docker-credential-{helper} {action}: {msg}"
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What a helper prints when it holds nothing for a server (docker-credential-helpers).
const NOT_FOUND: &str = "credentials not found in native keychain";

/// A helper's answer that it holds nothing for the server: no login, not an error.
#[derive(Debug)]
struct HelperNotFound;

impl std::fmt::Display for HelperNotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(NOT_FOUND)
    }
}

impl std::error::Error for HelperNotFound {}

/// Whether logins for `domain` go through a credential helper (no secret in config.json).
pub fn uses_helper(domain: &str) -> Result<bool> {
    Ok(helper_for(&load()?, &server_key(domain)).is_some())
}

/// Where config.json is (for messages).
pub fn config_file() -> PathBuf {
    config_path()
}

/// The stored login for a registry domain, if any.
pub fn get(domain: &str) -> Result<Option<Login>> {
    let cfg = load()?;
    let key = server_key(domain);
    if let Some(helper) = helper_for(&cfg, &key) {
        // A helper that holds nothing is no login; any other failure is an error that names
        // the helper (as docker's), never a silent anonymous request.
        let out = match run_helper(&helper, "get", &key) {
            Ok(out) => out,
            Err(e) if e.is::<HelperNotFound>() => return Ok(None),
            Err(e) => return Err(e),
        };
        let v: Value = serde_json::from_str(&out).map_err(|e| {
            anyhow!("docker-credential-{helper} get answered something that is not JSON: {e}")
        })?;
        let login = Login {
            username: v["Username"].as_str().unwrap_or("").to_string(),
            secret: v["Secret"].as_str().unwrap_or("").to_string(),
        };
        return Ok((!login.secret.is_empty()).then_some(login));
    }
    let auths = cfg.get("auths").and_then(Value::as_object);
    let entry = auths.and_then(|a| {
        a.get(&key)
            .or_else(|| a.get(&format!("https://{key}")))
            .or_else(|| a.get(&format!("http://{key}")))
    });
    let Some(auth) = entry.and_then(|e| e.get("auth")).and_then(Value::as_str) else {
        return Ok(None);
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|e| anyhow!("invalid auth in {}: {e}", config_path().display()))?;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (u, p) = raw
        .split_once(':')
        .ok_or_else(|| anyhow!("invalid auth in {}", config_path().display()))?;
    Ok(Some(Login {
        username: u.to_string(),
        secret: p.to_string(),
    }))
}

/// Stores a login.
pub fn store(domain: &str, login: &Login) -> Result<()> {
    let mut cfg = load()?;
    let key = server_key(domain);
    if let Some(helper) = helper_for(&cfg, &key) {
        let input = json!({"ServerURL": key, "Username": login.username, "Secret": login.secret});
        run_helper(&helper, "store", &input.to_string())?;
        let auths = cfg.entry("auths").or_insert_with(|| json!({}));
        if let Some(a) = auths.as_object_mut() {
            a.insert(key, json!({}));
        }
    } else {
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", login.username, login.secret));
        let auths = cfg.entry("auths").or_insert_with(|| json!({}));
        if !auths.is_object() {
            *auths = json!({});
        }
        if let Some(a) = auths.as_object_mut() {
            a.insert(key, json!({ "auth": auth }));
        }
    }
    save(&cfg)
}

/// Removes a login; false when there was none.
pub fn erase(domain: &str) -> Result<bool> {
    let mut cfg = load()?;
    let key = server_key(domain);
    if let Some(helper) = helper_for(&cfg, &key) {
        let _ = run_helper(&helper, "erase", &key);
    }
    let removed = cfg
        .get_mut("auths")
        .and_then(Value::as_object_mut)
        .map(|a| {
            let mut any = a.remove(&key).is_some();
            for alt in [format!("https://{key}"), format!("http://{key}")] {
                any |= a.remove(&alt).is_some();
            }
            any
        })
        .unwrap_or(false);
    if removed {
        save(&cfg)?;
    }
    Ok(removed)
}

/// The `X-Registry-Auth` header for a registry domain (`e30=`, i.e. `{}`, without a login). A
/// credential helper that fails is an error.
pub fn registry_auth_header(domain: &str) -> Result<String> {
    let v = match get(domain)? {
        Some(l) if l.username == TOKEN_USERNAME => {
            json!({"identitytoken": l.secret, "serveraddress": server_key(domain)})
        }
        Some(l) => {
            json!({"username": l.username, "password": l.secret, "serveraddress": server_key(domain)})
        }
        None => json!({}),
    };
    Ok(base64::engine::general_purpose::URL_SAFE.encode(v.to_string()))
}

/// The registry domain of an image name (`localhost:5000/a` → `localhost:5000`).
pub fn domain_of_image(name: &str) -> String {
    match name.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => "docker.io".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_sys::names::login_domain;

    #[test]
    fn names() {
        assert_eq!(domain_of_image("busybox"), "docker.io");
        assert_eq!(domain_of_image("127.0.0.1:5000/a/b:1"), "127.0.0.1:5000");
        assert_eq!(login_domain("http://127.0.0.1:5000/"), "127.0.0.1:5000");
        assert_eq!(server_key("docker.io"), INDEX_SERVER);
        assert_eq!(login_domain(INDEX_SERVER), "docker.io");
    }
}
