//! Trust end to end: officers over mTLS (real rustls handshakes), trusted proxies,
//! X-Forwarded-For, header hygiene, DN injection, refusal audit and the audit hash chain.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub(crate) mod nginx_front;
pub(crate) mod sso_apache;
pub(crate) mod sso_front;
pub(crate) mod sso_journey;

pub use crate::kit::identity_pem;
use crate::kit::{TestGateway, append_file, error_code, post_raw_headers, replaced, ser};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ast_gateway::ca::{
    Attribute, Ca, CertificateProfile, FileSigner, Subject, issue_certificate,
    parse_extended_key_usage, pem_certificate, read_certificate_file, write_demo_hierarchy,
};
use ast_gateway::config::Root;
use ast_gateway::issuance::Gateway;
use ast_gateway::rules;
use ast_gateway::token::{KeyType, Pin, generate_key};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use x509_cert::ext::pkix::{KeyUsage, KeyUsages};

/// Handlers used by these tests, appended to the embedded default (handler.1: proxies only).
const HANDLERS: &str = "
handler.2.filter = officer
handler.2.format = ast-default.format
handler.2.tokenprocedure = default
handler.2.requiredRoRoles = ast-requester

handler.3.filter = anycert
handler.3.format = ast-default.format
handler.3.tokenprocedure = default
handler.3.requiredRoRoles = none

handler.4.filter = two
handler.4.format = ast-default.format
handler.4.tokenprocedure = default
handler.4.requiredRoRoles = ast-requester, admin

handler.5.filter = fromcert
handler.5.format = ast-default.format
handler.5.tokenprocedure = default
handler.5.requiredRoRoles = none
handler.5.formatFields.1 = ast.valuetarget.commonname.value = cert:subject.commonname | required

handler.6.filter = dash
handler.6.format = ast-default.format
handler.6.tokenprocedure = default
handler.6.formatFields.1 = ast.valuetarget.commonname.value = x-common-name | required
";

/// The kit's HTTPS gateway with the handlers above, a 1 s TLS handshake timeout and the
/// given `[trust] proxies`; the names the trust tests use.
pub struct Env {
    pub gw: TestGateway,
    pub root: Root,
    pub gateway: Arc<Gateway>,
    pub http: SocketAddr,
    pub https: SocketAddr,
}

impl Env {
    /// A gateway on a temp root with HTTPS + client_ca = officers, fast keys, the handlers
    /// above and `[trust] proxies = <proxies>`.
    pub async fn start(proxies: &str) -> Env {
        Env::start_with(proxies, "").await
    }

    /// As `start`, with more ast.properties lines appended.
    pub async fn start_with(proxies: &str, extra_properties: &str) -> Env {
        let proxies = proxies.to_string();
        let extra = format!("{HANDLERS}{extra_properties}");
        let gw = TestGateway::start_https(move |root| {
            let path = root.gateway_toml();
            let toml = std::fs::read_to_string(&path).unwrap();
            let toml = replaced(
                &toml,
                "# handshake_timeout_secs = 10",
                "handshake_timeout_secs = 1",
            );
            let toml = replaced(
                &toml,
                "proxies = [\"127.0.0.1/32\", \"::1/128\"]",
                &format!("proxies = {proxies}"),
            );
            std::fs::write(&path, toml).unwrap();
            append_file(&root.ast_properties(), &extra);
        })
        .await;
        Env {
            root: gw.root(),
            gateway: gw.gateway.clone(),
            http: gw.http_addr(),
            https: gw.https_addr(),
            gw,
        }
    }

    /// The temporary directory (the root) for files a test writes.
    pub fn dir(&self) -> &std::path::Path {
        self.gw.root.path()
    }

    /// The demo root CA certificate (PEM).
    pub fn root_ca_pem(&self) -> Vec<u8> {
        self.gw.root_ca_pem()
    }

    /// An HTTPS client trusting the demo root, presenting `identity` (PEM: cert + key).
    pub fn client(&self, identity: Option<&[u8]>) -> reqwest::Client {
        self.gw.https_client(identity, Duration::from_secs(30))
    }

