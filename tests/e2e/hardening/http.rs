//! Connection hygiene, shutdown, CSRF and security headers against the real server: raw TCP
//! and TLS sockets for partial, idle and oversized requests; `ast-gateway serve` subprocesses
//! for the open-file limit (under `prlimit`) and SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ast_gateway::config::Root;
use ast_gateway::rules;
use base64::Engine;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::kit::{ALICE, Anchored, Serve, TestGateway, client, skipped, tool};

const PIN: &str = "Str0ng-Pass!";

/// Fast issuance (P-256 keys, no RSA pool, few PBKDF2 iterations) and no admin listener
/// (tests run in parallel), plus `extra` lines under `[limits]`.
fn fast_toml(toml: &str, limits: &str) -> String {
    let toml = toml
        .replacing("key = \"rsa-2048\"", "key = \"ec-p256\"")
        .replacing("rsa-2048 = 32", "rsa-2048 = 0")
        .replacing("iterations = 10000", "iterations = 1000")
        .replacing("admin = \"127.0.0.1:9102\"", "admin = \"\"")
        .replacing("[limits]\n", &format!("[limits]\n{limits}\n"));
    assert!(
        toml.contains("admin = \"\"") && toml.contains(limits),
        "default gateway.toml changed"
    );
    toml
}

fn edit_toml(root: &Root, edit: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(root.gateway_toml()).unwrap();
    std::fs::write(root.gateway_toml(), edit(text)).unwrap();
}

/// An in-process gateway with fast issuance and these `[limits]` lines.
async fn gateway(limits: &str) -> TestGateway {
    let limits = limits.to_string();
    TestGateway::start_with(move |root| edit_toml(root, |t| fast_toml(&t, &limits))).await
}

/// The kit's in-process HTTPS gateway with these `[limits]` lines.
async fn https_gateway(limits: &str) -> (TestGateway, SocketAddr) {
    let limits = limits.to_string();
    // start_https already chose fast keys and turned the admin listener off.
    let gw = TestGateway::start_https(move |root| {
        edit_toml(root, |t| {
            t.replacing("rsa-2048 = 32", "rsa-2048 = 0")
                .replacing("[limits]\n", &format!("[limits]\n{limits}\n"))
        })
    })
    .await;
    let https = gw.https_addr();
    (gw, https)
}

fn https_client(gw: &TestGateway, _https: SocketAddr) -> reqwest::Client {
    gw.https_client(None, Duration::from_secs(30))
}

