//! The one recipient of the encrypted key and its RecipientInfo (RFC 5652 §6.2):
//!
//! * an RSA client certificate: KeyTransRecipientInfo, the content-encryption key encrypted with
//!   RSAES-OAEP (SHA-256, MGF1 with SHA-256; RFC 8017, parameters per RFC 4055). OAEP rather
//!   than PKCS#1 v1.5, which RFC 8017 keeps for compatibility only (Bleichenbacher-style
//!   padding oracles); `openssl cms -decrypt` (1.0.2 and later) and BouncyCastle read it;
//! * an EC P-256/P-384 client certificate: KeyAgreeRecipientInfo, ephemeral-static ECDH
//!   (`dhSinglePass-stdDH-sha256kdf-scheme` for P-256, `…-sha384kdf-scheme` for P-384,
//!   RFC 5753) with the ANSI X9.63 KDF over the ECC-CMS-SharedInfo, the key wrapped with AES-256
//!   key wrap (RFC 3394);
//! * a pre-shared key-encryption key of the handler: KEKRecipientInfo, AES key wrap.
//!
//! Each names its recipient by key identifier: the client certificate's subject key
//! identifier, or the KEK's identifier as configured.

use std::fmt;

use aws_lc_rs::agreement::{self, ECDH_P256, ECDH_P384, EphemeralPrivateKey, UnparsedPublicKey};
use aws_lc_rs::digest;
use aws_lc_rs::key_wrap::{AES_128, AES_256, AesKek, KeyWrap};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
use cms::content_info::CmsVersion;
use cms::enveloped_data::{
    KekIdentifier, KekRecipientInfo, KeyAgreeRecipientIdentifier, KeyAgreeRecipientInfo,
    KeyTransRecipientInfo, OriginatorIdentifierOrKey, OriginatorPublicKey, RecipientEncryptedKey,
    RecipientIdentifier, RecipientInfo, RecipientKeyIdentifier,
};
use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5753, rfc5911, rfc5912};
use der::asn1::{Any, BitString, OctetString};
use der::{Decode, Encode, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use zeroize::Zeroizing;

use super::{der_failed, failed};
use crate::issuance::IssuanceError;

/// Whom the server-generated key is encrypted to.
pub(crate) enum KeyRecipient {
    /// The RSA key of the TLS client certificate.
    Rsa { key_id: Vec<u8>, spki_der: Vec<u8> },
    /// The EC key of the TLS client certificate (uncompressed or compressed point).
    Ec {
        key_id: Vec<u8>,
        curve: EcCurve,
        point: Vec<u8>,
    },
    /// A pre-shared AES key-encryption key (16 or 32 bytes) of the EST handler.
    Kek {
        key_id: Vec<u8>,
        name: String,
        key: Zeroizing<Vec<u8>>,
    },
}

/// The curves a client certificate may have to receive an encrypted key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EcCurve {
    P256,
    P384,
}

impl fmt::Debug for KeyRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyRecipient::Rsa { key_id, .. } => write!(f, "Rsa({})", hex::encode(key_id)),
            KeyRecipient::Ec { key_id, curve, .. } => {
                write!(f, "Ec({curve:?}, {})", hex::encode(key_id))
            }
            KeyRecipient::Kek { name, .. } => write!(f, "Kek({name}, [redacted])"),
        }
    }
}

/// RSAES-OAEP-params (RFC 4055 §4.1); pSourceFunc left at its default (empty label).
#[derive(Sequence)]
struct OaepParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    hash: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT")]
    mask_gen: AlgorithmIdentifierOwned,
}

/// ECC-CMS-SharedInfo (RFC 5753 §7.2), the KDF's shared info.
#[derive(Sequence)]
struct EccCmsSharedInfo {
    key_info: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    entity_u_info: Option<OctetString>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT")]
    supp_pub_info: OctetString,
}

/// Why a client certificate cannot receive an encrypted key.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// It does not parse.
    Malformed,
    /// Its key is of a type that cannot receive one (named).
    KeyType(String),
}

fn algorithm(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: None,
    }
}

