//! The RFC 6960 structures the responder needs, written on `der` 0.8 and `x509-cert` 0.3.
//!
//! Why our own: `x509-ocsp` 0.2 (the only Rust OCSP crate) still speaks `der` 0.7 /
//! `x509-cert` 0.2 and has no release for `der` 0.8, so using it put a second RustCrypto stack
//! in the tree. The handful of types below are plain `der` derives; everything else (Extension,
//! AlgorithmIdentifier, Certificate, Name, GeneralName, CRLReason, serial numbers) is the
//! `x509-cert` 0.3 type used everywhere else in the crate.
//!
//! Tagging: the ASN.1 module of RFC 6960 Appendix B.1 (`OCSP-2013-88`) is
//! `DEFINITIONS EXPLICIT TAGS`, so a context tag is EXPLICIT unless the module says
//! `IMPLICIT` (only the three `CertStatus` alternatives, §4.2.1).

use der::asn1::{BitString, GeneralizedTime, Null, ObjectIdentifier, OctetString};
use der::{Choice, Enumerated, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

/// `Version ::= INTEGER { v1(0) }` (RFC 6960 §4.1.1, §4.2.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Enumerated)]
#[asn1(type = "INTEGER")]
#[repr(u8)]
pub enum Version {
    #[default]
    V1 = 0,
}

/// RFC 6960 §4.1.1:
///
/// ```text
/// OCSPRequest ::= SEQUENCE {
///     tbsRequest                  TBSRequest,
///     optionalSignature   [0]     EXPLICIT Signature OPTIONAL }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct OcspRequest {
    pub tbs_request: TbsRequest,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub optional_signature: Option<Signature>,
}

/// RFC 6960 §4.1.1:
///
/// ```text
/// TBSRequest ::= SEQUENCE {
///     version             [0]     EXPLICIT Version DEFAULT v1,
///     requestorName       [1]     EXPLICIT GeneralName OPTIONAL,
///     requestList                 SEQUENCE OF Request,
///     requestExtensions   [2]     EXPLICIT Extensions OPTIONAL }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct TbsRequest {
    #[asn1(
        context_specific = "0",
        default = "Default::default",
        tag_mode = "EXPLICIT"
    )]
    pub version: Version,
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub requestor_name: Option<GeneralName>,
    pub request_list: Vec<Request>,
    #[asn1(context_specific = "2", optional = "true", tag_mode = "EXPLICIT")]
    pub request_extensions: Option<Extensions>,
}

/// RFC 6960 §4.1.1 (a signed request; parsed so that such requests are accepted, never
/// verified: this responder answers anyone, as RFC 6960 §4.1.2 allows):
///
/// ```text
/// Signature ::= SEQUENCE {
///     signatureAlgorithm      AlgorithmIdentifier,
///     signature               BIT STRING,
///     certs               [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct Signature {
    pub signature_algorithm: AlgorithmIdentifierOwned,
    pub signature: BitString,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub certs: Option<Vec<Certificate>>,
}

/// RFC 6960 §4.1.1:
///
/// ```text
/// Request ::= SEQUENCE {
///     reqCert                     CertID,
///     singleRequestExtensions     [0] EXPLICIT Extensions OPTIONAL }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct Request {
    pub req_cert: CertId,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub single_request_extensions: Option<Extensions>,
}

/// RFC 6960 §4.1.1:
///
/// ```text
/// CertID ::= SEQUENCE {
///     hashAlgorithm       AlgorithmIdentifier,
///     issuerNameHash      OCTET STRING, -- Hash of issuer's DN
///     issuerKeyHash       OCTET STRING, -- Hash of issuer's public key
///     serialNumber        CertificateSerialNumber }
/// ```
///
/// Echoed unchanged in the SingleResponse (clients match on all four fields).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct CertId {
    pub hash_algorithm: AlgorithmIdentifierOwned,
    pub issuer_name_hash: OctetString,
    pub issuer_key_hash: OctetString,
    pub serial_number: SerialNumber,
}

/// RFC 6960 §4.2.1:
///
/// ```text
/// OCSPResponse ::= SEQUENCE {
///     responseStatus         OCSPResponseStatus,
///     responseBytes          [0] EXPLICIT ResponseBytes OPTIONAL }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct OcspResponse {
    pub response_status: OcspResponseStatus,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub response_bytes: Option<ResponseBytes>,
}

/// RFC 6960 §4.2.1 (value 4 is not used):
///
/// ```text
/// OCSPResponseStatus ::= ENUMERATED {
///     successful(0), malformedRequest(1), internalError(2), tryLater(3),
///     sigRequired(5), unauthorized(6) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enumerated)]
#[repr(u32)]
pub enum OcspResponseStatus {
    Successful = 0,
    MalformedRequest = 1,
    InternalError = 2,
    TryLater = 3,
    SigRequired = 5,
    Unauthorized = 6,
}

