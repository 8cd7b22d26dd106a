//! Issue 2: soft tokens end to end on the embedded default.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use ast_gateway::store::CertificateFilter;
use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};
use x509_parser::prelude::*;

use crate::kit::{ALICE, Anchored, TestGateway, pem_blocks, run, run_ok, skipped, tool};

const PIN: &str = "Str0ng-Pass!";

/// Leaf certificates (DER) and friendly names of the key entries in a PKCS#12.
fn open_token(p12: &[u8], pin: &str) -> Vec<(String, Vec<u8>, usize)> {
    let store = KeyStore::from_pkcs12(p12, pin, Pkcs12ImportPolicy::Strict).expect("PKCS#12 opens");
    let mut out = Vec::new();
    for (alias, entry) in store.entries() {
        if let KeyStoreEntry::PrivateKeyChain(chain) = entry {
            let leaf = chain.certs()[0].as_der().to_vec();
            out.push((alias.clone(), leaf, chain.certs().len()));
        }
    }
    out
}

#[tokio::test]
async fn happy_path_headers_token_and_database_agree() {
    let gw = TestGateway::start().await;
    let response = gw.post("", ALICE, &[("password", PIN)]).await;
    assert_eq!(response.status(), 200);
    let h = response.headers().clone();
    assert_eq!(h["content-type"], "application/x-pkcs12");
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"Alice Andersson.p12\""
    );
    assert_eq!(h["cache-control"], "no-store");
    let cookie = h["set-cookie"].to_str().unwrap();
    assert_eq!(cookie, "downloaded=true; Path=/; SameSite=Strict");
    assert!(!cookie.to_ascii_lowercase().contains("httponly"));
    let p12 = response.bytes().await.unwrap();

    let entries = open_token(&p12, PIN);
    let names: BTreeSet<_> = entries.iter().map(|(n, _, _)| n.to_lowercase()).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "alice andersson authentication".to_string(),
            "alice andersson signing".to_string()
        ])
    );
    for (name, der, chain_len) in &entries {
        assert_eq!(*chain_len, 3, "{name}: leaf + issuing + root");
        let (_, cert) = X509Certificate::from_der(der).unwrap();
        let cn: Vec<_> = cert
            .subject()
            .iter_common_name()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        assert_eq!(cn, ["Alice Andersson"]);
        assert_eq!(
            cert.subject()
                .iter_country()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            "SE"
        );
        assert_eq!(cert.raw_serial().len(), 20);
        assert!(cert.raw_serial()[0] < 0x80);
        let bc = cert.basic_constraints().unwrap().unwrap().value;
        assert!(!bc.ca);
        let ku = cert.key_usage().unwrap().unwrap().value;
        let san = cert.subject_alternative_name().unwrap().unwrap().value;
        assert!(
            san.general_names
                .iter()
                .any(|g| matches!(g, GeneralName::RFC822Name("alice@example.com")))
        );
        let days = (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp())
            / 86_400;
        assert!((365..=366).contains(&days), "{days} days");
        if name.to_lowercase().ends_with("authentication") {
            assert!(ku.digital_signature() && !ku.non_repudiation());
            let eku = cert.extended_key_usage().unwrap().unwrap().value;
            assert!(eku.client_auth && eku.email_protection);
        } else {
            assert!(ku.non_repudiation() && !ku.digital_signature());
        }
        match cert.public_key().parsed().unwrap() {
            x509_parser::public_key::PublicKey::RSA(rsa) => assert_eq!(rsa.key_size(), 2048),
            other => panic!("expected RSA-2048, got {other:?}"),
        }
    }

    // Every delivered certificate is in the database, and nothing else is.
    let rows = gw
        .gateway
        .store()
        .certificates(&CertificateFilter::default())
        .await
        .unwrap();
    let delivered: BTreeSet<Vec<u8>> = entries.iter().map(|(_, d, _)| d.clone()).collect();
    let recorded: BTreeSet<Vec<u8>> = rows.iter().map(|r| r.der.clone()).collect();
    assert_eq!(delivered, recorded);
    assert_eq!(
        rows.iter()
            .map(|r| r.token_id.clone())
            .collect::<BTreeSet<_>>()
            .len(),
        1
    );
    for row in &rows {
        let (_, cert) = X509Certificate::from_der(&row.der).unwrap();
        assert_eq!(row.serial.hex(), hex::encode(cert.raw_serial()));
        assert!(row.subject.contains("CN=Alice Andersson"));
    }
    assert_eq!(
        gw.gateway.store().verify_audit().await.unwrap().first_bad,
        None
    );
}

