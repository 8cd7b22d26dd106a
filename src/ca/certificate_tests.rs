//! Tests of `ca/certificate.rs`.

use super::extensions::extension;
use super::*;
use x509_cert::ext::pkix::CertificatePolicies;

#[test]
fn cps_uris() {
    for good in [
        "https://pki.example.com/cps",
        "http://pki.example.com:8080/cps.pdf?v=2#s",
        "https://[2001:db8::1]/cps",
    ] {
        assert_eq!(parse_cps_uri(good).as_deref(), Ok(good));
    }
    for bad in [
        "pki.example.com/cps",
        "ftp://pki.example.com/cps",
        "https:///cps",
        "https://:443/cps",
        "https://pki.example.com/c ps",
        "https://pki.exämple.com/cps",
        "https://pki.example.com/\ncps",
    ] {
        let message = parse_cps_uri(bad).unwrap_err();
        assert!(message.contains("CPS URI; expected"), "{bad}: {message}");
    }
    assert!(parse_cps_uri(&format!("https://a.example/{}", "x".repeat(1100))).is_err());
}

#[test]
fn a_policy_with_a_cps_encodes_as_rfc_5280_policy_information() {
    let policy = CertificatePolicy {
        oid: ObjectIdentifier::new_unwrap("2.23.140.1.5.4.2"),
        cps: Some("https://pki.example.com/cps".into()),
    };
    let policies = CertificatePolicies(vec![
        policy.encode().unwrap(),
        CertificatePolicy::oid(ObjectIdentifier::new_unwrap("1.2.752.201.3.1"))
            .encode()
            .unwrap(),
    ]);
    let der = extension(rfc5280::ID_CE_CERTIFICATE_POLICIES, false, &policies)
        .unwrap()
        .to_der()
        .unwrap();
    // Read back by an independent parser.
    use x509_parser::prelude::FromDer;
    let (_, parsed) = x509_parser::extensions::X509Extension::from_der(&der).unwrap();
    let x509_parser::extensions::ParsedExtension::CertificatePolicies(policies) =
        parsed.parsed_extension()
    else {
        panic!("not certificate policies: {parsed:?}");
    };
    assert_eq!(policies.len(), 2);
    assert_eq!(policies[0].policy_id.to_id_string(), "2.23.140.1.5.4.2");
    let qualifiers = policies[0].policy_qualifiers.as_ref().unwrap();
    assert_eq!(qualifiers.len(), 1);
    assert_eq!(
        qualifiers[0].policy_qualifier_id.to_id_string(),
        "1.3.6.1.5.5.7.2.1"
    );
    // The qualifier is an IA5String (tag 0x16) holding the URI.
    let uri = b"https://pki.example.com/cps";
    assert_eq!(qualifiers[0].qualifier[0], 0x16);
    assert!(qualifiers[0].qualifier.ends_with(uri));
    assert!(policies[1].policy_qualifiers.is_none());
}
