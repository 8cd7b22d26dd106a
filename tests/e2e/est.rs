//! EST (RFC 7030) end to end over real TLS: BouncyCastle's EST client (Debian's libbcpkix-java,
//! `est/Est.java`) gets cacerts and csrattrs, enrols a CSR with HTTP Basic, gets a
//! server-generated key and certificate, and re-enrols over mTLS with the certificate it got;
//! openssl checks that each key matches its certificate and that each certificate chains to our
//! root, and `certs list` lists them. `est/curl.rs` does every operation with curl + openssl,
//! `est/refusals.rs` every refusal (status, code, audit row); `est/config.rs` covers ast.properties;
//! `est/encrypted.rs` serverkeygen with the key encrypted to the client (RSA, EC, a KEK).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cms;
mod config;
mod curl;
mod encrypted;
mod refusals;
mod tools;

use std::path::{Path, PathBuf};
use std::process::Command;

use ast_gateway::config::Root;

use crate::api::Api;
use crate::kit::{Anchored, run, run_ok, skipped, tool};

/// The Basic secret of the `devices` label.
pub(crate) const SECRET: &str = "device-secret-0123456789";

/// The Debian BouncyCastle jars the Java client needs.
const BC_JARS: [&str; 3] = [
    "/usr/share/java/bcprov.jar",
    "/usr/share/java/bcutil.jar",
    "/usr/share/java/bcpkix.jar",
];

