//! TLS settings per registry: the system roots plus Docker's certs.d layout,
//! `<certs-dir>/HOST[:PORT]/{ca.crt, *.crt, client.cert, client.key}`.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{RegistryError, Result};

fn tls_err(m: String) -> RegistryError {
    RegistryError::Transport(m)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let data = std::fs::read(path).map_err(|e| tls_err(format!("{}: {e}", path.display())))?;
    rustls_pemfile::certs(&mut data.as_slice())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| tls_err(format!("{}: {e}", path.display())))
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let data = std::fs::read(path).map_err(|e| tls_err(format!("{}: {e}", path.display())))?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .map_err(|e| tls_err(format!("{}: {e}", path.display())))?
        .ok_or_else(|| tls_err(format!("{}: no private key", path.display())))
}

/// The client configuration for `host` (`host[:port]`): system roots, the `*.crt` CAs of
/// `certs_dir/host`, and its `client.cert`/`client.key` pair when present.
pub fn client_config(certs_dir: &Path, host: &str) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for c in native.certs {
        let _ = roots.add(c);
    }
    let dir = certs_dir.join(host);
    let mut client_pair = None;
    if let Ok(rd) = std::fs::read_dir(&dir) {
        let mut names: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        names.sort();
        for p in names {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".crt") {
                for c in read_certs(&p)? {
                    roots
                        .add(c)
                        .map_err(|e| tls_err(format!("{}: {e}", p.display())))?;
                }
            } else if let Some(stem) = name.strip_suffix(".cert") {
                let key = dir.join(format!("{stem}.key"));
                if !key.exists() {
                    return Err(tls_err(format!(
                        "missing key {stem}.key for client certificate {name}. CA certificates must use the extension .crt"
                    )));
                }
                client_pair = Some((read_certs(&p)?, read_key(&key)?));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .with_root_certificates(roots);
    let cfg = match client_pair {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| tls_err(format!("client certificate: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_dir_is_system_roots_only() {
        let d = tempfile::tempdir().unwrap();
        assert!(client_config(d.path(), "127.0.0.1:5000").is_ok());
    }

    #[test]
    fn bad_ca_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let host = d.path().join("reg:443");
        std::fs::create_dir_all(&host).unwrap();
        std::fs::write(host.join("client.cert"), "x").unwrap();
        let e = client_config(d.path(), "reg:443").unwrap_err();
        assert!(e.to_string().contains("missing key client.key"), "{e}");
    }
}
