//! CA lifecycle end to end (issue #5): revocation through the CLI, CRLs and OCSP answers
//! checked with the `openssl` CLI, a CA key in SoftHSM2 through PKCS#11, every key type
//! opened by openssl and keytool, and the CRL number on PostgreSQL.
//!
//! These tests drive the real binary (`serve`, `certs`, `crl`, `ca`) on a temporary root, so
//! a CLI and a server process share the database exactly as an operator's would.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub(crate) mod migration;
pub(crate) mod officers_rollover;
pub(crate) mod own_hierarchy;
pub(crate) mod rollover;
pub(crate) mod subject_order;

use crate::kit::{Anchored, Serve, ser};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const PIN: &str = "Secret123";
const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ast-gateway")
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A temporary root with the embedded default, plus extra environment for every process.
struct Root {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Root {
    fn new() -> Root {
        let dir = tempfile::tempdir().unwrap();
        let root = Root {
            dir,
            env: Vec::new(),
        };
        let out = root.cli(&["init"]);
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        root
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn file(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }
    fn command(&self) -> Command {
        let mut c = Command::new(bin());
        c.arg("--root")
            .arg(self.path())
            .env("RUST_LOG", "warn")
            .env_remove("AST_GATEWAY_ROOT");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }
    fn cli(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }
    fn edit(&self, rel: &str, f: impl FnOnce(String) -> String) {
        let path = self.file(rel);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, f(text)).unwrap();
    }
    fn serve(&self) -> Serve {
        // The certificates must point at this server, so public_url is written before the
        // start: the one place a port is chosen before the server binds it.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        // Certificates must point at this server: public_url follows the port.
        self.edit("conf/gateway.toml", |t| {
            t.lines()
                .map(|l| {
                    if l.starts_with("public_url") {
                        format!("public_url = \"{base}\"")
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        });
        let mut command = self.command();
        command.env("RUST_LOG", "info,sqlx=warn").args([
            "serve",
            "--http",
            &format!("127.0.0.1:{port}"),
            "--admin",
            "",
        ]);
        Serve::spawn(command)
    }
}

/// A client with a generous timeout (RSA issuance in a debug build is slow).
fn slow_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// What the CA tests do with a running `serve`.
trait CaServe {
    async fn issue(&self, path: &str, common_name: &str) -> Vec<u8>;
    async fn get(&self, path: &str) -> reqwest::Response;
}

impl CaServe for Serve {
    async fn issue(&self, path: &str, common_name: &str) -> Vec<u8> {
        let response = slow_client()
            .post(self.url(&format!("/pgwy/ast{path}")))
            .header("commonname", common_name)
            .header("country", "SE")
            .form(&[("password", PIN)])
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "issuance failed: {:?}",
            response.headers().get("x-ast-error")
        );
        response.bytes().await.unwrap().to_vec()
    }
    async fn get(&self, path: &str) -> reqwest::Response {
        slow_client().get(self.url(path)).send().await.unwrap()
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes the PKCS#12's end-entity certificates as `leaf1.pem`, `leaf2.pem`, … and returns them.
fn leaves(dir: &Path, p12: &[u8]) -> Vec<PathBuf> {
    let p12_path = dir.join("token.p12");
    std::fs::write(&p12_path, p12).unwrap();
    let out = run(Command::new("openssl")
        .args(["pkcs12", "-nokeys", "-clcerts", "-passin"])
        .arg(format!("pass:{PIN}"))
        .arg("-in")
        .arg(&p12_path));
    assert!(out.status.success(), "openssl pkcs12: {}", text(&out));
    let pem = String::from_utf8_lossy(&out.stdout).to_string();
    let mut files = Vec::new();
    for (i, block) in pem.split("-----BEGIN CERTIFICATE-----").skip(1).enumerate() {
        let end = block.find("-----END CERTIFICATE-----").unwrap();
        let path = dir.join(format!("leaf{}.pem", i + 1));
        std::fs::write(
            &path,
            format!(
                "-----BEGIN CERTIFICATE-----{}-----END CERTIFICATE-----\n",
                &block[..end]
            ),
        )
        .unwrap();
        files.push(path);
    }
    files
}

fn serial(cert: &Path) -> String {
    let out = run(Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(cert));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_string()
}

fn chain_file(root: &Root, cas: &[&str]) -> PathBuf {
    let path = root.file(&format!("chain-{}.pem", cas.join("-")));
    let text: String = cas
        .iter()
        .map(|ca| std::fs::read_to_string(root.file(&format!("data/ca/{ca}.pem"))).unwrap())
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// `openssl crl -text` of a DER CRL after checking its signature against `chain`.
fn crl_text(dir: &Path, der: &[u8], chain: &Path) -> String {
    let path = dir.join("check.crl");
    std::fs::write(&path, der).unwrap();
    let out = run(Command::new("openssl")
        .args([
            "crl", "-inform", "DER", "-noout", "-text", "-verify", "-CAfile",
        ])
        .arg(chain)
        .arg("-in")
        .arg(&path));
    let all = text(&out);
    assert!(
        out.status.success() && all.contains("verify OK"),
        "CRL signature does not verify: {all}"
    );
    all
}

/// `openssl verify -crl_check` of `cert` with the CRL; Ok(()) or the error text.
fn verify_with_crl(dir: &Path, der: &[u8], chain: &Path, cert: &Path) -> Result<(), String> {
    let pem = dir.join("check-crl.pem");
    let out = run(Command::new("openssl")
        .args(["crl", "-inform", "DER", "-out"])
        .arg(&pem)
        .arg("-in")
        .arg({
            let p = dir.join("check2.crl");
            std::fs::write(&p, der).unwrap();
            p
        }));
    assert!(out.status.success());
    let out = run(Command::new("openssl")
        .args(["verify", "-crl_check", "-CAfile"])
        .arg(chain)
        .arg("-CRLfile")
        .arg(&pem)
        .arg(cert));
    if out.status.success() {
        Ok(())
    } else {
        Err(text(&out))
    }
}

fn crl_number(crl_text: &str) -> u64 {
    let after = crl_text.split("X509v3 CRL Number:").nth(1).unwrap();
    after.split_whitespace().next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn crl_revoke_hold_reinstate_checked_by_openssl() {
    if !have("openssl") {
        crate::kit::skipped(module_path!(), "openssl not installed");
        return;
    }
    let root = Root::new();
    let server = root.serve();
    let leaf = leaves(root.path(), &server.issue("", "Alice Andersson").await);
    assert_eq!(leaf.len(), 2);
    let chain = chain_file(&root, &["issuing", "root"]);
    let cert = &leaf[0];
    let serial = serial(cert);

    // The certificate points at our CRL; the first CRL is empty and verifies.
    let ext = text(&run(Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-ext",
            "crlDistributionPoints,authorityInfoAccess",
            "-in",
        ])
        .arg(cert)));
    assert!(
        ext.contains(&format!("{}/pgwy/crl/issuing.crl", server.base())),
        "{ext}"
    );
    assert!(
        ext.contains(&format!("OCSP - URI:{}/pgwy/ocsp", server.base())),
        "{ext}"
    );
    let response = server.get("/pgwy/crl/issuing.crl").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/pkix-crl");
    let crl0 = response.bytes().await.unwrap().to_vec();
    let t0 = crl_text(root.path(), &crl0, &chain);
    assert!(t0.contains("No Revoked Certificates"), "{t0}");
    assert!(t0.contains("Next Update"), "{t0}");
    assert!(verify_with_crl(root.path(), &crl0, &chain, cert).is_ok());
    let n0 = crl_number(&t0);
    // The AKI of the CRL is the issuing CA's SKI (crates.md P3), which is how openssl found it.
    let ski = text(&run(Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectKeyIdentifier", "-in"])
        .arg(root.file("data/ca/issuing.pem"))));
    let ski = ski.lines().last().unwrap().trim().to_string();
    assert!(t0.contains(&ski), "CRL AKI should be {ski}: {t0}");

    // Hold: on the served CRL within 5 s, with reason code 6.
    let out = root.cli(&["certs", "revoke", &serial, "--reason", "certificateHold"]);
    assert!(out.status.success(), "{}", text(&out));
    let started = Instant::now();
    let (crl1, t1) = loop {
        let der = server
            .get("/pgwy/crl/issuing.crl")
            .await
            .bytes()
            .await
            .unwrap()
            .to_vec();
        let t = crl_text(root.path(), &der, &chain);
        if t.contains(&serial) {
            break (der, t);
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "revocation not on the CRL after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!(
        "revocation visible on the CRL after {:?}",
        started.elapsed()
    );
    assert!(t1.contains("Certificate Hold"), "{t1}");
    assert!(crl_number(&t1) > n0);
    let err = verify_with_crl(root.path(), &crl1, &chain, cert).unwrap_err();
    assert!(err.contains("certificate revoked"), "{err}");
    assert!(
        verify_with_crl(root.path(), &crl1, &chain, &leaf[1]).is_ok(),
        "the other certificate stays good"
    );

    // Reinstate: the entry leaves the CRL.
    let out = root.cli(&["certs", "reinstate", &serial]);
    assert!(out.status.success(), "{}", text(&out));
    let crl2 = server
        .get("/pgwy/crl/issuing.crl")
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let t2 = crl_text(root.path(), &crl2, &chain);
    assert!(!t2.contains(&serial), "{t2}");
    assert!(crl_number(&t2) > crl_number(&t1));
    assert!(verify_with_crl(root.path(), &crl2, &chain, cert).is_ok());

    // Refusals: reinstating a good certificate, unknown serials and reasons, reinstating a
    // permanent revocation.
    let out = root.cli(&["certs", "reinstate", &serial]);
    assert!(
        !out.status.success() && text(&out).contains("conflict"),
        "{}",
        text(&out)
    );
    let out = root.cli(&["certs", "revoke", "01:23", "--reason", "keyCompromise"]);
    assert!(
        !out.status.success() && text(&out).contains("not-found"),
        "{}",
        text(&out)
    );
    let out = root.cli(&["certs", "revoke", &serial, "--reason", "stolen"]);
    assert!(
        !out.status.success() && text(&out).contains("unknown revocation reason"),
        "{}",
        text(&out)
    );
    let out = root.cli(&[
        "certs",
        "revoke",
        &serial,
        "--reason",
        "keyCompromise",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["revocationReason"], "keyCompromise");
    let out = root.cli(&["certs", "reinstate", &serial]);
    assert!(
        !out.status.success() && text(&out).contains("revoked permanently"),
        "{}",
        text(&out)
    );
    let out = root.cli(&["certs", "revoke", &serial, "--reason", "superseded"]);
    assert!(
        !out.status.success() && text(&out).contains("already revoked"),
        "{}",
        text(&out)
    );

    // `crl --ca --out` issues a fresh CRL with a higher number and the permanent reason.
    let out_file = root.file("issuing.crl");
    let out = root.cli(&[
        "crl",
        "--ca",
        "issuing",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let t3 = crl_text(root.path(), &std::fs::read(&out_file).unwrap(), &chain);
    assert!(
        t3.contains(&serial) && t3.contains("Key Compromise"),
        "{t3}"
    );
    assert!(crl_number(&t3) > crl_number(&t2));
    let out = root.cli(&["crl", "--ca", "nope"]);
    assert!(!out.status.success());
    // Unknown CA over HTTP.
    assert_eq!(server.get("/pgwy/crl/nope.crl").await.status(), 404);

    // Everything above is in the audit trail, and the chain is intact.
    let out = root.cli(&["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out));
    let db = root.file("data/ast-gateway.db");
    if have("sqlite3") {
        let events = text(&run(Command::new("sqlite3")
            .arg(&db)
            .arg("SELECT event FROM audit ORDER BY seq")));
        for e in [
            "revoked",
            "reinstated",
            "revoke-refused",
            "reinstate-refused",
            "crl-issued",
        ] {
            assert!(events.lines().any(|l| l == e), "audit lacks {e}: {events}");
        }
    }
}

fn ocsp(root: &Root, server: &Serve, issuer: &Path, chain: &Path, extra: &[&str]) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(["ocsp", "-issuer"])
        .arg(issuer)
        .args(["-CAfile"])
        .arg(chain)
        .args(["-url", &format!("{}/pgwy/ocsp", server.base())]);
    cmd.args(extra).current_dir(root.path());
    text(&run(&mut cmd))
}

#[tokio::test]
async fn ocsp_good_revoked_unknown_checked_by_openssl() {
    if !have("openssl") {
        crate::kit::skipped(module_path!(), "openssl not installed");
        return;
    }
    let root = Root::new();
    let server = root.serve();
    let leaf = leaves(root.path(), &server.issue("", "Olle Ocsp").await);
    let chain = chain_file(&root, &["issuing", "root"]);
    let issuer = root.file("data/ca/issuing.pem");
    let (a, b) = (leaf[0].to_str().unwrap(), leaf[1].to_str().unwrap());

    let out = ocsp(
        &root,
        &server,
        &issuer,
        &chain,
        &["-cert", a, "-cert", b, "-serial", "0x1234"],
    );
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(!out.contains("WARNING"), "nonce must be echoed: {out}");
    assert!(
        out.contains(&format!("{a}: good")) && out.contains(&format!("{b}: good")),
        "{out}"
    );
    assert!(out.contains("0x1234: unknown"), "{out}");
    // CertIDs hashed with SHA-256 and SHA-384 name the issuer too.
    for digest in ["-sha256", "-sha384"] {
        let out = ocsp(&root, &server, &issuer, &chain, &[digest, "-cert", b]);
        assert!(
            out.contains("Response verify OK") && out.contains(&format!("{b}: good")),
            "{digest}: {out}"
        );
    }

    let out = root.cli(&[
        "certs",
        "revoke",
        &serial(&leaf[0]),
        "--reason",
        "keyCompromise",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = ocsp(&root, &server, &issuer, &chain, &["-cert", a, "-cert", b]);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(
        out.contains(&format!("{a}: revoked")) && out.contains("Reason: keyCompromise"),
        "{out}"
    );
    assert!(out.contains("Revocation Time:"), "{out}");
    assert!(out.contains(&format!("{b}: good")), "{out}");

    // GET form (RFC 6960 A.1) with the request openssl wrote; caching headers per RFC 5019.
    let out = ocsp(
        &root,
        &server,
        &issuer,
        &chain,
        &["-cert", b, "-reqout", "req.der", "-no_nonce"],
    );
    assert!(out.contains("good"), "{out}");
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(root.file("req.der")).unwrap());
    let encoded: String = b64
        .chars()
        .map(|c| match c {
            '+' => "%2B".into(),
            '/' => "%2F".into(),
            '=' => "%3D".into(),
            c => c.to_string(),
        })
        .collect();
    let response = server.get(&format!("/pgwy/ocsp/{encoded}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/ocsp-response"
    );
    let cache = response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cache.contains("max-age=") && cache.contains("public"),
        "{cache}"
    );
    assert!(
        response.headers().contains_key("last-modified")
            && response.headers().contains_key("expires")
    );
    std::fs::write(root.file("resp.der"), response.bytes().await.unwrap()).unwrap();
    let out = text(&run(Command::new("openssl")
        .args(["ocsp", "-respin"])
        .arg(root.file("resp.der"))
        .args(["-issuer"])
        .arg(&issuer)
        .arg("-CAfile")
        .arg(&chain)
        .args(["-cert", b, "-no_nonce"])));
    assert!(
        out.contains("Response verify OK") && out.contains(&format!("{b}: good")),
        "{out}"
    );

    // A malformed request gets an unsigned malformedRequest (RFC 6960 §2.3), not an HTTP error.
    let response = slow_client()
        .post(format!("{}/pgwy/ocsp", server.base()))
        .header("content-type", "application/ocsp-request")
        .body(vec![0x30, 0x03, 0x02, 0x01, 0x00])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.bytes().await.unwrap().to_vec(),
        vec![0x30, 0x03, 0x0a, 0x01, 0x01]
    );

    // A certificate from a CA we do not run: unauthorized.
    let out = run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=Foreign CA",
            "-days",
            "1",
        ])
        .args(["-keyout", "foreign.key", "-out", "foreign.pem"])
        .current_dir(root.path()));
    assert!(out.status.success(), "{}", text(&out));
    let out = ocsp(
        &root,
        &server,
        &root.file("foreign.pem"),
        &chain,
        &["-serial", "0x01"],
    );
    assert!(
        out.contains("unauthorized") || out.contains("Unauthorized"),
        "{out}"
    );
}

#[tokio::test]
async fn pkcs11_softhsm_ca_issues_token_and_crl() {
    if !have("softhsm2-util") || !Path::new(SOFTHSM_MODULE).exists() {
        crate::kit::skipped(module_path!(), "softhsm2 not installed");
        return;
    }
    if !have("openssl") {
        crate::kit::skipped(module_path!(), "openssl not installed");
        return;
    }
    let mut root = Root::new();
    let tokens = root.file("softhsm-tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = root.file("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    root.env
        .push(("SOFTHSM2_CONF".into(), conf.display().to_string()));
    root.env.push(("CA_PIN".into(), "4321".into()));
    let out = run(Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            "ast-ca",
            "--pin",
            "4321",
            "--so-pin",
            "87654321",
        ]));
    assert!(out.status.success(), "{}", text(&out));

    // The CA keys are generated inside the token (never in a file); EC and RSA.
    for (name, key_type) in [("hsm", "ec-p256"), ("hsmrsa", "rsa-3072")] {
        let uri = format!(
            "pkcs11:token=ast-ca;object={name}-key?module-path={SOFTHSM_MODULE}&pin-source=env:CA_PIN"
        );
        let out = root.cli(&[
            "ca",
            "create",
            name,
            "--key",
            &uri,
            "--key-type",
            key_type,
            "--parent",
            "root",
            "--common-name",
            &format!("HSM {key_type} CA"),
        ]);
        assert!(out.status.success(), "ca create {name}: {}", text(&out));
    }
    // No private key material was written for them.
    assert!(!root.file("data/ca/hsm.key").exists());
    let out = root.cli(&["config", "check"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = root.cli(&["ca", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(list.as_array().unwrap().iter().any(|c| c["name"] == "hsm"));

    // The default token procedure now signs with the HSM keys.
    root.edit("conf/gateway.toml", |t| {
        t.replacen("ca = \"issuing\"", "ca = \"hsm\"", 1).replacen(
            "ca = \"issuing\"",
            "ca = \"hsmrsa\"",
            1,
        )
    });
    let server = root.serve();
    let leaf = leaves(root.path(), &server.issue("", "Harald Hsm").await);
    let ec_chain = chain_file(&root, &["hsm", "root"]);
    let rsa_chain = chain_file(&root, &["hsmrsa", "root"]);
    for (cert, chain) in [(&leaf[0], &ec_chain), (&leaf[1], &rsa_chain)] {
        let out = run(Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(chain)
            .arg(cert));
        assert!(
            out.status.success(),
            "HSM-signed certificate does not verify: {}",
            text(&out)
        );
    }

    // Revoke one; the HSM-signed CRLs verify and list it.
    let s = serial(&leaf[0]);
    assert!(
        root.cli(&["certs", "revoke", &s, "--reason", "keyCompromise"])
            .status
            .success()
    );
    let crl = server
        .get("/pgwy/crl/hsm.crl")
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let t = crl_text(root.path(), &crl, &ec_chain);
    assert!(t.contains(&s), "{t}");
    assert!(
        verify_with_crl(root.path(), &crl, &ec_chain, &leaf[0])
            .unwrap_err()
            .contains("certificate revoked")
    );
    let out_file = root.file("rsa.crl");
    let out = root.cli(&["crl", "--ca", "hsmrsa", "--out", out_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let der = std::fs::read(&out_file).unwrap();
    let t = crl_text(root.path(), &der, &rsa_chain);
    assert!(t.contains("sha256WithRSAEncryption"), "{t}");
    assert!(verify_with_crl(root.path(), &der, &rsa_chain, &leaf[1]).is_ok());

    // OCSP answers signed in the token.
    let out = ocsp(
        &root,
        &server,
        &root.file("data/ca/hsm.pem"),
        &ec_chain,
        &["-cert", leaf[0].to_str().unwrap()],
    );
    assert!(
        out.contains("Response verify OK") && out.contains("revoked"),
        "{out}"
    );

    // A wrong PIN is reported at config check, without the PIN.
    root.env.retain(|(k, _)| k != "CA_PIN");
    root.env.push(("CA_PIN".into(), "0000".into()));
    let out = root.cli(&["config", "check"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("login failed") && !text(&out).contains("0000"),
        "{}",
        text(&out)
    );
    // Revocation needs no CA key: it works while the token refuses us.
    let out = root.cli(&[
        "certs",
        "revoke",
        &serial(&leaf[1]),
        "--reason",
        "superseded",
    ]);
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test]
async fn every_key_type_opens_in_openssl_and_keytool() {
    if !have("openssl") {
        crate::kit::skipped(module_path!(), "openssl not installed");
        return;
    }
    let keytool = have("keytool");
    if !keytool {
        println!("note: keytool not installed; checking with openssl only");
    }
    let root = Root::new();
    let types = [
        "rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384", "ed25519",
    ];
    root.edit("conf/gateway.toml", |mut t| {
        for k in types {
            t += &format!(
                "\n[[token_procedure]]\nname = \"kt-{k}\"\n\n[[token_procedure.certificate]]\npurpose = \"authentication\"\n\
                 ca = \"issuing\"\nkey = \"{k}\"\nvalidity = \"30d\"\nkey_usage = [\"digitalSignature\"]\n\
                 extended_key_usage = [\"clientAuth\", \"1.3.6.1.4.1.311.20.2.2\"]\npolicies = [\"1.2.3.4.5\"]\n"
            );
        }
        t
    });
    root.edit("conf/ast.properties", |mut t| {
        for (i, k) in types.iter().enumerate() {
            let n = 10 + i;
            t += &format!("\nhandler.{n}.filter = {k}\nhandler.{n}.format = ast-default.format\nhandler.{n}.tokenprocedure = kt-{k}\n");
        }
        t
    });
    let out = root.cli(&["config", "check"]);
    assert!(out.status.success(), "{}", text(&out));
    let server = root.serve();
    let chain = chain_file(&root, &["issuing", "root"]);
    for k in types {
        let dir = root.file(k);
        std::fs::create_dir_all(&dir).unwrap();
        let p12 = server.issue(&format!("/{k}"), &format!("Key {k}")).await;
        let p12_path = dir.join("token.p12");
        std::fs::write(&p12_path, &p12).unwrap();
        let out = run(Command::new("openssl")
            .args(["pkcs12", "-nodes", "-passin"])
            .arg(format!("pass:{PIN}"))
            .arg("-in")
            .arg(&p12_path));
        let all = text(&out);
        assert!(
            out.status.success() && all.contains("PRIVATE KEY"),
            "{k}: openssl cannot open the key: {all}"
        );
        let key_path = dir.join("key.pem");
        std::fs::write(&key_path, &out.stdout).unwrap();
        let described = text(&run(Command::new("openssl")
            .args(["pkey", "-noout", "-text", "-in"])
            .arg(&key_path)));
        let expect = match k {
            "rsa-2048" => "2048 bit",
            "rsa-3072" => "3072 bit",
            "rsa-4096" => "4096 bit",
            "ec-p256" => "prime256v1",
            "ec-p384" => "secp384r1",
            _ => "ED25519",
        };
        assert!(
            described.contains(expect),
            "{k}: expected {expect}: {described}"
        );
        let leaf = &leaves(&dir, &p12)[0];
        let out = run(Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(&chain)
            .arg(leaf));
        assert!(out.status.success(), "{k}: {}", text(&out));
        let shown = text(&run(Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(leaf)));
        assert!(
            shown.contains("1.3.6.1.4.1.311.20.2.2") || shown.contains("Microsoft Smartcard Login"),
            "{k}: {shown}"
        );
        assert!(shown.contains("Policy: 1.2.3.4.5"), "{k}: {shown}");
        if keytool {
            let out = run(Command::new("keytool")
                .args([
                    "-list",
                    "-v",
                    "-storetype",
                    "PKCS12",
                    "-storepass",
                    PIN,
                    "-keystore",
                ])
                .arg(&p12_path));
            let all = text(&out);
            assert!(
                out.status.success()
                    && all.contains("PrivateKeyEntry")
                    && all.contains("Certificate chain length: 3"),
                "{k}: keytool: {all}"
            );
            // Importing forces Java to decrypt the private key.
            let dest = dir.join("copy.p12");
            let out = run(Command::new("keytool")
                .args([
                    "-importkeystore",
                    "-noprompt",
                    "-srcstoretype",
                    "PKCS12",
                    "-srcstorepass",
                    PIN,
                    "-deststoretype",
                    "PKCS12",
                    "-deststorepass",
                    PIN,
                    "-srckeystore",
                ])
                .arg(&p12_path)
                .arg("-destkeystore")
                .arg(&dest));
            assert!(out.status.success(), "{k}: keytool import: {}", text(&out));
        }
    }
}

#[test]
fn config_check_reports_a_key_that_does_not_match_its_certificate() {
    let root = Root::new();
    // Point the issuing CA at the officers CA's key.
    let good = std::fs::read_to_string(root.file("conf/gateway.toml")).unwrap();
    root.edit("conf/gateway.toml", |t| {
        t.replacing(
            "key = \"data/ca/issuing.key\"",
            "key = \"data/ca/officers.key\"",
        )
    });
    let out = root.cli(&["config", "check"]);
    assert!(!out.status.success());
    let all = text(&out);
    assert!(
        all.contains("ca.issuing") && all.contains("does not match the CA certificate"),
        "{all}"
    );
    std::fs::write(root.file("conf/gateway.toml"), good).unwrap();
    assert!(
        root.cli(&["config", "check"]).status.success(),
        "restored config should pass"
    );
    // `ca import` refuses the same mismatch, and accepts the right key.
    let cert = root.file("data/ca/issuing.pem");
    let out = root.cli(&[
        "ca",
        "import",
        "other",
        "--certificate",
        cert.to_str().unwrap(),
        "--key",
        "data/ca/officers.key",
    ]);
    assert!(
        !out.status.success() && text(&out).contains("does not match"),
        "{}",
        text(&out)
    );
    let out = root.cli(&[
        "ca",
        "import",
        "other",
        "--certificate",
        cert.to_str().unwrap(),
        "--key",
        "data/ca/issuing.key",
        "--parent",
        "root",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = root.cli(&["ca", "export", "other"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("BEGIN CERTIFICATE")
            .count(),
        2
    );
    // `ca create` with a file key: a sub-CA under `issuing`, key written 0600, chain verifies.
    let out = root.cli(&[
        "ca",
        "create",
        "sub",
        "--key",
        "data/ca/sub.key",
        "--key-type",
        "ec-p384",
        "--parent",
        "issuing",
        "--common-name",
        "File Sub CA",
    ]);
    assert!(
        !out.status.success() && text(&out).contains("pathLenConstraint 0"),
        "{}",
        text(&out)
    );
    let out = root.cli(&[
        "ca",
        "create",
        "sub",
        "--key",
        "data/ca/sub.key",
        "--key-type",
        "ec-p384",
        "--parent",
        "root",
        "--common-name",
        "File Sub CA",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root.file("data/ca/sub.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(root.cli(&["config", "check"]).status.success());
    if have("openssl") {
        let out = run(Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(root.file("data/ca/root.pem"))
            .arg(root.file("data/ca/sub.pem")));
        assert!(out.status.success(), "{}", text(&out));
    }
    let out = root.cli(&[
        "ca",
        "create",
        "sub",
        "--key",
        "data/ca/sub2.key",
        "--common-name",
        "Again",
    ]);
    assert!(!out.status.success() && text(&out).contains("already configured"));
    // A file key readable by others is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            root.file("data/ca/issuing.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let out = root.cli(&["config", "check"]);
        assert!(
            !out.status.success() && text(&out).contains("chmod 600"),
            "{}",
            text(&out)
        );
    }
}

/// CRL numbers are handed out by `UPDATE … RETURNING` and never repeat, also with two
/// "nodes" (pools) taking numbers at once on PostgreSQL.
#[tokio::test]
async fn crl_numbers_are_unique_across_nodes_on_postgres() {
    let Some(db) = crate::kit::databases::TestDatabase::postgres().await else {
        return;
    };
    let url = &db.url;
    {
        let node_a = ast_gateway::store::Store::open(url, 4).await.unwrap();
        let node_b = ast_gateway::store::Store::open(url, 4).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..40 {
            let store = if i % 2 == 0 {
                node_a.clone()
            } else {
                node_b.clone()
            };
            tasks.push(tokio::spawn(async move {
                store.next_crl_number("issuing").await.unwrap().0
            }));
        }
        let mut numbers = Vec::new();
        for t in tasks {
            numbers.push(t.await.unwrap());
        }
        numbers.sort();
        assert_eq!(numbers, (1..=40).collect::<Vec<i64>>());
        // A stored CRL is replaced only by a higher number.
        let event =
            ast_gateway::store::AuditEvent::now("crl-issued", "test", "", serde_json::json!({}));
        let crl = |number, der| ast_gateway::store::StoredCrl {
            number,
            revision: 0,
            this_update: 100,
            next_update: 200,
            der,
        };
        node_a
            .save_crl("issuing", &crl(40, b"forty"), &event)
            .await
            .unwrap();
        node_b
            .save_crl("issuing", &crl(39, b"thirty-nine"), &event)
            .await
            .unwrap();
        assert_eq!(
            node_a.crl_state("issuing").await.unwrap().der.as_deref(),
            Some(&b"forty"[..])
        );
        assert_eq!(node_a.verify_audit().await.unwrap().first_bad, None);
    }
}

/// The issuing CA's key as encrypted PKCS#8 (PBES2) and as PKCS#12, both made by openssl:
/// loaded with the passphrase from the environment, refused without it or with a wrong one,
/// and the CRL signed with each verifies.
#[test]
fn encrypted_pkcs8_and_pkcs12_ca_keys() {
    if !have("openssl") {
        crate::kit::skipped(module_path!(), "openssl not installed");
        return;
    }
    let mut root = Root::new();
    let key = root.file("data/ca/issuing.key");
    let cert = root.file("data/ca/issuing.pem");
    let chain = chain_file(&root, &["issuing", "root"]);
    let enc = root.file("data/ca/issuing-enc.key");
    let p12 = root.file("data/ca/issuing.p12");
    let out = run(Command::new("openssl")
        .args([
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:ca-pass-1",
            "-in",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&enc));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(Command::new("openssl")
        .args(["pkcs12", "-export", "-passout", "pass:ca-pass-2", "-inkey"])
        .arg(&key)
        .arg("-in")
        .arg(&cert)
        .arg("-out")
        .arg(&p12));
    assert!(out.status.success(), "{}", text(&out));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in [&enc, &p12] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
    let good = std::fs::read_to_string(root.file("conf/gateway.toml")).unwrap();
    for (file, var, pass) in [
        ("issuing-enc.key", "ENC_PASS", "ca-pass-1"),
        ("issuing.p12", "P12_PASS", "ca-pass-2"),
    ] {
        std::fs::write(
            root.file("conf/gateway.toml"),
            good.replacing(
                "key = \"data/ca/issuing.key\"",
                &format!("key = \"data/ca/{file}\"\nkey_passphrase_env = \"{var}\""),
            ),
        )
        .unwrap();
        // Variable missing, then wrong: config check names the problem, never the passphrase.
        let out = root.cli(&["config", "check"]);
        assert!(
            !out.status.success() && text(&out).contains(var),
            "{file}: {}",
            text(&out)
        );
        root.env = vec![(var.to_string(), "wrong-pass".to_string())];
        let out = root.cli(&["config", "check"]);
        assert!(
            !out.status.success(),
            "{file}: a wrong passphrase must fail"
        );
        assert!(!text(&out).contains("wrong-pass"), "{}", text(&out));
        root.env = vec![(var.to_string(), pass.to_string())];
        let out = root.cli(&["config", "check"]);
        assert!(out.status.success(), "{file}: {}", text(&out));
        let crl = root.file(&format!("{file}.crl"));
        let out = root.cli(&["crl", "--ca", "issuing", "--out", crl.to_str().unwrap()]);
        assert!(out.status.success(), "{file}: {}", text(&out));
        crl_text(root.path(), &std::fs::read(&crl).unwrap(), &chain);
    }

    // The passphrase encrypted with the root's secret key (`config encrypt`) instead.
    root.env.clear();
    let mut child = root
        .command()
        .args(["config", "encrypt"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"ca-pass-1\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let sealed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(sealed.starts_with("v1:") && !sealed.contains("ca-pass-1"));
    std::fs::write(
        root.file("conf/gateway.toml"),
        good.replacing(
            "key = \"data/ca/issuing.key\"",
            &format!("key = \"data/ca/issuing-enc.key\"\nkey_passphrase_encrypted = \"{sealed}\""),
        ),
    )
    .unwrap();
    let out = root.cli(&["config", "check"]);
    assert!(out.status.success(), "{}", text(&out));
    let crl = root.file("sealed.crl");
    let out = root.cli(&["crl", "--ca", "issuing", "--out", crl.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    crl_text(root.path(), &std::fs::read(&crl).unwrap(), &chain);
}

async fn store_revocation_suite(store: &ast_gateway::store::Store) {
    use ast_gateway::store::{
        AuditEvent, CertificateRecord, CertificateStatus, RevocationOutcome, TokenRecord,
    };
    let token = TokenRecord {
        id: uuid::Uuid::new_v4().to_string(),
        created_at: 1_000,
        handler: "handler.1".into(),
        token_procedure: "default".into(),
        caller: "test".into(),
        request_id: "r".into(),
        profile: "modern".into(),
    };
    let cert = |serial: &str| CertificateRecord {
        serial: crate::kit::ser(serial),
        ca: "issuing".into(),
        issuer: "CN=Issuing".into(),
        subject: "CN=Store".into(),
        sans: vec![],
        not_before: 0,
        not_after: i64::MAX / 2,
        purpose: "authentication".into(),
        token_id: token.id.clone(),
        status: CertificateStatus::Good,
        revoked_at: None,
        revocation_reason: None,
        der: vec![0x30, 0x00],
    };
    let (a, b) = ("0a01", "0b02");
    let event = |e: &str| AuditEvent::now(e, "test", "r", serde_json::json!({}));
    store
        .record_issuance(&token, &[cert(a), cert(b)], &event("issued"))
        .await
        .unwrap();
    let revision = |s: ast_gateway::store::CrlState| s.revision;
    let r0 = revision(store.crl_state("issuing").await.unwrap());

    let hold = store
        .revoke_certificate(&ser("0A:01"), "certificateHold", 2_000, &event("revoked"))
        .await
        .unwrap();
    assert!(
        matches!(hold, RevocationOutcome::Changed(ref c) if c.revocation_reason.map(|r| r.name()) == Some("certificateHold")),
        "{hold:?}"
    );
    let again = store
        .revoke_certificate(&ser(a), "certificateHold", 2_001, &event("revoked"))
        .await
        .unwrap();
    assert!(
        matches!(again, RevocationOutcome::AlreadyRevoked(r) if r.name() == "certificateHold"),
        "{again:?}"
    );
    let permanent = store
        .revoke_certificate(&ser(a), "keyCompromise", 2_002, &event("revoked"))
        .await
        .unwrap();
    assert!(
        matches!(permanent, RevocationOutcome::Changed(ref c) if c.revoked_at == Some(2_002)),
        "{permanent:?}"
    );
    let reinstate = store
        .reinstate_certificate(&ser(a), &event("reinstated"))
        .await
        .unwrap();
    assert!(
        matches!(reinstate, RevocationOutcome::AlreadyRevoked(r) if r.name() == "keyCompromise"),
        "{reinstate:?}"
    );
    let good = store
        .reinstate_certificate(&ser(b), &event("reinstated"))
        .await
        .unwrap();
    assert!(matches!(good, RevocationOutcome::NotRevoked), "{good:?}");
    assert!(matches!(
        store
            .revoke_certificate(&ser("ffff"), "superseded", 1, &event("revoked"))
            .await
            .unwrap(),
        RevocationOutcome::NotFound
    ));

    store
        .revoke_certificate(&ser(b), "certificateHold", 3_000, &event("revoked"))
        .await
        .unwrap();
    let listed = store.revoked_certificates("issuing", 10_000).await.unwrap();
    assert_eq!(
        listed.iter().map(|e| e.serial.as_str()).collect::<Vec<_>>(),
        vec![a, b]
    );
    let back = store
        .reinstate_certificate(&ser(b), &event("reinstated"))
        .await
        .unwrap();
    assert!(
        matches!(back, RevocationOutcome::Changed(ref c) if c.status == CertificateStatus::Good && c.revoked_at.is_none()),
        "{back:?}"
    );
    let listed = store.revoked_certificates("issuing", 10_000).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].reason.as_deref(), Some("keyCompromise"));
    // hold, keyCompromise, hold, reinstate: four changes.
    assert_eq!(revision(store.crl_state("issuing").await.unwrap()), r0 + 4);
    assert_eq!(store.verify_audit().await.unwrap().first_bad, None);
}

/// The same revocation store suite on SQLite and PostgreSQL.
#[tokio::test]
async fn store_revocation_on_sqlite_and_postgres() {
    use crate::kit::databases::{Backend, TestDatabase};
    for db in TestDatabase::all().await {
        let connections = if db.backend == Backend::Postgres {
            4
        } else {
            2
        };
        let store = ast_gateway::store::Store::open(&db.url, connections)
            .await
            .unwrap();
        store_revocation_suite(&store).await;
        store.close().await;
    }
}

/// A stored CRL is served as is while it is young and reflects every revocation; once half
/// of its validity has passed it is re-issued (so always before nextUpdate).
#[tokio::test]
async fn crl_is_reissued_when_half_its_validity_has_passed() {
    use sqlx::Connection;
    let root = Root::new();
    let config = ast_gateway::rules::load(&ast_gateway::config::Root::new(root.path())).unwrap();
    let gateway = ast_gateway::issuance::Gateway::open(config).await.unwrap();
    let first = gateway.crl("issuing").await.unwrap();
    let again = gateway.crl("issuing").await.unwrap();
    assert_eq!(first, again, "a fresh stored CRL is served unchanged");
    let number = |der: &[u8]| {
        let (_, crl) = x509_parser::parse_x509_crl(der).unwrap();
        crl.crl_number().unwrap().clone()
    };
    // Age the stored CRL: thisUpdate 4 days ago, nextUpdate in 3 days (7-day validity).
    let db = root.file("data/ast-gateway.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE crl_state SET this_update = this_update - 345600, next_update = next_update - 345600")
        .execute(&mut conn)
        .await
        .unwrap();
    let renewed = gateway.crl("issuing").await.unwrap();
    assert_ne!(renewed, first);
    assert!(number(&renewed) > number(&first));
    let (_, crl) = x509_parser::parse_x509_crl(&renewed).unwrap();
    let next = crl.next_update().unwrap().timestamp();
    let this = crl.last_update().timestamp();
    assert_eq!(
        next - this,
        7 * 86_400,
        "nextUpdate = thisUpdate + [crl] validity"
    );
    // The background refresher does the same without a request, for published CRLs only.
    sqlx::query(
        "UPDATE crl_state SET this_update = this_update - 345600, next_update = next_update - 345600",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let aged = gateway
        .store()
        .crl_state("issuing")
        .await
        .unwrap()
        .this_update;
    let handle = gateway.spawn_crl_refresher();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = gateway.store().crl_state("issuing").await.unwrap();
        if state.this_update > aged {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the refresher did not re-issue the aged CRL"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The root signs the issuing and officers CAs: their certificates point at its CRL, so
    // the refresher keeps one even though nobody fetched it yet (issue 13).
    let deadline = Instant::now() + Duration::from_secs(10);
    while gateway
        .store()
        .crl_state("root")
        .await
        .unwrap()
        .der
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the refresher made no CRL for the root, which has child CAs"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    handle.abort();
}

/// A delegated OCSP responder (RFC 6960 §4.2.2.2) made with openssl: answers are signed by
/// it, carry its certificate, and openssl accepts them; a certificate without OCSPSigning is
/// refused at config check.
#[tokio::test]
async fn delegated_ocsp_responder() {
    if !have("openssl") {
        crate::kit::skipped(module_path!(), "openssl not installed");
        return;
    }
    let root = Root::new();
    let dir = root.file("data/ca");
    let make = |name: &str, ext: &str| {
        let out = run(Command::new("openssl")
            .args([
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ])
            .args([
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ])
            .current_dir(&dir));
        assert!(out.status.success(), "{}", text(&out));
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        let out = run(Command::new("openssl")
            .args([
                "x509",
                "-req",
                "-days",
                "30",
                "-CA",
                "issuing.pem",
                "-CAkey",
                "issuing.key",
            ])
            .args([
                "-in",
                &format!("{name}.csr"),
                "-out",
                &format!("{name}.pem"),
                "-extfile",
                &format!("{name}.ext"),
            ])
            .current_dir(&dir));
        assert!(out.status.success(), "{}", text(&out));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                dir.join(format!("{name}.key")),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }
    };
    make(
        "ocsp-responder",
        "extendedKeyUsage = OCSPSigning\nbasicConstraints = CA:FALSE\n",
    );
    make("not-ocsp", "extendedKeyUsage = clientAuth\n");
    let with = |name: &str| {
        root.edit("conf/gateway.toml", |t| {
            let cleaned: String = t.lines().filter(|l| !l.starts_with("ocsp_")).map(|l| format!("{l}\n")).collect();
            cleaned.replacing(
                "key = \"data/ca/issuing.key\"\n",
                &format!("key = \"data/ca/issuing.key\"\nocsp_certificate = \"data/ca/{name}.pem\"\nocsp_key = \"data/ca/{name}.key\"\n"),
            )
        })
    };
    with("not-ocsp");
    let out = root.cli(&["config", "check"]);
    assert!(
        !out.status.success() && text(&out).contains("OCSPSigning"),
        "{}",
        text(&out)
    );
    with("ocsp-responder");
    let out = root.cli(&["config", "check"]);
    assert!(out.status.success(), "{}", text(&out));

    let server = root.serve();
    let leaf = leaves(root.path(), &server.issue("", "Dag Delegate").await);
    let chain = chain_file(&root, &["issuing", "root"]);
    let out = ocsp(
        &root,
        &server,
        &dir.join("issuing.pem"),
        &chain,
        &["-cert", leaf[0].to_str().unwrap(), "-resp_text"],
    );
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("good"), "{out}");
    assert!(
        out.contains("CN = ocsp-responder") || out.contains("CN=ocsp-responder"),
        "the delegate's certificate travels in the response: {out}"
    );
}

/// Officer certificates live in the officer registry: revoking an officer puts it on the
/// officers CA's CRL at the next fetch, and OCSP answers `revoked` for it.
#[tokio::test]
async fn revoked_officer_is_on_the_officers_crl_and_ocsp() {
    if !have("openssl") {
        crate::kit::skipped(module_path!(), "openssl not installed");
        return;
    }
    let root = Root::new();
    let server = root.serve();
    let p12 = root.file("officer.p12");
    let out = root.cli(&[
        "officer",
        "issue",
        "--name",
        "Olga Officer",
        "--roles",
        "ast-requester",
        "--out",
        p12.to_str().unwrap(),
        "--password",
        PIN,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let dir = root.file("officer");
    std::fs::create_dir_all(&dir).unwrap();
    let cert = leaves(&dir, &std::fs::read(&p12).unwrap())[0].clone();
    let serial = serial(&cert);
    let chain = chain_file(&root, &["officers", "root"]);
    let issuer = root.file("data/ca/officers.pem");
    let crl = server
        .get("/pgwy/crl/officers.crl")
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();
    assert!(!crl_text(root.path(), &crl, &chain).contains(&serial));
    let out = ocsp(
        &root,
        &server,
        &issuer,
        &chain,
        &["-cert", cert.to_str().unwrap()],
    );
    assert!(out.contains(": good"), "{out}");

    let out = root.cli(&["officer", "revoke", &serial]);
    assert!(out.status.success(), "{}", text(&out));
    let crl = server
        .get("/pgwy/crl/officers.crl")
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();
    assert!(crl_text(root.path(), &crl, &chain).contains(&serial));
    let err = verify_with_crl(root.path(), &crl, &chain, &cert).unwrap_err();
    assert!(err.contains("certificate revoked"), "{err}");
    let out = ocsp(
        &root,
        &server,
        &issuer,
        &chain,
        &["-cert", cert.to_str().unwrap()],
    );
    assert!(
        out.contains("Response verify OK") && out.contains(": revoked"),
        "{out}"
    );
}
