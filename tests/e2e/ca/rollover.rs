//! A CA's end and its rollover: leaf validity capped at the CA's notAfter or refused, the
//! `config check` warnings and errors that go with it, and a CA rollover walked end to end with
//! the real binary (issue with the old CA, rollover, restart, issue with the new one, revoke an
//! old certificate, both CRLs and OCSP answer, `ca list` shows the states).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::kit::{
    ALICE, Anchored, Serve, TestGateway, append_file as append, ast, client, output_text, skipped,
    tool,
};

const PIN: &str = "Str0ng-Pass!";

fn edit(path: &Path, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, f(text)).unwrap();
}

/// Runs `ast-gateway --root ROOT ARGS…` to completion.
fn cli(root: &Path, args: &[&str]) -> Output {
    let mut c = ast(root);
    c.args(args).stdin(Stdio::null());
    c.output().unwrap()
}

/// Runs it and asserts success; returns stdout.
fn ok(root: &Path, args: &[&str]) -> String {
    let out = cli(root, args);
    assert!(out.status.success(), "{args:?}: {}", output_text(&out));
    String::from_utf8(out.stdout).unwrap()
}

// --- leaf validity and the CA's end ------------------------------------------------------------

/// notAfter of a PEM certificate file, Unix seconds (x509-parser).
fn not_after_of_pem(path: &Path) -> i64 {
    let pem = std::fs::read(path).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    cert.validity().not_after.timestamp()
}

#[tokio::test]
async fn leaf_validity_is_capped_at_the_ca_or_refused() {
    // A CA that lives two days, signing the default procedure's 365-day certificates.
    let gw = TestGateway::start_with(|root| {
        ok(
            root.dir(),
            &[
                "ca",
                "create",
                "short",
                "--parent",
                "root",
                "--validity",
                "2d",
                "--common-name",
                "Short-lived CA",
            ],
        );
        edit(&root.gateway_toml(), |t| {
            t.replacing("\nca = \"issuing\"", "\nca = \"short\"")
        });
    })
    .await;
    let root = gw.root();
    let ca_end = not_after_of_pem(&root.resolve("data/ca/short.pem"));

    // cap (the default): the certificates end exactly with the CA.
    let response = gw.post("", ALICE, &[("password", PIN)]).await;
    assert_eq!(response.status(), 200);
    let p12 = response.bytes().await.unwrap();
    let stored = gw
        .gateway
        .store()
        .certificates(&Default::default())
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    for c in &stored {
        assert_eq!(c.ca, "short");
        assert_eq!(c.not_after, ca_end, "{} is not capped", c.purpose);
    }
    // The same seen by OpenSSL in the delivered file.
    if tool("openssl").is_some() {
        let file = root.dir().join("capped.p12");
        std::fs::write(&file, &p12).unwrap();
        let certs = Command::new("openssl")
            .args([
                "pkcs12",
                "-nokeys",
                "-clcerts",
                "-passin",
                &format!("pass:{PIN}"),
                "-in",
            ])
            .arg(&file)
            .output()
            .unwrap();
        assert!(certs.status.success(), "{}", output_text(&certs));
        let leaf = root.dir().join("leaf.pem");
        std::fs::write(&leaf, &certs.stdout).unwrap();
        let end = |path: &Path| {
            let out = Command::new("openssl")
                .args(["x509", "-noout", "-enddate", "-in"])
                .arg(path)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        assert_eq!(end(&leaf), end(&root.resolve("data/ca/short.pem")));
    } else {
        skipped(
            "leaf_validity_is_capped_at_the_ca_or_refused",
            "openssl not installed: the PKCS#12 is not re-read",
        );
    }

    // `config check` warns before it happens.
    let out = ok(root.dir(), &["config", "check"]);
    assert!(
        out.contains(
            "warning: token procedure `default`, certificate `authentication`: validity 365 days \
             exceeds the remaining life of CA `short`"
        ),
        "{out}"
    );
    assert!(out.contains("leaf_not_after = \"cap\""), "{out}");

    // A value that is neither is refused with its line.
    edit(&root.gateway_toml(), |t| {
        t.replacen(
            "ca = \"short\"",
            "ca = \"short\"\nleaf_not_after = \"truncate\"",
            1,
        )
    });
    let errors = gw.gateway.reload().unwrap_err().to_string();
    assert!(
        errors.contains("leaf_not_after = \"truncate\": use \"cap\""),
        "{errors}"
    );

    // refuse: a 503 with its own code before any key is made; audited; nothing issued.
    edit(&root.gateway_toml(), |t| {
        t.replacing("leaf_not_after = \"truncate\"\n", "")
            .replacing(
                "\nca = \"short\"",
                "\nca = \"short\"\nleaf_not_after = \"refuse\"",
            )
    });
    gw.gateway.reload().unwrap();
    let response = gw.post("", ALICE, &[("password", PIN)]).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["x-ast-error"], "ca-expiring");
    let body = response.text().await.unwrap();
    assert!(
        body.contains("would be valid for 365 days, but CA `short` expires on"),
        "{body}"
    );
    assert!(body.contains("ca create --replaces short"), "{body}");
    assert_eq!(gw.gateway.store().count_certificates().await.unwrap(), 2);
    let audit = gw.gateway.store().audit_page(0, 0, 1000).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|r| r.event == "refused" && r.detail.contains("\"code\":\"ca-expiring\"")),
        "the refusal is not audited"
    );
    let out = ok(root.dir(), &["config", "check"]);
    assert!(
        out.contains("every request for it is refused (leaf_not_after = \"refuse\")"),
        "{out}"
    );
}

