//! The certification request of an EST call (PKCS#10, RFC 2986): parsed with x509-cert, its
//! signature verified with aws-lc-rs (proof of possession: the client holds the private key of
//! the public key it asks us to certify), its key type, and what a format may read from it.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5911, rfc5912, rfc8410};
use der::asn1::{AnyRef, BitStringRef, UintRef};
use der::{Decode, Encode, Sequence, Tagged};
use spki::AlgorithmIdentifierOwned;
use x509_cert::request::CertReq;

use super::{EstRefusal, MAX_CSR_BYTES};
use crate::policy::CertificateFacts;
use crate::token::KeyType;

/// id-aa-asymmDecryptKeyID (RFC 7030 §4.4.1.2).
const ASYMMETRIC_DECRYPT_KEY_ID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.54");

/// A key identifier a CSR names (the value of DecryptKeyIdentifier or
/// AsymmetricDecryptKeyIdentifier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KeyId {
    /// The identifier: the OCTET STRING's bytes (RFC 7030), or a text value's UTF-8 bytes.
    pub(super) bytes: Vec<u8>,
    /// Whether the value was text (UTF8String, PrintableString or IA5String), as `openssl req`
    /// writes attribute values.
    pub(super) text: bool,
}

impl KeyId {
    /// The identifier for messages and the audit: the text as sent, else lower-case hex.
    pub(super) fn shown(&self) -> String {
        match std::str::from_utf8(&self.bytes) {
            Ok(text) if self.text => text.chars().take(128).collect(),
            _ => hex::encode(&self.bytes),
        }
    }

    /// Whether it names the key identifier `key_id`: the same bytes, or (text) its hex, in either
    /// case, colons allowed (as `openssl x509 -ext subjectKeyIdentifier` prints it).
    pub(super) fn names(&self, key_id: &[u8]) -> bool {
        if self.bytes == key_id {
            return true;
        }
        let Ok(text) = std::str::from_utf8(&self.bytes) else {
            return false;
        };
        let compact: String = text.chars().filter(|c| *c != ':').collect();
        self.text && hex::decode(compact).is_ok_and(|decoded| decoded == key_id)
    }
}

/// How a serverkeygen CSR asks for its key to be encrypted (RFC 7030 §4.4.1.1, §4.4.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DecryptKey {
    /// DecryptKeyIdentifier: under a symmetric key the client shares with the server.
    Symmetric(KeyId),
    /// AsymmetricDecryptKeyIdentifier: to the key pair with this key identifier.
    Asymmetric(KeyId),
}

/// A certification request, read.
pub(super) struct Csr {
    pub(super) request: CertReq,
    /// The public key, DER SubjectPublicKeyInfo.
    pub(super) spki_der: Vec<u8>,
    /// The key type, when it is one a token procedure can name.
    pub(super) key_type: Option<KeyType>,
    /// Subject and SANs, for `cert:` sources.
    pub(super) facts: CertificateFacts,
    /// The signature verifies under the request's own public key (else why not).
    pub(super) possession: Result<(), String>,
    /// It asks for a server-generated key to be encrypted (RFC 7030 §4.4.1.1, §4.4.1.2), or
    /// why its attribute cannot be read.
    pub(super) decrypt_key: Result<Option<DecryptKey>, String>,
}

/// The request as it was signed: the info exactly as received.
#[derive(Sequence)]
struct SignedRequest<'a> {
    info: AnyRef<'a>,
    algorithm: AlgorithmIdentifierOwned,
    signature: BitStringRef<'a>,
}

/// RSAPublicKey (RFC 8017 §A.1.1).
#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

fn bad(message: impl Into<String>) -> EstRefusal {
    EstRefusal::Csr(message.into())
}

