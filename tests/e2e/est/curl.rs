//! Every EST operation with curl and openssl: cacerts, csrattrs, simpleenroll (HTTP Basic),
//! serverkeygen, simplereenroll (mTLS), the front's identity headers and an officer.

use super::tools::{Tools, decode, parts};
use super::{SECRET, configure, key_matches, listed_serials, root_pem, serial_and_subject};
use super::{canonical, verify_chain};
use crate::api::Api;
use crate::kit::{run_ok, skipped};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_and_openssl_do_every_est_operation() {
    let api = Api::start(configure).await;
    let Some(t) = Tools::new(&api) else {
        return skipped(
            "curl_and_openssl_do_every_est_operation",
            "curl or openssl missing",
        );
    };
    let basic = format!("device:{SECRET}");

    // cacerts: the issuing CA, then the root, as PKCS#7 certs-only.
    let answer = t.curl(&api, "/.well-known/est/devices/cacerts", &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), "application/pkcs7-mime");
    let (_, text) = t.certs_only("cacerts", &answer.body);
    let cacerts = std::fs::read_to_string(t.path("cacerts.pem")).unwrap();
    assert_eq!(cacerts.matches("BEGIN CERTIFICATE").count(), 2, "{text}");
    let root = std::fs::read_to_string(root_pem(&api)).unwrap();
    assert!(cacerts.contains(root.trim()), "cacerts holds our root");

    // csrattrs: the subject attribute the format reads, the SAN request, the key and signature.
    let answer = t.curl(&api, "/.well-known/est/devices/csrattrs", &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), "application/csrattrs");
    std::fs::write(t.path("csrattrs.der"), decode(&answer.body)).unwrap();
    let parsed = run_ok(
        &t.openssl,
        &[
            "asn1parse",
            "-inform",
            "DER",
            "-in",
            t.path("csrattrs.der").to_str().unwrap(),
        ],
    );
    for name in [
        "commonName",
        "Extension Request",
        "id-ecPublicKey",
        "prime256v1",
        "ecdsa-with-SHA256",
    ] {
        assert!(parsed.contains(name), "{name}: {parsed}");
    }

    // simpleenroll: the CSR's subject and DNS name, the CSR's key.
    let csr = t.csr(
        "enrol",
        "/CN=dev-curl-1",
        &["-addext", "subjectAltName=DNS:dev-curl-1.devices.example"],
    );
    let answer = t
        .post_ok(
            &api,
            "/.well-known/est/devices/simpleenroll",
            &csr,
            &["-u", &basic],
        )
        .await;
    assert!(
        answer
            .header("content-type")
            .starts_with("application/pkcs7-mime")
    );
    let (enrolled, _) = t.certs_only("enrolled", &answer.body);
    key_matches(&t.openssl, &enrolled, &t.path("enrol.key"));
    verify_chain(&t.openssl, &api, &enrolled);
    let (serial, subject) = serial_and_subject(&t.openssl, &enrolled);
    assert_eq!(subject, "CN=dev-curl-1");

    // serverkeygen: the key (PKCS#8) and its certificate in one multipart/mixed answer.
    let csr = t.csr("keygen", "/CN=dev-curl-2", &[]);
    let answer = t
        .post_ok(
            &api,
            "/.well-known/est/devices/serverkeygen",
            &csr,
            &["-u", &basic],
        )
        .await;
    assert_eq!(answer.header("cache-control"), "no-store");
    let parts = parts(&answer);
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert_eq!(parts[0].0, "application/pkcs8");
    std::fs::write(t.path("server.key.der"), decode(&parts[0].1)).unwrap();
    run_ok(
        &t.openssl,
        &[
            "pkey",
            "-inform",
            "DER",
            "-in",
            t.path("server.key.der").to_str().unwrap(),
            "-out",
            t.path("server.key").to_str().unwrap(),
        ],
    );
    assert!(parts[1].0.starts_with("application/pkcs7-mime"));
    let (generated, _) = t.certs_only("generated", &parts[1].1);
    key_matches(&t.openssl, &generated, &t.path("server.key"));
    verify_chain(&t.openssl, &api, &generated);
    let (generated_serial, subject) = serial_and_subject(&t.openssl, &generated);
    assert_eq!(subject, "CN=dev-curl-2");

    // simplereenroll: mTLS with the enrolled certificate, a new key, the same subject and SAN.
    let csr = t.csr(
        "renew",
        "/CN=dev-curl-1",
        &["-addext", "subjectAltName=DNS:dev-curl-1.devices.example"],
    );
    let (cert, key) = (enrolled.to_str().unwrap(), t.path("enrol.key"));
    let answer = t
        .post_ok(
            &api,
            "/.well-known/est/devices/simplereenroll",
            &csr,
            &["--cert", cert, "--key", key.to_str().unwrap()],
        )
        .await;
    let (renewed, _) = t.certs_only("renewed", &answer.body);
    key_matches(&t.openssl, &renewed, &t.path("renew.key"));
    let (renewed_serial, subject) = serial_and_subject(&t.openssl, &renewed);
    assert_eq!(subject, "CN=dev-curl-1");
    assert_ne!(renewed_serial, serial);

    // The front's identity headers (no label: est.default), the subject from them.
    let csr = t.csr("front", "/CN=ignored", &[]);
    let answer = t
        .post_ok(
            &api,
            "/.well-known/est/simpleenroll",
            &csr,
            &["-H", "commonname: Front Device", "-H", "country: SE"],
        )
        .await;
    let (front, _) = t.certs_only("front-cert", &answer.body);
    let (front_serial, subject) = serial_and_subject(&t.openssl, &front);
    assert_eq!(subject, "CN=Front Device,C=SE");

    // An officer with the role est-enrol over mTLS.
    let officer = api.officer("Olof EST", &["est-enrol"]).await;
    let csr = t.csr("officer", "/CN=printer-7", &[]);
    let file = officer.file.to_str().unwrap();
    let answer = t
        .post_ok(
            &api,
            "/.well-known/est/officers/simpleenroll",
            &csr,
            &["--cert", file],
        )
        .await;
    let (officer_cert, _) = t.certs_only("officer-cert", &answer.body);
    let (officer_serial, subject) = serial_and_subject(&t.openssl, &officer_cert);
    assert_eq!(subject, "CN=printer-7");

    let listed = listed_serials(&api);
    for s in [
        &serial,
        &generated_serial,
        &renewed_serial,
        &front_serial,
        &officer_serial,
    ] {
        assert!(
            listed.iter().any(|l| canonical(l) == canonical(s)),
            "{s}: {listed:?}"
        );
    }
    let audit = api.audit().await;
    // The serverkeygen key left protected by TLS only, and the audit says so.
    let (.., keygen) = audit
        .iter()
        .find(|(event, .., d)| event == "issued" && d["operation"] == "serverkeygen")
        .unwrap();
    assert_eq!(
        keygen["keyDelivery"],
        serde_json::json!({ "encrypted": false })
    );
    let actors: Vec<&str> = audit
        .iter()
        .filter(|(event, ..)| event == "issued")
        .map(|(_, actor, ..)| actor.as_str())
        .collect();
    assert!(actors.contains(&"device:device@handler.2"), "{actors:?}");
    assert!(
        actors.iter().any(|a| a.starts_with("device:certificate:")),
        "{actors:?}"
    );
    assert!(actors.contains(&"proxy:127.0.0.1"), "{actors:?}");
    assert!(
        actors.contains(&format!("officer:{}", officer.serial).as_str()),
        "{actors:?}"
    );
}
