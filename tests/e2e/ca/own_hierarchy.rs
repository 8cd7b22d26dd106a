//! docs/migration.md "Your own hierarchy from day one", run as written on an empty root: the
//! shell block of that section (with the root and the binary of this build; the CAs get names
//! of their own), then the HTTPS listener turned on as the section says. No demo certificate
//! is left anywhere (CAs, officers CA, the officers it issues, TLS server certificate, the
//! chains served), no CA keeps a default name, both TLS server certificates are in the
//! certificate database, and `serve` prints no demo warning; the same start on a demo root
//! does warn, so the check can fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::kit::{Anchored, Serve, free_port};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ast_gateway::ca::{is_demo_certificate, is_demo_tls_chain};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ast-gateway")
}

/// The ```sh block of the section.
fn documented_steps() -> String {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/migration.md")).unwrap();
    let section = &doc[doc
        .find("## Your own hierarchy from day one")
        .expect("the section exists")..];
    let start = section.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let end = start + section[start..].find("```").unwrap();
    section[start..end].to_string()
}

/// Turns the HTTPS listener on as the section says (the commented lines of gateway.toml).
fn enable_https(root: &Path, port: u16) {
    let path = root.join("conf/gateway.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replacing(
            "# https = \"127.0.0.1:8443\"",
            &format!("https = \"127.0.0.1:{port}\""),
        )
        .replacing("# tls_cert = ", "tls_cert = ")
        .replacing("# tls_key = ", "tls_key = ")
        .replacing("# client_ca = ", "client_ca = ");
    assert!(text.contains(&format!("https = \"127.0.0.1:{port}\"")));
    std::fs::write(&path, text).unwrap();
}

/// Starts `serve` (the kit's harness) until the HTTPS listener answers, stops it, and returns
/// what it logged.
fn serve_log(root: &Path, port: u16) -> String {
    let mut command = Command::new(bin());
    command
        .arg("--root")
        .arg(root)
        .env("RUST_LOG", "info")
        .args(["serve", "--http", "127.0.0.1:0", "--admin", ""]);
    let serve = Serve::spawn(command);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "serve did not listen on {port}: {}",
            serve.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The summary is logged right after the listeners are bound.
    std::thread::sleep(Duration::from_millis(500));
    serve.log_text()
}

/// `certs list --json` of a root (must succeed).
fn certificates(root: &Path) -> Vec<serde_json::Value> {
    let listed = Command::new(bin())
        .arg("--root")
        .arg(root)
        .env("RUST_LOG", "warn")
        .args(["certs", "list", "--json"])
        .output()
        .unwrap();
    assert!(listed.status.success());
    serde_json::from_slice(&listed.stdout).unwrap()
}

fn pem_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pem"))
        .collect()
}

