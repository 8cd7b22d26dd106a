//! Every EST refusal with its status, code and audit row, and no certificate issued.

use ast_gateway::ca::RevocationReason;
use ast_gateway::identity::Caller;

use super::tools::{Tools, audited, audited_in};
use super::{SECRET, configure, serial_and_subject};
use crate::api::Api;
use crate::kit::{Anchored, TestGateway, client, run_ok, skipped};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_est_refusal_has_its_status_code_and_audit_row() {
    let api = Api::start(configure).await;
    let Some(t) = Tools::new(&api) else {
        return skipped("every_est_refusal", "curl or openssl missing");
    };
    let basic = format!("device:{SECRET}");
    let enrol = "/.well-known/est/devices/simpleenroll";
    let good = t.csr("good", "/CN=dev-ok", &[]);
    // A certificate to renew, then revoked.
    let answer = t.post(&api, enrol, &good, &["-u", &basic]).await;
    assert_eq!(answer.status, 200);
    let (enrolled, _) = t.certs_only("enrolled", &answer.body);
    let (serial, _) = serial_and_subject(&t.openssl, &enrolled);
    let before = api.certificates().await;

    // No credentials: a bare 401 challenge for the label's realm (audited all the same).
    let answer = t.post(&api, enrol, &good, &[]).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (401, "unauthenticated")
    );
    assert_eq!(
        answer.header("www-authenticate"),
        "Basic realm=\"est/devices\""
    );
    assert!(answer.body.is_empty());
    audited(&api, &answer.header("x-request-id"), "unauthenticated").await;
    // The wrong secret, and the wrong user.
    let answer = t
        .post(&api, enrol, &good, &["-u", "device:not-the-secret"])
        .await;
    let message = api.refused(&answer, 401, "unauthenticated").await;
    assert!(message.contains("wrong"), "{message}");
    let answer = t
        .post(&api, enrol, &good, &["-u", &format!("other:{SECRET}")])
        .await;
    api.refused(&answer, 401, "unauthenticated").await;
    // A subject the handler's format does not allow.
    let evil = t.csr("evil", "/CN=evil", &[]);
    let answer = t.post(&api, enrol, &evil, &["-u", &basic]).await;
    api.refused(&answer, 400, "field-invalid").await;
    // A key the token procedure does not name (RSA for an ec-p256 template).
    let rsa_key = t.path("rsa.key");
    run_ok(
        &t.openssl,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            rsa_key.to_str().unwrap(),
        ],
    );
    let rsa = t.csr_for_key("rsa", "rsa", "/CN=dev-rsa", &[]);
    let answer = t.post(&api, enrol, &rsa, &["-u", &basic]).await;
    let message = api.refused(&answer, 400, "bad-request").await;
    assert!(message.contains("ec-p256"), "{message}");
    // A CSR changed after it was signed: no proof of possession.
    let mut der = std::fs::read(t.path("good.der")).unwrap();
    let at = der.windows(6).position(|w| w == b"dev-ok").unwrap();
    der[at + 5] = b'x';
    let tampered = t.base64_file("tampered", &der);
    let answer = t.post(&api, enrol, &tampered, &["-u", &basic]).await;
    let message = api.refused(&answer, 400, "bad-request").await;
    assert!(message.contains("proof of possession"), "{message}");
    // Not base64; not application/pkcs10.
    std::fs::write(t.path("junk.b64"), "this is not base64!").unwrap();
    let answer = t
        .post(&api, enrol, &t.path("junk.b64"), &["-u", &basic])
        .await;
    api.refused(&answer, 400, "bad-request").await;
    let data = format!("@{}", good.display());
    let answer = t
        .curl(
            &api,
            enrol,
            &[
                "-u",
                &basic,
                "-H",
                "Content-Type: text/plain",
                "--data-binary",
                &data,
            ],
        )
        .await;
    api.refused(&answer, 415, "unsupported-media-type").await;

    // Re-enrolment without a certificate, with a changed subject, then with a revoked one.
    let renew = "/.well-known/est/devices/simplereenroll";
    let same = t.csr("same", "/CN=dev-ok", &[]);
    let answer = t.post(&api, renew, &same, &[]).await;
    api.refused(&answer, 401, "unauthenticated").await;
    let tls = ["--cert", enrolled.to_str().unwrap(), "--key"];
    let key = t.path("good.key");
    let mut with_cert: Vec<&str> = tls.to_vec();
    with_cert.push(key.to_str().unwrap());
    let other = t.csr("other", "/CN=dev-other", &[]);
    let answer = t.post(&api, renew, &other, &with_cert).await;
    let message = api.refused(&answer, 400, "bad-request").await;
    assert!(message.contains("subject"), "{message}");
    api.gateway
        .revoke(
            &crate::kit::ser(&serial),
            RevocationReason::KeyCompromise,
            &Caller::Cli,
            "est-test",
        )
        .await
        .unwrap();
    let answer = t.post(&api, renew, &same, &with_cert).await;
    let message = api.refused(&answer, 403, "untrusted-caller").await;
    assert!(message.contains("revoked"), "{message}");

    // An officer without the role; an unknown label, an unknown operation, a wrong method.
    let officer = api.officer("Olle No-Role", &["api-read"]).await;
    let file = officer.file.to_str().unwrap();
    let answer = t
        .post(
            &api,
            "/.well-known/est/officers/simpleenroll",
            &good,
            &["--cert", file],
        )
        .await;
    api.refused(&answer, 403, "missing-role").await;
    let answer = t.curl(&api, "/.well-known/est/nosuch/cacerts", &[]).await;
    api.refused(&answer, 404, "not-found").await;
    let answer = t.curl(&api, "/.well-known/est/devices/fullcmc", &[]).await;
    api.refused(&answer, 404, "not-found").await;
    let answer = t.curl(&api, enrol, &["-u", &basic]).await;
    api.refused(&answer, 405, "method-not-allowed").await;
    assert_eq!(answer.header("allow"), "POST");

    // serverkeygen asked to encrypt the key it makes under a key-encryption key this service
    // does not have (`devices` has no est.keks here): refused, not answered unencrypted.
    let config = t.path("encrypted.cnf");
    std::fs::write(
        &config,
        "[req]\ndistinguished_name = dn\nattributes = attrs\nprompt = no\n[dn]\nCN = dev-enc\n\
         [attrs]\n1.2.840.113549.1.9.16.2.37 = key-1\n",
    )
    .unwrap();
    let der = t.path("encrypted.der");
    run_ok(
        &t.openssl,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            t.path("encrypted.key").to_str().unwrap(),
            "-config",
            config.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            der.to_str().unwrap(),
        ],
    );
    let encrypted = t.base64_file("encrypted", &std::fs::read(&der).unwrap());
    let answer = t
        .post(
            &api,
            "/.well-known/est/devices/serverkeygen",
            &encrypted,
            &["-u", &basic],
        )
        .await;
    let message = api.refused(&answer, 400, "bad-request").await;
    assert!(
        message.contains("encrypted under the key-encryption key `key-1`"),
        "{message}"
    );

    // No refusal issued anything.
    assert_eq!(api.certificates().await, before);
}