/// RFC 6960 §4.2.1; `responseType` is id-pkix-ocsp-basic and `response` the DER of a
/// BasicOCSPResponse:
///
/// ```text
/// ResponseBytes ::= SEQUENCE {
///     responseType   OBJECT IDENTIFIER,
///     response       OCTET STRING }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct ResponseBytes {
    pub response_type: ObjectIdentifier,
    pub response: OctetString,
}

/// RFC 6960 §4.2.1:
///
/// ```text
/// BasicOCSPResponse ::= SEQUENCE {
///     tbsResponseData      ResponseData,
///     signatureAlgorithm   AlgorithmIdentifier,
///     signature            BIT STRING,
///     certs            [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct BasicOcspResponse {
    pub tbs_response_data: ResponseData,
    pub signature_algorithm: AlgorithmIdentifierOwned,
    pub signature: BitString,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub certs: Option<Vec<Certificate>>,
}

/// RFC 6960 §4.2.1:
///
/// ```text
/// ResponseData ::= SEQUENCE {
///     version              [0] EXPLICIT Version DEFAULT v1,
///     responderID              ResponderID,
///     producedAt               GeneralizedTime,
///     responses                SEQUENCE OF SingleResponse,
///     responseExtensions   [1] EXPLICIT Extensions OPTIONAL }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct ResponseData {
    #[asn1(
        context_specific = "0",
        default = "Default::default",
        tag_mode = "EXPLICIT"
    )]
    pub version: Version,
    pub responder_id: ResponderId,
    pub produced_at: GeneralizedTime,
    pub responses: Vec<SingleResponse>,
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub response_extensions: Option<Extensions>,
}

/// RFC 6960 §4.2.1; EXPLICIT by the module default (Appendix B.1), so `byKey` is
/// `[2] { OCTET STRING }`, a constructed tag around the OCTET STRING:
///
/// ```text
/// ResponderID ::= CHOICE {
///     byName   [1] Name,
///     byKey    [2] KeyHash }
/// KeyHash ::= OCTET STRING -- SHA-1 hash of responder's public key
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Choice)]
pub enum ResponderId {
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", constructed = "true")]
    ByName(Name),
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", constructed = "true")]
    ByKey(OctetString),
}

/// RFC 6960 §4.2.1:
///
/// ```text
/// SingleResponse ::= SEQUENCE {
///     certID                       CertID,
///     certStatus                   CertStatus,
///     thisUpdate                   GeneralizedTime,
///     nextUpdate         [0]       EXPLICIT GeneralizedTime OPTIONAL,
///     singleExtensions   [1]       EXPLICIT Extensions OPTIONAL }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct SingleResponse {
    pub cert_id: CertId,
    pub cert_status: CertStatus,
    pub this_update: GeneralizedTime,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub next_update: Option<GeneralizedTime>,
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub single_extensions: Option<Extensions>,
}

/// RFC 6960 §4.2.1, the only IMPLICIT tags of the module (`revoked` is then a constructed
/// `[1]` holding the RevokedInfo fields):
///
/// ```text
/// CertStatus ::= CHOICE {
///     good        [0]     IMPLICIT NULL,
///     revoked     [1]     IMPLICIT RevokedInfo,
///     unknown     [2]     IMPLICIT UnknownInfo }
/// UnknownInfo ::= NULL
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Choice)]
pub enum CertStatus {
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    Good(Null),
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true")]
    Revoked(RevokedInfo),
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT")]
    Unknown(Null),
}

