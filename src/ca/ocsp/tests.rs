//! Unit tests of the OCSP responder: requests parsed, answers decoded back and checked by
//! the `openssl` CLI.

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
    let serials: Vec<_> = request.queries.iter().map(|q| q.serial.hex()).collect();
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

    assert_decoded(&der, &request, &nonce, now, revoked_at, next);
    assert_openssl_verifies(dir.path(), &der);
}

/// Our answer to the three-serial request decodes back to what was put in.
fn assert_decoded(
    der: &[u8],
    request: &ParsedOcspRequest,
    nonce: &[u8],
    now: SystemTime,
    revoked_at: SystemTime,
    next: SystemTime,
) {
    let basic = basic(der);
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
    assert_eq!(echoed.as_bytes(), nonce, "nonce echoed");
}

/// `openssl ocsp -respin` verifies the signature, matches the CertIDs to `req.der` and checks
/// the echoed nonce and each status.
fn assert_openssl_verifies(dir: &Path, der: &[u8]) {
    std::fs::write(dir.join("resp.der"), der).unwrap();
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
    let out = openssl(dir, &args).unwrap_or_default();
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
    let other = const_oid::db::rfc6960::ID_PKIX_OCSP_SERVICE_LOCATOR;
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
    assert_eq!(parsed.queries[0].serial.hex(), "8001");
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
    assert_eq!(
        crate::ca::Serial::from_bytes(&[0x00, 0x7f, 0x01]).hex(),
        "7f01"
    );
    assert_eq!(crate::ca::Serial::from_bytes(&[0x0a, 0x01]).hex(), "0a01");
}