/// Reads a DER certification request (at most [`MAX_CSR_BYTES`]).
pub(super) fn parse(der: &[u8]) -> Result<Csr, EstRefusal> {
    if der.len() > MAX_CSR_BYTES {
        return Err(bad(format!("larger than {MAX_CSR_BYTES} bytes")));
    }
    let request = CertReq::from_der(der).map_err(|_| bad("not a DER PKCS#10 request"))?;
    let signed = SignedRequest::from_der(der).map_err(|_| bad("not a DER PKCS#10 request"))?;
    let spki = &request.info.public_key;
    let spki_der = spki
        .to_der()
        .map_err(|_| bad("the public key cannot be encoded"))?;
    let key_bytes = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| bad("the public key is not whole bytes"))?;
    let key_type = key_type(&spki.algorithm, key_bytes);
    let possession = verify(&signed, &spki.algorithm, key_bytes);
    let decrypt_key = decrypt_key(&request);
    Ok(Csr {
        facts: CertificateFacts::of_request(&request),
        request,
        spki_der,
        key_type,
        possession,
        decrypt_key,
    })
}

/// The DecryptKeyIdentifier or AsymmetricDecryptKeyIdentifier of a request, if it has one:
/// one attribute with one value, an OCTET STRING (or text, as `openssl req` writes it).
fn decrypt_key(request: &CertReq) -> Result<Option<DecryptKey>, String> {
    let mut found = None;
    for attribute in request.info.attributes.iter() {
        let (name, form): (&str, fn(KeyId) -> DecryptKey) = match attribute.oid {
            rfc5911::ID_AA_DECRYPT_KEY_ID => ("DecryptKeyIdentifier", DecryptKey::Symmetric),
            ASYMMETRIC_DECRYPT_KEY_ID => ("AsymmetricDecryptKeyIdentifier", DecryptKey::Asymmetric),
            _ => continue,
        };
        if found.is_some() {
            return Err(
                "it holds DecryptKeyIdentifier or AsymmetricDecryptKeyIdentifier more than once; name one key".into(),
            );
        }
        let bad = || format!("its {name} must hold one OCTET STRING (the key identifier)");
        let mut values = attribute.values.iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(bad());
        };
        let text = matches!(
            value.tag(),
            der::Tag::Utf8String | der::Tag::PrintableString | der::Tag::Ia5String
        );
        if value.tag() != der::Tag::OctetString && !text {
            return Err(bad());
        }
        let bytes = value.value().to_vec();
        if bytes.is_empty() || bytes.len() > 256 {
            return Err(format!("its {name} must be 1 to 256 bytes"));
        }
        found = Some(form(KeyId { bytes, text }));
    }
    Ok(found)
}

/// The token procedure key type of a public key, if it is one.
fn key_type(algorithm: &AlgorithmIdentifierOwned, key: &[u8]) -> Option<KeyType> {
    match algorithm.oid {
        rfc5912::RSA_ENCRYPTION => {
            let rsa = RsaPublicKey::from_der(key).ok()?;
            let modulus = rsa.modulus.as_bytes();
            let first = *modulus.first()?;
            let bits = (modulus.len() - 1) * 8 + (8 - first.leading_zeros() as usize);
            match bits {
                2048 => Some(KeyType::Rsa2048),
                3072 => Some(KeyType::Rsa3072),
                4096 => Some(KeyType::Rsa4096),
                _ => None,
            }
        }
        rfc5912::ID_EC_PUBLIC_KEY => match curve(algorithm)? {
            rfc5912::SECP_256_R_1 => Some(KeyType::EcP256),
            rfc5912::SECP_384_R_1 => Some(KeyType::EcP384),
            _ => None,
        },
        rfc8410::ID_ED_25519 => Some(KeyType::Ed25519),
        _ => None,
    }
}