/// The EST configuration of the tests: a one-certificate token procedure `device` (EC P-256,
/// clientAuth), `client_ca` holding the officers CA and the issuing CA (so that devices can
/// re-enrol with their certificate), and three EST handlers:
/// * `devices`: HTTP Basic (`device` / [`SECRET`]), EST only, the subject from the CSR
///   (`dev-…` names only) with its DNS name;
/// * `front`: the trusted front's identity headers, as the form (no label: also the default);
/// * `officers`: an officer with the role `est-enrol` over mTLS, the subject from the CSR.
pub(crate) fn configure(root: &Root) {
    let toml = std::fs::read_to_string(root.gateway_toml()).unwrap();
    let toml = toml.replacing(
        "client_ca = \"data/ca/officers.pem\"",
        "client_ca = \"data/ca/clients.pem\"",
    ) + r#"
[[token_procedure]]
name = "device"

[[token_procedure.certificate]]
purpose = "device"
ca = "issuing"
key = "ec-p256"
validity = "30d"
key_usage = ["digitalSignature"]
extended_key_usage = ["clientAuth"]
"#;
    std::fs::write(root.gateway_toml(), toml).unwrap();
    let ca = root.data().join("ca");
    let clients = [
        std::fs::read_to_string(ca.join("officers.pem")).unwrap(),
        std::fs::read_to_string(ca.join("issuing.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(ca.join("clients.pem"), clients).unwrap();
    let hash = ast_gateway::issuance::hash_secret(SECRET).unwrap();
    let mut ast = std::fs::read_to_string(root.ast_properties()).unwrap();
    ast.push_str(&format!(
        r#"
handler.2.est.label = devices
handler.2.est.user = device
handler.2.est.secret = {hash}
handler.2.tokenprocedure = device
handler.2.defaultFormat = off
handler.2.formatFields.1 = ast.valuetarget.commonname.value = cert:subject.commonname | required | match("dev-[a-z0-9-]+")
handler.2.formatFields.2 = ast.valuetarget.dnsname.value = cert:san.dnsname | lower | match("[a-z0-9.-]+\\.devices\\.example")
handler.3.est.label = front
handler.3.est.default = true
handler.3.tokenprocedure = device
handler.4.est.label = officers
handler.4.requiredRoRoles = est-enrol
handler.4.tokenprocedure = device
handler.4.defaultFormat = off
handler.4.formatFields.1 = ast.valuetarget.commonname.value = cert:subject.commonname | required
"#
    ));
    std::fs::write(root.ast_properties(), ast).unwrap();
}

/// `https://localhost:<port>` of the gateway's HTTPS listener.
pub(crate) fn base(api: &Api) -> String {
    api.url("").trim_end_matches("/pgwy/api/").to_string()
}

/// `localhost:<port>`.
pub(crate) fn authority(api: &Api) -> String {
    base(api).trim_start_matches("https://").to_string()
}

/// The root CA certificate (PEM): the TLS server certificate and every issued one chain to it.
pub(crate) fn root_pem(api: &Api) -> PathBuf {
    api.root.data().join("ca/root.pem")
}

/// `openssl verify` of `leaf` against our root with the issuing CA as intermediate.
pub(crate) fn verify_chain(openssl: &Path, api: &Api, leaf: &Path) {
    let issuing = api.root.data().join("ca/issuing.pem");
    let text = run_ok(
        openssl,
        &[
            "verify",
            "-CAfile",
            root_pem(api).to_str().unwrap(),
            "-untrusted",
            issuing.to_str().unwrap(),
            leaf.to_str().unwrap(),
        ],
    );
    assert!(text.contains(": OK"), "{text}");
}

/// The public key of a certificate and of a private key agree (both as openssl prints them).
pub(crate) fn key_matches(openssl: &Path, certificate: &Path, key: &Path) {
    let from_cert = run_ok(
        openssl,
        &[
            "x509",
            "-in",
            certificate.to_str().unwrap(),
            "-noout",
            "-pubkey",
        ],
    );
    let from_key = run_ok(openssl, &["pkey", "-in", key.to_str().unwrap(), "-pubout"]);
    assert_eq!(from_cert, from_key, "{}", certificate.display());
}

/// A certificate's serial (lower-case hex, as the database writes it) and subject.
pub(crate) fn serial_and_subject(openssl: &Path, certificate: &Path) -> (String, String) {
    let text = run_ok(
        openssl,
        &[
            "x509",
            "-in",
            certificate.to_str().unwrap(),
            "-noout",
            "-serial",
            "-subject",
            "-nameopt",
            "RFC2253",
        ],
    );
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_string()
    };
    (field("serial=").to_ascii_lowercase(), field("subject="))
}

/// The serials `certs list --json` shows.
pub(crate) fn listed_serials(api: &Api) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_ast-gateway"))
        .arg("--root")
        .arg(api.root.dir())
        .args(["certs", "list", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["serial"].as_str().unwrap().to_ascii_lowercase())
        .collect()
}

/// Strips leading zero bytes of a hex serial (openssl and BigInteger print them differently).
pub(crate) fn canonical(serial: &str) -> String {
    let s = serial.trim_start_matches("00");
    if s.len() % 2 == 1 {
        format!("0{s}")
    } else {
        s.to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bouncycastle_est_client_enrols_generates_keys_and_reenrols() {
    let (Some(java), Some(openssl)) = (tool("java"), tool("openssl")) else {
        return skipped("bouncycastle_est_client", "java or openssl not installed");
    };
    if let Some(missing) = BC_JARS.iter().find(|j| !Path::new(j).is_file()) {
        return skipped(
            "bouncycastle_est_client",
            &format!("{missing} missing (Debian libbcpkix-java, libbcprov-java, libbcutil-java)"),
        );
    }
    let api = Api::start(configure).await;
    let out = api.dir().join("bc");
    std::fs::create_dir_all(&out).unwrap();
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/est/Est.java");
    let java_args = [
        "-cp".to_string(),
        BC_JARS.join(":"),
        program.display().to_string(),
        authority(&api),
        "devices".into(),
        root_pem(&api).display().to_string(),
        "device".into(),
        SECRET.into(),
        out.display().to_string(),
    ];
    // The client blocks; the server runs on this runtime's other thread.
    let java_run = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = java_args.iter().map(String::as_str).collect();
        run(&java, &args)
    });
    let output = java_run.await.unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "Est.java failed:\n{text}");
    // cacerts: the issuing CA and the root; csrattrs names the CSR's subject and key.
    assert!(text.contains("cacerts 2"), "{text}");
    let csrattrs = text.lines().find(|l| l.starts_with("csrattrs")).unwrap();
    for oid in [
        "2.5.4.3",
        "1.2.840.10045.2.1",
        "1.2.840.10045.4.3.2",
        "1.2.840.113549.1.9.14",
    ] {
        assert!(csrattrs.contains(oid), "{csrattrs}");
    }
    assert!(text.contains("wrong secret refused 401"), "{text}");
    let cacerts = std::fs::read_to_string(out.join("cacerts.pem")).unwrap();
    assert_eq!(cacerts.matches("BEGIN CERTIFICATE").count(), 2);

    let listed = listed_serials(&api);
    let mut serials = Vec::new();
    for (name, subject) in [
        ("enrolled", "CN=dev-bc-1"),
        ("serverkeygen", "CN=dev-bc-2"),
        ("reenrolled", "CN=dev-bc-1"),
    ] {
        let certificate = out.join(format!("{name}.pem"));
        let key = out.join(format!("{name}.key"));
        key_matches(&openssl, &certificate, &key);
        verify_chain(&openssl, &api, &certificate);
        let (serial, shown) = serial_and_subject(&openssl, &certificate);
        assert_eq!(shown, subject, "{name}");
        let dns = run_ok(
            &openssl,
            &[
                "x509",
                "-in",
                certificate.to_str().unwrap(),
                "-noout",
                "-ext",
                "subjectAltName",
            ],
        );
        assert!(
            dns.contains(&format!("DNS:{}.devices.example", &subject[3..])),
            "{dns}"
        );
        assert!(
            listed.iter().any(|l| canonical(l) == canonical(&serial)),
            "{name} {serial} is not in certs list: {listed:?}"
        );
        serials.push(serial);
    }
    // The renewal is a new certificate with a new key for the same subject.
    assert_ne!(serials[0], serials[2]);
    let audit = api.audit().await;
    let issued: Vec<&serde_json::Value> = audit
        .iter()
        .filter(|(event, ..)| event == "issued")
        .map(|(_, _, _, detail)| detail)
        .collect();
    for operation in ["simpleenroll", "serverkeygen", "simplereenroll"] {
        assert!(
            issued
                .iter()
                .any(|d| d["door"] == "est" && d["operation"] == operation),
            "no issued audit row for {operation}: {issued:?}"
        );
    }
    let renewal = issued
        .iter()
        .find(|d| d["operation"] == "simplereenroll")
        .unwrap();
    assert_eq!(
        canonical(renewal["renewed"].as_str().unwrap()),
        canonical(&serials[0])
    );
    // The device caller is named in the audit trail, never its secret.
    let rows = format!("{audit:?}");
    assert!(rows.contains("device:device@handler.2"), "{rows}");
    assert!(!rows.contains(SECRET));
}