#[tokio::test]
async fn both_profiles_open_in_independent_parsers_and_chain_verifies() {
    let gw = TestGateway::start().await;
    let chain_pem = gw.get("/pgwy/ca/issuing.pem").await.text().await.unwrap();
    let blocks = pem_blocks(&chain_pem);
    assert_eq!(blocks.len(), 2, "issuing CA first, then the root");
    let issuing = gw.file("issuing.pem", blocks[0].as_bytes());
    let root = gw.file("root.pem", blocks[1].as_bytes());

    for profile in ["modern", "legacy"] {
        let response = gw
            .post("", ALICE, &[("password", PIN), ("profile", profile)])
            .await;
        assert_eq!(response.status(), 200, "{profile}");
        let p12 = response.bytes().await.unwrap();
        let path = gw.file(&format!("{profile}.p12"), &p12);
        let path_s = path.to_str().unwrap();
        assert_eq!(open_token(&p12, PIN).len(), 2);

        match tool("openssl") {
            None => skipped("openssl", "openssl not installed"),
            Some(openssl) => {
                let info = run_ok(
                    &openssl,
                    &[
                        "pkcs12",
                        "-info",
                        "-noout",
                        "-in",
                        path_s,
                        "-passin",
                        &format!("pass:{PIN}"),
                    ],
                );
                if profile == "modern" {
                    assert!(info.contains("MAC: sha256"), "{info}");
                    assert!(
                        info.contains("PBES2, PBKDF2, AES-256-CBC, Iteration 10000"),
                        "{info}"
                    );
                } else {
                    assert!(info.contains("MAC: sha1"), "{info}");
                    assert!(info.contains("pbeWithSHA1And3-KeyTripleDES-CBC"), "{info}");
                    assert!(!info.contains("RC2"), "{info}");
                }
                let keys = run_ok(
                    &openssl,
                    &[
                        "pkcs12",
                        "-in",
                        path_s,
                        "-nocerts",
                        "-nodes",
                        "-passin",
                        &format!("pass:{PIN}"),
                    ],
                );
                assert_eq!(keys.matches("BEGIN PRIVATE KEY").count(), 2, "{keys}");
                let certs = run_ok(
                    &openssl,
                    &[
                        "pkcs12",
                        "-in",
                        path_s,
                        "-nokeys",
                        "-clcerts",
                        "-passin",
                        &format!("pass:{PIN}"),
                    ],
                );
                for (i, leaf) in pem_blocks(&certs).iter().enumerate() {
                    let leaf_path = gw.file(&format!("{profile}-leaf{i}.pem"), leaf.as_bytes());
                    let out = run_ok(
                        &openssl,
                        &[
                            "verify",
                            "-CAfile",
                            root.to_str().unwrap(),
                            "-untrusted",
                            issuing.to_str().unwrap(),
                            leaf_path.to_str().unwrap(),
                        ],
                    );
                    assert!(out.contains(": OK"), "{out}");
                }
            }
        }
        match tool("keytool") {
            None => skipped("keytool", "Java keytool not installed"),
            Some(keytool) => {
                let out = run_ok(
                    &keytool,
                    &[
                        "-list",
                        "-v",
                        "-keystore",
                        path_s,
                        "-storetype",
                        "PKCS12",
                        "-storepass",
                        PIN,
                    ],
                );
                assert_eq!(out.matches("PrivateKeyEntry").count(), 2, "{out}");
                assert!(out.contains("Certificate chain length: 3"), "{out}");
                let dest = gw.root.path().join(format!("{profile}.jks"));
                run_ok(
                    &keytool,
                    &[
                        "-importkeystore",
                        "-srckeystore",
                        path_s,
                        "-srcstoretype",
                        "PKCS12",
                        "-srcstorepass",
                        PIN,
                        "-destkeystore",
                        dest.to_str().unwrap(),
                        "-deststoretype",
                        "PKCS12",
                        "-deststorepass",
                        PIN,
                        "-noprompt",
                    ],
                );
            }
        }
        match (tool("pk12util"), tool("certutil")) {
            (Some(pk12util), Some(certutil)) => {
                let db = gw.root.path().join(format!("nss-{profile}"));
                std::fs::create_dir_all(&db).unwrap();
                let db_arg = format!("sql:{}", db.display());
                run_ok(&certutil, &["-N", "-d", &db_arg, "--empty-password"]);
                let list = run_ok(&pk12util, &["-l", path_s, "-W", PIN, "-d", &db_arg]);
                assert!(list.contains("Alice Andersson"), "{list}");
                run_ok(
                    &pk12util,
                    &["-i", path_s, "-W", PIN, "-K", "", "-d", &db_arg],
                );
                let keys = run_ok(&certutil, &["-K", "-d", &db_arg]);
                assert_eq!(
                    keys.lines().filter(|l| l.contains("rsa")).count(),
                    2,
                    "{keys}"
                );
            }
            _ => skipped("pk12util", "NSS tools (libnss3-tools) not installed"),
        }
        match tool("certtool") {
            None => skipped("certtool", "GnuTLS certtool (gnutls-bin) not installed"),
            Some(certtool) => {
                let out = run_ok(
                    &certtool,
                    &[
                        "--p12-info",
                        "--inder",
                        "--infile",
                        path_s,
                        "--password",
                        PIN,
                    ],
                );
                assert!(out.contains("Alice Andersson"), "{out}");
            }
        }
    }
}

