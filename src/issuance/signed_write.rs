//! Signed API writes: a detached CMS SignedData (RFC 5652) over the exact request body, made by
//! the calling officer's key — what `openssl cms -sign -binary -noattr -outform DER` writes —
//! sent base64 in `X-Officer-Signature` and kept in the audit trail, so the action is provable
//! later with the body (or, for bodies holding a password, its digest) and the officer's
//! certificate.
//!
//! The structures are the `cms` crate's; the signature is checked with aws-lc-rs against the
//! public key of the certificate the officer presented in the TLS handshake (never a
//! certificate carried inside the signature), so "signed by the mTLS officer" holds by
//! construction. Only signatures without signed attributes are accepted (`-noattr`): the
//! signature is then over the body itself, which keeps the check small and exact.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use base64::Engine;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5911, rfc5912};
use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectKeyIdentifier;

/// Largest accepted `X-Officer-Signature` (base64). A P-256 or RSA-4096 signature with the
/// signer's certificate and a chain of three is well under this. The audit trail keeps a
/// signature of up to this size whole (the same constant bounds it there).
pub const MAX_SIGNATURE_BASE64: usize = crate::store::SIGNATURE_LIMIT;

/// Why a signed write was refused. Messages say what to do; they never quote the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "this service requires signed writes: send the officer's detached CMS signature of the exact body, base64 DER, in X-Officer-Signature (openssl cms -sign -binary -noattr -outform DER)"
    )]
    Missing,
    #[error("X-Officer-Signature is not usable: {0}")]
    Malformed(String),
    #[error(
        "X-Officer-Signature was not made by the officer of this connection: sign with the key of the client certificate you present"
    )]
    WrongSigner,
    #[error(
        "X-Officer-Signature does not verify over this request body: sign the exact bytes you send (openssl cms -sign -binary)"
    )]
    Invalid,
    #[error("X-Officer-Signature was sent more than once: send exactly one signature header")]
    Duplicate,
    #[error(
        "a signed body must carry \"signedAt\" (RFC 3339 UTC time of signing, e.g. 2025-01-31T12:00:00Z) within {window} seconds of the gateway's clock: {0}",
        window = SIGNED_AT_WINDOW_SECS
    )]
    Stale(String),
    #[error(
        "this signed body was already accepted: a signed write is accepted once. Sign a new body (a new \"signedAt\", or a \"nonce\") for a new request"
    )]
    Replayed,
}

/// How far a signed body's `signedAt` may be from the gateway's clock (either way). A body is
/// accepted once; the gateway remembers it for this long after its `signedAt`.
pub const SIGNED_AT_WINDOW_SECS: i64 = 300;

/// The replay-protection fields of a signed body (everything else is ignored here).
#[derive(serde::Deserialize)]
struct Freshness {
    #[serde(rename = "signedAt")]
    signed_at: Option<String>,
}

/// The `signedAt` of a signed JSON body as Unix seconds, checked against `now` (Unix seconds).
pub fn signed_at(body: &[u8], now: i64) -> Result<i64, SignatureError> {
    let freshness: Freshness = serde_json::from_slice(body)
        .map_err(|_| SignatureError::Stale("the body is not a JSON object with it".into()))?;
    let text = freshness
        .signed_at
        .ok_or_else(|| SignatureError::Stale("it is missing".into()))?;
    let at = crate::timestamp::Timestamp::parse_rfc3339(&text)
        .ok_or_else(|| SignatureError::Stale("it is not an RFC 3339 time".into()))?
        .unix();
    if (now - at).abs() > SIGNED_AT_WINDOW_SECS {
        return Err(SignatureError::Stale(format!(
            "it is {} seconds from now",
            now - at
        )));
    }
    Ok(at)
}

/// A verified signature, as kept in the audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedWrite {
    /// The signature as sent (base64 DER CMS SignedData).
    pub signature: String,
    /// SHA-256 of the signed body, lower-case hex.
    pub body_sha256: String,
    /// The body's `signedAt`, Unix seconds (set by the caller after [`signed_at`]; 0 before).
    pub signed_at: i64,
}

impl SignedWrite {
    /// Adds the signature and the body's SHA-256 to an audit detail (an object; anything else
    /// is left as it is).
    pub fn add_to_audit(&self, detail: &mut serde_json::Value) {
        if let Some(map) = detail.as_object_mut() {
            map.insert("officerSignature".into(), self.signature.clone().into());
            map.insert("signedBodySha256".into(), self.body_sha256.clone().into());
            map.insert("signedAt".into(), self.signed_at.into());
        }
    }
}