/// A public key in words, for messages (`RSA 1024 bits`, `EC secp521r1`, …).
pub(super) fn describe_key(csr: &Csr) -> String {
    match csr.key_type {
        Some(k) => k.name().to_string(),
        None => {
            let algorithm = &csr.request.info.public_key.algorithm;
            match (algorithm.oid, curve(algorithm)) {
                (rfc5912::RSA_ENCRYPTION, _) => "an RSA key of another size".into(),
                (rfc5912::ID_EC_PUBLIC_KEY, Some(c)) => format!("an EC key on curve {c}"),
                (oid, _) => format!("a key of algorithm {oid}"),
            }
        }
    }
}

fn curve(algorithm: &AlgorithmIdentifierOwned) -> Option<ObjectIdentifier> {
    algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
}

/// Verifies the request's signature under its own public key.
fn verify(
    signed: &SignedRequest<'_>,
    key_algorithm: &AlgorithmIdentifierOwned,
    key: &[u8],
) -> Result<(), String> {
    let algorithm = algorithm(signed.algorithm.oid, key_algorithm)?;
    let message = signed
        .info
        .to_der()
        .map_err(|_| "the request info cannot be encoded".to_string())?;
    let signature = signed
        .signature
        .as_bytes()
        .ok_or_else(|| "the signature is not whole bytes".to_string())?;
    UnparsedPublicKey::new(algorithm, key)
        .verify(&message, signature)
        .map_err(|_| {
            "its signature does not verify under its public key (no proof of possession)".into()
        })
}

/// The aws-lc-rs algorithm for a signature algorithm and key.
fn algorithm(
    signature_algorithm: ObjectIdentifier,
    key: &AlgorithmIdentifierOwned,
) -> Result<&'static dyn VerificationAlgorithm, String> {
    let unsupported = || {
        format!(
            "the signature algorithm {signature_algorithm} is not supported for this key; sign with SHA-256/384/512 and RSA PKCS#1 v1.5, ECDSA (P-256, P-384) or Ed25519"
        )
    };
    Ok(match (key.oid, signature_algorithm) {
        (rfc5912::RSA_ENCRYPTION, rfc5912::SHA_256_WITH_RSA_ENCRYPTION) => {
            &signature::RSA_PKCS1_2048_8192_SHA256
        }
        (rfc5912::RSA_ENCRYPTION, rfc5912::SHA_384_WITH_RSA_ENCRYPTION) => {
            &signature::RSA_PKCS1_2048_8192_SHA384
        }
        (rfc5912::RSA_ENCRYPTION, rfc5912::SHA_512_WITH_RSA_ENCRYPTION) => {
            &signature::RSA_PKCS1_2048_8192_SHA512
        }
        (rfc8410::ID_ED_25519, rfc8410::ID_ED_25519) => &signature::ED25519,
        (rfc5912::ID_EC_PUBLIC_KEY, digest) => match (curve(key), digest) {
            (Some(rfc5912::SECP_256_R_1), rfc5912::ECDSA_WITH_SHA_256) => {
                &signature::ECDSA_P256_SHA256_ASN1
            }
            (Some(rfc5912::SECP_256_R_1), rfc5912::ECDSA_WITH_SHA_384) => {
                &signature::ECDSA_P256_SHA384_ASN1
            }
            (Some(rfc5912::SECP_256_R_1), rfc5912::ECDSA_WITH_SHA_512) => {
                &signature::ECDSA_P256_SHA512_ASN1
            }
            (Some(rfc5912::SECP_384_R_1), rfc5912::ECDSA_WITH_SHA_256) => {
                &signature::ECDSA_P384_SHA256_ASN1
            }
            (Some(rfc5912::SECP_384_R_1), rfc5912::ECDSA_WITH_SHA_384) => {
                &signature::ECDSA_P384_SHA384_ASN1
            }
            (Some(rfc5912::SECP_384_R_1), rfc5912::ECDSA_WITH_SHA_512) => {
                &signature::ECDSA_P384_SHA512_ASN1
            }
            _ => return Err(unsupported()),
        },
        _ => return Err(unsupported()),
    })
}

#[cfg(test)]
#[path = "csr_tests.rs"]
mod tests;