impl KeyRecipient {
    /// The recipient of a (verified) client certificate: its key and its key identifier (the
    /// subjectKeyIdentifier extension, else the RFC 5280 method 1 SHA-1 of the key).
    pub(crate) fn of_certificate(der: &[u8]) -> Result<KeyRecipient, Unusable> {
        let certificate = Certificate::from_der(der).map_err(|_| Unusable::Malformed)?;
        let key_id =
            crate::ca::subject_key_identifier(&certificate).map_err(|_| Unusable::Malformed)?;
        let spki: &SubjectPublicKeyInfoOwned =
            certificate.tbs_certificate().subject_public_key_info();
        let point = spki
            .subject_public_key
            .as_bytes()
            .ok_or(Unusable::Malformed)?
            .to_vec();
        match spki.algorithm.oid {
            rfc5912::RSA_ENCRYPTION => Ok(KeyRecipient::Rsa {
                key_id,
                spki_der: spki.to_der().map_err(|_| Unusable::Malformed)?,
            }),
            rfc5912::ID_EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
                let curve = match curve {
                    Some(rfc5912::SECP_256_R_1) => EcCurve::P256,
                    Some(rfc5912::SECP_384_R_1) => EcCurve::P384,
                    Some(other) => return Err(Unusable::KeyType(format!("EC on curve {other}"))),
                    None => return Err(Unusable::KeyType("EC without a named curve".into())),
                };
                Ok(KeyRecipient::Ec {
                    key_id,
                    curve,
                    point,
                })
            }
            const_oid::db::rfc8410::ID_ED_25519 => {
                Err(Unusable::KeyType("Ed25519 (a signature-only key)".into()))
            }
            other => Err(Unusable::KeyType(format!("of algorithm {other}"))),
        }
    }

    /// The identifier the client named its key by.
    pub(crate) fn key_id(&self) -> &[u8] {
        match self {
            KeyRecipient::Rsa { key_id, .. }
            | KeyRecipient::Ec { key_id, .. }
            | KeyRecipient::Kek { key_id, .. } => key_id,
        }
    }

    /// `asymmetric` (the client's certificate key) or `symmetric` (a KEK), for the audit.
    pub(crate) fn form(&self) -> &'static str {
        match self {
            KeyRecipient::Kek { .. } => "symmetric",
            _ => "asymmetric",
        }
    }

    /// How the content-encryption key reaches the recipient, for the audit.
    pub(crate) fn method(&self) -> &'static str {
        match self {
            KeyRecipient::Rsa { .. } => "RSAES-OAEP",
            KeyRecipient::Ec {
                curve: EcCurve::P256,
                ..
            } => "ECDH P-256, AES-256 key wrap",
            KeyRecipient::Ec {
                curve: EcCurve::P384,
                ..
            } => "ECDH P-384, AES-256 key wrap",
            KeyRecipient::Kek { key, .. } if key.len() == 16 => "AES-128 key wrap",
            KeyRecipient::Kek { .. } => "AES-256 key wrap",
        }
    }

    /// The RecipientInfo carrying `cek` to this recipient.
    pub(super) fn recipient_info(&self, cek: &[u8]) -> Result<RecipientInfo, IssuanceError> {
        match self {
            KeyRecipient::Rsa { key_id, spki_der } => key_transport(key_id, spki_der, cek),
            KeyRecipient::Ec {
                key_id,
                curve,
                point,
            } => key_agreement(key_id, *curve, point, cek),
            KeyRecipient::Kek { key_id, key, .. } => {
                let oid = if key.len() == 16 {
                    rfc5911::ID_AES_128_WRAP
                } else {
                    rfc5911::ID_AES_256_WRAP
                };
                Ok(RecipientInfo::Kekri(KekRecipientInfo {
                    version: CmsVersion::V4,
                    kek_id: KekIdentifier {
                        kek_identifier: OctetString::new(key_id.clone()).map_err(der_failed)?,
                        date: None,
                        other: None,
                    },
                    key_enc_alg: algorithm(oid),
                    encrypted_key: OctetString::new(wrap(key, cek)?).map_err(der_failed)?,
                }))
            }
        }
    }
}

/// RFC 3394 AES key wrap of `cek` under `kek` (16 or 32 bytes).
pub(super) fn wrap(kek: &[u8], cek: &[u8]) -> Result<Vec<u8>, IssuanceError> {
    let cipher = if kek.len() == 16 { &AES_128 } else { &AES_256 };
    let kek = AesKek::new(cipher, kek).map_err(|_| failed("AES key-encryption key"))?;
    let mut out = vec![0u8; cek.len() + 8];
    let len = kek
        .wrap(cek, &mut out)
        .map_err(|_| failed("AES key wrap"))?
        .len();
    out.truncate(len);
    Ok(out)
}

