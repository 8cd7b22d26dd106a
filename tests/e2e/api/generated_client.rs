//! A client generated from the served OpenAPI document by openapi-python-client (PyPI) and used
//! as generated, without edits, against the kit's HTTPS gateway over mutual TLS
//! (`tests/api-client/drive.py`): it issues tokens (JSON by default, a per-purpose token, the
//! `pbmac1` profile, and the PKCS#12 file answer), each opened by pyca/cryptography, meets
//! `already-issued` as the error schema, pages through the certificates, downloads and shows one
//! and revokes it. What it reports is checked against the database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use ast_gateway::store::CertificateStatus;
use serde_json::Value;

use crate::kit::{Anchored, TestGateway, append_file, python_venv, run, ser};

const PIN: &str = "Generated-Pin-1";
const SUBJECT: &str = "Generated Client";

/// A per-purpose procedure (EC keys: fast) behind handler 2 (`separate`), and the `pbmac1`
/// profile offered.
fn edit(root: &ast_gateway::config::Root) {
    append_file(
        &root.gateway_toml(),
        r#"
[[token_procedure]]
name = "separate"
layout = "per-purpose"

[[token_procedure.certificate]]
purpose = "authentication"
ca = "issuing"
key = "ec-p256"
validity = "30d"
key_usage = ["digitalSignature"]
extended_key_usage = ["clientAuth"]

[[token_procedure.certificate]]
purpose = "signing"
ca = "issuing"
key = "ec-p256"
validity = "30d"
key_usage = ["nonRepudiation"]
"#,
    );
    let ast = std::fs::read_to_string(root.ast_properties())
        .unwrap()
        .replacing(
            "default.pkcs12.profiles = modern, legacy",
            "default.pkcs12.profiles = modern, legacy, pbmac1",
        );
    std::fs::write(
        root.ast_properties(),
        format!(
            "{ast}\nhandler.2.filter = separate\nhandler.2.format = ast-default.format\nhandler.2.tokenprocedure = separate\n"
        ),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generated_python_client_issues_pages_downloads_and_revokes() {
    let Some(venv) = python_venv("generated_client") else {
        return;
    };
    let gw = TestGateway::start_https(edit).await;
    let (_, officer) = gw
        .officer("Client Officer", &["api-read", "api-issue", "api-revoke"])
        .await;
    let work = tempfile::tempdir().unwrap();

    // The live document, as a user would fetch it.
    let document = gw
        .https_client(None, Duration::from_secs(30))
        .get(gw.https_url("/pgwy/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(document.status(), 200);
    let spec = work.path().join("openapi.json");
    std::fs::write(&spec, document.bytes().await.unwrap()).unwrap();

    let package = work.path().join("ast_gateway_client");
    let generated = run(
        &venv.join("bin/openapi-python-client"),
        &[
            "generate",
            "--path",
            spec.to_str().unwrap(),
            "--meta",
            "none",
            "--output-path",
            package.to_str().unwrap(),
        ],
    );
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&generated.stdout),
        String::from_utf8_lossy(&generated.stderr)
    );
    assert!(generated.status.success(), "{log}");
    // Every operation made it into the client: none was dropped for a response it cannot read.
    assert!(!log.contains("will be omitted"), "{log}");
    for operation in [
        "softtokens/create_soft_token.py",
        "certificates/list_certificates.py",
        "certificates/download_certificate.py",
        "certificates/get_certificate_details.py",
        "certificates/revoke_certificate.py",
        "certificates/reinstate_certificate.py",
        "configuration/list_handlers.py",
        "configuration/list_token_procedures.py",
    ] {
        assert!(package.join("api").join(operation).is_file(), "{operation}");
    }

    let ca = gw.file("root.pem", &gw.root_ca_pem());
    let officer = gw.file("officer.pem", &officer);
    let out = work.path().join("result.json");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api-client/drive.py");
    let args: Vec<String> = vec![
        script.display().to_string(),
        work.path().display().to_string(),
        gw.https_url("/pgwy/api"),
        ca.display().to_string(),
        officer.display().to_string(),
        PIN.into(),
        SUBJECT.into(),
        "separate".into(),
        out.display().to_string(),
    ];
    let python = venv.join("bin/python");
    let driven = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&python, &args)
    })
    .await
    .unwrap();
    assert!(
        driven.status.success(),
        "{}{}",
        String::from_utf8_lossy(&driven.stdout),
        String::from_utf8_lossy(&driven.stderr)
    );

    let result: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let serials = |key: &str| -> Vec<String> {
        result[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let store = gw.gateway.store();
    // Three tokens of two certificates, a per-purpose one, a pbmac1 one and the file answer:
    // 12 certificates for the subject, each listed once over pages of two.
    let issued = serials("issued");
    assert_eq!(issued.len(), 6, "{result}");
    let listed: Vec<String> = serials("listed")
        .iter()
        .map(|s| ser(s).hex().to_string())
        .collect();
    assert_eq!(listed.len(), 12, "{result}");
    assert!(result["pages"].as_u64().unwrap() >= 6, "{result}");
    let mut reported = issued.clone();
    for key in ["perPurpose", "pbmac1"] {
        reported.extend(serials(key));
    }
    reported.push(result["file"].as_str().unwrap().to_string());
    for serial in &reported {
        let serial = ser(serial);
        assert!(
            store.certificate(&serial).await.unwrap().is_some(),
            "{serial} is not in the database"
        );
        assert!(
            listed.contains(&serial.hex().to_string()),
            "{serial} not listed"
        );
    }
    // The revoked one is revoked in the database, with the reason the client sent.
    let revoked = store
        .certificate(&ser(result["revoked"].as_str().unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.status, CertificateStatus::Revoked);
    assert_eq!(
        revoked.revocation_reason,
        Some(ast_gateway::ca::RevocationReason::KeyCompromise)
    );
}