/// Over plain HTTP from a peer that is not a trusted front, HTTP Basic secrets are refused
/// (they would cross the network in clear), and so is the front's identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_refuses_basic_and_front_identity_from_untrusted_peers() {
    let gw = TestGateway::start_with(|root| {
        configure(root);
        // No HTTPS here: drop the officers' handler; no trusted front on loopback.
        let ast = std::fs::read_to_string(root.ast_properties()).unwrap();
        let ast: String = ast
            .lines()
            .filter(|l| !l.starts_with("handler.4."))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(root.ast_properties(), ast).unwrap();
        let toml = std::fs::read_to_string(root.gateway_toml())
            .unwrap()
            .replacing(
                "proxies = [\"127.0.0.1/32\", \"::1/128\"]",
                "proxies = [\"192.0.2.1/32\"]",
            );
        std::fs::write(root.gateway_toml(), toml).unwrap();
    })
    .await;
    let Some(t) = Tools::in_dir(gw.root.path().join("curl")) else {
        return skipped("plain_http_refuses_basic", "curl or openssl missing");
    };
    let csr = std::fs::read(t.csr("plain", "/CN=dev-plain", &[])).unwrap();
    for (path, basic) in [
        ("/.well-known/est/devices/simpleenroll", true),
        ("/.well-known/est/simpleenroll", false),
    ] {
        let mut request = client()
            .post(format!("{}{path}", gw.base))
            .header("content-type", "application/pkcs10")
            .body(csr.clone());
        if basic {
            request = request.basic_auth("device", Some(SECRET));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let header = |n: &str| {
            response
                .headers()
                .get(n)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        let (code, request_id) = (header("x-ast-error"), header("x-request-id"));
        let body = response.text().await.unwrap();
        assert_eq!(
            (status, code.as_str()),
            (403, "untrusted-caller"),
            "{path}: {body}"
        );
        if basic {
            assert!(body.contains("HTTPS only"), "{body}");
        }
        audited_in(&gw.gateway, &request_id, "untrusted-caller").await;
    }
    assert_eq!(gw.gateway.store().count_certificates().await.unwrap(), 0);
}
