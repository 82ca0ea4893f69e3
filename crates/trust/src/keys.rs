//! Cosign key pairs: ECDSA P-256, the private key as PKCS#8 DER sealed with NaCl secretbox under
//! a key derived by scrypt (N=32768, r=8, p=1) from a passphrase, in a PEM block
//! `ENCRYPTED COSIGN PRIVATE KEY` (`ENCRYPTED SIGSTORE PRIVATE KEY` is read too); the public key
//! as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo). This is the format `cosign generate-key-pair`
//! and `skopeo generate-sigstore-key` write.

use base64::Engine as _;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, TrustError};

/// The PEM label berth (and skopeo 1.13) writes private keys under.
pub const PRIVATE_KEY_PEM: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// The label newer sigstore tools write; read as well.
pub const SIGSTORE_PRIVATE_KEY_PEM: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
const PUBLIC_KEY_PEM: &str = "PUBLIC KEY";

const SCRYPT_LOG_N: u8 = 15; // N = 32768
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn key_err(m: impl Into<String>) -> TrustError {
    TrustError::Key(m.into())
}

#[derive(Serialize, Deserialize)]
struct EncryptedKey {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
#[allow(non_snake_case)]
struct ScryptParams {
    N: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// Writes `der` as a PEM block labelled `label`.
fn pem_encode(label: &str, der: &[u8]) -> String {
    let text = b64().encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Reads the first PEM block: its label and bytes.
fn pem_decode(text: &str) -> Result<(String, Vec<u8>)> {
    let start = text
        .find("-----BEGIN ")
        .ok_or_else(|| key_err("not a PEM file (no BEGIN line)"))?;
    let rest = &text[start + 11..];
    let (label, rest) = rest
        .split_once("-----")
        .ok_or_else(|| key_err("malformed PEM BEGIN line"))?;
    let end_line = format!("-----END {label}-----");
    let body = rest
        .split_once(&end_line)
        .map(|(b, _)| b)
        .ok_or_else(|| key_err(format!("PEM block {label} has no END line")))?;
    let joined: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = b64()
        .decode(joined)
        .map_err(|e| key_err(format!("PEM block {label}: bad base64: {e}")))?;
    Ok((label.to_string(), der))
}

fn derive(passphrase: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32) -> Result<[u8; 32]> {
    let params =
        scrypt::Params::new(log_n, r, p, 32).map_err(|e| key_err(format!("scrypt: {e}")))?;
    let mut out = [0u8; 32];
    scrypt::scrypt(passphrase, salt, &params, &mut out)
        .map_err(|e| key_err(format!("scrypt: {e}")))?;
    Ok(out)
}

/// A private signing key (ECDSA P-256).
#[derive(Clone)]
pub struct SigningKey {
    key: p256::ecdsa::SigningKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// A public verification key (ECDSA P-256).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    key: p256::ecdsa::VerifyingKey,
}

/// Generates a key pair; returns (the encrypted private key PEM, the public key PEM).
pub fn generate_key_pair(passphrase: &[u8]) -> Result<(String, String)> {
    let key = SigningKey {
        key: p256::ecdsa::SigningKey::random(&mut OsRng),
    };
    Ok((
        key.to_encrypted_pem(passphrase)?,
        key.public_key().to_pem()?,
    ))
}

impl SigningKey {
    /// Decrypts a cosign private key file's text with `passphrase`.
    pub fn from_encrypted_pem(text: &str, passphrase: &[u8]) -> Result<SigningKey> {
        let (label, der) = pem_decode(text)?;
        if label != PRIVATE_KEY_PEM && label != SIGSTORE_PRIVATE_KEY_PEM {
            return Err(key_err(format!(
                "unsupported private key PEM type {label:?} (want {PRIVATE_KEY_PEM:?} or {SIGSTORE_PRIVATE_KEY_PEM:?})"
            )));
        }
        let enc: EncryptedKey = serde_json::from_slice(&der)
            .map_err(|e| key_err(format!("malformed encrypted private key: {e}")))?;
        if enc.kdf.name != "scrypt" {
            return Err(key_err(format!(
                "unsupported key derivation {:?}",
                enc.kdf.name
            )));
        }
        if enc.cipher.name != "nacl/secretbox" {
            return Err(key_err(format!("unsupported cipher {:?}", enc.cipher.name)));
        }
        let n = enc.kdf.params.N;
        if !n.is_power_of_two() || !(2..=1 << 20).contains(&n) {
            return Err(key_err(format!("unsupported scrypt N {n}")));
        }
        if enc.kdf.params.r == 0
            || enc.kdf.params.r > 32
            || enc.kdf.params.p == 0
            || enc.kdf.params.p > 16
        {
            return Err(key_err("unsupported scrypt parameters"));
        }
        let salt = b64()
            .decode(&enc.kdf.salt)
            .map_err(|e| key_err(format!("bad salt: {e}")))?;
        let nonce = b64()
            .decode(&enc.cipher.nonce)
            .map_err(|e| key_err(format!("bad nonce: {e}")))?;
        let sealed = b64()
            .decode(&enc.ciphertext)
            .map_err(|e| key_err(format!("bad ciphertext: {e}")))?;
        if nonce.len() != 24 {
            return Err(key_err("bad nonce length"));
        }
        let secret = derive(
            passphrase,
            &salt,
            n.trailing_zeros() as u8,
            enc.kdf.params.r,
            enc.kdf.params.p,
        )?;
        let cipher = XSalsa20Poly1305::new((&secret).into());
        let der = cipher
            .decrypt(nonce.as_slice().into(), sealed.as_slice())
            .map_err(|_| key_err("decrypting the private key failed: wrong passphrase?"))?;
        let key = p256::ecdsa::SigningKey::from_pkcs8_der(&der).map_err(|e| {
            key_err(format!(
                "the private key is not an ECDSA P-256 PKCS#8 key (the only kind berth signs with): {e}"
            ))
        })?;
        Ok(SigningKey { key })
    }

    /// The key sealed under `passphrase`, as a PEM `ENCRYPTED COSIGN PRIVATE KEY`.
    pub fn to_encrypted_pem(&self, passphrase: &[u8]) -> Result<String> {
        let der = self
            .key
            .to_pkcs8_der()
            .map_err(|e| key_err(format!("encoding the private key: {e}")))?;
        let mut salt = [0u8; 32];
        let mut nonce = [0u8; 24];
        OsRng.fill_bytes(&mut salt);
        OsRng.fill_bytes(&mut nonce);
        let secret = derive(passphrase, &salt, SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P)?;
        let cipher = XSalsa20Poly1305::new((&secret).into());
        let sealed = cipher
            .encrypt((&nonce).into(), der.as_bytes())
            .map_err(|_| key_err("sealing the private key failed"))?;
        let enc = EncryptedKey {
            kdf: Kdf {
                name: "scrypt".into(),
                params: ScryptParams {
                    N: 1 << SCRYPT_LOG_N,
                    r: SCRYPT_R,
                    p: SCRYPT_P,
                },
                salt: b64().encode(salt),
            },
            cipher: Cipher {
                name: "nacl/secretbox".into(),
                nonce: b64().encode(nonce),
            },
            ciphertext: b64().encode(sealed),
        };
        let json = serde_json::to_vec(&enc).map_err(|e| key_err(e.to_string()))?;
        Ok(pem_encode(PRIVATE_KEY_PEM, &json))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            key: *self.key.verifying_key(),
        }
    }

    /// ECDSA over SHA-256 of `message`, ASN.1 DER encoded.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let sig: p256::ecdsa::Signature = self.key.sign(message);
        sig.to_der().as_bytes().to_vec()
    }
}

impl PublicKey {
    /// Reads a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) holding a P-256 key.
    pub fn from_pem(text: &str) -> Result<PublicKey> {
        let (label, _) = pem_decode(text)?;
        if label != PUBLIC_KEY_PEM {
            return Err(key_err(format!(
                "unsupported public key PEM type {label:?} (want \"PUBLIC KEY\")"
            )));
        }
        let key = p256::ecdsa::VerifyingKey::from_public_key_pem(text.trim()).map_err(|e| {
            key_err(format!(
                "the public key is not an ECDSA P-256 key (the only kind berth verifies): {e}"
            ))
        })?;
        Ok(PublicKey { key })
    }

