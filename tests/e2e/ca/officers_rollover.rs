//! The officers CA is a role of a `[[ca]]` entry, not a fixed name. Replaced with `ca create NEW
//! --replaces OLD`: new officers come from NEW, an officer OLD issued keeps authenticating over
//! mTLS and can still be revoked (the handshake then refuses it, OLD's CRL lists it, OLD's OCSP
//! answers revoked — checked with openssl). And a freely named officers CA written by `init`
//! issues officers that log in. Everything runs the real binary (`init`, `ca create`, `officer`,
//! `serve` with HTTPS).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::time::{Duration, Instant};

use crate::kit::{free_port, skipped, tool};
use harness::{Root, ca_list, ca_row, crl_serials, openssl_ocsp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officers_ca_rollover_keeps_old_officers_and_issues_from_the_new_one() {
    if tool("openssl").is_none() {
        skipped(module_path!(), "openssl not installed");
        return;
    }
    let root = Root::init(&[]);
    let (http, https) = (free_port(), free_port());
    root.enable_https(http, https);
    let old = root.officer("Olle Old", "old.p12");
    assert!(old.said.contains("from CA `officers`"), "{}", old.said);

    let said = root.ok(&[
        "ca",
        "create",
        "officers-2",
        "--replaces",
        "officers",
        "--common-name",
        "Example Officers CA 2",
        "--organization",
        "Example AB",
    ]);
    assert!(
        said.contains("`officers-2` is the officers CA now"),
        "{said}"
    );
    let toml = root.gateway_toml();
    assert!(
        toml.contains("# role = \"officers\"  (moved to `officers-2`"),
        "{toml}"
    );
    assert!(
        toml.contains("name = \"officers-2\"\ncertificate = \"data/ca/officers-2.pem\"\nkey = \"data/ca/officers-2.key\"\nparent = \"root\"\n# It issues the officer client certificates (docs/configuration.md).\nrole = \"officers\"\n"),
        "{toml}"
    );
    assert!(
        toml.contains("\nclient_ca = \"data/tls/client-ca.pem\"\n"),
        "{toml}"
    );
    let bundle = std::fs::read_to_string(root.file("data/tls/client-ca.pem")).unwrap();
    assert_eq!(crate::kit::pem_blocks(&bundle).len(), 2, "{bundle}");

    let new = root.officer("Nora New", "new.p12");
    assert!(new.said.contains("from CA `officers-2`"), "{}", new.said);
    assert!(
        new.issuer.contains("Example Officers CA 2"),
        "{}",
        new.issuer
    );
    assert!(old.issuer.contains("Demo Officers CA"), "{}", old.issuer);
    let listed: Vec<serde_json::Value> =
        serde_json::from_str(&root.stdout(&["officer", "list", "--json"])).unwrap();
    let ca_of = |serial: &str| {
        listed.iter().find(|o| o["serial"] == serial).unwrap()["ca"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(ca_of(&old.serial), "officers");
    assert_eq!(ca_of(&new.serial), "officers-2");

    // The new CA is the officers CA; the old one retires while its officer is unexpired.
    let rows = ca_list(&root);
    let active = ca_row(&rows, "officers-2");
    assert_eq!(active["state"], "active", "{active}");
    assert!(
        active["stateDetail"]
            .as_str()
            .unwrap()
            .contains("officer certificates"),
        "{active}"
    );
    let retiring = ca_row(&rows, "officers");
    assert_eq!(retiring["state"], "retiring", "{retiring}");
    assert_eq!(retiring["unexpiredCertificates"], 1, "{retiring}");

    // Both officers log in over mTLS.
    let server = root.serve(http, https);
    assert_eq!(server.api_as(&root, &old).await, Ok(200), "the old officer");
    assert_eq!(server.api_as(&root, &new).await, Ok(200), "the new officer");
    let out = openssl_ocsp(&root, &server, "officers", &old.cert);
    assert!(out.contains(": good"), "{out}");

    // The old officer is revoked: on the old CA's CRL and OCSP, refused at the handshake.
    root.ok(&["officer", "revoke", &old.serial]);
    let crl = server.crl("officers").await;
    assert!(
        crl_serials(&crl).contains(&old.serial),
        "{:?}",
        crl_serials(&crl)
    );
    assert!(!crl_serials(&server.crl("officers-2").await).contains(&old.serial));
    let out = openssl_ocsp(&root, &server, "officers", &old.cert);
    assert!(
        out.contains("Response verify OK") && out.contains(": revoked"),
        "{out}"
    );
    let out = openssl_ocsp(&root, &server, "officers-2", &new.cert);
    assert!(out.contains(": good"), "{out}");
    // The service re-reads revoked officers every 10 seconds; then the handshake refuses the
    // old officer (the service says why), and only it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        match server.api_as(&root, &old).await {
            Err(e) => break e,
            Ok(status) => assert!(
                Instant::now() < deadline,
                "the revoked old officer still gets {status}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // The client sees an alert or a closed connection, depending on timing; the service logs
    // the refusal with the certificate.
    let log = server.log();
    assert!(
        log.contains("refused a revoked officer certificate") && log.contains(&old.serial),
        "{refused}\n{log}"
    );
    assert_eq!(server.api_as(&root, &new).await, Ok(200), "the new officer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freely_named_officers_ca_from_init_issues_officers_who_log_in() {
    if tool("openssl").is_none() {
        skipped(module_path!(), "openssl not installed");
        return;
    }
    let root = Root::init(&[
        "--root-name",
        "acme-root",
        "--issuing-name",
        "acme-tokens",
        "--officers-name",
        "acme-staff",
    ]);
    let toml = root.gateway_toml();
    assert!(
        toml.contains("name = \"acme-staff\"\ncertificate = \"data/ca/acme-staff.pem\"\nkey = \"data/ca/acme-staff.key\"\nparent = \"acme-root\"\nrole = \"officers\"\n"),
        "{toml}"
    );
    assert!(!toml.contains("name = \"officers\""), "{toml}");
    let (http, https) = (free_port(), free_port());
    root.enable_https(http, https);
    assert!(
        root.gateway_toml()
            .contains("\nclient_ca = \"data/ca/acme-staff.pem\"\n")
    );
    let officer = root.officer("Stina Staff", "staff.p12");
    assert!(
        officer.said.contains("from CA `acme-staff`"),
        "{}",
        officer.said
    );
    let rows = ca_list(&root);
    assert!(
        ca_row(&rows, "acme-staff")["stateDetail"]
            .as_str()
            .unwrap()
            .contains("officer certificates"),
        "{rows:?}"
    );
    let server = root.serve(http, https);
    assert_eq!(server.api_as(&root, &officer).await, Ok(200));
    root.ok(&["officer", "revoke", &officer.serial]);
    assert!(crl_serials(&server.crl("acme-staff").await).contains(&officer.serial));
    let out = openssl_ocsp(&root, &server, "acme-staff", &officer.cert);
    assert!(out.contains(": revoked"), "{out}");
}
