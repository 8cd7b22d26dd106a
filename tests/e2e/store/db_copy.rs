//! Moving a root from SQLite to PostgreSQL: `ast-gateway db copy --to postgres://…` carries
//! tokens, certificates (one revoked), officers, CRL state and the audit chain; on the copy
//! `audit verify` is clean, `certs list` and `officer list` say the same as before, and a
//! gateway started on it issues and keeps the chain verifiable. A second copy into the now
//! non-empty database is refused and changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::kit::databases::TestDatabase;
use crate::kit::{ALICE, TestGateway, run};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ast-gateway"))
}

fn cli(root: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--root", root.to_str().unwrap()];
    all.extend_from_slice(args);
    run(bin(), &all)
}

fn cli_ok(root: &Path, args: &[&str]) -> String {
    let out = cli(root, args);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The listing without what a copy may legitimately change (nothing, so far): sorted by serial.
fn sorted(mut list: Value, key: &str) -> Value {
    list.as_array_mut()
        .unwrap()
        .sort_by_key(|v| v[key].as_str().unwrap_or("").to_string());
    list
}

fn point_at(root: &Path, url: &str) {
    let path = root.join("conf/gateway.toml");
    let toml = std::fs::read_to_string(&path).unwrap();
    let line = toml
        .lines()
        .find(|l| l.starts_with("url = "))
        .unwrap()
        .to_string();
    std::fs::write(&path, toml.replace(&line, &format!("url = \"{url}\""))).unwrap();
}

async fn issue(base: &str, name: &str) -> u16 {
    let mut request = crate::kit::client()
        .post(format!("{base}/pgwy/ast"))
        .form(&[("password", "Str0ng-Pass!")]);
    for (header, value) in ALICE {
        let value = if *header == "commonname" { name } else { value };
        request = request.header(*header, value);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_root_copied_to_postgres_keeps_certificates_officers_and_audit() {
    let Some(target) = TestDatabase::postgres().await else {
        return;
    };
    let gateway = TestGateway::start_with(|root| {
        let toml = std::fs::read_to_string(root.gateway_toml()).unwrap();
        let toml = toml.replace("key = \"rsa-2048\"", "key = \"ec-p256\"");
        std::fs::write(root.gateway_toml(), toml).unwrap();
    })
    .await;
    let root = gateway.root.path().to_path_buf();
    for name in ["Copy One", "Copy Two", "Copy Three"] {
        assert_eq!(issue(&gateway.base, name).await, 200, "{name}");
    }
    let certificates = json(&cli_ok(&root, &["certs", "list", "--json"]));
    let victim = certificates[0]["serial"].as_str().unwrap().to_string();
    cli_ok(
        &root,
        &["certs", "revoke", &victim, "--reason", "keyCompromise"],
    );
    let officer_file = root.join("olle.p12");
    cli_ok(
        &root,
        &[
            "officer",
            "issue",
            "--name",
            "Olle Officer",
            "--roles",
            "api-read,api-issue",
            "--out",
            officer_file.to_str().unwrap(),
            "--password",
            "Officer-Pass-1",
        ],
    );
    let before_certs = sorted(json(&cli_ok(&root, &["certs", "list", "--json"])), "serial");
    let before_officers = sorted(
        json(&cli_ok(&root, &["officer", "list", "--json"])),
        "serial",
    );
    assert_eq!(before_certs.as_array().unwrap().len(), 6);
    assert_eq!(before_officers.as_array().unwrap().len(), 1);
    assert!(cli_ok(&root, &["audit", "verify"]).contains("intact"));

    // The copy (the gateway still runs: the source is read in one snapshot).
    let copied = cli_ok(&root, &["db", "copy", "--to", &target.url]);
    assert!(
        copied.contains("certificates: 6 row(s)")
            && copied.contains("officers: 1 row(s)")
            && copied.contains("audit trail on the copy: intact"),
        "{copied}"
    );
    // (The SQLite gateway stays up: dropping it would remove the root.)

    // The root on PostgreSQL: the same listings, a clean audit trail.
    let sqlite_toml = std::fs::read_to_string(root.join("conf/gateway.toml")).unwrap();
    point_at(&root, &target.url);
    let after_certs = sorted(json(&cli_ok(&root, &["certs", "list", "--json"])), "serial");
    let after_officers = sorted(
        json(&cli_ok(&root, &["officer", "list", "--json"])),
        "serial",
    );
    assert_eq!(
        after_certs, before_certs,
        "certificates (statuses included)"
    );
    assert_eq!(after_officers, before_officers, "officers");
    let revoked: Vec<&Value> = after_certs
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "revoked")
        .collect();
    assert_eq!(revoked.len(), 1, "the revocation came along");
    let verified = cli_ok(&root, &["audit", "verify"]);
    assert!(verified.contains("audit trail intact"), "{verified}");

    // A gateway on the copy issues; the chain continues from the copied head.
    let config = ast_gateway::rules::load(&ast_gateway::config::Root::new(&root)).unwrap();
    let on_postgres = ast_gateway::issuance::Gateway::open(config).await.unwrap();
    let server = ast_gateway::http::start(
        on_postgres,
        ast_gateway::http::Listeners {
            http: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", server.http_addr.unwrap());
    assert_eq!(issue(&base, "Copy Four").await, 200);
    let verified = cli_ok(&root, &["audit", "verify"]);
    assert!(verified.contains("audit trail intact"), "{verified}");

    // A second copy into the now non-empty database is refused.
    std::fs::write(root.join("conf/gateway.toml"), sqlite_toml).unwrap();
    let again = cli(&root, &["db", "copy", "--to", &target.url]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&again.stdout),
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(!again.status.success(), "{text}");
    assert!(text.contains("not empty"), "{text}");
}
