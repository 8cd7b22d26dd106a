//! Key pairs for soft tokens, generated with aws-lc-rs.
//!
//! aws-lc-rs is chosen over the `openssl` crate and RustCrypto `rsa` after measuring the three:
//! it is the fastest for EC, on par with RustCrypto for RSA, and it is
//! already the crypto provider of rustls and sqlx, so it adds no second C crypto library.
//!
//! Backend choice for RSA keygen, re-measured for issue 7 (bench/RESULTS.md: 2 vCPU EPYC,
//! shared, medians of 3 alternating rounds of 240 keys on 2 cores). aws-lc-rs 1.19 made
//! 29.9 RSA-2048 keys/s. pyca/cryptography 48 with its bundled OpenSSL 4.0 made 44.3 keys/s
//! (1.5×, about 67 vs 45 ms per key and core). A quiet-machine note measured OpenSSL 3.6 (the
//! `openssl` crate, vendored) at 57 ms per key against 101 ms for aws-lc-rs.
//! OpenSSL is therefore the faster RSA key generator, and the "keys/s ≥ best peer" target is
//! missed with aws-lc-rs. We stay on aws-lc-rs anyway:
//! * the key pool (`pool.rs`) takes keygen out of the request path at light load (p50 of a
//!   default token 8 ms with a warm pool), so the gap shows only at saturation;
//! * a vendored `openssl` would be a second C crypto library (a 5.5-minute build, a second FIPS
//!   and CVE story), while aws-lc-rs is already linked for rustls and sqlx. For P-256 (0.03 ms)
//!   and for PBKDF2 (p12-keystore) the current stack is already 1.8–2.8× faster than OpenSSL;
//! * if RSA capacity at saturation matters more than that, build with the cargo feature
//!   `openssl-rsa`: RSA keys then come from OpenSSL (`rsa.rs`; measured in `bench
//!   --compare-rsa-keygen`), everything else stays on aws-lc-rs.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING};
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use super::rsa::RsaBackend;

use super::TokenError;

/// The key types a token procedure may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KeyType {
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    #[serde(rename = "rsa-4096")]
    Rsa4096,
    #[serde(rename = "ec-p256")]
    EcP256,
    #[serde(rename = "ec-p384")]
    EcP384,
    #[serde(rename = "ed25519")]
    Ed25519,
}

impl KeyType {
    /// Every key type, in documentation order.
    pub const ALL: [KeyType; 6] = [
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
        KeyType::EcP256,
        KeyType::EcP384,
        KeyType::Ed25519,
    ];

    /// The configuration name (`rsa-2048`, …).
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
            KeyType::EcP256 => "ec-p256",
            KeyType::EcP384 => "ec-p384",
            KeyType::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyType::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = KeyType::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown key type `{s}`; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// A freshly generated key pair: the PKCS#8 v1 private key (zeroised on drop) and the X.509
/// SubjectPublicKeyInfo.
pub struct GeneratedKey {
    key_type: KeyType,
    pkcs8: Zeroizing<Vec<u8>>,
    spki: Vec<u8>,
}

impl GeneratedKey {
    /// The key type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }
    /// The private key as PKCS#8 v1 DER. Handle with care: it is the secret.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }
    /// The public key as DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("key_type", &self.key_type)
            .field("pkcs8", &"[redacted]")
            .finish()
    }
}

/// Generates one key pair. CPU-bound (RSA: tens to hundreds of milliseconds): call it from a
/// blocking thread, never on the async reactor.
pub fn generate_key(key_type: KeyType) -> Result<GeneratedKey, TokenError> {
    generate_key_with(key_type, RsaBackend::configured())
}

/// As [`generate_key`], with RSA keys from `rsa` (`bench` compares the backends).
pub fn generate_key_with(key_type: KeyType, rsa: RsaBackend) -> Result<GeneratedKey, TokenError> {
    let err = |_| TokenError::KeyGeneration(key_type);
    let (pkcs8, spki) = match key_type {
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
            let bits = match key_type {
                KeyType::Rsa2048 => 2048,
                KeyType::Rsa3072 => 3072,
                _ => 4096,
            };
            super::rsa::generate(bits, rsa).map_err(|()| TokenError::KeyGeneration(key_type))?
        }
        KeyType::EcP256 | KeyType::EcP384 => {
            let alg = if key_type == KeyType::EcP256 {
                &ECDSA_P256_SHA256_ASN1_SIGNING
            } else {
                &ECDSA_P384_SHA384_ASN1_SIGNING
            };
            let pair = EcdsaKeyPair::generate(alg).map_err(err)?;
            let pkcs8 = pair.to_pkcs8v1().map_err(err)?;
            let spki: PublicKeyX509Der = pair.public_key().as_der().map_err(err)?;
            (pkcs8.as_ref().to_vec(), spki.as_ref().to_vec())
        }
        KeyType::Ed25519 => {
            let pair = Ed25519KeyPair::generate().map_err(err)?;
            // PKCS#8 v1: OpenSSL 3.0 and GnuTLS reject v2 inside PKCS#12.
            let pkcs8 = pair.to_pkcs8v1().map_err(err)?;
            let spki: PublicKeyX509Der = pair.public_key().as_der().map_err(err)?;
            (pkcs8.as_ref().to_vec(), spki.as_ref().to_vec())
        }
    };
    Ok(GeneratedKey {
        key_type,
        pkcs8: Zeroizing::new(pkcs8),
        spki,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::FromDer;

    #[test]
    fn every_key_type_generates_parsable_spki() {
        for kt in [
            KeyType::EcP256,
            KeyType::EcP384,
            KeyType::Ed25519,
            KeyType::Rsa2048,
        ] {
            let key = generate_key(kt).unwrap();
            let (_, spki) =
                x509_parser::x509::SubjectPublicKeyInfo::from_der(key.spki_der()).unwrap();
            assert!(!spki.subject_public_key.data.is_empty(), "{kt}");
            // PKCS#8 v1: version INTEGER 0 right after the outer SEQUENCE header.
            let der = key.pkcs8_der();
            let hdr = if der[1] & 0x80 != 0 {
                2 + (der[1] & 0x7f) as usize
            } else {
                2
            };
            assert_eq!(
                &der[hdr..hdr + 3],
                &[0x02, 0x01, 0x00],
                "{kt} is not PKCS#8 v1"
            );
        }
    }

    #[test]
    fn key_type_names_round_trip() {
        for kt in KeyType::ALL {
            assert_eq!(kt.name().parse::<KeyType>().unwrap(), kt);
        }
        assert!("rsa-1024".parse::<KeyType>().is_err());
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let key = generate_key(KeyType::EcP256).unwrap();
        let s = format!("{key:?}");
        assert!(s.contains("[redacted]"));
        assert!(!s.contains(&format!("{:?}", &key.pkcs8_der()[..8])));
    }
}