// --- config check: officer handlers need the officer listener ------------------------------------

#[test]
fn config_check_refuses_officer_handlers_without_an_https_listener() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    ok(&root, &["init"]);
    let ast = root.join("conf/ast.properties");
    append(
        &ast,
        "handler.2.filter = officer\nhandler.2.tokenprocedure = default\n\
         handler.2.requiredRoRoles = none\n",
    );
    let line = std::fs::read_to_string(&ast)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("handler.2.requiredRoRoles"))
        .unwrap()
        + 1;
    let out = cli(&root, &["config", "check"]);
    assert!(!out.status.success());
    let all = output_text(&out);
    assert!(
        all.contains(&format!(
            "ast.properties:{line}: handler.2.requiredRoRoles: handler.2 requires officer client \
             certificates (requiredRoRoles), but gateway.toml has no HTTPS listener ([server] \
             https) and no client_ca"
        )),
        "{all}"
    );
    // An HTTPS listener without client_ca asks for no certificate: still an error.
    let toml = root.join("conf/gateway.toml");
    edit(&toml, |t| {
        t.replacing("# https = ", "https = ")
            .replacing("# tls_cert", "tls_cert")
            .replacing("# tls_key", "tls_key")
    });
    let all = output_text(&cli(&root, &["config", "check"]));
    assert!(all.contains("no [server] client_ca"), "{all}");
    edit(&toml, |t| t.replacing("# client_ca", "client_ca"));
    let out = cli(&root, &["config", "check"]);
    assert!(out.status.success(), "{}", output_text(&out));
}

// --- CA rollover ---------------------------------------------------------------------------------

/// What the rollover walk does with a running `serve`.
trait Walk {
    async fn issue(&self, cn: &str) -> Vec<u8>;
    async fn get(&self, path: &str) -> Vec<u8>;
}

