//! OCSP (RFC 6960): parsing requests and signing basic responses with a CA's `Signer`.
//!
//! The ASN.1 types come from `x509-ocsp` 0.2, which still speaks `der` 0.7 / `x509-cert` 0.2
//! while the rest of the crate uses `der` 0.8. The two stacks meet only
//! at DER bytes: algorithm identifiers are re-decoded from their DER, and the to-be-signed
//! bytes go through our one `Signer` trait, so a file key and an HSM key both sign OCSP.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der07::asn1::{GeneralizedTime, Null, OctetString};
use der07::{Decode, Encode};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_cert02::ext::Extension;
use x509_cert02::spki::AlgorithmIdentifierOwned;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse,
    ResponderId, ResponseData, RevokedInfo, SingleResponse, Version,
};

use super::{Ca, CaError, RevocationReason};

const SHA1_OID: &str = "1.3.14.3.2.26";
const SHA256_OID: &str = "2.16.840.1.101.3.4.2.1";
const SHA384_OID: &str = "2.16.840.1.101.3.4.2.2";
const SHA512_OID: &str = "2.16.840.1.101.3.4.2.3";
const NONCE_OID: &str = "1.3.6.1.5.5.7.48.1.2";

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
    /// Serial number, lower-case hex, leading zeros removed (as the store normalises it).
    pub serial_hex: String,
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
}

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
    let nonce = request.nonce().map(|n| n.0.as_bytes().to_vec());
    let queries = request
        .tbs_request
        .request_list
        .into_iter()
        .map(|r| OcspQuery {
            serial_hex: serial_hex(r.req_cert.serial_number.as_bytes()),
            cert_id: r.req_cert,
        })
        .collect();
    Ok(ParsedOcspRequest { queries, nonce })
}

fn serial_hex(bytes: &[u8]) -> String {
    let hex = hex::encode(bytes);
    let trimmed = hex.trim_start_matches('0');
    let trimmed = if trimmed.is_empty() { "0" } else { trimmed };
    if trimmed.len() % 2 == 1 {
        format!("0{trimmed}")
    } else {
        trimmed.to_string()
    }
}

impl OcspQuery {
    /// True when this query names `ca` as issuer: the issuer name hash and issuer key hash
    /// (RFC 6960 §4.1.1) match, with SHA-1, SHA-256, SHA-384 or SHA-512.
    pub fn is_issued_by(&self, ca: &Ca) -> bool {
        let id = &self.cert_id;
        let Ok(name_der) = der::Encode::to_der(ca.certificate().tbs_certificate().subject()) else {
            return false;
        };
        let key = ca
            .certificate()
            .tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes();
        let (name_hash, key_hash) = match id.hash_algorithm.oid.to_string().as_str() {
            SHA1_OID => (Sha1::digest(&name_der).to_vec(), Sha1::digest(key).to_vec()),
            SHA256_OID => (
                Sha256::digest(&name_der).to_vec(),
                Sha256::digest(key).to_vec(),
            ),
            SHA384_OID => (
                Sha384::digest(&name_der).to_vec(),
                Sha384::digest(key).to_vec(),
            ),
            SHA512_OID => (
                Sha512::digest(&name_der).to_vec(),
                Sha512::digest(key).to_vec(),
            ),
            _ => return false,
        };
        id.issuer_name_hash.as_bytes() == name_hash.as_slice()
            && id.issuer_key_hash.as_bytes() == key_hash.as_slice()
    }
}

fn generalized(t: SystemTime) -> Result<OcspGeneralizedTime, CaError> {
    let since = t.duration_since(UNIX_EPOCH).map_err(failure)?;
    // GeneralizedTime in OCSP carries whole seconds (RFC 5280 §4.1.2.5.2 profile).
    let whole = Duration::from_secs(since.as_secs());
    let dt = der07::DateTime::from_unix_duration(whole).map_err(failure)?;
    Ok(OcspGeneralizedTime(GeneralizedTime::from_date_time(dt)))
}

fn crl_reason(reason: RevocationReason) -> x509_cert02::ext::pkix::CrlReason {
    use x509_cert02::ext::pkix::CrlReason as R;
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
    let signer_spki =
        <spki::SubjectPublicKeyInfoOwned as der::Decode>::from_der(signer.public_key_der())?;
    let key = signer_spki.subject_public_key.raw_bytes();
    let responder_id =
        ResponderId::ByKey(OctetString::new(Sha1::digest(key).to_vec()).map_err(failure)?);
    let certs = match delegate {
        Some(d) => Some(vec![
            x509_cert02::Certificate::from_der(&d.certificate_der).map_err(failure)?,
        ]),
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
        };
        responses.push(SingleResponse {
            cert_id: query.cert_id.clone(),
            cert_status,
            this_update: generalized(this_update)?,
            next_update: Some(generalized(next_update)?),
            single_extensions: None,
        });
    }
    let response_extensions = match nonce {
        Some(value) => Some(vec![Extension {
            extn_id: der07::asn1::ObjectIdentifier::new_unwrap(NONCE_OID),
            critical: false,
            // The extension value is the DER OCTET STRING holding the nonce (RFC 6960 §4.4.1).
            extn_value: OctetString::new(
                OctetString::new(value.to_vec())
                    .map_err(failure)?
                    .to_der()
                    .map_err(failure)?,
            )
            .map_err(failure)?,
        }]),
        None => None,
    };
    let tbs = ResponseData {
        version: Version::V1,
        responder_id,
        produced_at: generalized(SystemTime::now())?,
        responses,
        response_extensions,
    };
    let algorithm_der = der::Encode::to_der(&signer.algorithm().identifier())?;
    let algorithm = AlgorithmIdentifierOwned::from_der(&algorithm_der).map_err(failure)?;
    let signature = signer.sign(&tbs.to_der().map_err(failure)?)?;
    let basic = BasicOcspResponse {
        tbs_response_data: tbs,
        signature_algorithm: algorithm,
        signature: der07::asn1::BitString::from_bytes(&signature).map_err(failure)?,
        certs,
    };
    OcspResponse::successful(basic)
        .map_err(failure)?
        .to_der()
        .map_err(failure)
}

/// An unsigned OCSPResponse carrying only an error status.
pub fn failure_response(why: OcspFailure) -> Vec<u8> {
    let (response, code) = match why {
        OcspFailure::MalformedRequest => (OcspResponse::malformed_request(), 1),
        OcspFailure::InternalError => (OcspResponse::internal_error(), 2),
        OcspFailure::TryLater => (OcspResponse::try_later(), 3),
        OcspFailure::Unauthorized => (OcspResponse::unauthorized(), 6),
    };
    // Encoding an ENUMERATED in a SEQUENCE cannot fail; the fallback is the same bytes.
    response
        .to_der()
        .unwrap_or_else(|_| vec![0x30, 0x03, 0x0a, 0x01, code])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_responses_are_der() {
        assert_eq!(
            failure_response(OcspFailure::MalformedRequest),
            vec![0x30, 0x03, 0x0a, 0x01, 0x01]
        );
        assert_eq!(
            failure_response(OcspFailure::Unauthorized),
            vec![0x30, 0x03, 0x0a, 0x01, 0x06]
        );
        assert!(matches!(
            parse_request(b"\x30\x00"),
            Err(OcspFailure::MalformedRequest)
        ));
    }

    #[test]
    fn serials() {
        assert_eq!(serial_hex(&[0x00, 0x7f, 0x01]), "7f01");
        assert_eq!(serial_hex(&[0x0a, 0x01]), "0a01");
    }
}