#[test]
fn following_the_own_hierarchy_section_leaves_no_demo_certificate_and_no_demo_warning() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ast");
    let steps = documented_steps();
    assert!(steps.contains("ast-gateway init"), "{steps}");
    let bin_dir = Path::new(bin()).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = steps.replacing("/srv/ast", root.to_str().unwrap());
    let out = Command::new("sh")
        .args(["-e", "-c", &script])
        .env("PATH", path)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{script}\n{said}");
    assert!(!said.to_lowercase().contains("demo"), "{said}");

    // Every CA certificate and the TLS chain are ours, under the names given.
    let mut cas = pem_files(&root.join("data/ca"));
    cas.sort();
    assert_eq!(
        cas,
        ["example-officers", "example-root", "example-tokens"]
            .map(|n| root.join(format!("data/ca/{n}.pem")))
    );
    let toml = std::fs::read_to_string(root.join("conf/gateway.toml")).unwrap();
    for default in [
        "name = \"root\"",
        "name = \"issuing\"",
        "name = \"officers\"",
        "ca = \"issuing\"",
    ] {
        assert!(!toml.contains(default), "{default} in\n{toml}");
    }
    assert!(toml.contains("\nca = \"example-tokens\"\n"), "{toml}");
    assert!(toml.contains("\nrole = \"officers\"\n"), "{toml}");
    for file in &cas {
        let der = ast_gateway::ca::read_certificate_file(file).unwrap();
        assert!(
            !is_demo_certificate(&der),
            "{} is a demo CA",
            file.display()
        );
    }
    let officers = std::fs::read(root.join("data/ca/example-officers.pem")).unwrap();
    assert!(!is_demo_tls_chain(&officers));
    // The officers CA issues officers, none of them demo.
    let p12 = root.join("officer.p12");
    let officer = Command::new(bin())
        .arg("--root")
        .arg(&root)
        .env("RUST_LOG", "warn")
        .args([
            "officer",
            "issue",
            "--name",
            "Olga Officer",
            "--roles",
            "api-read",
        ])
        .arg("--out")
        .arg(&p12)
        .args(["--password", "officer-pw-1"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&officer.stdout).to_string();
    assert!(officer.status.success(), "{said}");
    assert!(said.contains("from CA `example-officers`"), "{said}");
    assert!(!said.to_lowercase().contains("demo"), "{said}");
    // Both TLS server certificates (init's `localhost`, then `tls issue`'s) are recorded.
    let listed = certificates(&root);
    let tls: Vec<&serde_json::Value> = listed
        .iter()
        .filter(|c| c["purpose"] == "tls-server")
        .collect();
    assert_eq!(tls.len(), 2, "{listed:?}");
    assert!(
        tls.iter().any(|c| c["ca"] == "example-root")
            && tls.iter().any(|c| c["ca"] == "example-tokens"),
        "{tls:?}"
    );
    // The replaced `localhost` certificate is revoked like any other: on its CA's CRL.
    let localhost = tls.iter().find(|c| c["ca"] == "example-root").unwrap()["serial"]
        .as_str()
        .unwrap()
        .to_string();
    let cli = |args: &[&str]| {
        let out = Command::new(bin())
            .arg("--root")
            .arg(&root)
            .env("RUST_LOG", "warn")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    cli(&["certs", "revoke", &localhost, "--reason", "superseded"]);
    let crl = root.join("root.crl");
    cli(&[
        "crl",
        "--ca",
        "example-root",
        "--out",
        crl.to_str().unwrap(),
    ]);
    let der = std::fs::read(&crl).unwrap();
    let (_, parsed) = x509_parser::parse_x509_crl(&der).unwrap();
    let listed: Vec<String> = parsed
        .iter_revoked_certificates()
        .map(|r| {
            ast_gateway::ca::Serial::from_bytes(r.raw_serial())
                .hex()
                .to_string()
        })
        .collect();
    assert!(listed.contains(&localhost), "{listed:?} lacks {localhost}");
    // The chain records both certificates and the revocation as the tables hold them.
    let verified = String::from_utf8(cli(&["audit", "verify"])).unwrap();
    assert!(verified.contains("audit trail intact"), "{verified}");
    let tls = std::fs::read(root.join("data/tls/server.pem")).unwrap();
    assert!(!is_demo_tls_chain(&tls), "the TLS server certificate");
    let tls_text = String::from_utf8_lossy(&tls).to_string();
    assert_eq!(
        tls_text.matches("BEGIN CERTIFICATE").count(),
        3,
        "leaf, issuing, root"
    );
    let subject = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-subject",
            "-issuer",
            "-ext",
            "subjectAltName",
        ])
        .stdin(std::fs::File::open(root.join("data/tls/server.pem")).unwrap())
        .output();
    if let Ok(subject) = subject {
        let text = String::from_utf8_lossy(&subject.stdout);
        assert!(
            text.contains("CN = gateway.example.com")
                && text.contains("CN = Example Issuing CA")
                && text.contains("DNS:gateway.example.com")
                && text.contains("IP Address:127.0.0.1"),
            "{text}"
        );
    }
    // The replaced (demo-free, `localhost`) certificate is kept beside it.
    let previous = std::fs::read(root.join("data/tls/server.pem.previous")).unwrap();
    assert!(!is_demo_tls_chain(&previous));

    // serve with HTTPS: no demo warning at all.
    let port = free_port();
    enable_https(&root, port);
    let log = serve_log(&root, port);
    assert!(
        log.contains("CA example-tokens"),
        "the summary was logged: {log}"
    );
    assert!(!log.contains("DEMO"), "{log}");

    // The same start on a demo root warns about both, so the check above can fail.
    let demo = dir.path().join("demo");
    let out = Command::new(bin())
        .arg("--root")
        .arg(&demo)
        .arg("init")
        .output()
        .unwrap();
    assert!(out.status.success());
    let port = free_port();
    enable_https(&demo, port);
    let log = serve_log(&demo, port);
    assert!(
        log.contains("DEMO CA in use") && log.contains("DEMO TLS server certificate in use"),
        "{log}"
    );
}