impl Walk for Serve {
    async fn issue(&self, cn: &str) -> Vec<u8> {
        let response = client()
            .post(self.url("/pgwy/ast"))
            .header("commonname", cn)
            .header("country", "SE")
            .form(&[("password", PIN)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{:?}", response.headers());
        response.bytes().await.unwrap().to_vec()
    }

    async fn get(&self, path: &str) -> Vec<u8> {
        let response = client().get(self.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.bytes().await.unwrap().to_vec()
    }
}

/// `certs list --json` rows for a subject.
fn certificates_of(root: &Path, subject: &str) -> Vec<serde_json::Value> {
    serde_json::from_str(
        &String::from_utf8(cli(root, &["certs", "list", "--json", "--subject", subject]).stdout)
            .unwrap(),
    )
    .unwrap()
}

/// A certificate as PEM (`certs show` ends with it).
fn certificate_pem(root: &Path, serial: &str, into: &Path) -> PathBuf {
    let out = ok(root, &["certs", "show", serial]);
    let pem = &out[out.find("-----BEGIN CERTIFICATE-----").unwrap()..];
    std::fs::write(into, pem).unwrap();
    into.to_path_buf()
}

/// Revoked serials on a DER CRL (x509-parser), lower-case hex.
fn crl_serials(der: &[u8]) -> Vec<String> {
    let (_, crl) = x509_parser::parse_x509_crl(der).unwrap();
    crl.iter_revoked_certificates()
        .map(|r| hex::encode(r.raw_serial()))
        .collect()
}

fn normalise(serial: &str) -> String {
    ast_gateway::ca::Serial::parse(serial)
        .unwrap()
        .hex()
        .to_string()
}

#[tokio::test]
async fn ca_rollover_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    ok(&root, &["init"]);
    let toml = root.join("conf/gateway.toml");
    let comments = |t: &str| {
        t.lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .count()
    };
    let before = std::fs::read_to_string(&toml).unwrap();

    // 1. A token from the old CA.
    let server = Serve::start(&root);
    server.issue("Olle Old").await;
    let old = certificates_of(&root, "Olle Old");
    assert_eq!(old.len(), 2);
    assert!(old.iter().all(|c| c["ca"] == "issuing"), "{old:?}");

    // 2. The rollover: a new issuing CA beside the old one, the procedures moved.
    let out = ok(
        &root,
        &[
            "ca",
            "create",
            "issuing-2",
            "--replaces",
            "issuing",
            "--common-name",
            "Demo Issuing CA 2",
        ],
    );
    assert!(
        out.contains("token procedures moved from `issuing` to `issuing-2`"),
        "{out}"
    );
    assert!(
        out.contains("token procedure `default`, certificate `authentication`: ca = \"issuing\" -> ca = \"issuing-2\""),
        "{out}"
    );
    assert!(out.contains("Restart the service"), "{out}");
    let after = std::fs::read_to_string(&toml).unwrap();
    assert_eq!(comments(&before), comments(&after), "comments were lost");
    assert_eq!(after.matches("ca = \"issuing-2\"").count(), 2);
    assert!(after.contains("name = \"issuing-2\"\ncertificate = \"data/ca/issuing-2.pem\"\nkey = \"data/ca/issuing-2.key\"\nparent = \"root\""), "{after}");
    assert!(
        after.contains("name = \"issuing\""),
        "the old CA stays configured"
    );
    let new_ca = root.join("data/ca/issuing-2.pem");
    match tool("openssl") {
        Some(openssl) => {
            let issuer = Command::new(openssl)
                .args(["x509", "-noout", "-issuer", "-subject", "-in"])
                .arg(&new_ca)
                .output()
                .unwrap();
            let all = output_text(&issuer);
            assert!(
                all.contains("Demo Root CA") && all.contains("CN = Demo Issuing CA 2"),
                "{all}"
            );
        }
        None => skipped(
            "ca_rollover_end_to_end",
            "openssl not installed (independent reader)",
        ),
    }

    // A reload cannot load a new CA: it is refused and the old configuration keeps serving.
    server.signal("-HUP");
    server.wait_for_line("reload refused");
    server.wait_for("CA `issuing-2` is not loaded by the running service; a new CA takes effect only after a restart");
    server.issue("Olga Older").await;
    assert!(
        certificates_of(&root, "Olga Older")
            .iter()
            .all(|c| c["ca"] == "issuing")
    );

    // 3. Restart: new tokens come from the new CA.
    drop(server);
    let server = Serve::start(&root);
    server.issue("Nina New").await;
    let new = certificates_of(&root, "Nina New");
    assert_eq!(new.len(), 2);
    assert!(new.iter().all(|c| c["ca"] == "issuing-2"), "{new:?}");
    assert!(
        new[0]["issuer"]
            .as_str()
            .unwrap()
            .contains("Demo Issuing CA 2"),
        "{new:?}"
    );

    // 4. Revoke a certificate of the old CA.
    let revoked = old[0]["serial"].as_str().unwrap().to_string();
    ok(
        &root,
        &["certs", "revoke", &revoked, "--reason", "superseded"],
    );

    // 5. Both CAs publish CRLs: the old one lists the revoked certificate.
    let old_crl = server.get("/pgwy/crl/issuing.crl").await;
    let new_crl = server.get("/pgwy/crl/issuing-2.crl").await;
    assert!(
        crl_serials(&old_crl)
            .iter()
            .any(|s| normalise(s) == normalise(&revoked)),
        "the old CA's CRL lacks {revoked}"
    );
    assert!(crl_serials(&new_crl).is_empty());
    let work = dir.path();
    let chain = work.join("chain.pem");
    std::fs::write(
        &chain,
        [
            std::fs::read_to_string(root.join("data/ca/root.pem")).unwrap(),
            std::fs::read_to_string(root.join("data/ca/issuing.pem")).unwrap(),
            std::fs::read_to_string(&new_ca).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    if tool("openssl").is_none() {
        return skipped(
            "ca_rollover_end_to_end",
            "openssl not installed: CRL signatures and OCSP not checked",
        );
    }
    for (name, der) in [("issuing", &old_crl), ("issuing-2", &new_crl)] {
        let file = work.join(format!("{name}.crl"));
        std::fs::write(&file, der).unwrap();
        let out = Command::new("openssl")
            .args(["crl", "-inform", "DER", "-noout", "-CAfile"])
            .arg(&chain)
            .arg("-in")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            output_text(&out).contains("verify OK"),
            "{name}: {}",
            output_text(&out)
        );
    }

    // 6. OCSP answers for both CAs: the old certificate revoked, the new one good.
    let ocsp = |issuer: &Path, cert: &Path| {
        let out = Command::new("openssl")
            .args(["ocsp", "-issuer"])
            .arg(issuer)
            .arg("-cert")
            .arg(cert)
            .arg("-CAfile")
            .arg(&chain)
            .args(["-url", &server.url("/pgwy/ocsp")])
            .output()
            .unwrap();
        output_text(&out)
    };
    let old_pem = certificate_pem(&root, &revoked, &work.join("old.pem"));
    let new_pem = certificate_pem(
        &root,
        new[0]["serial"].as_str().unwrap(),
        &work.join("new.pem"),
    );
    let answer = ocsp(&root.join("data/ca/issuing.pem"), &old_pem);
    assert!(answer.contains("Response verify OK"), "{answer}");
    assert!(answer.contains(": revoked"), "{answer}");
    assert!(answer.contains("Reason: superseded"), "{answer}");
    let answer = ocsp(&new_ca, &new_pem);
    assert!(answer.contains("Response verify OK"), "{answer}");
    assert!(answer.contains(": good"), "{answer}");

    // 7. `ca list`: the new CA active, the old one retiring until its last certificate ends.
    let list = ok(&root, &["ca", "list"]);
    // A table: NAME, NOT AFTER, NEXT CRL, STATE, SUBJECT, two spaces or more apart; the
    // state column of a CA's row.
    let line = |name: &str| {
        let line = list
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} not listed: {list}"));
        let cells: Vec<&str> = line
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert!(cells[2].parse::<u64>().is_ok(), "next CRL number: {list}");
        cells[3].to_string()
    };
    let last = old
        .iter()
        .chain(certificates_of(&root, "Olga Older").iter())
        .map(|c| c["notAfter"].as_str().unwrap().to_string())
        .max()
        .unwrap();
    let old_count = 2 + certificates_of(&root, "Olga Older").len();
    let until = &last;
    assert!(
        line("issuing").ends_with(&format!("retiring: {old_count} certificates until {until}")),
        "{list}"
    );
    assert!(
        line("issuing-2").ends_with("active (token procedure default)"),
        "{list}"
    );
    assert!(
        line("root").contains("active (parent of issuing, officers, issuing-2)"),
        "{list}"
    );
    let json: Vec<serde_json::Value> =
        serde_json::from_str(&ok(&root, &["ca", "list", "--json"])).unwrap();
    let entry = json.iter().find(|c| c["name"] == "issuing").unwrap();
    assert_eq!(entry["state"], "retiring");
    assert_eq!(entry["unexpiredCertificates"], old_count as i64);
    assert_eq!(entry["lastNotAfter"], *until);
    assert_eq!(
        json.iter().find(|c| c["name"] == "issuing-2").unwrap()["state"],
        "active"
    );
}
