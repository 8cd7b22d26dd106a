//! A revoked issuing CA issues nothing: its certificate's revocation (by its parent) is noticed
//! at once on the node that revoked it, without a database lookup per token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ast_gateway::ca::{RevocationReason, Serial};
use ast_gateway::identity::Caller;

use crate::kit::{ALICE, TestGateway};

const PIN: &str = "Str0ng-Pass!";

#[tokio::test]
async fn a_revoked_issuing_ca_refuses_with_ca_revoked_and_issues_nothing() {
    let gw = TestGateway::start().await;
    let before = gw.post("", ALICE, &[("password", PIN)]).await;
    assert_eq!(before.status(), 200);
    let pem = std::fs::read_to_string(gw.root().data().join("ca/issuing.pem")).unwrap();
    let der = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .unwrap()
        .1
        .contents;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let serial = Serial::parse(&cert.raw_serial_as_string().replace(':', "")).unwrap();
    gw.gateway
        .revoke(
            &serial,
            RevocationReason::CaCompromise,
            &Caller::Cli,
            "test",
        )
        .await
        .unwrap();
    let refused = gw.post("", ALICE, &[("password", PIN)]).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(
        refused.headers()["x-ast-error"].to_str().unwrap(),
        "ca-revoked"
    );
    assert_ne!(
        refused.headers()["content-type"].to_str().unwrap(),
        "application/x-pkcs12"
    );
    // The root's CRL lists the issuing CA's certificate.
    let crl = gw.get("/pgwy/crl/root.crl").await.bytes().await.unwrap();
    let (_, crl) = x509_parser::parse_x509_crl(&crl).unwrap();
    assert!(
        crl.iter_revoked_certificates()
            .any(|r| r.raw_serial() == cert.raw_serial()),
        "the issuing CA is not on the root's CRL"
    );
}
