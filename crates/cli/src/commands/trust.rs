//! Signed images on the client side (berth only): `berth trust keygen` writes a cosign key
//! pair; `berth image sign IMAGE --key KEY` and `berth push --sign-by KEY` sign the manifest
//! the registry serves and hand the signature (never the key) to the daemon, which stores it in
//! the image's `sha256-<hex>.sig` attachment (`POST /images/{name}/signatures`).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _, Result};
use base64::Engine as _;
use berth_trust::{DockerReference, SignedPayload, SigningKey};
use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{json, Value};

use super::credentials::{domain_of_image, registry_auth_header};
use super::pull::split_name;
use crate::client::{read_json, seg, Client, Exit};

#[derive(Subcommand, Debug)]
pub enum TrustCmd {
    /// Generate a cosign key pair (PREFIX.private, encrypted, and PREFIX.pub)
    Keygen(KeygenArgs),
}

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Write PREFIX.private and PREFIX.pub
    #[arg(long = "output-prefix", value_name = "PREFIX")]
    pub output_prefix: PathBuf,
    /// Read the passphrase from this file (else $BERTH_SIGN_PASSPHRASE or $COSIGN_PASSWORD)
    #[arg(long = "passphrase-file", value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SignArgs {
    /// The private key file (cosign's encrypted format)
    #[arg(long = "key", value_name = "KEY")]
    pub key: PathBuf,
    /// Read the key's passphrase from this file (else $BERTH_SIGN_PASSPHRASE or $COSIGN_PASSWORD)
    #[arg(long = "passphrase-file", value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// The image in its registry, NAME[:TAG]
    pub name: String,
}

/// The passphrase: the file's first line, else the environment.
pub fn passphrase(file: Option<&Path>) -> Result<Vec<u8>> {
    if let Some(f) = file {
        let text = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        let line = text.split(|b| *b == b'\n').next().unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        return Ok(line.to_vec());
    }
    for var in ["BERTH_SIGN_PASSPHRASE", "COSIGN_PASSWORD"] {
        if let Some(v) = std::env::var_os(var) {
            return Ok(v.into_encoded_bytes());
        }
    }
    Err(anyhow!(
        "no passphrase: give --passphrase-file or set BERTH_SIGN_PASSPHRASE (or COSIGN_PASSWORD)"
    ))
}

pub fn run(cmd: TrustCmd) -> Result<i32> {
    match cmd {
        TrustCmd::Keygen(a) => keygen(a),
    }
}

fn keygen(a: KeygenArgs) -> Result<i32> {
    let pass = passphrase(a.passphrase_file.as_deref())?;
    let private = PathBuf::from(format!("{}.private", a.output_prefix.display()));
    let public = PathBuf::from(format!("{}.pub", a.output_prefix.display()));
    for p in [&private, &public] {
        if p.symlink_metadata().is_ok() {
            return Err(Exit::msg(1, format!("{} already exists", p.display())));
        }
    }
    let (priv_pem, pub_pem) = berth_trust::generate_key_pair(&pass)?;
    write_new(&private, priv_pem.as_bytes(), 0o600)?;
    if let Err(e) = write_new(&public, pub_pem.as_bytes(), 0o644) {
        let _ = std::fs::remove_file(&private);
        return Err(e);
    }
    println!("Private key written to {}", private.display());
    println!("Public key written to {}", public.display());
    Ok(0)
}

fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads and decrypts the private key.
pub fn load_key(key: &Path, passphrase_file: Option<&Path>) -> Result<SigningKey> {
    let text =
        std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
    let pass = passphrase(passphrase_file)?;
    SigningKey::from_encrypted_pem(&text, &pass).map_err(|e| anyhow!("{}: {e}", key.display()))
}

/// Signs `identity` (`NAME:TAG`) at `digest` and has the daemon store the signature.
pub async fn sign_and_store(
    c: &Client,
    key: &SigningKey,
    identity: &str,
    digest: &str,
) -> Result<()> {
    let normalized = DockerReference::parse(identity).map_err(|e| Exit::msg(1, e.to_string()))?;
    let payload = SignedPayload {
        docker_reference: normalized.to_string(),
        manifest_digest: digest.to_string(),
    }
    .to_bytes(chrono::Utc::now().timestamp());
    let signature = SignedPayload::sign(&payload, key);
    let (name, _) = split_name(identity);
    let body = serde_json::to_vec(&json!({
        "Payload": base64::engine::general_purpose::STANDARD.encode(&payload),
        "Signature": signature,
    }))?;
    let resp = c
        .request_with_headers(
            Method::POST,
            &format!("/images/{}/signatures", seg(&name)),
            &[],
            Some((body, "application/json")),
            &[(
                "X-Registry-Auth",
                registry_auth_header(&domain_of_image(&name))?,
            )],
        )
        .await
        .map_err(exit_one)?;
    let v: Value = read_json(resp).await?;
    let tag = v["Tag"].as_str().unwrap_or("");
    if v["Added"] == true {
        println!("Signed {identity} ({digest}): stored as {name}:{tag}");
    } else {
        println!("{identity} ({digest}) already carries this signature ({name}:{tag})");
    }
    Ok(())
}

fn exit_one(e: anyhow::Error) -> anyhow::Error {
    match crate::client::api_error(&e) {
        Some(a) => Exit::msg(1, a.to_string()),
        None => e,
    }
}

/// `berth image sign IMAGE --key KEY`: signs the manifest the registry serves for IMAGE now.
pub async fn sign(c: &Client, a: SignArgs) -> Result<i32> {
    let key = load_key(&a.key, a.passphrase_file.as_deref())?;
    let (name, tag) = split_name(&a.name);
    if tag.as_deref().is_some_and(|t| t.starts_with("sha256:")) {
        return Err(Exit::msg(1, "sign a tag (NAME[:TAG]), not a digest"));
    }
    let identity = format!("{name}:{}", tag.unwrap_or_else(|| "latest".into()));
    let resp = c
        .request_with_headers(
            Method::GET,
            &format!("/distribution/{}/json", seg(&identity)),
            &[],
            None,
            &[(
                "X-Registry-Auth",
                registry_auth_header(&domain_of_image(&name))?,
            )],
        )
        .await
        .map_err(exit_one)?;
    let v: Value = read_json(resp).await?;
    let digest = v["Descriptor"]["digest"]
        .as_str()
        .ok_or_else(|| anyhow!("the daemon did not say the image's digest"))?
        .to_string();
    sign_and_store(c, &key, &identity, &digest).await?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrase_from_file_is_its_first_line() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("p");
        std::fs::write(&f, "secret\nrest\n").unwrap();
        assert_eq!(passphrase(Some(&f)).unwrap(), b"secret");
        std::fs::write(&f, "").unwrap();
        assert_eq!(passphrase(Some(&f)).unwrap(), b"");
        assert!(passphrase(Some(&d.path().join("absent"))).is_err());
    }
}