    pub fn https_url(&self, path: &str) -> String {
        self.gw.https_url(path)
    }

    pub fn http_url(&self, path: &str) -> String {
        self.gw.http_url(path)
    }

    /// Issues and registers an officer; returns (serial, PEM identity for reqwest).
    pub async fn officer(&self, name: &str, roles: &[&str]) -> (String, Vec<u8>) {
        self.gw.officer(name, roles).await
    }

    /// Audit rows, with aggregated refusals written first and expanded again: a
    /// `refused-aggregate` row of count n reads as n `refused` rows with its last detail.
    pub async fn audit_rows(&self) -> Vec<(String, String, serde_json::Value)> {
        self.gateway.store().flush_refusals().await.unwrap();
        let url = rules::load(&self.root).unwrap().settings.database_url;
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT event, actor, detail FROM audit ORDER BY seq")
                .fetch_all(&pool)
                .await
                .unwrap();
        pool.close().await;
        rows.into_iter()
            .flat_map(|(e, a, d)| {
                let d: serde_json::Value = serde_json::from_str(&d).unwrap();
                if e == "refused-aggregate" {
                    let n = d["count"].as_u64().unwrap() as usize;
                    vec![("refused".to_string(), a, d["last"].clone()); n]
                } else {
                    vec![(e, a, d)]
                }
            })
            .collect()
    }
}

/// Header (name, raw value) pairs.
type Headers<'a> = Vec<(&'a str, &'a [u8])>;

fn form(pin: &str) -> String {
    format!("password={pin}")
}

async fn post(client: &reqwest::Client, url: &str, headers: &[(&str, &[u8])]) -> reqwest::Response {
    post_raw_headers(client, url, headers, "secret-123").await
}

fn code(response: &reqwest::Response) -> String {
    error_code(response)
}

/// The subject CNs and O values of the first certificate in a PKCS#12, via x509-parser.
fn subject_of_token(pkcs12: &[u8], pin: &str) -> (Vec<String>, Vec<String>) {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let store =
        p12_keystore::KeyStore::from_pkcs12(pkcs12, pin, p12_keystore::Pkcs12ImportPolicy::Strict)
            .unwrap();
    let (_, chain) = store.private_key_chain().unwrap();
    let (_, cert) = X509Certificate::from_der(chain.certs()[0].as_der()).unwrap();
    let cns = cert
        .subject()
        .iter_common_name()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let orgs = cert
        .subject()
        .iter_organization()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    (cns, orgs)
}

/// A client certificate from a *different* CA hierarchy (same names, other keys), with
/// clientAuth: must be refused during the handshake.
fn foreign_identity(dir: &std::path::Path) -> Vec<u8> {
    let demo = write_demo_hierarchy(&dir.join("foreign-ca")).unwrap();
    let ca_der = read_certificate_file(&demo.officers_cert).unwrap();
    let root_der = read_certificate_file(&demo.root_cert).unwrap();
    let signer = FileSigner::from_file(&dir.join("foreign-ca/officers.key")).unwrap();
    let ca = Ca::new("officers", ca_der, vec![root_der], Arc::new(signer)).unwrap();
    client_identity(&ca, "Mallory")
}

/// A day-long clientAuth certificate for `common_name` (P-256) signed by `ca`, with its key:
/// PEM, as reqwest's `Identity::from_pem` takes it.
pub fn client_identity(ca: &Ca, common_name: &str) -> Vec<u8> {
    let key = generate_key(KeyType::EcP256).unwrap();
    let subject = Subject {
        values: vec![(Attribute::CommonName, common_name.into())],
    };
    let eku = [parse_extended_key_usage("clientAuth").unwrap()];
    let profile = CertificateProfile {
        subject: &subject,
        subject_order: &[Attribute::CommonName],
        spki_der: key.spki_der(),
        validity: Duration::from_secs(86_400),
        key_usage: KeyUsage(KeyUsages::DigitalSignature.into()),
        extended_key_usage: &eku,
        policies: &[],
        ip_addresses: &[],
        ca: None,
        published: None,
    };
    let cert = issue_certificate(
        ca.certificate().tbs_certificate().subject(),
        ca.key_identifier(),
        ca.signer(),
        &profile,
    )
    .unwrap();
    let mut pem = pem_certificate(&cert.der);
    pem.push_str(
        &der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, key.pkcs8_der()).unwrap(),
    );
    pem.into_bytes()
}