/// RFC 6960 §4.2.1 (CRLReason is RFC 5280 §5.3.1's):
///
/// ```text
/// RevokedInfo ::= SEQUENCE {
///     revocationTime              GeneralizedTime,
///     revocationReason    [0]     EXPLICIT CRLReason OPTIONAL }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Sequence)]
pub struct RevokedInfo {
    pub revocation_time: GeneralizedTime,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub revocation_reason: Option<CrlReason>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};
    use std::time::Duration;

    /// 2030-03-17 17:46:40 UTC as DER GeneralizedTime, tag and length included.
    const TIME: &[u8] = b"\x18\x0f20300317174640Z";

    fn time() -> GeneralizedTime {
        GeneralizedTime::from_unix_duration(Duration::from_secs(1_900_000_000)).unwrap()
    }

    fn round_trip<'a, T>(value: &T, expected: &'a [u8])
    where
        T: Encode + Decode<'a> + PartialEq + std::fmt::Debug,
    {
        assert_eq!(value.to_der().unwrap(), expected);
        assert_eq!(&T::from_der(expected).unwrap(), value);
    }

    /// The three IMPLICIT alternatives of CertStatus (RFC 6960 §4.2.1): `[0]`/`[2]` primitive
    /// NULLs, `[1]` constructed with the RevokedInfo fields in place of the SEQUENCE tag, whose
    /// reason keeps its EXPLICIT `[0]`.
    #[test]
    fn cert_status_tags() {
        round_trip(&CertStatus::Good(Null), &[0x80, 0x00]);
        round_trip(&CertStatus::Unknown(Null), &[0x82, 0x00]);
        let revoked = CertStatus::Revoked(RevokedInfo {
            revocation_time: time(),
            revocation_reason: Some(CrlReason::KeyCompromise),
        });
        let expected = [&[0xa1, 0x16][..], TIME, &[0xa0, 0x03, 0x0a, 0x01, 0x01]].concat();
        round_trip(&revoked, &expected);
        let no_reason = CertStatus::Revoked(RevokedInfo {
            revocation_time: time(),
            revocation_reason: None,
        });
        round_trip(&no_reason, &[&[0xa1, 0x11][..], TIME].concat());
    }

    /// ResponderID alternatives are EXPLICIT (module default): `[2]` wraps a whole OCTET STRING.
    #[test]
    fn responder_id_tags() {
        let by_key = ResponderId::ByKey(OctetString::new([0xab; 20]).unwrap());
        let expected = [&[0xa2, 0x16, 0x04, 0x14][..], &[0xab; 20]].concat();
        round_trip(&by_key, &expected);
        let name: Name = "CN=x".parse().unwrap();
        let name_der = name.to_der().unwrap();
        let by_name = ResponderId::ByName(name);
        let expected = [&[0xa1, name_der.len() as u8][..], &name_der].concat();
        round_trip(&by_name, &expected);
    }

    /// ResponseData omits the DEFAULT v1 version; SingleResponse wraps nextUpdate in an
    /// EXPLICIT `[0]`; both decode back equal.
    #[test]
    fn response_data_layout() {
        let single = SingleResponse {
            cert_id: CertId {
                hash_algorithm: AlgorithmIdentifierOwned {
                    oid: const_oid::db::rfc5912::ID_SHA_1,
                    parameters: Some(Null.into()),
                },
                issuer_name_hash: OctetString::new([1; 20]).unwrap(),
                issuer_key_hash: OctetString::new([2; 20]).unwrap(),
                serial_number: SerialNumber::new(&[0x0a, 0x01]).unwrap(),
            },
            cert_status: CertStatus::Good(Null),
            this_update: time(),
            next_update: Some(time()),
            single_extensions: None,
        };
        let single_der = single.to_der().unwrap();
        let tail = [&[0x80, 0x00][..], TIME, &[0xa0, 0x11], TIME].concat();
        assert!(single_der.ends_with(&tail), "{single_der:02x?}");
        round_trip(&single, &single_der);

        let data = ResponseData {
            version: Version::V1,
            responder_id: ResponderId::ByKey(OctetString::new([3; 20]).unwrap()),
            produced_at: time(),
            responses: vec![single],
            response_extensions: None,
        };
        let der = data.to_der().unwrap();
        // Long-form length (0x81 0x90), then the responder ID straight away.
        assert_eq!(
            &der[3..7],
            &[0xa2, 0x16, 0x04, 0x14],
            "no [0] version: {der:02x?}"
        );
        round_trip(&data, &der);
    }

    /// A request without version is v1; one that spells out the DEFAULT v1 (not DER, but
    /// harmless) is accepted as the same request; any other version is refused.
    #[test]
    fn request_version() {
        let tlv = |tag: u8, content: &[u8]| [&[tag, content.len() as u8][..], content].concat();
        let body = |version: &[u8]| {
            // TBSRequest with one CertID (SHA-1 with NULL parameters, empty hashes, serial 1).
            let algorithm = [0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00];
            let cert_id = [
                tlv(0x30, &algorithm),
                vec![0x04, 0x00, 0x04, 0x00, 0x02, 0x01, 0x01],
            ]
            .concat();
            let list = tlv(0x30, &tlv(0x30, &tlv(0x30, &cert_id)));
            tlv(0x30, &tlv(0x30, &[version, &list].concat()))
        };
        let plain = OcspRequest::from_der(&body(&[])).unwrap();
        assert_eq!(plain.tbs_request.version, Version::V1);
        assert_eq!(plain.tbs_request.request_list.len(), 1);
        let explicit = OcspRequest::from_der(&body(&[0xa0, 0x03, 0x02, 0x01, 0x00])).unwrap();
        assert_eq!(explicit, plain);
        assert!(OcspRequest::from_der(&body(&[0xa0, 0x03, 0x02, 0x01, 0x01])).is_err());
    }
}