/// `ca create` takes C, O, OU… and CN (encoded in that order) or a whole DN (encoded as
/// written), and refuses a DN without CN or naming the demo organisation.
#[test]
fn ca_create_takes_country_units_or_a_whole_subject() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r");
    let cli = |args: &[&str]| {
        let out = Command::new(bin())
            .arg("--root")
            .arg(&root)
            .env("RUST_LOG", "warn")
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    assert!(cli(&["init"]).0);
    let (ok, text) = cli(&[
        "ca",
        "create",
        "units",
        "--parent",
        "root",
        "--common-name",
        "Example Issuing CA 2",
        "--organizational-unit",
        "PKI",
        "--country",
        "SE",
        "--organization",
        "Example, AB",
        "--organizational-unit",
        "Tokens",
    ]);
    assert!(ok, "{text}");
    let (ok, text) = cli(&[
        "ca",
        "create",
        "whole",
        "--parent",
        "root",
        "--subject",
        "O=Example AB, C=SE, CN=Written Order CA",
    ]);
    assert!(ok, "{text}");
    let subject = |name: &str| {
        let der = ast_gateway::ca::read_certificate_file(&root.join(format!("data/ca/{name}.pem")))
            .unwrap();
        use x509_parser::prelude::FromDer;
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&der).unwrap();
        // x509-parser prints the RDNs in encoded order.
        cert.subject().to_string()
    };
    // x509-parser does not escape: "Example, AB" is the one O value.
    assert_eq!(
        subject("units"),
        "C=SE, O=Example, AB, OU=PKI, OU=Tokens, CN=Example Issuing CA 2"
    );
    assert_eq!(subject("whole"), "O=Example AB, C=SE, CN=Written Order CA");
    for (dn, says) in [
        ("C=SE, O=Example AB", "has no CN"),
        ("O=ast-gateway demo, CN=Fake", "demo"),
    ] {
        let (ok, text) = cli(&["ca", "create", "bad", "--subject", dn]);
        assert!(!ok && text.contains(says), "{dn}: {text}");
    }
}

/// `serve --init` takes the CA names like `init`, and the TLS server certificate the new root
/// signed is in the certificate database once the service is up.
#[test]
fn serve_init_takes_the_names_and_records_the_tls_server_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("new");
    let log = dir.path().join("serve.log");
    let mut child = Command::new(bin())
        .arg("--root")
        .arg(&root)
        .env("RUST_LOG", "info")
        .args(["serve", "--init", "--http", "127.0.0.1:0", "--admin", ""])
        .args([
            "--root-name",
            "r1",
            "--issuing-name",
            "i1",
            "--officers-name",
            "o1",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("listener http:")
    {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("serve exited with {status}");
        }
        assert!(Instant::now() < deadline, "serve did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let toml = std::fs::read_to_string(root.join("conf/gateway.toml")).unwrap();
    assert!(
        toml.contains("name = \"o1\"\ncertificate = \"data/ca/o1.pem\"\nkey = \"data/ca/o1.key\"\nparent = \"r1\"\nrole = \"officers\"\n"),
        "{toml}"
    );
    let listed = certificates(&root);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["purpose"], "tls-server");
    assert_eq!(listed[0]["ca"], "r1");
}
