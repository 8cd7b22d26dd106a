//! Checking signatures made by one of our CAs' keys on material read from elsewhere: the
//! certificates and CRLs of a CA's history brought in by an import.
//!
//! Only the CA's public key (its certificate) is needed, so a CA whose key sits in an HSM can be
//! checked without a PIN.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
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

const RSA: &str = "1.2.840.113549.1.1.1";
const EC: &str = "1.2.840.10045.2.1";
const ED25519: &str = "1.3.101.112";

impl CaPublicKey {
    /// The key of a CA certificate; `None` for a key type we cannot check (RSA, ECDSA P-256 /
    /// P-384 and Ed25519 are supported).
    pub fn of(certificate: &Certificate) -> Option<CaPublicKey> {
        let spki = certificate.tbs_certificate().subject_public_key_info();
        let key = spki.subject_public_key.as_bytes()?.to_vec();
        let kind = match spki.algorithm.oid.to_string().as_str() {
            RSA => KeyKind::Rsa,
            // Uncompressed points: 65 bytes on P-256, 97 on P-384.
            EC if key.len() == 65 => KeyKind::EcP256,
            EC if key.len() == 97 => KeyKind::EcP384,
            ED25519 => KeyKind::Ed25519,
            _ => return None,
        };
        Some(CaPublicKey { key, kind })
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
        Some(match (self.kind, oid) {
            // sha1WithRSAEncryption: older CAs signed with it; only the check is done here.
            (KeyKind::Rsa, "1.2.840.113549.1.1.5") => {
                &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
            }
            (KeyKind::Rsa, "1.2.840.113549.1.1.11") => &signature::RSA_PKCS1_2048_8192_SHA256,
            (KeyKind::Rsa, "1.2.840.113549.1.1.12") => &signature::RSA_PKCS1_2048_8192_SHA384,
            (KeyKind::Rsa, "1.2.840.113549.1.1.13") => &signature::RSA_PKCS1_2048_8192_SHA512,
            (KeyKind::EcP256, "1.2.840.10045.4.3.2") => &signature::ECDSA_P256_SHA256_ASN1,
            (KeyKind::EcP256, "1.2.840.10045.4.3.3") => &signature::ECDSA_P256_SHA384_ASN1,
            (KeyKind::EcP384, "1.2.840.10045.4.3.2") => &signature::ECDSA_P384_SHA256_ASN1,
            (KeyKind::EcP384, "1.2.840.10045.4.3.3") => &signature::ECDSA_P384_SHA384_ASN1,
            (KeyKind::Ed25519, "1.3.101.112") => &signature::ED25519,
            _ => return None,
        })
    }
}
