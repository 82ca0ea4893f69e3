//! TLS for tcp:// listeners: the rustls server configuration (TLS 1.2 and 1.3 only, the
//! `ring` provider), client certificates required and verified against `--tlscacert` with
//! `--tlsverify`, and the identity (subject CN, SANs) of a verified client.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

pub const DEFAULT_CA_FILE: &str = "ca.pem";
pub const DEFAULT_CERT_FILE: &str = "cert.pem";
pub const DEFAULT_KEY_FILE: &str = "key.pem";

/// TLS as configured: server certificate and key, and whether clients must present a
/// certificate signed by `ca`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub verify: bool,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Where dockerd looks for certificates when no flag names them: `$DOCKER_CERT_PATH`, else
/// `$DOCKER_CONFIG`, else `~/.docker`.
pub fn default_cert_dir(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(p) = env("DOCKER_CERT_PATH").filter(|s| !s.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(p) = env("DOCKER_CONFIG").filter(|s| !s.is_empty()) {
        return PathBuf::from(p);
    }
    let home = env("HOME")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/root".into());
    Path::new(&home).join(".docker")
}

fn load_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = std::fs::read(path)
        .map_err(|e| format!("could not read {what} \"{}\": {e}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut data.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("failed to parse {what} \"{}\": {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "failed to parse {what} \"{}\": no PEM certificate in it",
            path.display()
        ));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let data = std::fs::read(path)
        .map_err(|e| format!("could not load X509 key pair: {}: {e}", path.display()))?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .map_err(|e| format!("could not load X509 key pair: {}: {e}", path.display()))?
        .ok_or_else(|| {
            format!(
                "could not load X509 key pair: no private key in {}",
                path.display()
            )
        })
}

/// The server configuration for `s`; any unreadable or unusable file is an error naming it.
pub fn server_config(s: &TlsSettings) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS configuration: {e}"))?;
    let builder = if s.verify {
        let mut roots = RootCertStore::empty();
        for c in load_certs(&s.ca, "CA certificate")? {
            roots
                .add(c)
                .map_err(|e| format!("CA certificate \"{}\": {e}", s.ca.display()))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("client certificate verifier: {e}"))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let certs = load_certs(&s.cert, "server certificate")?;
    let key = load_key(&s.key)?;
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("could not load X509 key pair: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Who a verified client certificate names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCert {
    /// The subject's common name.
    pub common_name: Option<String>,
    /// Subject alternative names: DNS names, e-mail addresses, URIs and IP addresses as text.
    pub sans: Vec<String>,
}

/// Reads the subject CN and SANs of a (verified) client certificate.
pub fn client_identity(der: &[u8]) -> Option<ClientCert> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string);
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                    sans.push(s.to_string())
                }
                GeneralName::IPAddress(b) => match b.len() {
                    4 => sans
                        .push(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).ok()?).to_string()),
                    16 => sans
                        .push(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b).ok()?).to_string()),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Some(ClientCert { common_name, sans })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_cert_dir_follows_dockerd() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            default_cert_dir(&env(&[("DOCKER_CERT_PATH", "/c"), ("HOME", "/h")])),
            PathBuf::from("/c")
        );
        assert_eq!(
            default_cert_dir(&env(&[("DOCKER_CONFIG", "/d"), ("HOME", "/h")])),
            PathBuf::from("/d")
        );
        assert_eq!(
            default_cert_dir(&env(&[("HOME", "/h")])),
            PathBuf::from("/h/.docker")
        );
    }

    #[test]
    fn missing_files_are_named() {
        let s = TlsSettings {
            verify: true,
            ca: "/nonexistent/ca.pem".into(),
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
        };
        let e = server_config(&s).unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let s = TlsSettings { verify: false, ..s };
        let e = server_config(&s).unwrap_err();
        assert!(e.contains("/nonexistent/cert.pem"), "{e}");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(client_identity(b"not der"), None);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "hello").unwrap();
        assert!(load_certs(&p, "CA certificate")
            .unwrap_err()
            .contains("no PEM certificate"));
    }
}