/// Reads until the peer closes or `within` passes; returns what was read and whether the
/// connection was closed (EOF or reset).
async fn read_until_closed<S: AsyncRead + Unpin>(
    stream: &mut S,
    within: Duration,
) -> (Vec<u8>, bool) {
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (received, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (received, true),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// Audit rows (event, detail) of a gateway root, in order.
async fn audit_rows(root: &Root) -> Vec<(String, serde_json::Value)> {
    let url = rules::load(root).unwrap().settings.database_url;
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT event, detail FROM audit ORDER BY seq")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    // Aggregated refusals read as `count` refused rows with the group's last detail.
    rows.into_iter()
        .flat_map(|(e, d)| {
            let d: serde_json::Value = serde_json::from_str(&d).unwrap();
            if e == "refused-aggregate" {
                let n = d["count"].as_u64().unwrap() as usize;
                vec![("refused".to_string(), d["last"].clone()); n]
            } else {
                vec![(e, d)]
            }
        })
        .collect()
}

fn refusal_codes(rows: &[(String, serde_json::Value)]) -> Vec<String> {
    rows.iter()
        .filter(|(event, _)| event == "refused")
        .map(|(_, detail)| detail["code"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

#[tokio::test]
async fn partial_and_silent_connections_are_closed_after_the_header_timeout() {
    let gw = gateway("header_timeout_secs = 1\nidle_timeout_secs = 60").await;
    let addr = gw.server.as_ref().unwrap().http_addr.unwrap();
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let (received, closed) = read_until_closed(&mut partial, Duration::from_secs(8)).await;
    assert!(closed, "a partial request head was kept open for 8 s");
    assert!(
        received.is_empty(),
        "answered a partial request head: {received:?}"
    );
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(8)).await;
    assert!(closed, "a connection that sent nothing was kept open");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed before the header timeout"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let gw = gateway("idle_timeout_secs = 1\nheader_timeout_secs = 30").await;
    let addr = gw.server.as_ref().unwrap().http_addr.unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while !response.ends_with(b"ok\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before answering");
        response.extend_from_slice(&buf[..n]);
    }
    assert!(response.starts_with(b"HTTP/1.1 200"));
    // Kept alive, then idle: closed by the idle timeout (1 s), well before the header timeout.
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(closed, "an idle kept-alive connection stayed open for 10 s");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "closed by something else than idle_timeout_secs"
    );
}

#[tokio::test]
async fn https_idle_after_handshake_is_closed_and_responses_carry_hsts_and_a_secure_cookie() {
    let (gw, https) = https_gateway("header_timeout_secs = 1").await;
    // A completed handshake, then silence.
    let root_ca = std::fs::read(gw.root().data().join("ca/root.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        <rustls::pki_types::CertificateDer as rustls::pki_types::pem::PemObject>::pem_slice_iter(
            &root_ca,
        )
    {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let tcp = TcpStream::connect(https).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut stream = connector.connect(name, tcp).await.expect("TLS handshake");
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(8)).await;
    assert!(
        closed,
        "an HTTPS connection idle after its handshake stayed open for 8 s"
    );

    // Over HTTPS: HSTS on every response, and the download cookie is Secure.
    let client = https_client(&gw, https);
    let health = client
        .get(format!("https://localhost:{}/healthz", https.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&health, "strict-transport-security"),
        "max-age=31536000"
    );
    let mut request = client
        .post(format!("https://localhost:{}/pgwy/ast", https.port()))
        .form(&[("password", PIN)]);
    for (n, v) in ALICE {
        request = request.header(*n, *v);
    }
    let token = request.send().await.unwrap();
    assert_eq!(token.status(), 200, "{}", header(&token, "x-ast-error"));
    assert!(header(&token, "strict-transport-security").starts_with("max-age="));
    let cookie = header(&token, "set-cookie");
    assert!(
        cookie.starts_with("downloaded=true") && cookie.contains("; Secure"),
        "{cookie}"
    );

    // Over plain HTTP: no HSTS, no Secure (a browser would drop the cookie).
    let token = gw.post("", ALICE, &[("password", PIN)]).await;
    assert_eq!(token.status(), 200);
    assert_eq!(header(&token, "strict-transport-security"), "");
    assert!(!header(&token, "set-cookie").contains("Secure"));
}

#[tokio::test]
async fn oversized_header_sections_are_refused_with_431() {
    let gw = gateway("").await;
    // 40 KiB (above the 32 KiB default): our 431 with the error code, audited, nothing issued.
    let big = "a".repeat(40 * 1024);
    let mut headers = ALICE.to_vec();
    headers.push(("x-padding", &big));
    let response = gw.post("", &headers, &[("password", PIN)]).await;
    assert_eq!(response.status(), 431);
    assert_eq!(header(&response, "x-ast-error"), "too-large");
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    assert!(refusal_codes(&audit_rows(&gw.root()).await).contains(&"too-large".to_string()));
    assert_eq!(gw.gateway.store().count_certificates().await.unwrap(), 0);
    // The same on an EST path: an enrolment is an issuance request, its 431 is audited too.
    let response = client()
        .post(format!("{}/.well-known/est/simpleenroll", gw.base))
        .header("x-padding", &big)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    assert_eq!(header(&response, "x-ast-error"), "too-large");
    // A second refusal of one kind from one peer within a minute is counted in an aggregate row.
    gw.gateway.store().flush_refusals().await.unwrap();
    let too_large: i64 = audit_rows(&gw.root())
        .await
        .iter()
        .filter(|(_, detail)| detail["code"] == "too-large")
        .map(|(event, detail)| match event.as_str() {
            "refused-aggregate" => detail["count"].as_i64().unwrap_or(0),
            _ => 1,
        })
        .sum();
    assert_eq!(too_large, 2, "both 431s are audited");

    // 100 KiB: beyond hyper's ceiling (64 KiB) — a bare 431 or a closed connection, never an
    // answer to the request.
    let addr = gw.server.as_ref().unwrap().http_addr.unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nx-padding: {}\r\n\r\n",
        "b".repeat(100 * 1024)
    );
    let _ = stream.write_all(head.as_bytes()).await; // may fail once the server closes
    let (received, closed) = read_until_closed(&mut stream, Duration::from_secs(8)).await;
    let text = String::from_utf8_lossy(&received);
    assert!(closed, "the connection stayed open");
    assert!(
        received.is_empty() || text.starts_with("HTTP/1.1 431"),
        "a 100 KiB header section was answered: {text}"
    );

    // Just below the limit still works.
    let fine = "a".repeat(30 * 1024);
    let response = client()
        .get(format!("{}/healthz", gw.base))
        .header("x-padding", &fine)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_body_that_stalls_is_answered_408_and_audited() {
    let gw = gateway("body_timeout_secs = 1").await;
    let addr = gw.server.as_ref().unwrap().http_addr.unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut head = String::from("POST /pgwy/ast HTTP/1.1\r\nHost: x\r\n");
    for (n, v) in ALICE {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\npassword=Str");
    stream.write_all(head.as_bytes()).await.unwrap();
    let (received, _) = read_until_closed(&mut stream, Duration::from_secs(8)).await;
    let text = String::from_utf8_lossy(&received).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 408"), "{text}");
    assert!(text.contains("x-ast-error: timeout"), "{text}");
    assert!(refusal_codes(&audit_rows(&gw.root()).await).contains(&"timeout".to_string()));
    assert_eq!(gw.gateway.store().count_certificates().await.unwrap(), 0);
}

#[tokio::test]
async fn cross_site_posts_are_refused_and_audited_same_origin_ones_work() {
    let gw = gateway("").await;
    let host = gw.base.trim_start_matches("http://").to_string();
    let evil = gw
        .post(
            "",
            &[ALICE, &[("origin", "https://evil.example")]].concat(),
            &[("password", PIN)],
        )
        .await;
    assert_eq!(evil.status(), 403);
    assert_eq!(header(&evil, "x-ast-error"), "cross-site");
    let fetch_site = gw
        .post(
            "",
            &[ALICE, &[("sec-fetch-site", "cross-site")]].concat(),
            &[("password", PIN)],
        )
        .await;
    assert_eq!(fetch_site.status(), 403);
    assert_eq!(header(&fetch_site, "x-ast-error"), "cross-site");
    let same_site = gw
        .post(
            "/x",
            &[ALICE, &[("sec-fetch-site", "same-site")]].concat(),
            &[("password", PIN)],
        )
        .await;
    assert_eq!(same_site.status(), 403);
    let null = gw
        .post(
            "",
            &[ALICE, &[("origin", "null")]].concat(),
            &[("password", PIN)],
        )
        .await;
    assert_eq!(null.status(), 403);
    let message = evil.text().await.unwrap();
    assert!(message.contains("another site"), "{message}");
    assert_eq!(
        gw.gateway.store().count_certificates().await.unwrap(),
        0,
        "a refusal issued"
    );
    gw.gateway.store().flush_refusals().await.unwrap();
    let codes = refusal_codes(&audit_rows(&gw.root()).await);
    assert_eq!(
        codes.iter().filter(|c| *c == "cross-site").count(),
        4,
        "{codes:?}"
    );

    // The gateway's own page (Origin = Host, or Sec-Fetch-Site same-origin) and non-browser
    // clients (neither header) get their token.
    let own_origin = format!("http://{host}");
    for extra in [
        vec![("origin", own_origin.as_str())],
        vec![
            ("origin", own_origin.as_str()),
            ("sec-fetch-site", "same-origin"),
        ],
        vec![],
    ] {
        let r = gw
            .post("", &[ALICE, &extra].concat(), &[("password", PIN)])
            .await;
        assert_eq!(r.status(), 200, "{extra:?}: {}", header(&r, "x-ast-error"));
    }
    assert_eq!(gw.gateway.store().count_certificates().await.unwrap(), 6);

    // A listed portal may send the form from its own site.
    let portal = TestGateway::start_with(|root| {
        edit_toml(root, |t| {
            fast_toml(&t, "").replacing(
                "# allowed_origins = [\"https://portal.example.org\"]",
                "allowed_origins = [\"https://portal.example.org\"]",
            )
        })
    })
    .await;
    let listed = [
        ("origin", "https://portal.example.org"),
        ("sec-fetch-site", "cross-site"),
    ];
    let r = portal
        .post("", &[ALICE, &listed].concat(), &[("password", PIN)])
        .await;
    assert_eq!(r.status(), 200, "{}", header(&r, "x-ast-error"));
    let r = portal
        .post(
            "",
            &[ALICE, &[("origin", "https://evil.example")]].concat(),
            &[("password", PIN)],
        )
        .await;
    assert_eq!(r.status(), 403);
}

/// `sha256-…` of the first `<tag>` block of `html`, computed here independently.
fn inline_hash(html: &str, tag: &str) -> String {
    let block = html
        .split_once(&format!("<{tag}>"))
        .and_then(|(_, rest)| rest.split_once(&format!("</{tag}>")))
        .map(|(block, _)| block)
        .unwrap();
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(block.as_bytes()))
    )
}

#[tokio::test]
async fn security_headers_on_every_response_and_a_pin_page_csp_without_unsafe_inline() {
    let gw = gateway("").await;
    let error_page = gw
        .post("", &[("country", "SE")], &[("password", PIN)])
        .await;
    assert!(error_page.status().is_client_error());
    let responses = [
        gw.get("/healthz").await,
        gw.get("/no/such/path").await,
        gw.get("/pgwy/ca/issuing.pem").await,
        error_page,
    ];
    for r in &responses {
        assert_eq!(
            header(r, "x-content-type-options"),
            "nosniff",
            "{}",
            r.url()
        );
        assert_eq!(header(r, "referrer-policy"), "no-referrer", "{}", r.url());
        assert!(
            header(r, "content-security-policy").contains("default-src 'none'"),
            "{}",
            r.url()
        );
        assert_eq!(
            header(r, "strict-transport-security"),
            "",
            "HSTS over plain HTTP"
        );
    }
    let page = gw.get("/pgwy/request/ast.html").await;
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    let csp = header(&page, "content-security-policy").to_string();
    let html = page.text().await.unwrap();
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(
        csp.contains(&format!("script-src '{}'", inline_hash(&html, "script"))),
        "{csp}"
    );
    assert!(
        csp.contains(&format!("style-src '{}'", inline_hash(&html, "style"))),
        "{csp}"
    );
}

/// `serve` on a fresh root with fast issuance and `limits`, under `wrapper` (e.g. prlimit).
fn serve(root: &Path, limits: &str, wrapper: &[&str]) -> Serve {
    let r = Root::new(root);
    ast_gateway::issuance::write_default(&r).unwrap();
    edit_toml(&r, |t| fast_toml(&t, limits));
    if wrapper.is_empty() {
        Serve::start(root)
    } else {
        Serve::spawn(Serve::wrapped(wrapper, root, &[]))
    }
}

async fn post_token(client: &reqwest::Client, addr: SocketAddr) -> reqwest::Response {
    let mut request = client
        .post(format!("http://{addr}/pgwy/ast"))
        .form(&[("password", PIN)])
        .timeout(Duration::from_secs(20));
    for (n, v) in ALICE {
        request = request.header(*n, *v);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn idle_sockets_do_not_lock_out_health_and_issuance_under_a_low_open_file_limit() {
    let Some(prlimit) = tool("prlimit") else {
        return skipped(
            "idle_sockets_do_not_lock_out…",
            "prlimit not installed (util-linux)",
        );
    };
    let dir = tempfile::tempdir().unwrap();
    // Long header/idle timeouts: only the connection cap and eviction can keep it answering.
    let mut serve = serve(
        dir.path(),
        "header_timeout_secs = 120\nidle_timeout_secs = 120",
        &[prlimit.to_str().unwrap(), "--nofile=256:256", "--"],
    );
    let mut idle = Vec::new();
    for i in 0..1100 {
        let mut stream =
            tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(serve.addr()))
                .await
                .unwrap_or_else(|_| {
                    panic!("socket {i}: connect timed out (the server stopped accepting)")
                })
                .unwrap();
        if i % 2 == 0 {
            let _ = stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .await;
        }
        idle.push(stream);
    }
    let client = client();
    let health = client
        .get(format!("http://{}/healthz", serve.addr()))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "/healthz with 1 100 idle sockets: {e}\n{}",
                serve.log_text()
            )
        });
    assert_eq!(health.status(), 200);
    let token = post_token(&client, serve.addr()).await;
    assert_eq!(token.status(), 200, "{}", header(&token, "x-ast-error"));
    assert_eq!(header(&token, "content-type"), "application/x-pkcs12");
    assert!(serve.running(), "serve died:\n{}", serve.log_text());
    assert!(
        !serve.log_text().contains("Too many open files"),
        "{}",
        serve.log_text()
    );
    // Logged at start: both limits and the cap derived from them.
    let log = serve.log_text();
    assert!(
        log.contains("open-file limit") && log.contains("soft=256") && log.contains("hard=256"),
        "open-file limits not logged:\n{log}"
    );
    assert!(
        log.contains("max_connections=192"),
        "connection cap not below the limit:\n{log}"
    );
    drop(idle);
}

