//! Subject RDN order: the embedded procedures encode the conventional order (C, O, OU, …, CN),
//! and a CA brought in with `ca import` whose own subject runs the other way (CN first, as
//! `openssl req -subj "/CN=…/O=…/C=…"` writes it) gets a `subject_order` in its `[[ca]]` block,
//! so the tokens it signs keep its order. Checked on issued certificates with x509-parser (which
//! prints the RDNs in encoded order) and openssl.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use crate::kit::{ALICE, TestGateway, skipped, tool};

const PIN: &str = "Secret-123";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ast-gateway")
}

/// The subjects (RDNs in encoded order) of the end-entity certificates of a PKCS#12.
fn leaf_subjects(dir: &Path, p12: &[u8]) -> Vec<String> {
    let file = dir.join("token.p12");
    std::fs::write(&file, p12).unwrap();
    let out = Command::new("openssl")
        .args(["pkcs12", "-nokeys", "-clcerts", "-passin"])
        .arg(format!("pass:{PIN}"))
        .arg("-in")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .map(|block| {
            let pem = format!("-----BEGIN CERTIFICATE-----{block}");
            let pem = &pem[..pem.find("-----END CERTIFICATE-----").unwrap() + 25];
            let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
            let cert = parsed.parse_x509().unwrap();
            cert.subject().to_string()
        })
        .collect()
}

/// Position of the RDN starting with `label=` in an encoded-order subject.
fn at(subject: &str, label: &str) -> usize {
    subject
        .split(", ")
        .position(|rdn| rdn.starts_with(&format!("{label}=")))
        .unwrap_or_else(|| panic!("no {label} in {subject}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_ca_keeps_its_subject_order_and_the_embedded_procedures_use_the_conventional_one()
 {
    if tool("openssl").is_none() {
        skipped(module_path!(), "openssl not installed");
        return;
    }
    let imported = std::sync::Mutex::new(String::new());
    let gw = TestGateway::start_with(|root| {
        let dir = root.dir();
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-days", "3650", "-subj", "/CN=Legacy Issuing CA/O=Legacy AB/C=SE",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
            ])
            .arg(dir.join("legacy.key"))
            .arg("-out")
            .arg(dir.join("legacy.pem"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("legacy.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let out = Command::new(bin())
            .arg("--root")
            .arg(dir)
            .env("RUST_LOG", "warn")
            .args(["ca", "import", "legacy", "--certificate"])
            .arg(dir.join("legacy.pem"))
            .arg("--key")
            .arg(dir.join("legacy.key"))
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
        *imported.lock().unwrap() = said;
        // A second procedure, signed by the imported CA, used by a second handler.
        let toml = root.gateway_toml();
        let mut text = std::fs::read_to_string(&toml).unwrap();
        text += "\n[[token_procedure]]\nname = \"legacy\"\n\n[[token_procedure.certificate]]\n\
                 purpose = \"authentication\"\nca = \"legacy\"\nkey = \"ec-p256\"\nvalidity = \"30d\"\n\
                 key_usage = [\"digitalSignature\"]\n";
        std::fs::write(&toml, text).unwrap();
        let ast = root.ast_properties();
        let mut text = std::fs::read_to_string(&ast).unwrap();
        text += "\nhandler.2.filter = legacy\nhandler.2.format = ast-default.format\nhandler.2.tokenprocedure = legacy\n";
        std::fs::write(&ast, text).unwrap();
    })
    .await;
    let said = imported.into_inner().unwrap();
    assert!(said.contains("subject_order"), "{said}");
    let toml = std::fs::read_to_string(gw.root().gateway_toml()).unwrap();
    assert!(
        toml.contains("subject_order = [\"emailaddress\", \"uid\", \"pseudonym\", \"serialnumber\", \"givenname\", \"surname\", \"commonname\", \"title\", \"organizationalunitname\", \"organizationname\", \"localityname\", \"stateorprovincename\", \"countryname\"]"),
        "{toml}"
    );

    let mut headers = ALICE.to_vec();
    headers.push(("organization", "Example AB"));
    let dir = tempfile::tempdir().unwrap();
    let token = |path: &'static str| {
        let headers = headers.clone();
        let gw = &gw;
        async move {
            let response = gw.post(path, &headers, &[("password", PIN)]).await;
            assert_eq!(
                response.status(),
                200,
                "{path}: {:?}",
                response.headers().get("x-ast-error")
            );
            response.bytes().await.unwrap().to_vec()
        }
    };
    // The embedded procedure: C first, CN after O.
    for subject in leaf_subjects(dir.path(), &token("").await) {
        assert!(at(&subject, "C") < at(&subject, "CN"), "{subject}");
        assert_eq!(at(&subject, "C"), 0, "{subject}");
    }
    // The imported CA's: CN before C, as its own subject.
    let legacy = leaf_subjects(dir.path(), &token("/legacy").await);
    assert_eq!(legacy.len(), 1);
    let subject = &legacy[0];
    assert!(at(subject, "CN") < at(subject, "C"), "{subject}");
    assert_eq!(
        subject.split(", ").last().unwrap(),
        "C=SE",
        "C is last: {subject}"
    );
}