fn key_transport(
    key_id: &[u8],
    spki_der: &[u8],
    cek: &[u8],
) -> Result<RecipientInfo, IssuanceError> {
    let public = PublicEncryptingKey::from_der(spki_der).map_err(|_| failed("RSA public key"))?;
    let public = OaepPublicEncryptingKey::new(public).map_err(|_| failed("RSA-OAEP key"))?;
    let mut out = vec![0u8; public.ciphertext_size()];
    let len = public
        .encrypt(&OAEP_SHA256_MGF1SHA256, cek, &mut out, None)
        .map_err(|_| failed("RSA-OAEP encryption"))?
        .len();
    out.truncate(len);
    let params = OaepParams {
        hash: algorithm(rfc5912::ID_SHA_256),
        mask_gen: AlgorithmIdentifierOwned {
            oid: rfc5912::ID_MGF_1,
            parameters: Some(
                Any::encode_from(&algorithm(rfc5912::ID_SHA_256)).map_err(der_failed)?,
            ),
        },
    };
    Ok(RecipientInfo::Ktri(KeyTransRecipientInfo {
        // Version 2: the recipient is named by subjectKeyIdentifier.
        version: CmsVersion::V2,
        rid: RecipientIdentifier::SubjectKeyIdentifier(SubjectKeyIdentifier(
            OctetString::new(key_id.to_vec()).map_err(der_failed)?,
        )),
        key_enc_alg: AlgorithmIdentifierOwned {
            oid: rfc5912::ID_RSAES_OAEP,
            parameters: Some(Any::encode_from(&params).map_err(der_failed)?),
        },
        enc_key: OctetString::new(out).map_err(der_failed)?,
    }))
}

fn key_agreement(
    key_id: &[u8],
    curve: EcCurve,
    point: &[u8],
    cek: &[u8],
) -> Result<RecipientInfo, IssuanceError> {
    let (agreement_algorithm, scheme, hash) = match curve {
        EcCurve::P256 => (
            &ECDH_P256,
            rfc5753::DH_SINGLE_PASS_STD_DH_SHA_256_KDF_SCHEME,
            &digest::SHA256,
        ),
        EcCurve::P384 => (
            &ECDH_P384,
            rfc5753::DH_SINGLE_PASS_STD_DH_SHA_384_KDF_SCHEME,
            &digest::SHA384,
        ),
    };
    let wrap_algorithm = algorithm(rfc5911::ID_AES_256_WRAP);
    let shared_info = EccCmsSharedInfo {
        key_info: wrap_algorithm.clone(),
        entity_u_info: None,
        // The KEK length in bits, a 32-bit big-endian integer.
        supp_pub_info: OctetString::new(256u32.to_be_bytes().to_vec()).map_err(der_failed)?,
    }
    .to_der()
    .map_err(der_failed)?;
    let ephemeral = EphemeralPrivateKey::generate(agreement_algorithm, &SystemRandom::new())
        .map_err(|_| failed("ephemeral EC key"))?;
    let ephemeral_public = ephemeral
        .compute_public_key()
        .map_err(|_| failed("ephemeral EC public key"))?;
    let peer = UnparsedPublicKey::new(agreement_algorithm, point);
    let kek = agreement::agree_ephemeral(ephemeral, peer, failed("ECDH"), |z| {
        Ok(x963_kdf(hash, z, &shared_info, 32))
    })?;
    let encrypted_key = wrap(&kek, cek)?;
    Ok(RecipientInfo::Kari(KeyAgreeRecipientInfo {
        version: CmsVersion::V3,
        originator: OriginatorIdentifierOrKey::OriginatorKey(OriginatorPublicKey {
            // Parameters absent: the curve is the recipient's (RFC 5753 §7.1.2).
            algorithm: algorithm(rfc5912::ID_EC_PUBLIC_KEY),
            public_key: BitString::from_bytes(ephemeral_public.as_ref()).map_err(der_failed)?,
        }),
        ukm: None,
        key_enc_alg: AlgorithmIdentifierOwned {
            oid: scheme,
            parameters: Some(Any::encode_from(&wrap_algorithm).map_err(der_failed)?),
        },
        recipient_enc_keys: vec![RecipientEncryptedKey {
            rid: KeyAgreeRecipientIdentifier::RKeyId(RecipientKeyIdentifier {
                subject_key_identifier: SubjectKeyIdentifier(
                    OctetString::new(key_id.to_vec()).map_err(der_failed)?,
                ),
                date: None,
                other: None,
            }),
            enc_key: OctetString::new(encrypted_key).map_err(der_failed)?,
        }],
    }))
}

/// The ANSI X9.63 KDF (SEC 1 §3.6.1, as RFC 5753 §3.1.1 uses it): `hash(Z ‖ counter ‖
/// SharedInfo)` for counter = 1, 2, … (32-bit big-endian), concatenated and cut to `length`.
/// aws-lc-rs offers the NIST SP 800-56C single-step KDF, whose counter comes first, so it
/// cannot be used for this one.
pub(super) fn x963_kdf(
    hash: &'static digest::Algorithm,
    z: &[u8],
    shared_info: &[u8],
    length: usize,
) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(length + hash.output_len()));
    let mut counter: u32 = 1;
    while out.len() < length {
        let mut context = digest::Context::new(hash);
        context.update(z);
        context.update(&counter.to_be_bytes());
        context.update(shared_info);
        out.extend_from_slice(context.finish().as_ref());
        counter += 1;
    }
    out.truncate(length);
    out
}
