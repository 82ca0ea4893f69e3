//! The server's settings: a TOML file (`--config`), overridden by flags.
//!
//! ```toml
//! addr = "127.0.0.1:5000"                 # default
//! root = "/var/lib/berth-registry"        # default
//! log_level = "info"                      # default; error, warn, info, debug, trace
//!
//! [storage]
//! delete_enabled = false                  # default: DELETE answers 405 UNSUPPORTED
//!
//! [tls]                                   # default: plain HTTP
//! certificate = "/etc/berth-registry/cert.pem"   # PEM chain
//! key = "/etc/berth-registry/key.pem"            # PEM private key (PKCS#8, PKCS#1 or SEC1)
//!
//! [auth.htpasswd]                         # default: no authentication
//! path = "/etc/berth-registry/htpasswd"   # bcrypt entries (htpasswd -B)
//! realm = "berth-registry"                # default
//! anonymous_pull = false                  # default: reads need credentials too
//!
//! [auth.token]                            # Docker token auth instead of Basic (not both)
//! htpasswd = "/etc/berth-registry/htpasswd"   # the users the token endpoint knows (bcrypt)
//! realm = "https://reg.example/token"     # default: <scheme>://<request Host>/token
//! service = "berth-registry"              # default
//! expiration_seconds = 300                # default
//! [[auth.token.access]]                   # rules: who may do what where (none by default)
//! account = "alice"                       # a user, "*" (any user) or "anonymous"
//! repository = "team/*"                   # exact, or one "*" matching anything
//! actions = ["pull", "push", "delete"]    # or ["*"]
//!
//! [proxy]                                 # --proxy URL: a pull-through cache of URL
//! url = "https://registry.example"        # (no pushes or deletes then)
//! username = "me"                         # optional, with password
//! password = "secret"
//! ```
//!
//! An unknown key is an error that names it: nothing in the file is silently ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

use crate::token::AccessRule;

/// `berth registry serve` flags.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// TOML configuration file (flags override it)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:5000]
    #[arg(long)]
    pub addr: Option<SocketAddr>,
    /// Storage root directory [default: /var/lib/berth-registry]
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Allow DELETE of manifests, tags and blobs (405 UNSUPPORTED otherwise)
    #[arg(long)]
    pub delete_enabled: bool,
    /// TLS certificate chain (PEM); needs --tls-key
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// htpasswd file (bcrypt) for Basic authentication
    #[arg(long, value_name = "FILE")]
    pub htpasswd: Option<PathBuf>,
    /// Let reads (GET/HEAD of repositories) through without credentials
    #[arg(long)]
    pub anonymous_pull: bool,
    /// Be a pull-through cache of the registry at URL (http(s)://HOST[:PORT])
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// Log level (error, warn, info, debug, trace) [default: info]
    #[arg(long)]
    pub log_level: Option<tracing::Level>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    addr: Option<SocketAddr>,
    root: Option<PathBuf>,
    log_level: Option<String>,
    storage: Option<StorageSection>,
    tls: Option<TlsSection>,
    auth: Option<AuthSection>,
    proxy: Option<ProxySection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProxySection {
    url: String,
    username: Option<String>,
    password: Option<String>,
}