/// Verifies `signature` (base64 of a DER ContentInfo holding a detached SignedData) over `body`,
/// made by the key of `officer_der` (the verified TLS client certificate).
pub fn verify(
    signature: &str,
    body: &[u8],
    officer_der: &[u8],
) -> Result<SignedWrite, SignatureError> {
    let malformed = |m: &str| SignatureError::Malformed(m.to_string());
    if signature.len() > MAX_SIGNATURE_BASE64 {
        return Err(malformed("longer than 16 KiB"));
    }
    let compact: String = signature
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| malformed("not base64"))?;
    let content =
        ContentInfo::from_der(&der).map_err(|_| malformed("not a DER CMS ContentInfo"))?;
    if content.content_type != rfc5911::ID_SIGNED_DATA {
        return Err(malformed("not a CMS SignedData"));
    }
    let signed: SignedData = content
        .content
        .decode_as()
        .map_err(|_| malformed("not a DER CMS SignedData"))?;
    if signed.encap_content_info.econtent.is_some() {
        return Err(malformed(
            "the body is embedded; send a detached signature (the body travels as the request body)",
        ));
    }
    let mut signers = signed.signer_infos.0.iter();
    let (Some(signer), None) = (signers.next(), signers.next()) else {
        return Err(malformed("exactly one signer is expected"));
    };
    if signer.signed_attrs.is_some() {
        return Err(malformed(
            "signed attributes are not accepted; sign with -noattr",
        ));
    }
    let officer =
        Certificate::from_der(officer_der).map_err(|_| malformed("unreadable officer"))?;
    if !identifies(&signer.sid, &officer) {
        return Err(SignatureError::WrongSigner);
    }
    let algorithm = algorithm(
        &officer,
        signer.digest_alg.oid,
        signer.signature_algorithm.oid,
    )?;
    let spki = &officer.tbs_certificate().subject_public_key_info();
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| malformed("the officer's public key is not whole bytes"))?;
    UnparsedPublicKey::new(algorithm, key)
        .verify(body, signer.signature.as_bytes())
        .map_err(|_| SignatureError::Invalid)?;
    Ok(SignedWrite {
        signature: compact,
        body_sha256: hex::encode(Sha256::digest(body)),
        signed_at: 0,
    })
}

/// The signer identifier names this certificate: its issuer and serial, or its SKI.
fn identifies(sid: &SignerIdentifier, certificate: &Certificate) -> bool {
    let tbs = certificate.tbs_certificate();
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(isn) => {
            // Compared as DER, so equal names compare equal whatever their in-memory form.
            isn.serial_number == *tbs.serial_number()
                && isn.issuer.to_der().ok() == tbs.issuer().to_der().ok()
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            matches!(tbs.get_extension::<SubjectKeyIdentifier>(), Ok(Some((_, own))) if own == *ski)
        }
    }
}

/// The aws-lc-rs algorithm for the officer's key type, the digest and the signature algorithm
/// of the signer. The signature algorithm must agree with the key and, where it names a digest,
/// with the digest algorithm.
fn algorithm(
    officer: &Certificate,
    digest: ObjectIdentifier,
    signature_algorithm: ObjectIdentifier,
) -> Result<&'static dyn VerificationAlgorithm, SignatureError> {
    let unsupported = || {
        SignatureError::Malformed(
            "unsupported algorithm; use RSA or ECDSA (P-256, P-384) with SHA-256, SHA-384 or SHA-512"
                .into(),
        )
    };
    let spki = officer.tbs_certificate().subject_public_key_info();
    let key_oid = spki.algorithm.oid;
    let named_digest = match signature_algorithm {
        rfc5912::SHA_256_WITH_RSA_ENCRYPTION | rfc5912::ECDSA_WITH_SHA_256 => {
            Some(rfc5912::ID_SHA_256)
        }
        rfc5912::SHA_384_WITH_RSA_ENCRYPTION | rfc5912::ECDSA_WITH_SHA_384 => {
            Some(rfc5912::ID_SHA_384)
        }
        rfc5912::SHA_512_WITH_RSA_ENCRYPTION | rfc5912::ECDSA_WITH_SHA_512 => {
            Some(rfc5912::ID_SHA_512)
        }
        rfc5912::RSA_ENCRYPTION | rfc5912::ID_EC_PUBLIC_KEY => None,
        _ => return Err(unsupported()),
    };
    if named_digest.is_some_and(|d| d != digest) {
        return Err(SignatureError::Malformed(
            "the signature algorithm and the digest algorithm disagree".into(),
        ));
    }
    let rsa_signature = matches!(
        signature_algorithm,
        rfc5912::RSA_ENCRYPTION
            | rfc5912::SHA_256_WITH_RSA_ENCRYPTION
            | rfc5912::SHA_384_WITH_RSA_ENCRYPTION
            | rfc5912::SHA_512_WITH_RSA_ENCRYPTION
    );
    if key_oid == rfc5912::RSA_ENCRYPTION {
        if !rsa_signature {
            return Err(unsupported());
        }
        return match digest {
            rfc5912::ID_SHA_256 => Ok(&signature::RSA_PKCS1_2048_8192_SHA256),
            rfc5912::ID_SHA_384 => Ok(&signature::RSA_PKCS1_2048_8192_SHA384),
            rfc5912::ID_SHA_512 => Ok(&signature::RSA_PKCS1_2048_8192_SHA512),
            _ => Err(unsupported()),
        };
    }
    if key_oid != rfc5912::ID_EC_PUBLIC_KEY || rsa_signature {
        return Err(unsupported());
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    match (curve, digest) {
        (Some(rfc5912::SECP_256_R_1), rfc5912::ID_SHA_256) => {
            Ok(&signature::ECDSA_P256_SHA256_ASN1)
        }
        (Some(rfc5912::SECP_256_R_1), rfc5912::ID_SHA_384) => {
            Ok(&signature::ECDSA_P256_SHA384_ASN1)
        }
        (Some(rfc5912::SECP_256_R_1), rfc5912::ID_SHA_512) => {
            Ok(&signature::ECDSA_P256_SHA512_ASN1)
        }
        (Some(rfc5912::SECP_384_R_1), rfc5912::ID_SHA_256) => {
            Ok(&signature::ECDSA_P384_SHA256_ASN1)
        }
        (Some(rfc5912::SECP_384_R_1), rfc5912::ID_SHA_384) => {
            Ok(&signature::ECDSA_P384_SHA384_ASN1)
        }
        (Some(rfc5912::SECP_384_R_1), rfc5912::ID_SHA_512) => {
            Ok(&signature::ECDSA_P384_SHA512_ASN1)
        }
        _ => Err(unsupported()),
    }
}

#[cfg(test)]
#[path = "signed_write_tests.rs"]
mod tests;
