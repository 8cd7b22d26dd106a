//! The root's secret key and `<param>.encrypted` values of ast.properties.
//!
//! `data/secret.key` holds 32 random bytes as 64 hex digits and a newline, mode 0600. It is
//! written by `init` and by the first `ast-gateway config encrypt`. An encrypted value is
//! `v1:` followed by standard base64 (with padding) of `nonce (12 bytes) ‖ ciphertext ‖ tag
//! (16 bytes)`: AES-256-GCM (aws-lc-rs) under that key, with a fresh random nonce per value
//! and the associated data `ast-gateway config value v1`, so a value is bound to this scheme
//! but may be moved between keys (`default.x.encrypted` → `handler.2.x.encrypted`).
//! Decrypted values never reach logs or error messages.

use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::{hkdf, hmac};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::Root;

const PREFIX: &str = "v1:";
const AAD: &[u8] = b"ast-gateway config value v1";
const KEY_LEN: usize = 32;
/// HKDF salt for sub-keys: fixed, it only separates this use of the key from any other.
const SUBKEY_SALT: &[u8] = b"ast-gateway secret.key sub-keys v1";

/// The root's secret key. Prints as `[redacted]`. The raw bytes are not kept: only the AEAD
/// key for encrypted values and an HKDF pseudo-random key from which sub-keys are derived.
pub struct SecretKey {
    key: LessSafeKey,
    /// HKDF-Extract(SUBKEY_SALT, key): the source of [`SecretKey::derive_hmac_key`].
    subkeys: hkdf::Prk,
    path: PathBuf,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({}: [redacted])", self.path.display())
    }
}

impl Root {
    /// `data/secret.key`: the key of `<param>.encrypted` values.
    pub fn secret_key(&self) -> PathBuf {
        self.data().join("secret.key")
    }

    /// `data/audit-anchors.log`: this node's append-only record of audit chain heads (mode
    /// 0600, one JSON object per line), checked by `ast-gateway audit verify`.
    pub fn audit_anchors(&self) -> PathBuf {
        self.data().join("audit-anchors.log")
    }
}

impl SecretKey {
    /// Reads the root's key; refuses a missing, malformed or group/other-accessible file.
    pub fn load(root: &Root) -> Result<SecretKey, String> {
        let path = root.secret_key();
        let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "cannot read the secret key {}: {e}. The `.encrypted` values were sealed with the \
                 key of the root that made them: copy that root's data/secret.key here (mode \
                 0600), e.g. from another node or a backup. Only if that key is lost, run \
                 `ast-gateway config encrypt` to make a new key and re-encrypt every value",
                path.display()
            )
        })?);
        check_permissions(&path)?;
        let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| {
            format!(
                "{} is not 64 hex digits; restore it from your backup",
                path.display()
            )
        })?);
        Self::from_bytes(&bytes, path)
    }

    /// Reads the root's key, creating it (mode 0600) when there is none.
    pub fn load_or_create(root: &Root) -> Result<SecretKey, String> {
        let path = root.secret_key();
        if !path.exists() {
            create(&path)?;
        }
        Self::load(root)
    }

    fn from_bytes(bytes: &[u8], path: PathBuf) -> Result<SecretKey, String> {
        if bytes.len() != KEY_LEN {
            return Err(format!(
                "{} must hold {KEY_LEN} bytes (64 hex digits); restore it from your backup",
                path.display()
            ));
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| "cannot use the secret key".to_string())?;
        Ok(SecretKey {
            key: LessSafeKey::new(key),
            subkeys: hkdf::Salt::new(hkdf::HKDF_SHA256, SUBKEY_SALT).extract(bytes),
            path,
        })
    }

    /// An HMAC-SHA256 key for one purpose, derived with HKDF-Expand(label) (RFC 5869). The
    /// same file and label always give the same key; different labels give independent keys,
    /// and none of them reveals the secret key itself.
    pub fn derive_hmac_key(&self, label: &str) -> Result<hmac::Key, String> {
        let info = [label.as_bytes()];
        let okm = self
            .subkeys
            .expand(&info, hmac::HMAC_SHA256)
            .map_err(|_| "cannot derive a key from the secret key".to_string())?;
        Ok(hmac::Key::from(okm))
    }

    /// Encrypts a value for a `<param>.encrypted` key.
    pub fn encrypt(&self, plaintext: &str) -> Result<String, String> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| "the random generator failed".to_string())?;
        let mut in_out = Zeroizing::new(plaintext.as_bytes().to_vec());
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut *in_out,
            )
            .map_err(|_| "encryption failed".to_string())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&in_out);
        Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
    }

    /// Decrypts a `<param>.encrypted` value. The error never contains the value.
    pub fn decrypt(&self, value: &str) -> Result<Zeroizing<String>, String> {
        let encoded = value
            .trim()
            .strip_prefix(PREFIX)
            .ok_or_else(|| format!("not an encrypted value; it must start with `{PREFIX}` (produce it with `ast-gateway config encrypt`)"))?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| "the encrypted value is not valid base64; copy it again from `ast-gateway config encrypt`".to_string())?;
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(
                "the encrypted value is too short; copy it again from `ast-gateway config encrypt`"
                    .into(),
            );
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| "bad nonce".to_string())?;
        let mut in_out = Zeroizing::new(sealed.to_vec());
        let plain = self.key.open_in_place(nonce, Aad::from(AAD), &mut in_out).map_err(|_| {
            format!(
                "cannot decrypt: the value was encrypted with another key than {} or was altered; re-encrypt it with `ast-gateway config encrypt`",
                self.path.display()
            )
        })?;
        let text = std::str::from_utf8(plain)
            .map_err(|_| "the decrypted value is not UTF-8".to_string())?;
        Ok(Zeroizing::new(text.to_string()))
    }
}

