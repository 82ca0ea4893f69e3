//! How the CLI reaches the daemon: a unix socket, or tcp in the clear or over TLS, chosen from
//! `-H`/`DOCKER_HOST` and the TLS flags and variables as the docker CLI chooses
//! (`--tls`, `--tlsverify`, `--tlscacert`, `--tlscert`, `--tlskey`, `DOCKER_TLS_VERIFY`,
//! `DOCKER_TLS`, `DOCKER_CERT_PATH`). TLS is rustls, 1.2 and 1.3 only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};

/// A connection to the daemon.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The TLS flags of the command line (docker's global flags).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsFlags {
    /// Use TLS; implied by --tlsverify
    #[arg(long = "tls")]
    pub tls: bool,
    /// Use TLS and verify the remote
    #[arg(long = "tlsverify")]
    pub tlsverify: bool,
    /// Trust certs signed only by this CA
    #[arg(long = "tlscacert", value_name = "PATH")]
    pub tlscacert: Option<PathBuf>,
    /// Path to TLS certificate file
    #[arg(long = "tlscert", value_name = "PATH")]
    pub tlscert: Option<PathBuf>,
    /// Path to TLS key file
    #[arg(long = "tlskey", value_name = "PATH")]
    pub tlskey: Option<PathBuf>,
}

/// TLS as the flags and the environment ask for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsChoice {
    pub verify: bool,
    pub ca: PathBuf,
    /// Client certificate and key; none when neither was named and the defaults are absent.
    pub cert: Option<(PathBuf, PathBuf)>,
}

impl TlsFlags {
    /// `None` when TLS is off. `env` reads the environment.
    pub fn choice(&self, env: &dyn Fn(&str) -> Option<String>) -> Option<TlsChoice> {
        let set = |k: &str| env(k).is_some_and(|v| !v.is_empty());
        let verify = self.tlsverify || set("DOCKER_TLS_VERIFY");
        let tls = self.tls || set("DOCKER_TLS") || verify;
        if !tls {
            return None;
        }
        let dir = env("DOCKER_CERT_PATH")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                env("DOCKER_CONFIG")
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| {
                Path::new(&env("HOME").unwrap_or_else(|| "/root".into())).join(".docker")
            });
        let ca = self.tlscacert.clone().unwrap_or_else(|| dir.join("ca.pem"));
        let explicit = self.tlscert.is_some() || self.tlskey.is_some();
        let cert_path = self.tlscert.clone().unwrap_or_else(|| dir.join("cert.pem"));
        let key_path = self.tlskey.clone().unwrap_or_else(|| dir.join("key.pem"));
        // As the docker CLI: default paths that do not exist mean no client certificate.
        let cert = (explicit || (cert_path.exists() && key_path.exists()))
            .then_some((cert_path, key_path));
        Some(TlsChoice { verify, ca, cert })
    }
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let data = std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut data.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("failed to parse {}", path.display()))?;
    if certs.is_empty() {
        return Err(anyhow!("no PEM certificate in {}", path.display()));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let data = std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .with_context(|| format!("failed to parse {}", path.display()))?
        .ok_or_else(|| anyhow!("no private key in {}", path.display()))
}

/// The rustls client configuration for `c`.
pub fn client_config(c: &TlsChoice) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = if c.verify {
        let mut roots = RootCertStore::empty();
        for cert in load_certs(&c.ca)? {
            roots.add(cert)?;
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoServerVerification(provider)))
    };
    let mut cfg = match &c.cert {
        Some((cert, key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .context("could not load X509 key pair")?,
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// `--tls` without `--tlsverify`: the server's certificate is not checked (the docker CLI's
/// InsecureSkipVerify); handshake signatures still are.
#[derive(Debug)]
struct NoServerVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoServerVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Where the daemon is.
#[derive(Clone)]
pub enum Target {
    Unix(PathBuf),
    Tcp {
        addr: String,
        tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    },
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Unix(p) => write!(f, "unix://{}", p.display()),
            Target::Tcp { addr, tls } => {
                write!(
                    f,
                    "tcp://{addr}{}",
                    if tls.is_some() { " (TLS)" } else { "" }
                )
            }
        }
    }
}

/// `host:port` of a tcp host (`tcp://h:p`, `http://h:p`, `https://h:p`); a missing port is
/// 2376 with TLS, 2375 without (the docker CLI's defaults).
pub fn tcp_addr(rest: &str, tls: bool) -> Result<(String, String)> {
    let rest = rest.trim_end_matches('/');
    if rest.contains('/') {
        return Err(anyhow!("a tcp host has no path: {rest}"));
    }
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        let (h, after) = r
            .split_once(']')
            .ok_or_else(|| anyhow!("bad address {rest}"))?;
        (h.to_string(), after.strip_prefix(':').unwrap_or(""))
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p),
            None => (rest.to_string(), ""),
        }
    };
    let host = if host.is_empty() {
        "127.0.0.1".to_string()
    } else {
        host
    };
    let port = if port.is_empty() {
        if tls { "2376" } else { "2375" }.to_string()
    } else {
        port.parse::<u16>()
            .map_err(|_| anyhow!("invalid port in {rest}"))?
            .to_string()
    };
    let shown = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok((shown, host))
}

impl Target {
    /// Opens a connection.
    pub async fn connect(&self) -> std::io::Result<Box<dyn Io>> {
        match self {
            Target::Unix(p) => Ok(Box::new(tokio::net::UnixStream::connect(p).await?)),
            Target::Tcp { addr, tls } => {
                let tcp = tokio::net::TcpStream::connect(addr.as_str()).await?;
                let _ = tcp.set_nodelay(true);
                match tls {
                    None => Ok(Box::new(tcp)),
                    Some((cfg, name)) => {
                        let conn = tokio_rustls::TlsConnector::from(cfg.clone())
                            .connect(name.clone(), tcp)
                            .await?;
                        Ok(Box::new(conn))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn tls_choice_as_the_docker_cli() {
        let none = TlsFlags::default();
        assert_eq!(none.choice(&env_of(&[])), None);
        let c = none
            .choice(&env_of(&[
                ("DOCKER_TLS_VERIFY", "1"),
                ("DOCKER_CERT_PATH", "/c"),
            ]))
            .unwrap();
        assert!(c.verify);
        assert_eq!(c.ca, PathBuf::from("/c/ca.pem"));
        assert_eq!(
            c.cert, None,
            "absent default files mean no client certificate"
        );
        let flags = TlsFlags {
            tls: true,
            tlscert: Some("/x/c.pem".into()),
            tlskey: Some("/x/k.pem".into()),
            ..Default::default()
        };
        let c = flags.choice(&env_of(&[("HOME", "/h")])).unwrap();
        assert!(!c.verify);
        assert_eq!(c.ca, PathBuf::from("/h/.docker/ca.pem"));
        assert_eq!(c.cert, Some(("/x/c.pem".into(), "/x/k.pem".into())));
    }

    #[test]
    fn tcp_addresses() {
        assert_eq!(
            tcp_addr("127.0.0.1:9", true).unwrap(),
            ("127.0.0.1:9".into(), "127.0.0.1".into())
        );
        assert_eq!(tcp_addr("h", true).unwrap().0, "h:2376");
        assert_eq!(tcp_addr("h", false).unwrap().0, "h:2375");
        assert_eq!(
            tcp_addr("[::1]:5", false).unwrap(),
            ("[::1]:5".into(), "::1".into())
        );
        assert!(tcp_addr("h:x", false).is_err());
        assert!(tcp_addr("h:1/p", false).is_err());
    }
}