    /// Reads every public key a file holds, in order (a file may hold several PEM blocks).
    pub fn all_from_pem(text: &str) -> Result<Vec<PublicKey>> {
        let mut keys = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("-----BEGIN ") {
            let end = rest[start..]
                .find("-----END ")
                .and_then(|e| {
                    rest[start + e + 9..]
                        .find("-----")
                        .map(|x| start + e + 9 + x + 5)
                })
                .ok_or_else(|| key_err("PEM block without an END line"))?;
            keys.push(PublicKey::from_pem(&rest[start..end])?);
            rest = &rest[end..];
        }
        if keys.is_empty() {
            return Err(key_err("no public key found (not a PEM file)"));
        }
        Ok(keys)
    }

    /// The PEM `PUBLIC KEY` text.
    pub fn to_pem(&self) -> Result<String> {
        let der = self
            .key
            .to_public_key_der()
            .map_err(|e| key_err(format!("encoding the public key: {e}")))?;
        Ok(pem_encode(PUBLIC_KEY_PEM, der.as_bytes()))
    }

    /// `SHA256:<hex>` of the SubjectPublicKeyInfo DER: how inspect names the key.
    pub fn fingerprint(&self) -> String {
        let der = self
            .key
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        format!("SHA256:{}", hex::encode(Sha256::digest(der)))
    }

