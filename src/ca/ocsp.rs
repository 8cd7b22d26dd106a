//! OCSP (RFC 6960): parsing requests and signing basic responses with a CA's `Signer`.
//!
//! The ASN.1 structures are ours (`asn1`, on `der` 0.8 / `x509-cert` 0.3, the one stack of the
//! crate); the to-be-signed bytes go through our one `Signer` trait, so a file key and an HSM
//! key both sign OCSP.

mod asn1;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use const_oid::db::rfc5912::{ID_SHA_1, ID_SHA_256, ID_SHA_384, ID_SHA_512};
use const_oid::db::rfc6960::{ID_PKIX_OCSP_BASIC, ID_PKIX_OCSP_NONCE};
use der::asn1::{BitString, GeneralizedTime, Null, OctetString};
use der::{Decode, Encode};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_cert::Certificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::CrlReason;

use self::asn1::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, OcspResponseStatus,
    ResponderId, ResponseBytes, ResponseData, RevokedInfo, SingleResponse, Version,
};
use super::{Ca, CaError, RevocationReason};

/// A parsed OCSP request: the certificates asked about and the nonce to echo.
#[derive(Debug, Clone)]
pub struct ParsedOcspRequest {
    pub queries: Vec<OcspQuery>,
    /// The nonce extension's value (RFC 6960 §4.4.1), echoed in the response.
    pub nonce: Option<Vec<u8>>,
}

/// One certificate asked about.
#[derive(Debug, Clone)]
pub struct OcspQuery {
    cert_id: CertId,
    /// The serial number asked about.
    pub serial: super::Serial,
}

/// The status to answer for one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspStatus {
    Good,
    Revoked {
        at: SystemTime,
        reason: Option<RevocationReason>,
    },
    Unknown,
    /// A serial the CA never issued, answered `revoked` as RFC 6960 §2.2 allows: revocationTime
    /// 1 January 1970, reason certificateHold, with the extended-revoke extension in the
    /// response.
    NotIssued,
}

/// id-pkix-ocsp-extended-revoke (RFC 6960 §4.4.8).
const ID_PKIX_OCSP_EXTENDED_REVOKE: const_oid::ObjectIdentifier =
    const_oid::db::rfc6960::ID_PKIX_OCSP_EXTENDED_REVOKE;

/// Why an OCSP request gets no signed answer (RFC 6960 §2.3 response status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspFailure {
    MalformedRequest,
    InternalError,
    TryLater,
    Unauthorized,
}

fn failure(e: impl std::fmt::Display) -> CaError {
    CaError::Encoding(format!("OCSP: {e}"))
}

/// Parses a DER OCSPRequest.
pub fn parse_request(der: &[u8]) -> Result<ParsedOcspRequest, OcspFailure> {
    let request = OcspRequest::from_der(der).map_err(|_| OcspFailure::MalformedRequest)?;
    if request.tbs_request.request_list.is_empty() {
        return Err(OcspFailure::MalformedRequest);
    }
    let nonce = request_nonce(&request);
    let queries = request
        .tbs_request
        .request_list
        .into_iter()
        .map(|r| OcspQuery {
            serial: super::Serial::from_bytes(r.req_cert.serial_number.as_bytes()),
            cert_id: r.req_cert,
        })
        .collect();
    Ok(ParsedOcspRequest { queries, nonce })
}

/// The value of the request's nonce extension (RFC 6960 §4.4.1): its `extnValue` holds the DER
/// of `Nonce ::= OCTET STRING`. The first nonce extension counts; one whose value is not an
/// OCTET STRING is ignored, as an absent one.
fn request_nonce(request: &OcspRequest) -> Option<Vec<u8>> {
    let extensions = request.tbs_request.request_extensions.as_ref()?;
    let extension = extensions
        .iter()
        .find(|e| e.extn_id == ID_PKIX_OCSP_NONCE)?;
    OctetString::from_der(extension.extn_value.as_bytes())
        .ok()
        .map(|n| n.as_bytes().to_vec())
}

impl OcspQuery {
    /// True when this query names `ca` as issuer: the issuer name hash and issuer key hash
    /// (RFC 6960 §4.1.1) match, with SHA-1, SHA-256, SHA-384 or SHA-512.
    pub fn is_issued_by(&self, ca: &Ca) -> bool {
        let id = &self.cert_id;
        let Ok(name_der) = ca.certificate().tbs_certificate().subject().to_der() else {
            return false;
        };
        let key = ca
            .certificate()
            .tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes();
        let (name_hash, key_hash) = match id.hash_algorithm.oid {
            ID_SHA_1 => (Sha1::digest(&name_der).to_vec(), Sha1::digest(key).to_vec()),
            ID_SHA_256 => (
                Sha256::digest(&name_der).to_vec(),
                Sha256::digest(key).to_vec(),
            ),
            ID_SHA_384 => (
                Sha384::digest(&name_der).to_vec(),
                Sha384::digest(key).to_vec(),
            ),
            ID_SHA_512 => (
                Sha512::digest(&name_der).to_vec(),
                Sha512::digest(key).to_vec(),
            ),
            _ => return false,
        };
        id.issuer_name_hash.as_bytes() == name_hash.as_slice()
            && id.issuer_key_hash.as_bytes() == key_hash.as_slice()
    }
}

