//! Checking signatures made by one of our CAs' keys on material read from elsewhere: the
//! certificates and CRLs of a CA's history brought in by an import.
//!
//! Only the CA's public key (its certificate) is needed, so a CA whose key sits in an HSM can be
//! checked without a PIN.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5912, rfc8410};
use x509_cert::Certificate;

/// The public key of a CA, ready to check signatures.
#[derive(Debug, Clone)]
pub struct CaPublicKey {
    /// The subjectPublicKey bits (RSAPublicKey, EC point or Ed25519 key).
    key: Vec<u8>,
    kind: KeyKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl CaPublicKey {
    /// The key of a CA certificate; `None` for a key type we cannot check (RSA, ECDSA P-256 /
    /// P-384 and Ed25519 are supported).
    pub fn of(certificate: &Certificate) -> Option<CaPublicKey> {
        let spki = certificate.tbs_certificate().subject_public_key_info();
        let key = spki.subject_public_key.as_bytes()?.to_vec();
        let oid = spki.algorithm.oid;
        let kind = if oid == rfc5912::RSA_ENCRYPTION {
            KeyKind::Rsa
        } else if oid == rfc5912::ID_EC_PUBLIC_KEY {
            // Uncompressed points: 65 bytes on P-256, 97 on P-384.
            match key.len() {
                65 => KeyKind::EcP256,
                97 => KeyKind::EcP384,
                _ => return None,
            }
        } else if oid == rfc8410::ID_ED_25519 {
            KeyKind::Ed25519
        } else {
            return None;
        };
        Some(CaPublicKey { key, kind })
    }

    /// The size of an RSA key in bits (the modulus without its leading zero); `None` for
    /// other keys.
    pub fn rsa_bits(&self) -> Option<usize> {
        use der::Decode;
        if self.kind != KeyKind::Rsa {
            return None;
        }
        let key = super::pkcs11::RsaPublicKey::from_der(&self.key).ok()?;
        Some(key.modulus.as_bytes().len() * 8)
    }

    /// True when `signature` over `signed` (a TBS structure's DER) with the signature
    /// algorithm `algorithm` (dotted OID) verifies under this key.
    pub fn verifies(&self, algorithm: &str, signed: &[u8], signature: &[u8]) -> bool {
        let Some(algorithm) = self.algorithm(algorithm) else {
            return false;
        };
        UnparsedPublicKey::new(algorithm, &self.key)
            .verify(signed, signature)
            .is_ok()
    }

    fn algorithm(&self, oid: &str) -> Option<&'static dyn VerificationAlgorithm> {
        let oid = ObjectIdentifier::new(oid).ok()?;
        Some(match self.kind {
            // sha1WithRSAEncryption: older CAs signed with it; only the check is done here.
            KeyKind::Rsa if oid == rfc5912::SHA_1_WITH_RSA_ENCRYPTION => {
                &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
            }
            KeyKind::Rsa if oid == rfc5912::SHA_256_WITH_RSA_ENCRYPTION => {
                &signature::RSA_PKCS1_2048_8192_SHA256
            }
            KeyKind::Rsa if oid == rfc5912::SHA_384_WITH_RSA_ENCRYPTION => {
                &signature::RSA_PKCS1_2048_8192_SHA384
            }
            KeyKind::Rsa if oid == rfc5912::SHA_512_WITH_RSA_ENCRYPTION => {
                &signature::RSA_PKCS1_2048_8192_SHA512
            }
            KeyKind::EcP256 if oid == rfc5912::ECDSA_WITH_SHA_256 => {
                &signature::ECDSA_P256_SHA256_ASN1
            }
            KeyKind::EcP256 if oid == rfc5912::ECDSA_WITH_SHA_384 => {
                &signature::ECDSA_P256_SHA384_ASN1
            }
            KeyKind::EcP384 if oid == rfc5912::ECDSA_WITH_SHA_256 => {
                &signature::ECDSA_P384_SHA256_ASN1
            }
            KeyKind::EcP384 if oid == rfc5912::ECDSA_WITH_SHA_384 => {
                &signature::ECDSA_P384_SHA384_ASN1
            }
            KeyKind::Ed25519 if oid == rfc8410::ID_ED_25519 => &signature::ED25519,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{FileSigner, issue_ca_certificate};
    use crate::token::{KeyType, generate_key};
    use der::{Decode, Encode};
    use std::time::Duration;

    /// A self-signed CA certificate of each key type: its own signature verifies under its
    /// key (named by the OID in the certificate), a changed byte does not, and only RSA keys
    /// have a size in bits.
    #[test]
    fn self_signed_certificates_verify_under_their_own_key() {
        for (key_type, bits) in [
            (KeyType::Rsa2048, Some(2048)),
            (KeyType::EcP256, None),
            (KeyType::EcP384, None),
            (KeyType::Ed25519, None),
        ] {
            let key = generate_key(key_type).unwrap();
            let signer = FileSigner::from_pkcs8("t", key.pkcs8_der()).unwrap();
            let issued =
                issue_ca_certificate(None, &signer, "T", None, Duration::from_secs(3600), None)
                    .unwrap();
            let certificate = Certificate::from_der(&issued.der).unwrap();
            let public = CaPublicKey::of(&certificate).unwrap();
            assert_eq!(public.rsa_bits(), bits, "{key_type:?}");
            let algorithm = certificate.signature_algorithm().oid.to_string();
            let mut tbs = certificate.tbs_certificate().to_der().unwrap();
            let signature = certificate.signature().raw_bytes();
            assert!(public.verifies(&algorithm, &tbs, signature), "{key_type:?}");
            assert!(!public.verifies("1.2.3.4", &tbs, signature), "{key_type:?}");
            let last = tbs.len() - 1;
            tbs[last] ^= 1;
            assert!(
                !public.verifies(&algorithm, &tbs, signature),
                "{key_type:?}"
            );
        }
    }
}