/// Sends raw bytes over plain TCP and returns (status, X-Ast-Error).
async fn raw_request(addr: SocketAddr, head_lines: &[&[u8]]) -> (u16, String) {
    let body = b"password=secret-123";
    let mut request = Vec::new();
    request
        .extend_from_slice(b"POST /pgwy/ast HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    request.extend_from_slice(b"Content-Type: application/x-www-form-urlencoded\r\n");
    request.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    for line in head_lines {
        request.extend_from_slice(line);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(body);
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(&request).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let code = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("x-ast-error:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officers_over_mtls() {
    let env = Env::start("[\"127.0.0.1/32\"]").await;
    let (_, requester) = env.officer("Olga Officer", &["ast-requester"]).await;
    let (_, both) = env.officer("Bo Both", &["ast-requester", "admin"]).await;
    let (_, auditor) = env.officer("Ada Auditor", &["audit"]).await;
    let alice: &[(&str, &[u8])] = &[("commonname", b"Alice Andersson")];

    // Officer with the role.
    let r = post(
        &env.client(Some(&requester)),
        &env.https_url("/pgwy/ast/officer"),
        alice,
    )
    .await;
    assert_eq!(r.status(), 200, "{}", code(&r));
    assert_eq!(r.headers()["content-type"], "application/x-pkcs12");
    // All listed roles are needed.
    let r = post(
        &env.client(Some(&requester)),
        &env.https_url("/pgwy/ast/two"),
        alice,
    )
    .await;
    assert_eq!(
        (r.status().as_u16(), code(&r)),
        (403, "missing-role".into())
    );
    let r = post(
        &env.client(Some(&both)),
        &env.https_url("/pgwy/ast/two"),
        alice,
    )
    .await;
    assert_eq!(r.status(), 200, "{}", code(&r));
    // Officer without the role.
    let r = post(
        &env.client(Some(&auditor)),
        &env.https_url("/pgwy/ast/officer"),
        alice,
    )
    .await;
    assert_eq!(
        (r.status().as_u16(), code(&r)),
        (403, "missing-role".into())
    );
    // `none`: any certificate chaining to client_ca, whatever its roles.
    let r = post(
        &env.client(Some(&auditor)),
        &env.https_url("/pgwy/ast/anycert"),
        alice,
    )
    .await;
    assert_eq!(r.status(), 200, "{}", code(&r));
    // No certificate: the handshake succeeds (optional client auth) and the handler refuses.
    let r = post(
        &env.client(None),
        &env.https_url("/pgwy/ast/officer"),
        alice,
    )
    .await;
    assert_eq!(
        (r.status().as_u16(), code(&r)),
        (403, "untrusted-caller".into())
    );
    let r = post(
        &env.client(None),
        &env.https_url("/pgwy/ast/anycert"),
        alice,
    )
    .await;
    assert_eq!(
        (r.status().as_u16(), code(&r)),
        (403, "untrusted-caller".into())
    );
    // A requiredRoRoles handler over plain HTTP (no TLS at all), even from a trusted proxy.
    let r = post(
        &crate::kit::client(),
        &env.http_url("/pgwy/ast/officer"),
        alice,
    )
    .await;
    assert_eq!(
        (r.status().as_u16(), code(&r)),
        (403, "untrusted-caller".into())
    );

    // cert: sources read the officer's verified certificate.
    let r = post(
        &env.client(Some(&auditor)),
        &env.https_url("/pgwy/ast/fromcert"),
        &[("commonname", b"Not Used")],
    )
    .await;
    assert_eq!(r.status(), 200, "{}", code(&r));
    let (cns, _) = subject_of_token(&r.bytes().await.unwrap(), "secret-123");
    assert_eq!(cns, vec!["Ada Auditor".to_string()]);

    // Refusals are audited with who, from where and which rule; no PIN, no header values.
    let rows = env.audit_rows().await;
    let refusals: Vec<_> = rows.iter().filter(|(e, _, _)| e == "refused").collect();
    assert_eq!(refusals.len(), 5, "{refusals:?}");
    let missing = refusals
        .iter()
        .find(|(_, _, d)| d["code"] == "missing-role")
        .unwrap();
    assert!(missing.1.starts_with("certificate:"), "{missing:?}");
    assert_eq!(missing.2["peer"], "127.0.0.1");
    assert_eq!(missing.2["rule"], "requiredRoRoles: roles");
    assert!(refusals.iter().any(|(_, a, d)| a == "peer:127.0.0.1"
        && d["rule"] == "requiredRoRoles: client certificate required"));
    let all = serde_json::to_string(&rows.iter().map(|r| &r.2).collect::<Vec<_>>()).unwrap();
    assert!(
        !all.contains("secret-123") && !all.contains("Alice"),
        "PIN or header value in the audit trail"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_ca_certificate_is_refused_in_the_handshake() {
    let env = Env::start("[\"127.0.0.1/32\"]").await;
    let foreign = foreign_identity(env.dir());
    let before = env.gateway.store().count_certificates().await.unwrap();
    let result = env
        .client(Some(&foreign))
        .post(env.https_url("/pgwy/ast/anycert"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("commonname", "Mallory")
        .body(form("secret-123"))
        .send()
        .await;
    assert!(
        result.is_err(),
        "a certificate from another CA got an HTTP answer: {:?}",
        result.map(|r| r.status())
    );
    // The same CA's proxy-only handler is not reachable either: the connection never exists.
    let result = env
        .client(Some(&foreign))
        .get(env.https_url("/healthz"))
        .send()
        .await;
    assert!(result.is_err());
    // openssl s_client confirms that the server aborts the handshake with an alert
    // (independent client; TLS 1.2, where client authentication is part of the handshake proper).
    let cert = env.dir().join("foreign.pem");
    std::fs::write(&cert, &foreign).unwrap();
    match std::process::Command::new("openssl")
        .args([
            "s_client",
            "-tls1_2",
            "-connect",
            &env.https.to_string(),
            "-servername",
            "localhost",
            "-cert",
        ])
        .arg(&cert)
        .arg("-key")
        .arg(&cert)
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stderr).to_string()
                + &String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("alert") && !out.status.success(),
                "openssl s_client: {text}"
            );
        }
        Err(_) => crate::kit::skipped(module_path!(), "openssl not installed (s_client check)"),
    }
    assert_eq!(
        env.gateway.store().count_certificates().await.unwrap(),
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_officer_is_refused_on_the_next_request() {
    let env = Env::start("[\"127.0.0.1/32\"]").await;
    let (serial, identity) = env.officer("Rita Revoked", &["ast-requester"]).await;
    let client = env.client(Some(&identity));
    let alice: &[(&str, &[u8])] = &[("commonname", b"Alice")];
    let r = post(&client, &env.https_url("/pgwy/ast/officer"), alice).await;
    assert_eq!(r.status(), 200);

    // Revoke through the real CLI (another process, same database) while the server runs; the
    // client keeps its open TLS connection.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ast-gateway"))
        .arg("--root")
        .arg(env.root.dir())
        .args(["officer", "revoke", &serial.to_uppercase()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let revoked_at = Instant::now();
    let r = post(&client, &env.https_url("/pgwy/ast/officer"), alice).await;
    // Effective for new requests within one second, without restart.
    println!(
        "measured: revocation (CLI exit) to refused response: {:?}",
        revoked_at.elapsed()
    );
    assert!(
        revoked_at.elapsed() < Duration::from_secs(1),
        "refusal came {:?} after the revocation",
        revoked_at.elapsed()
    );
    assert_eq!(
        (r.status().as_u16(), code(&r)),
        (403, "untrusted-caller".into())
    );
    let r = post(&client, &env.https_url("/pgwy/ast/anycert"), alice).await;
    assert_eq!(
        (r.status().as_u16(), code(&r)),
        (403, "untrusted-caller".into())
    );

    // officer list --json shows it revoked.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ast-gateway"))
        .arg("--root")
        .arg(env.root.dir())
        .args(["officer", "list", "--json"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["serial"] == serial.as_str())
        .unwrap();
    assert_eq!(entry["status"], "revoked");
    assert_eq!(entry["name"], "Rita Revoked");
    assert_eq!(entry["roles"], serde_json::json!(["ast-requester"]));
    let rows = env.audit_rows().await;
    assert!(
        rows.iter()
            .any(|(e, a, d)| e == "officer-revoked" && a == "cli" && d["serial"].is_string())
    );
    assert!(
        rows.iter()
            .any(|(e, _, d)| e == "refused" && d["rule"] == "officer revoked")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_officer_issue_writes_a_private_pkcs12_that_logs_in() {
    let env = Env::start("[\"127.0.0.1/32\"]").await;
    let out_file = env.dir().join("cli-officer.p12");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ast-gateway"))
        .arg("--root")
        .arg(env.root.dir())
        .args([
            "officer",
            "issue",
            "--name",
            "Carl CLI",
            "--roles",
            "ast-requester,admin",
            "--password",
            "cli-pass-1",
            "--out",
        ])
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&out_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let identity = identity_pem(&std::fs::read(&out_file).unwrap(), "cli-pass-1");
    let r = post(
        &env.client(Some(&identity)),
        &env.https_url("/pgwy/ast/two"),
        &[("commonname", b"Alice")],
    )
    .await;
    assert_eq!(r.status(), 200, "{}", code(&r));
    // Refuses to overwrite.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_ast-gateway"))
        .arg("--root")
        .arg(env.root.dir())
        .args([
            "officer",
            "issue",
            "--name",
            "X",
            "--roles",
            "a",
            "--password",
            "cli-pass-1",
            "--out",
        ])
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(!again.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_plain_http_peer_and_x_forwarded_for() {
    // 127.0.0.1 is NOT a trusted proxy here; 192.0.2.10 is.
    let env = Env::start("[\"192.0.2.10/32\"]").await;
    let client = crate::kit::client();
    let alice: &[(&str, &[u8])] = &[("commonname", b"Alice")];
    let r = post(&client, &env.http_url("/pgwy/ast"), alice).await;
    assert_eq!(
        (r.status().as_u16(), code(&r)),
        (403, "untrusted-caller".into())
    );
    // X-Forwarded-For naming a trusted proxy (or anything else) changes nothing.
    for xff in [
        "192.0.2.10",
        "127.0.0.1, 192.0.2.10",
        "192.0.2.10, 10.0.0.1",
    ] {
        let r = post(
            &client,
            &env.http_url("/pgwy/ast"),
            &[
                ("commonname", b"Alice"),
                ("x-forwarded-for", xff.as_bytes()),
            ],
        )
        .await;
        assert_eq!(
            (r.status().as_u16(), code(&r)),
            (403, "untrusted-caller".into()),
            "X-Forwarded-For: {xff}"
        );
        let r = post(
            &client,
            &env.http_url("/pgwy/ast"),
            &[
                ("commonname", b"Alice"),
                ("forwarded", b"for=192.0.2.10"),
                ("x-real-ip", b"192.0.2.10"),
            ],
        )
        .await;
        assert_eq!(r.status(), 403);
    }
    // Over HTTPS without a certificate, a proxy-only handler also looks only at the TCP peer.
    let r = post(
        &env.client(None),
        &env.https_url("/pgwy/ast"),
        &[("commonname", b"Alice"), ("x-forwarded-for", b"192.0.2.10")],
    )
    .await;
    assert_eq!(
        (r.status().as_u16(), code(&r)),
        (403, "untrusted-caller".into())
    );
    // An officer certificate does not open a proxy-only handler either.
    let (_, officer) = env.officer("Olga", &["ast-requester"]).await;
    let r = post(
        &env.client(Some(&officer)),
        &env.https_url("/pgwy/ast"),
        alice,
    )
    .await;
    assert_eq!(
        (r.status().as_u16(), code(&r)),
        (403, "untrusted-caller".into())
    );
    assert_eq!(env.gateway.store().count_certificates().await.unwrap(), 0);
    let rows = env.audit_rows().await;
    let refusals: Vec<_> = rows
        .iter()
        .filter(|(e, _, d)| e == "refused" && d["rule"] == "trust.proxies")
        .collect();
    assert_eq!(refusals.len(), 9);
    assert!(refusals.iter().all(|(_, _, d)| d["peer"] == "127.0.0.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_hygiene() {
    let env = Env::start("[\"127.0.0.1/32\"]").await;
    let client = crate::kit::client();
    let url = env.http_url("/pgwy/ast");
    let dash = env.http_url("/pgwy/ast/dash");
    let cases: Vec<(&str, Headers, &str)> = vec![
        (
            "duplicate",
            vec![("commonname", b"Alice"), ("commonname", b"Mallory")],
            "duplicate-header",
        ),
        (
            "duplicate, other case",
            vec![("commonname", b"Alice"), ("CommonName", b"Alice")],
            "duplicate-header",
        ),
        (
            "control character (tab)",
            vec![("commonname", b"Alice\tAndersson")],
            "bad-header",
        ),
        (
            "C1 control character",
            vec![("commonname", "Alice\u{85}".as_bytes())],
            "bad-header",
        ),
        (
            // Not UTF-8, and as ISO-8859-1 (read by the default header_encoding) a C1 control.
            "invalid UTF-8 that is no Latin-1 text either",
            vec![("commonname", b"Alice \x9f\xfe")],
            "bad-header",
        ),
        (
            "duplicate optional header",
            vec![
                ("commonname", b"Alice"),
                ("email", b"a@example.com"),
                ("email", b"b@example.com"),
            ],
            "duplicate-header",
        ),
    ];
    for (what, headers, expected) in &cases {
        let r = post(&client, &url, headers).await;
        assert_eq!(
            (r.status().as_u16(), code(&r)),
            (400, expected.to_string()),
            "{what}"
        );
    }
    // `_` twin of a mapped `-` header: with the real one, and alone.
    let r = post(
        &client,
        &dash,
        &[("x-common-name", b"Alice"), ("x_common_name", b"Mallory")],
    )
    .await;
    assert_eq!((r.status().as_u16(), code(&r)), (400, "bad-header".into()));
    let r = post(&client, &dash, &[("x_common_name", b"Mallory")]).await;
    assert_eq!((r.status().as_u16(), code(&r)), (400, "bad-header".into()));
    let r = post(&client, &dash, &[("x-common-name", b"Alice")]).await;
    assert_eq!(r.status(), 200);

    // The same over a raw socket, byte for byte (no client library normalising anything).
    assert_eq!(
        raw_request(env.http, &[b"commonname: Alice\xc3\x28\x9f"]).await,
        (400, "bad-header".into())
    );
    assert_eq!(
        raw_request(env.http, &[b"commonname: Alice", b"COMMONNAME: Bob"]).await,
        (400, "duplicate-header".into())
    );
    assert_eq!(
        raw_request(env.http, &[b"commonname: Al\x01ice"]).await.0,
        400
    );
    assert_eq!(
        raw_request(env.http, &[b"commonname: Alice"]).await,
        (200, String::new())
    );

    assert_eq!(
        env.gateway.store().count_certificates().await.unwrap(),
        4,
        "only the two good requests issued (2 certificates each)"
    );
    let rows = env.audit_rows().await;
    let hygiene = rows
        .iter()
        .filter(|(e, _, d)| {
            e == "refused" && (d["code"] == "bad-header" || d["code"] == "duplicate-header")
        })
        .count();
    assert!(hygiene >= 10, "{hygiene} hygiene refusals audited");
    let all = serde_json::to_string(&rows.iter().map(|r| &r.2).collect::<Vec<_>>()).unwrap();
    assert!(!all.contains("Mallory") && !all.contains("secret-123"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dn_injection_stays_one_common_name() {
    let env = Env::start("[\"127.0.0.1/32\"]").await;
    let r = post(
        &crate::kit::client(),
        &env.http_url("/pgwy/ast"),
        &[
            ("commonname", b"Alice, O=Evil"),
            ("organization", b"Good Org"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200, "{}", code(&r));
    let token = r.bytes().await.unwrap();
    let (cns, orgs) = subject_of_token(&token, "secret-123");
    assert_eq!(cns, vec!["Alice, O=Evil".to_string()]);
    assert_eq!(orgs, vec!["Good Org".to_string()]);
    // Independent check with openssl: the comma is escaped inside the one CN.
    let p12 = env.dir().join("inj.p12");
    std::fs::write(&p12, &token).unwrap();
    let Ok(out) = std::process::Command::new("openssl")
        .args([
            "pkcs12",
            "-nokeys",
            "-clcerts",
            "-passin",
            "pass:secret-123",
            "-in",
        ])
        .arg(&p12)
        .output()
    else {
        crate::kit::skipped(
            module_path!(),
            "openssl not installed (independent DN check)",
        );
        return;
    };
    let pem = String::from_utf8_lossy(&out.stdout).to_string();
    let mut child = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-nameopt", "RFC2253"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(pem.as_bytes())
        .unwrap();
    let subject = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    assert!(subject.contains("CN=Alice\\, O=Evil"), "{subject}");
    assert!(!subject.contains(",O=Evil"), "{subject}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officer_name_injection_stays_one_common_name() {
    let env = Env::start("[\"127.0.0.1/32\"]").await;
    let issued = env
        .gateway
        .issue_officer(
            &ast_gateway::identity::Caller::Cli,
            "Olga, O=Evil, CN=root",
            vec!["a".into()],
            Pin::new("officer-pw".into()),
        )
        .await
        .unwrap();
    let (cns, orgs) = subject_of_token(&issued.pkcs12, "officer-pw");
    assert_eq!(cns, vec!["Olga, O=Evil, CN=root".to_string()]);
    assert!(orgs.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_tampering_is_detected() {
    let env = Env::start("[\"192.0.2.10/32\"]").await;
    for _ in 0..3 {
        let r = post(
            &crate::kit::client(),
            &env.http_url("/pgwy/ast"),
            &[("commonname", b"Alice")],
        )
        .await;
        assert_eq!(r.status(), 403);
    }
    // Refusals 2 and 3 are counted in memory until written as one aggregate row (seq 2).
    env.gateway.store().flush_refusals().await.unwrap();
    let verify = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_ast-gateway"))
            .arg("--root")
            .arg(env.root.dir())
            .args(["audit", "verify"])
            .output()
            .unwrap()
    };
    let out = verify();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        env.gateway.store().verify_audit().await.unwrap().first_bad,
        None
    );

    // Edit the second refusal so that it looks like a trusted peer.
    let url = rules::load(&env.root).unwrap().settings.database_url;
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let changed = sqlx::query(
        "UPDATE audit SET detail = replace(detail, '127.0.0.1', '192.0.2.10') WHERE seq = 2",
    )
    .execute(&pool)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(changed, 1);
    pool.close().await;
    assert_eq!(
        env.gateway.store().verify_audit().await.unwrap().first_bad,
        Some(2)
    );
    let out = verify();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("BROKEN at row 2"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_row_deletion_is_detected() {
    let env = Env::start("[\"192.0.2.10/32\"]").await;
    for _ in 0..3 {
        post(
            &crate::kit::client(),
            &env.http_url("/pgwy/ast"),
            &[("commonname", b"Alice")],
        )
        .await;
    }
    // Refusals 2 and 3 are written as one aggregate row, the last one (seq 2).
    env.gateway.store().flush_refusals().await.unwrap();
    let url = rules::load(&env.root).unwrap().settings.database_url;
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("DELETE FROM audit WHERE seq = 2")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert!(
        env.gateway
            .store()
            .verify_audit()
            .await
            .unwrap()
            .first_bad
            .is_some()
    );
}

/// The officer registry through the store, the same sequence on SQLite and on a fresh
/// PostgreSQL database (migration 0002 on both back ends).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officer_registry_on_sqlite_and_postgres() {
    for db in crate::kit::databases::TestDatabase::all().await {
        officer_registry_sequence(&db.url).await;
    }
}

async fn officer_registry_sequence(url: &str) {
    use ast_gateway::store::{AuditEvent, OfficerRecord, OfficerStatus, Store};
    let store = Store::open(url, 2).await.unwrap();
    let event = |e: &str| AuditEvent::now(e, "cli", "", serde_json::json!({}));
    let officer = OfficerRecord {
        serial: "0abc01".into(),
        issuer: "CN=Officers".into(),
        fingerprint: "f".repeat(64),
        name: "Olga, O=Evil".into(),
        roles: vec!["ast-requester".into(), "admin".into()],
        status: OfficerStatus::Active,
        created: 1_700_000_000,
        revoked: None,
        ca: "officers".into(),
        not_after: 4_000_000_000,
    };
    store
        .register_officer(&officer, &event("officer-issued"))
        .await
        .unwrap();
    // Same serial or fingerprint twice is refused by the schema.
    assert!(
        store
            .register_officer(&officer, &event("officer-issued"))
            .await
            .is_err()
    );
    assert_eq!(
        store.officer_by_fingerprint(&"f".repeat(64)).await.unwrap(),
        Some(officer.clone())
    );
    assert_eq!(store.officer_by_fingerprint("00").await.unwrap(), None);
    assert_eq!(
        store
            .officer_by_certificate("CN=Officers", &ser("0A:BC:01"))
            .await
            .unwrap(),
        Some(officer.clone())
    );
    assert_eq!(
        store
            .officer_by_certificate("CN=Elsewhere", &ser("0abc01"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.officers().await.unwrap(), vec![officer.clone()]);
    // Any hex form of the serial.
    let revoked = store
        .revoke_officer(&ser("0A:BC:01"), 1_700_000_100, &event("officer-revoked"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.status, OfficerStatus::Revoked);
    assert_eq!(revoked.revoked, Some(1_700_000_100));
    // Revoking again changes nothing and writes no second audit row.
    let audit_rows = store.count_audit().await.unwrap();
    let again = store
        .revoke_officer(&ser("0abc01"), 1_800_000_000, &event("officer-revoked"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.revoked, Some(1_700_000_100));
    assert_eq!(store.count_audit().await.unwrap(), audit_rows);
    assert_eq!(
        store
            .revoke_officer(&ser("99"), 0, &event("officer-revoked"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(audit_rows, 2, "issue + revoke audited");
    assert_eq!(store.verify_audit().await.unwrap().first_bad, None);
}

/// A client that connects to the HTTPS port and never completes a handshake is dropped after
/// `[server] handshake_timeout_secs` (1 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_tls_handshake_is_dropped() {
    let env = Env::start("[\"127.0.0.1/32\"]").await;
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(env.https).await.unwrap();
    // Half a ClientHello record header, then silence.
    stream.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(15), stream.read(&mut buffer)).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "connection still open or answered: {read:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "dropped after {elapsed:?}"
    );
    // The listener still serves others.
    let r = env
        .client(None)
        .get(env.https_url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
