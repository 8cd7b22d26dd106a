//! The one signing trait and its file-key implementation (PKCS#11 keys: `pkcs11`).

use std::fmt;
use std::io::Write;
use std::path::Path;

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use const_oid::db::rfc5912;
use der::asn1::Null;
use spki::AlgorithmIdentifierOwned;

use super::CaError;

/// Signature algorithms our CAs sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// sha256WithRSAEncryption (RFC 4055 §5: parameters NULL).
    RsaPkcs1Sha256,
    /// ecdsa-with-SHA256 (RFC 5758 §3.2: parameters absent).
    EcdsaSha256,
    /// ecdsa-with-SHA384.
    EcdsaSha384,
    /// id-Ed25519 (RFC 8410 §3: parameters absent).
    Ed25519,
}

impl SignatureAlgorithm {
    /// The AlgorithmIdentifier written into certificates and CRLs.
    pub fn identifier(self) -> AlgorithmIdentifierOwned {
        let (oid, null) = match self {
            SignatureAlgorithm::RsaPkcs1Sha256 => (rfc5912::SHA_256_WITH_RSA_ENCRYPTION, true),
            SignatureAlgorithm::EcdsaSha256 => (rfc5912::ECDSA_WITH_SHA_256, false),
            SignatureAlgorithm::EcdsaSha384 => (rfc5912::ECDSA_WITH_SHA_384, false),
            SignatureAlgorithm::Ed25519 => (const_oid::db::rfc8410::ID_ED_25519, false),
        };
        AlgorithmIdentifierOwned {
            oid,
            parameters: null.then(|| Null.into()),
        }
    }
}

/// Signs with a CA key. One method that matters, so that a key file and an HSM object are two
/// interchangeable implementations.
pub trait Signer: Send + Sync {
    /// The algorithm `sign` produces.
    fn algorithm(&self) -> SignatureAlgorithm;
    /// The public key, DER SubjectPublicKeyInfo.
    fn public_key_der(&self) -> &[u8];
    /// Signs `message` (hashing included), returning the signature as it goes into a BIT STRING
    /// (DER `ECDSA-Sig-Value` for ECDSA).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CaError>;
}

enum FileKey {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair, SignatureAlgorithm),
    Ed25519(Ed25519KeyPair),
}

/// A CA key held in memory, loaded from a PKCS#8 file.
pub struct FileSigner {
    label: String,
    key: FileKey,
    spki: Vec<u8>,
    rng: SystemRandom,
}

impl fmt::Debug for FileSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSigner")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl FileSigner {
    /// Loads an unencrypted PKCS#8 key (PEM `PRIVATE KEY` or DER). Refuses files that group or
    /// others may read: a CA key is the most valuable secret of the installation.
    pub fn from_file(path: &Path) -> Result<Self, CaError> {
        Self::from_file_with_passphrase(path, None)
    }

    /// Loads a CA key file: unencrypted PKCS#8 (PEM or DER), encrypted PKCS#8 (PEM
    /// `ENCRYPTED PRIVATE KEY`, PBES2) or PKCS#12 (`.p12` / `.pfx`, the first key in it). The
    /// last two need `passphrase`. Permissions are checked for every kind.
    pub fn from_file_with_passphrase(
        path: &Path,
        passphrase: Option<&str>,
    ) -> Result<Self, CaError> {
        let file_err = |message: String| CaError::File {
            path: path.display().to_string(),
            message,
        };
        check_private_key_file(path).map_err(file_err)?;
        let bytes = zeroize::Zeroizing::new(
            std::fs::read(path).map_err(|e| file_err(format!("cannot read the CA key: {e}")))?,
        );
        let need_passphrase = |what: &str| {
            file_err(format!(
                "the key is {what}; give its passphrase with `key_passphrase_env` or `key_passphrase_encrypted` in the [[ca]] entry"
            ))
        };
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let der = if extension == "p12" || extension == "pfx" {
            let passphrase = passphrase.ok_or_else(|| need_passphrase("a PKCS#12 file"))?;
            let store = p12_keystore::KeyStore::from_pkcs12(
                &bytes,
                passphrase,
                p12_keystore::Pkcs12ImportPolicy::Relaxed,
            )
            .map_err(|e| {
                file_err(format!(
                    "cannot open the PKCS#12 file (wrong passphrase?): {e}"
                ))
            })?;
            let (_, chain) = store
                .private_key_chain()
                .ok_or_else(|| file_err("the PKCS#12 file holds no private key".into()))?;
            zeroize::Zeroizing::new(chain.key().as_der().to_vec())
        } else if bytes.starts_with(b"-----") {
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| file_err("PEM file is not UTF-8".into()))?;
            let (label, der) = der::pem::decode_vec(text.as_bytes())
                .map_err(|e| file_err(format!("not a PEM file: {e}")))?;
            let der = zeroize::Zeroizing::new(der);
            match label {
                "PRIVATE KEY" => der,
                "ENCRYPTED PRIVATE KEY" => {
                    let passphrase = passphrase.ok_or_else(|| need_passphrase("encrypted"))?;
                    decrypt_pkcs8(&der, passphrase).map_err(file_err)?
                }
                other => {
                    return Err(file_err(format!(
                        "expected a PKCS#8 key (`-----BEGIN PRIVATE KEY-----` or `ENCRYPTED PRIVATE KEY`), found `{other}`; \
                         convert it with `openssl pkcs8 -topk8`"
                    )));
                }
            }
        } else if let Some(passphrase) = passphrase {
            decrypt_pkcs8(&bytes, passphrase).map_err(file_err)?
        } else {
            zeroize::Zeroizing::new(bytes.to_vec())
        };
        Self::from_pkcs8(&path.display().to_string(), &der).map_err(file_err)
    }

    /// Builds a signer from PKCS#8 DER (RSA, P-256, P-384 or Ed25519).
    pub fn from_pkcs8(label: &str, der: &[u8]) -> Result<Self, String> {
        let unsupported =
            "not a supported PKCS#8 private key (RSA, EC P-256, EC P-384 or Ed25519)".to_string();
        let (key, spki) = if let Ok(pair) = RsaKeyPair::from_pkcs8(der) {
            let spki: PublicKeyX509Der = pair
                .public_key()
                .as_der()
                .map_err(|_| unsupported.clone())?;
            (FileKey::Rsa(pair), spki.as_ref().to_vec())
        } else if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der) {
            let spki: PublicKeyX509Der = pair
                .public_key()
                .as_der()
                .map_err(|_| unsupported.clone())?;
            (
                FileKey::Ecdsa(pair, SignatureAlgorithm::EcdsaSha256),
                spki.as_ref().to_vec(),
            )
        } else if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, der) {
            let spki: PublicKeyX509Der = pair
                .public_key()
                .as_der()
                .map_err(|_| unsupported.clone())?;
            (
                FileKey::Ecdsa(pair, SignatureAlgorithm::EcdsaSha384),
                spki.as_ref().to_vec(),
            )
        } else if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            let spki: PublicKeyX509Der = pair
                .public_key()
                .as_der()
                .map_err(|_| unsupported.clone())?;
            (FileKey::Ed25519(pair), spki.as_ref().to_vec())
        } else {
            return Err(unsupported);
        };
        Ok(FileSigner {
            label: label.to_string(),
            key,
            spki,
            rng: SystemRandom::new(),
        })
    }
}