/// `POST /pgwy/ast` as a raw HTTP/1.1 head with Alice's identity and a form of `body_len`.
fn token_head(body_len: usize) -> String {
    let mut head = String::from("POST /pgwy/ast HTTP/1.1\r\nHost: x\r\n");
    for (n, v) in ALICE {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {body_len}\r\n\r\n"
    ));
    head
}

async fn write_all<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) {
    stream.write_all(bytes).await.unwrap();
    stream.flush().await.unwrap();
}

#[tokio::test]
async fn sigterm_closes_idle_and_partial_connections_and_lets_a_request_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = serve(
        dir.path(),
        "header_timeout_secs = 120\nidle_timeout_secs = 120\nbody_timeout_secs = 120\nshutdown_grace_secs = 60",
        &[],
    );
    let mut partial = TcpStream::connect(serve.addr()).await.unwrap();
    write_all(&mut partial, b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
    let mut silent = TcpStream::connect(serve.addr()).await.unwrap();
    let form = format!("password={PIN}");
    let (first, rest) = form.split_at(5);
    let mut in_flight = TcpStream::connect(serve.addr()).await.unwrap();
    write_all(
        &mut in_flight,
        format!("{}{first}", token_head(form.len())).as_bytes(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    serve.signal("-TERM");
    let (received, closed) = read_until_closed(&mut partial, Duration::from_secs(5)).await;
    assert!(
        closed && received.is_empty(),
        "the partial request was not closed at once"
    );
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(closed, "the silent connection was not closed at once");
    // The request in flight finishes after SIGTERM.
    write_all(&mut in_flight, rest.as_bytes()).await;
    let (received, _) = read_until_closed(&mut in_flight, Duration::from_secs(20)).await;
    let text = String::from_utf8_lossy(&received).to_ascii_lowercase();
    assert!(
        text.starts_with("http/1.1 200"),
        "in-flight request: {text}\n{}",
        serve.log_text()
    );
    assert!(text.contains("application/x-pkcs12"), "{text}");
    let status = serve.exited_within(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "serve did not exit cleanly within 10 s of SIGTERM ({status:?}, grace 60 s):\n{}",
        serve.log_text()
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[tokio::test]
async fn sigterm_cuts_a_request_that_outlasts_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = serve(
        dir.path(),
        "body_timeout_secs = 120\nshutdown_grace_secs = 1",
        &[],
    );
    let mut stalled = TcpStream::connect(serve.addr()).await.unwrap();
    write_all(
        &mut stalled,
        format!("{}password=", token_head(100)).as_bytes(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    serve.signal("-TERM");
    let status = serve.exited_within(Duration::from_secs(8));
    assert!(
        status.is_some_and(|s| s.success()),
        "serve did not exit within 8 s of SIGTERM with a 1 s grace period ({status:?}):\n{}",
        serve.log_text()
    );
    let (_, closed) = read_until_closed(&mut stalled, Duration::from_secs(2)).await;
    assert!(closed);
    assert!(
        serve.log_text().contains("grace period over"),
        "{}",
        serve.log_text()
    );
}