    /// Whether `signature` (ASN.1 DER) is this key's ECDSA signature over SHA-256 of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = p256::ecdsa::Signature::from_der(signature) else {
            return false;
        };
        // Go's crypto/ecdsa does not normalise s; accept both halves as it does.
        let sig = sig.normalize_s().unwrap_or(sig);
        self.key.verify(message, &sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_pair_round_trip() {
        let (private, public) = generate_key_pair(b"secret").unwrap();
        assert!(private.starts_with("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n"));
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let key = SigningKey::from_encrypted_pem(&private, b"secret").unwrap();
        let pubkey = PublicKey::from_pem(&public).unwrap();
        assert_eq!(key.public_key(), pubkey);
        let sig = key.sign(b"hello");
        assert!(pubkey.verify(b"hello", &sig));
        assert!(!pubkey.verify(b"hellO", &sig));
        let mut bad = sig.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(!pubkey.verify(b"hello", &bad));
        assert!(!pubkey.verify(b"hello", b"junk"));
    }

    #[test]
    fn the_encrypted_file_is_cosigns_json() {
        let (private, _) = generate_key_pair(b"").unwrap();
        let (label, der) = pem_decode(&private).unwrap();
        assert_eq!(label, PRIVATE_KEY_PEM);
        let v: serde_json::Value = serde_json::from_slice(&der).unwrap();
        assert_eq!(v["kdf"]["name"], "scrypt");
        assert_eq!(v["kdf"]["params"]["N"], 32768);
        assert_eq!(v["kdf"]["params"]["r"], 8);
        assert_eq!(v["kdf"]["params"]["p"], 1);
        assert_eq!(v["cipher"]["name"], "nacl/secretbox");
        assert_eq!(
            b64()
                .decode(v["cipher"]["nonce"].as_str().unwrap())
                .unwrap()
                .len(),
            24
        );
        // The sigstore label reads the same.
        let relabelled = private.replace(PRIVATE_KEY_PEM, SIGSTORE_PRIVATE_KEY_PEM);
        SigningKey::from_encrypted_pem(&relabelled, b"").unwrap();
    }

    #[test]
    fn wrong_passphrase_and_bad_files_are_refused() {
        let (private, public) = generate_key_pair(b"right").unwrap();
        let e = SigningKey::from_encrypted_pem(&private, b"wrong").unwrap_err();
        assert!(e.to_string().contains("wrong passphrase"), "{e}");
        assert!(SigningKey::from_encrypted_pem(&public, b"right").is_err());
        assert!(SigningKey::from_encrypted_pem("junk", b"right").is_err());
        assert!(PublicKey::from_pem(&private).is_err());
        assert!(PublicKey::from_pem("junk").is_err());
    }

    #[test]
    fn several_public_keys_in_one_file() {
        let (_, a) = generate_key_pair(b"").unwrap();
        let (_, b) = generate_key_pair(b"").unwrap();
        let keys = PublicKey::all_from_pem(&format!("{a}{b}")).unwrap();
        assert_eq!(keys.len(), 2);
        assert_ne!(keys[0].fingerprint(), keys[1].fingerprint());
    }
}