fn generalized(t: SystemTime) -> Result<GeneralizedTime, CaError> {
    let since = t.duration_since(UNIX_EPOCH).map_err(failure)?;
    // GeneralizedTime in OCSP carries whole seconds (RFC 5280 §4.1.2.5.2 profile).
    let whole = Duration::from_secs(since.as_secs());
    Ok(GeneralizedTime::from_unix_duration(whole)?)
}

fn crl_reason(reason: RevocationReason) -> CrlReason {
    use CrlReason as R;
    match reason {
        RevocationReason::Unspecified => R::Unspecified,
        RevocationReason::KeyCompromise => R::KeyCompromise,
        RevocationReason::CaCompromise => R::CaCompromise,
        RevocationReason::AffiliationChanged => R::AffiliationChanged,
        RevocationReason::Superseded => R::Superseded,
        RevocationReason::CessationOfOperation => R::CessationOfOperation,
        RevocationReason::CertificateHold => R::CertificateHold,
        RevocationReason::PrivilegeWithdrawn => R::PrivilegeWithdrawn,
        RevocationReason::AaCompromise => R::AaCompromise,
    }
}

/// Signs a successful basic OCSP response by `ca` (RFC 6960 §4.2.1): responder by key hash,
/// one SingleResponse per query, thisUpdate = `this_update`, nextUpdate = `next_update`, the
/// request's nonce echoed. Returns the DER OCSPResponse.
pub fn sign_response(
    ca: &Ca,
    answers: &[(&OcspQuery, OcspStatus)],
    nonce: Option<&[u8]>,
    this_update: SystemTime,
    next_update: SystemTime,
) -> Result<Vec<u8>, CaError> {
    // Signed by the CA itself, or by its delegated responder whose certificate then travels
    // in `certs` (RFC 6960 §4.2.2.2). ResponderID byKey: SHA-1 of the signer's public key.
    let delegate = ca.ocsp_delegate();
    let signer = delegate.map_or(ca.signer(), |d| d.signer.as_ref());
    let signer_spki = spki::SubjectPublicKeyInfoOwned::from_der(signer.public_key_der())?;
    let key = signer_spki.subject_public_key.raw_bytes();
    let responder_id = ResponderId::ByKey(OctetString::new(Sha1::digest(key).to_vec())?);
    let certs = match delegate {
        Some(d) => Some(vec![Certificate::from_der(&d.certificate_der)?]),
        None => None,
    };
    let mut responses = Vec::with_capacity(answers.len());
    for (query, status) in answers {
        let cert_status = match status {
            OcspStatus::Good => CertStatus::Good(Null),
            OcspStatus::Unknown => CertStatus::Unknown(Null),
            OcspStatus::Revoked { at, reason } => CertStatus::Revoked(RevokedInfo {
                revocation_time: generalized(*at)?,
                revocation_reason: reason.map(crl_reason),
            }),
            OcspStatus::NotIssued => CertStatus::Revoked(RevokedInfo {
                revocation_time: generalized(UNIX_EPOCH)?,
                revocation_reason: Some(CrlReason::CertificateHold),
            }),
        };
        responses.push(SingleResponse {
            cert_id: query.cert_id.clone(),
            cert_status,
            this_update: generalized(this_update)?,
            next_update: Some(generalized(next_update)?),
            single_extensions: None,
        });
    }
    let mut extensions = Vec::new();
    if let Some(value) = nonce {
        extensions.push(Extension {
            extn_id: ID_PKIX_OCSP_NONCE,
            critical: false,
            // The extension value is the DER OCTET STRING holding the nonce (RFC 6960 §4.4.1).
            extn_value: OctetString::new(OctetString::new(value)?.to_der()?)?,
        });
    }
    if answers.iter().any(|(_, s)| *s == OcspStatus::NotIssued) {
        extensions.push(Extension {
            extn_id: ID_PKIX_OCSP_EXTENDED_REVOKE,
            critical: false,
            extn_value: OctetString::new(Null.to_der()?)?,
        });
    }
    let response_extensions = (!extensions.is_empty()).then_some(extensions);
    let tbs = ResponseData {
        version: Version::V1,
        responder_id,
        produced_at: generalized(SystemTime::now())?,
        responses,
        response_extensions,
    };
    let signature = signer.sign(&tbs.to_der()?)?;
    let basic = BasicOcspResponse {
        tbs_response_data: tbs,
        signature_algorithm: signer.algorithm().identifier(),
        signature: BitString::from_bytes(&signature)?,
        certs,
    };
    let response = OcspResponse {
        response_status: OcspResponseStatus::Successful,
        response_bytes: Some(ResponseBytes {
            response_type: ID_PKIX_OCSP_BASIC,
            response: OctetString::new(basic.to_der()?)?,
        }),
    };
    Ok(response.to_der()?)
}

/// An unsigned OCSPResponse carrying only an error status.
pub fn failure_response(why: OcspFailure) -> Vec<u8> {
    let status = match why {
        OcspFailure::MalformedRequest => OcspResponseStatus::MalformedRequest,
        OcspFailure::InternalError => OcspResponseStatus::InternalError,
        OcspFailure::TryLater => OcspResponseStatus::TryLater,
        OcspFailure::Unauthorized => OcspResponseStatus::Unauthorized,
    };
    let code = status as u8;
    let response = OcspResponse {
        response_status: status,
        response_bytes: None,
    };
    // Encoding an ENUMERATED in a SEQUENCE cannot fail; the fallback is the same bytes.
    response
        .to_der()
        .unwrap_or_else(|_| vec![0x30, 0x03, 0x0a, 0x01, code])
}

#[cfg(test)]
mod tests;