impl Signer for FileSigner {
    fn algorithm(&self) -> SignatureAlgorithm {
        match &self.key {
            FileKey::Rsa(_) => SignatureAlgorithm::RsaPkcs1Sha256,
            FileKey::Ecdsa(_, alg) => *alg,
            FileKey::Ed25519(_) => SignatureAlgorithm::Ed25519,
        }
    }

    fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CaError> {
        let fail = |_| CaError::Signing(self.label.clone());
        match &self.key {
            FileKey::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
                    .map_err(fail)?;
                Ok(sig)
            }
            FileKey::Ecdsa(pair, _) => Ok(pair
                .sign(&self.rng, message)
                .map_err(fail)?
                .as_ref()
                .to_vec()),
            FileKey::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

/// Decrypts a DER EncryptedPrivateKeyInfo (PKCS#8 §6 with PBES2, RFC 8018).
fn decrypt_pkcs8(der: &[u8], passphrase: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
    let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der)
        .map_err(|e| format!("not an encrypted PKCS#8 key: {e}"))?;
    let document = info.decrypt(passphrase.as_bytes()).map_err(|_| {
        "cannot decrypt the key: wrong passphrase or unsupported encryption (use PBES2)".to_string()
    })?;
    Ok(zeroize::Zeroizing::new(document.as_bytes().to_vec()))
}

/// Refuses a private key file (CA key, TLS server key) that group or others can read or
/// write, or that sits in a directory they can write to without the sticky bit (they could
/// replace it). Messages name the mode and the fix, never the key.
#[cfg(unix)]
pub fn check_private_key_file(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read the key file: {e}"))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "the key file is accessible to group or others (mode {mode:o}); run `chmod 600 {}`",
            path.display()
        ));
    }
    let directory = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Ok(meta) = std::fs::metadata(directory) {
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o022 != 0 && mode & 0o1000 == 0 {
            return Err(format!(
                "the key file's directory is writable by group or others (mode {:o}), so they could replace the key; run `chmod go-w {}`",
                mode & 0o777,
                directory.display()
            ));
        }
    }
    Ok(())
}

/// Permissions are not checked where there are none to check.
#[cfg(not(unix))]
pub fn check_private_key_file(_path: &Path) -> Result<(), String> {
    Ok(())
}

/// Writes a PKCS#8 private key as PEM to a new file created with mode 0600.
pub fn write_private_key_pem(path: &Path, pkcs8_der: &[u8]) -> std::io::Result<()> {
    let pem = zeroize::Zeroizing::new(
        der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, pkcs8_der)
            .map_err(|e| std::io::Error::other(e.to_string()))?,
    );
    let mut file = crate::private_files::create(path)?;
    file.write_all(pem.as_bytes())?;
    file.sync_all()
}
