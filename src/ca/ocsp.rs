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
    let nonce = request_nonce(&request);
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
            extn_id: ID_PKIX_OCSP_NONCE,
            critical: false,
            // The extension value is the DER OCTET STRING holding the nonce (RFC 6960 §4.4.1).
            extn_value: OctetString::new(OctetString::new(value)?.to_der()?)?,
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
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;
    use std::sync::Arc;

    /// The demo intermediate `issuing` (under `root`), loaded like `serve` does.
    fn issuing_ca(dir: &Path) -> Ca {
        super::super::write_demo_hierarchy(dir).unwrap();
        let certificate = super::super::read_certificate_file(&dir.join("issuing.pem")).unwrap();
        let root = super::super::read_certificate_file(&dir.join("root.pem")).unwrap();
        let signer = super::super::FileSigner::from_file(&dir.join("issuing.key")).unwrap();
        Ca::new("issuing", certificate, vec![root], Arc::new(signer)).unwrap()
    }

    fn openssl(dir: &Path, args: &[&str]) -> Option<String> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "openssl {args:?}: {text}");
        Some(text)
    }

    /// Decodes a successful OCSPResponse down to its BasicOCSPResponse, re-encoding each layer
    /// to check the round trip is byte-exact.
    fn basic(der: &[u8]) -> BasicOcspResponse {
        let response = OcspResponse::from_der(der).unwrap();
        assert_eq!(response.to_der().unwrap(), der);
        assert_eq!(response.response_status, OcspResponseStatus::Successful);
        let bytes = response.response_bytes.unwrap();
        assert_eq!(bytes.response_type, ID_PKIX_OCSP_BASIC);
        let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
        assert_eq!(basic.to_der().unwrap(), bytes.response.as_bytes());
        basic
    }

    /// A request made by `openssl ocsp -reqout` (SHA-256 CertIDs, with its default nonce) is
    /// parsed; our signed answer decodes back to what we put in and `openssl ocsp -respin`
    /// verifies its signature, matches its CertIDs to the request and checks the echoed nonce.
    #[test]
    fn openssl_request_parsed_and_answer_verified_by_openssl() {
        let dir = tempfile::tempdir().unwrap();
        let ca = issuing_ca(dir.path());
        let request_args = [
            "ocsp",
            "-issuer",
            "issuing.pem",
            "-sha256",
            "-serial",
            "0x0a01",
            "-serial",
            "0x7fff00",
            "-serial",
            "0x0c",
        ];
        let mut args = request_args.to_vec();
        args.extend(["-reqout", "req.der"]);
        if openssl(dir.path(), &args).is_none() {
            println!("skipped: openssl not installed");
            return;
        }
        let request_der = std::fs::read(dir.path().join("req.der")).unwrap();
        let request = parse_request(&request_der).unwrap();
        let serials: Vec<_> = request
            .queries
            .iter()
            .map(|q| q.serial_hex.as_str())
            .collect();
        assert_eq!(serials, ["0a01", "7fff00", "0c"]);
        assert!(request.queries.iter().all(|q| q.is_issued_by(&ca)));
        let nonce = request.nonce.clone().unwrap();
        assert_eq!(nonce.len(), 16, "openssl's default nonce is 16 octets");

        let now = from_secs(SystemTime::now());
        let revoked_at = now - Duration::from_secs(3600);
        let statuses = [
            OcspStatus::Good,
            OcspStatus::Revoked {
                at: revoked_at,
                reason: Some(RevocationReason::KeyCompromise),
            },
            OcspStatus::Unknown,
        ];
        let answers: Vec<_> = request.queries.iter().zip(statuses).collect();
        let next = now + Duration::from_secs(3600);
        let der = sign_response(&ca, &answers, Some(&nonce), now, next).unwrap();

        let basic = basic(&der);
        let data = &basic.tbs_response_data;
        assert_eq!(data.version, Version::V1);
        assert!(basic.certs.is_none(), "no delegate: no certificate travels");
        assert_eq!(data.responses.len(), 3);
        for (single, query) in data.responses.iter().zip(&request.queries) {
            assert_eq!(single.cert_id, query.cert_id, "CertID echoed unchanged");
            assert_eq!(single.this_update.to_system_time(), now);
            assert_eq!(single.next_update.map(|t| t.to_system_time()), Some(next));
        }
        assert_eq!(data.responses[0].cert_status, CertStatus::Good(Null));
        assert_eq!(
            data.responses[1].cert_status,
            CertStatus::Revoked(RevokedInfo {
                revocation_time: GeneralizedTime::from_system_time(revoked_at).unwrap(),
                revocation_reason: Some(CrlReason::KeyCompromise),
            })
        );
        assert_eq!(data.responses[2].cert_status, CertStatus::Unknown(Null));
        let extensions = data.response_extensions.as_ref().unwrap();
        assert_eq!(extensions.len(), 1);
        assert_eq!(extensions[0].extn_id, ID_PKIX_OCSP_NONCE);
        let echoed = OctetString::from_der(extensions[0].extn_value.as_bytes()).unwrap();
        assert_eq!(echoed.as_bytes(), nonce.as_slice(), "nonce echoed");

        std::fs::write(dir.path().join("resp.der"), &der).unwrap();
        // `-reqin` with no `-serial`: openssl then checks the nonce against that request.
        let args = [
            "ocsp",
            "-reqin",
            "req.der",
            "-respin",
            "resp.der",
            "-CAfile",
            "root.pem",
            "-verify_other",
            "issuing.pem",
            "-resp_text",
        ];
        let out = openssl(dir.path(), &args).unwrap_or_default();
        assert!(out.contains("Response verify OK"), "{out}");
        assert!(!out.contains("WARNING"), "nonce or validity warning: {out}");
        let statuses: Vec<_> = out.lines().filter(|l| l.contains("Cert Status:")).collect();
        assert_eq!(statuses.len(), 3, "{out}");
        assert!(statuses[0].ends_with("good"), "{out}");
        assert!(statuses[1].ends_with("revoked"), "{out}");
        assert!(statuses[2].ends_with("unknown"), "{out}");
        assert!(out.contains("Revocation Reason: keyCompromise"), "{out}");
        assert!(out.contains("Serial Number: 7FFF00"), "{out}");
    }

    fn from_secs(t: SystemTime) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(t.duration_since(UNIX_EPOCH).unwrap().as_secs())
    }

    /// Hand-built requests: the nonce is found among other extensions; a nonce whose value is
    /// not an OCTET STRING, a request without CertIDs and trailing bytes are handled.
    #[test]
    fn request_nonce_and_malformed_requests() {
        let cert_id = asn1::CertId {
            hash_algorithm: spki::AlgorithmIdentifierOwned {
                oid: ID_SHA_1,
                parameters: Some(Null.into()),
            },
            issuer_name_hash: OctetString::new([1u8; 20]).unwrap(),
            issuer_key_hash: OctetString::new([2u8; 20]).unwrap(),
            serial_number: x509_cert::serial_number::SerialNumber::new(&[0x80, 0x01]).unwrap(),
        };
        let extension = |oid, value: &[u8]| Extension {
            extn_id: oid,
            critical: false,
            extn_value: OctetString::new(value).unwrap(),
        };
        let request = |extensions: Option<Vec<Extension>>, count: usize| OcspRequest {
            tbs_request: asn1::TbsRequest {
                version: Version::V1,
                requestor_name: None,
                request_list: vec![
                    asn1::Request {
                        req_cert: cert_id.clone(),
                        single_request_extensions: None,
                    };
                    count
                ],
                request_extensions: extensions,
            },
            optional_signature: None,
        };
        let other = const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.7");
        let der = request(
            Some(vec![
                extension(other, &[0x05, 0x00]),
                extension(ID_PKIX_OCSP_NONCE, &[0x04, 0x03, 7, 8, 9]),
            ]),
            2,
        )
        .to_der()
        .unwrap();
        let parsed = parse_request(&der).unwrap();
        assert_eq!(parsed.nonce.as_deref(), Some(&[7u8, 8, 9][..]));
        assert_eq!(parsed.queries.len(), 2);
        assert_eq!(parsed.queries[0].serial_hex, "8001");
        assert_eq!(parsed.queries[0].cert_id, cert_id);

        let not_octets = extension(ID_PKIX_OCSP_NONCE, &[0x02, 0x01, 0x05]);
        let der = request(Some(vec![not_octets]), 1).to_der().unwrap();
        assert_eq!(parse_request(&der).unwrap().nonce, None);
        let der = request(None, 1).to_der().unwrap();
        assert_eq!(parse_request(&der).unwrap().nonce, None);

        let der = request(None, 0).to_der().unwrap();
        assert!(matches!(
            parse_request(&der),
            Err(OcspFailure::MalformedRequest)
        ));
        let mut der = request(None, 1).to_der().unwrap();
        der.push(0);
        assert!(matches!(
            parse_request(&der),
            Err(OcspFailure::MalformedRequest)
        ));
    }

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