#[tokio::test]
async fn refusals_issue_nothing_and_are_audited() {
    let gw = TestGateway::start().await;
    let cases: Vec<(u16, &str, reqwest::Response)> = vec![
        (
            400,
            "field-missing",
            gw.post("", &[("country", "SE")], &[("password", PIN)])
                .await,
        ),
        (
            400,
            "password-policy",
            gw.post("", ALICE, &[("password", "12345")]).await,
        ),
        (
            400,
            "bad-request",
            gw.post("", ALICE, &[("pin", PIN)]).await,
        ),
        (
            400,
            "bad-request",
            gw.post("", ALICE, &[("password", PIN), ("profile", "pbmac9")])
                .await,
        ),
        (
            400,
            "field-invalid",
            gw.post(
                "",
                &[("commonname", "Bob"), ("country", "Sweden")],
                &[("password", PIN)],
            )
            .await,
        ),
        (
            400,
            "field-invalid",
            gw.post(
                "",
                &[("commonname", "Bob"), ("email", "not-an-address")],
                &[("password", PIN)],
            )
            .await,
        ),
        (
            404,
            "no-handler",
            gw.post("/nosuch", ALICE, &[("password", PIN)]).await,
        ),
    ];
    let count = cases.len() as i64;
    for (status, code, response) in cases {
        assert_eq!(response.status().as_u16(), status, "{code}");
        assert_eq!(response.headers()["x-ast-error"], code);
        assert!(response.headers().contains_key("x-request-id"));
        let body = response.text().await.unwrap();
        assert!(
            body.contains(code) && body.contains("role=\"alert\""),
            "{body}"
        );
        assert!(!body.contains(PIN), "the PIN must never come back");
    }
    // Not form-encoded.
    let response = crate::kit::client()
        .post(format!("{}/pgwy/ast", gw.base))
        .header("commonname", "Alice")
        .body(format!("password={PIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["x-ast-error"], "bad-request");
    // Too large.
    let big = "x".repeat(64 * 1024);
    let response = gw
        .post("", ALICE, &[("password", PIN), ("pad", &big)])
        .await;
    assert_eq!(response.status(), 413);
    assert_eq!(response.headers()["x-ast-error"], "too-large");

    let store = gw.gateway.store();
    assert_eq!(
        store.count_certificates().await.unwrap(),
        0,
        "a refusal issued a certificate"
    );
    // Repeated codes are counted in memory until written as one aggregate row.
    store.flush_refusals().await.unwrap();
    assert!(
        store.count_audit().await.unwrap() >= count,
        "every domain refusal is audited"
    );
    assert_eq!(store.verify_audit().await.unwrap().first_bad, None);
}

#[tokio::test]
async fn untrusted_peer_is_refused() {
    let gw = TestGateway::start_with(|root| {
        let path = root.gateway_toml();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            path,
            text.replacing(
                "proxies = [\"127.0.0.1/32\", \"::1/128\"]",
                "proxies = [\"192.0.2.0/24\"]",
            ),
        )
        .unwrap();
    })
    .await;
    let response = crate::kit::client()
        .post(format!("{}/pgwy/ast", gw.base))
        .header("commonname", "Mallory")
        .header("x-forwarded-for", "192.0.2.10")
        .form(&[("password", PIN)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["x-ast-error"], "untrusted-caller");
    assert_eq!(gw.gateway.store().count_certificates().await.unwrap(), 0);
    assert_eq!(gw.gateway.store().count_audit().await.unwrap(), 1);
}

#[tokio::test]
async fn dn_injection_stays_one_common_name() {
    let gw = TestGateway::start().await;
    let response = gw
        .post(
            "",
            &[("commonname", "Alice, O=Evil"), ("organization", "Good")],
            &[("password", PIN)],
        )
        .await;
    assert_eq!(response.status(), 200);
    let p12 = response.bytes().await.unwrap();
    for (_, der, _) in open_token(&p12, PIN) {
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        let cns: Vec<_> = cert
            .subject()
            .iter_common_name()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        assert_eq!(cns, ["Alice, O=Evil"]);
        let os: Vec<_> = cert
            .subject()
            .iter_organization()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        assert_eq!(os, ["Good"]);
    }
    assert_eq!(
        gw.post(
            "",
            &[
                ("commonname", "Alice"),
                ("serialnumber", "19800101-1234\u{e9}")
            ],
            &[("password", PIN)]
        )
        .await
        .headers()["x-ast-error"],
        "field-invalid",
        "serialNumber must be a PrintableString"
    );
}

#[tokio::test]
async fn page_ca_and_health() {
    let gw = TestGateway::start().await;
    let page = gw.get("/pgwy/request/ast.html").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert_eq!(html.matches("type=\"password\"").count(), 2);
    for needle in [
        "role=\"alert\"",
        "role=\"status\"",
        "aria-busy=\"false\"",
        "downloaded",
        "name=\"profile\" value=\"legacy\"",
        "minlength=\"6\"",
    ] {
        assert!(html.contains(needle), "page lacks {needle}");
    }
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "page loads external resources"
    );
    let ca = gw.get("/pgwy/ca/issuing.pem").await;
    assert_eq!(ca.status(), 200);
    let nope = gw.get("/pgwy/ca/nosuch.pem").await;
    assert_eq!(nope.status(), 404);
    assert_eq!(gw.get("/healthz").await.status(), 200);
    assert_eq!(gw.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn cli_lists_and_shows_certificates() {
    let gw = TestGateway::start().await;
    assert_eq!(gw.post("", ALICE, &[("password", PIN)]).await.status(), 200);
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_ast-gateway"));
    let root = gw.root.path().to_str().unwrap().to_string();
    let out = run(&bin, &["--root", &root, "certs", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    for entry in list {
        for key in ["serial", "subject", "purpose", "status", "notAfter"] {
            assert!(entry.get(key).is_some(), "missing {key}");
        }
        assert_eq!(entry["status"], "good");
    }
    let serial = list[0]["serial"].as_str().unwrap();
    // Upper case, colons, extra leading zeros.
    let spelled: String = format!("00{}", serial.to_uppercase())
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    let out = run(
        &bin,
        &["--root", &root, "certs", "show", &spelled, "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["serial"], serial);
    let missing = run(&bin, &["--root", &root, "certs", "show", "abcdef"]);
    assert!(!missing.status.success());
}