/// Writes 32 fresh random bytes as hex to a new file with mode 0600.
fn create(path: &Path) -> Result<(), String> {
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    aws_lc_rs::rand::fill(&mut *bytes).map_err(|_| "the random generator failed".to_string())?;
    let text = Zeroizing::new(format!("{}\n", hex::encode(*bytes)));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let mut file = crate::private_files::create(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "the secret key is accessible to group or others (mode {mode:o}); run `chmod 600 {}`",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_tamper_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let key = SecretKey::load_or_create(&root).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(root.secret_key())
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600);
        }
        let a = key.encrypt("s3cret ä").unwrap();
        let b = key.encrypt("s3cret ä").unwrap();
        assert_ne!(a, b, "fresh nonce per value");
        assert!(a.starts_with("v1:") && !a.contains("s3cret"));
        assert_eq!(key.decrypt(&a).unwrap().as_str(), "s3cret ä");
        // Same key after a reload from disk.
        assert_eq!(
            SecretKey::load(&root)
                .unwrap()
                .decrypt(&b)
                .unwrap()
                .as_str(),
            "s3cret ä"
        );

        let mut raw = STANDARD.decode(&a[3..]).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let err = key
            .decrypt(&format!("v1:{}", STANDARD.encode(&raw)))
            .unwrap_err();
        assert!(err.contains("cannot decrypt"), "{err}");
        assert!(key.decrypt("plain").unwrap_err().contains("v1:"));
        assert!(key.decrypt("v1:!!").unwrap_err().contains("base64"));

        let other = tempfile::tempdir().unwrap();
        let other_key = SecretKey::load_or_create(&Root::new(other.path())).unwrap();
        assert!(other_key.decrypt(&a).is_err());

        // Derived sub-keys: stable across reloads, distinct per label and per secret key.
        let tag = |k: &SecretKey, label: &str| {
            hmac::sign(&k.derive_hmac_key(label).unwrap(), b"message")
                .as_ref()
                .to_vec()
        };
        let reloaded = SecretKey::load(&root).unwrap();
        assert_eq!(tag(&key, "audit"), tag(&reloaded, "audit"));
        assert_ne!(tag(&key, "audit"), tag(&key, "other"));
        assert_ne!(tag(&key, "audit"), tag(&other_key, "audit"));
        assert!(
            !format!("{key:?}")
                .contains(&std::fs::read_to_string(root.secret_key()).unwrap()[..16])
        );

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(root.secret_key(), std::fs::Permissions::from_mode(0o644))
                .unwrap();
            assert!(SecretKey::load(&root).unwrap_err().contains("chmod 600"));
        }
    }

    #[test]
    fn a_missing_key_advises_copying_it_not_making_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let e = SecretKey::load(&Root::new(dir.path())).unwrap_err();
        assert!(e.contains("copy that root's data/secret.key here"), "{e}");
        // `config encrypt` makes a different key: only the last resort.
        let copy = e.find("copy that root's").unwrap();
        let encrypt = e.find("config encrypt").unwrap();
        assert!(copy < encrypt, "{e}");
        assert!(e.contains("Only if that key is lost"), "{e}");
    }
}