/// The upstream of a pull-through cache.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageSection {
    delete_enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsSection {
    certificate: PathBuf,
    key: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthSection {
    htpasswd: Option<HtpasswdSection>,
    token: Option<TokenSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenSection {
    htpasswd: PathBuf,
    realm: Option<String>,
    service: Option<String>,
    expiration_seconds: Option<u64>,
    #[serde(default)]
    access: Vec<AccessRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HtpasswdSection {
    path: PathBuf,
    realm: Option<String>,
    anonymous_pull: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid log level {0:?} (error, warn, info, debug, trace)")]
    LogLevel(String),
    #[error("[auth.htpasswd] (or --htpasswd) and [auth.token] exclude each other: choose one")]
    TwoAuthModes,
}

/// Docker token authentication settings.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub htpasswd: PathBuf,
    pub realm: Option<String>,
    pub service: String,
    pub expiration_seconds: u64,
    pub access: Vec<AccessRule>,
}

/// TLS certificate and key files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

/// Basic authentication settings.
#[derive(Debug, Clone)]
pub struct BasicAuth {
    pub htpasswd: PathBuf,
    pub realm: String,
    pub anonymous_pull: bool,
}

/// What a running registry needs.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    pub addr: SocketAddr,
    pub root: PathBuf,
    pub delete_enabled: bool,
    pub log_level: tracing::Level,
    pub tls: Option<TlsFiles>,
    pub auth: Option<BasicAuth>,
    pub token: Option<TokenConfig>,
    pub proxy: Option<ProxyConfig>,
}

pub const DEFAULT_ADDR: &str = "127.0.0.1:5000";
pub const DEFAULT_ROOT: &str = "/var/lib/berth-registry";
pub const DEFAULT_REALM: &str = "berth-registry";

fn parse_file(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

impl RegistryConfig {
    /// The file (if any) under the flags.
    pub fn load(a: &ServeArgs) -> Result<RegistryConfig, ConfigError> {
        let file = match &a.config {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.display().to_string(),
                    source,
                })?;
                parse_file(&text, p)?
            }
            None => FileConfig::default(),
        };
        RegistryConfig::merge(file, a)
    }

    fn merge(file: FileConfig, a: &ServeArgs) -> Result<RegistryConfig, ConfigError> {
        let log_level = match (a.log_level, &file.log_level) {
            (Some(l), _) => l,
            (None, Some(s)) => s.parse().map_err(|_| ConfigError::LogLevel(s.clone()))?,
            (None, None) => tracing::Level::INFO,
        };
        let tls = match (&a.tls_cert, &a.tls_key, file.tls) {
            (Some(c), Some(k), _) => Some(TlsFiles {
                certificate: c.clone(),
                key: k.clone(),
            }),
            (_, _, Some(t)) => Some(TlsFiles {
                certificate: t.certificate,
                key: t.key,
            }),
            _ => None,
        };
        let (file_auth, file_token) = match file.auth {
            Some(a) => (a.htpasswd, a.token),
            None => (None, None),
        };
        let token = file_token.map(|t| TokenConfig {
            htpasswd: t.htpasswd,
            realm: t.realm,
            service: t.service.unwrap_or_else(|| DEFAULT_REALM.into()),
            expiration_seconds: t.expiration_seconds.unwrap_or(300),
            access: t.access,
        });
        let auth = match (&a.htpasswd, file_auth) {
            (Some(p), f) => Some(BasicAuth {
                htpasswd: p.clone(),
                realm: f
                    .as_ref()
                    .and_then(|f| f.realm.clone())
                    .unwrap_or_else(|| DEFAULT_REALM.into()),
                anonymous_pull: a.anonymous_pull
                    || f.and_then(|f| f.anonymous_pull).unwrap_or(false),
            }),
            (None, Some(f)) => Some(BasicAuth {
                htpasswd: f.path,
                realm: f.realm.unwrap_or_else(|| DEFAULT_REALM.into()),
                anonymous_pull: a.anonymous_pull || f.anonymous_pull.unwrap_or(false),
            }),
            (None, None) => None,
        };
        let proxy = match (&a.proxy, file.proxy) {
            (Some(u), f) => Some(ProxyConfig {
                url: u.clone(),
                username: f.as_ref().and_then(|f| f.username.clone()),
                password: f.and_then(|f| f.password),
            }),
            (None, Some(f)) => Some(ProxyConfig {
                url: f.url,
                username: f.username,
                password: f.password,
            }),
            (None, None) => None,
        };
        if auth.is_some() && token.is_some() {
            return Err(ConfigError::TwoAuthModes);
        }
        Ok(RegistryConfig {
            addr: a
                .addr
                .or(file.addr)
                .unwrap_or_else(|| DEFAULT_ADDR.parse().expect("a valid address")),
            root: a
                .root
                .clone()
                .or(file.root)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT)),
            delete_enabled: a.delete_enabled
                || file.storage.and_then(|s| s.delete_enabled).unwrap_or(false),
            log_level,
            tls,
            auth,
            token,
            proxy,
        })
    }

    /// Defaults for tests: an ephemeral port on loopback, delete enabled.
    pub fn for_root(root: PathBuf) -> RegistryConfig {
        RegistryConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            root,
            delete_enabled: true,
            log_level: tracing::Level::INFO,
            tls: None,
            auth: None,
            token: None,
            proxy: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_file_and_flags() {
        let c = RegistryConfig::merge(FileConfig::default(), &ServeArgs::default()).unwrap();
        assert_eq!(c.addr.to_string(), DEFAULT_ADDR);
        assert_eq!(c.root, PathBuf::from(DEFAULT_ROOT));
        assert!(!c.delete_enabled && c.tls.is_none() && c.auth.is_none());
        let f = parse_file(
            "addr = \"0.0.0.0:6000\"\nlog_level = \"debug\"\n[storage]\ndelete_enabled = true\n\
             [tls]\ncertificate = \"c.pem\"\nkey = \"k.pem\"\n\
             [auth.htpasswd]\npath = \"h\"\nanonymous_pull = true\n",
            Path::new("f"),
        )
        .unwrap();
        let args = ServeArgs {
            addr: Some("127.0.0.1:7000".parse().unwrap()),
            ..ServeArgs::default()
        };
        let c = RegistryConfig::merge(f, &args).unwrap();
        assert_eq!(c.addr.to_string(), "127.0.0.1:7000", "flags win");
        assert!(c.delete_enabled);
        assert_eq!(c.log_level, tracing::Level::DEBUG);
        assert_eq!(c.tls.unwrap().key, PathBuf::from("k.pem"));
        let a = c.auth.unwrap();
        assert!(a.anonymous_pull);
        assert_eq!(a.realm, DEFAULT_REALM);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = parse_file("[storage]\ndelete = true\n", Path::new("f"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("delete"), "{e}");
        assert!(parse_file("proxy = \"x\"\n", Path::new("f")).is_err());
        let e = RegistryConfig::merge(
            parse_file("log_level = \"loud\"\n", Path::new("f")).unwrap(),
            &ServeArgs::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("loud"));
        let both = parse_file(
            "[auth.htpasswd]\npath = \"h\"\n[auth.token]\nhtpasswd = \"h\"\n",
            Path::new("f"),
        )
        .unwrap();
        assert!(matches!(
            RegistryConfig::merge(both, &ServeArgs::default()),
            Err(ConfigError::TwoAuthModes)
        ));
    }

    #[test]
    fn token_rules() {
        let f = parse_file(
            "[auth.token]\nhtpasswd = \"h\"\n[[auth.token.access]]\naccount = \"alice\"\n\
             repository = \"team/*\"\nactions = [\"pull\", \"push\"]\n",
            Path::new("f"),
        )
        .unwrap();
        let t = RegistryConfig::merge(f, &ServeArgs::default())
            .unwrap()
            .token
            .unwrap();
        assert_eq!(t.access.len(), 1);
        assert_eq!(t.expiration_seconds, 300);
        assert!(parse_file(
            "[auth.token]\nhtpasswd = \"h\"\n[[auth.token.access]]\naccount = \"a\"\n\
             repository = \"r\"\nactions = []\nextra = 1\n",
            Path::new("f")
        )
        .is_err());
    }
}
