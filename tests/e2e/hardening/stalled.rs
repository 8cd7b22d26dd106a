//! Stalled responses (answers the client never takes) against the real server: HTTP/2 clients
//! that open no flow-control window, over cleartext (prior knowledge) and TLS (ALPN h2), and
//! HTTP/1.1 clients that pipeline requests and never read. They come from 127.0.0.2 while
//! `/healthz` is asked from 127.0.0.1 throughout: it must keep answering within a second, and
//! every stalled connection must be gone within `send_timeout_secs` + 5 s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::kit::TestGateway;

const SEND_TIMEOUT_SECS: u64 = 3;
const STALLED: usize = 200;

/// A gateway with HTTP and HTTPS, 100 connections at most, a short send timeout and header and
/// idle timeouts long enough that only the send timeout (or eviction) can close a stalled
/// connection.
async fn gateway() -> (TestGateway, SocketAddr, SocketAddr) {
    let gw = TestGateway::start_with(|root| {
        let path = root.gateway_toml();
        let text = std::fs::read_to_string(&path).unwrap();
        let edited = text
            .replacen(
                "[limits]\n",
                &format!(
                    "[limits]\nmax_connections = 100\nsend_timeout_secs = {SEND_TIMEOUT_SECS}\n\
                     header_timeout_secs = 120\nidle_timeout_secs = 120\n"
                ),
                1,
            )
            .replacen("# https = \"127.0.0.1:8443\"", "https = \"127.0.0.1:0\"", 1)
            .replacen("# tls_cert", "tls_cert", 1)
            .replacen("# tls_key", "tls_key", 1)
            .replacen("admin = \"127.0.0.1:9102\"", "admin = \"\"", 1);
        for anchor in [
            "max_connections = 100",
            "https = \"127.0.0.1:0\"",
            "admin = \"\"",
        ] {
            assert!(
                edited.contains(anchor),
                "default gateway.toml changed: {anchor}"
            );
        }
        std::fs::write(&path, edited).unwrap();
    })
    .await;
    let server = gw.server.as_ref().unwrap();
    let (http, https) = (server.http_addr.unwrap(), server.https_addr.unwrap());
    (gw, http, https)
}

/// A TCP connection from 127.0.0.2 (another peer than the health probe) with a small receive
/// buffer, so a client that does not read fills the server's socket quickly.
async fn attacker_socket(to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    tokio::time::timeout(Duration::from_secs(5), socket.connect(to))
        .await
        .expect("connect timed out: the server stopped accepting")
        .unwrap()
}

/// An HTTP/2 connection with `SETTINGS_INITIAL_WINDOW_SIZE = 0` and one request whose answer
/// can never be sent. The task ends when the server closes the connection.
async fn zero_window_h2<S>(io: S) -> JoinHandle<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, connection) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, bytes::Bytes>(io)
        .await
        .expect("h2 handshake");
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = http::Request::get("http://localhost/pgwy/request/ast.html")
        .body(())
        .unwrap();
    let (response, _) = send.send_request(request, true).unwrap();
    tokio::spawn(async move {
        // Held (never read) until the connection is gone.
        let _send = send;
        let _response = response.await;
        let _ = driver.await;
    })
}

fn tls_connector(gw: &TestGateway) -> tokio_rustls::TlsConnector {
    let root_ca = std::fs::read(gw.root().data().join("ca/root.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        <rustls::pki_types::CertificateDer as rustls::pki_types::pem::PemObject>::pem_slice_iter(
            &root_ca,
        )
    {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(tls))
}

/// What the health probe saw: how often it asked, its slowest answer, its failures.
struct Probed {
    asked: usize,
    slowest: Duration,
    failures: Vec<String>,
}

/// Asks `/healthz` from 127.0.0.1 every 100 ms until told to stop; each must be answered 200
/// within a second.
fn health_probe(http: SocketAddr, stop: Arc<AtomicBool>) -> JoinHandle<Probed> {
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        let (mut asked, mut slowest, mut failures) = (0, Duration::ZERO, Vec::new());
        while !stop.load(Ordering::Relaxed) {
            asked += 1;
            let started = Instant::now();
            match client.get(format!("http://{http}/healthz")).send().await {
                Ok(r) if r.status() == 200 => {}
                Ok(r) => failures.push(format!("status {}", r.status())),
                Err(e) => failures.push(format!("after {:?}: {e}", started.elapsed())),
            }
            slowest = slowest.max(started.elapsed());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Probed {
            asked,
            slowest,
            failures,
        }
    })
}

/// Waits until every task has ended or `until`; returns how many are still running.
async fn still_open(tasks: &[JoinHandle<()>], until: Instant) -> usize {
    loop {
        let open = tasks.iter().filter(|t| !t.is_finished()).count();
        if open == 0 || Instant::now() >= until {
            return open;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The shared verdict: every stalled connection in `held` is closed within the send timeout plus
/// 5 s of the last one opening, and the probe from another peer was answered throughout.
async fn expect_closed_and_others_served(
    held: &[JoinHandle<()>],
    stop: Arc<AtomicBool>,
    probe: JoinHandle<Probed>,
    what: &str,
) {
    let attacked = Instant::now();
    let open = still_open(held, attacked + Duration::from_secs(SEND_TIMEOUT_SECS + 5)).await;
    let closed_after = attacked.elapsed();
    stop.store(true, Ordering::Relaxed);
    let Probed {
        asked,
        slowest,
        failures,
    } = probe.await.unwrap();
    assert_eq!(
        open,
        0,
        "{open} of {} {what} connections still open {} s after the last one",
        held.len(),
        SEND_TIMEOUT_SECS + 5
    );
    println!(
        "stalled: {} {what} connections closed {closed_after:?} after the last one (send \
         timeout {SEND_TIMEOUT_SECS} s); /healthz from another peer: {asked} asked, slowest \
         {slowest:?}, {} failed",
        held.len(),
        failures.len()
    );
    assert!(asked > 10, "the probe asked only {asked} times");
    assert!(
        failures.is_empty(),
        "/healthz from another peer failed: {failures:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_window_http2_connections_neither_lock_out_others_nor_stay() {
    let (gw, http, https) = gateway().await;
    let stop = Arc::new(AtomicBool::new(false));
    let probe = health_probe(http, stop.clone());
    let connector = tls_connector(&gw);
    let mut held = Vec::new();
    for i in 0..STALLED {
        held.push(zero_window_h2(attacker_socket(http).await).await);
        let tcp = attacker_socket(https).await;
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
            .await
            .unwrap_or_else(|_| panic!("TLS connection {i}: handshake timed out"))
            .unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        held.push(zero_window_h2(tls).await);
    }
    expect_closed_and_others_served(&held, stop, probe, "zero-window HTTP/2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_never_read_neither_lock_out_others_nor_stay() {
    let (_gw, http, _) = gateway().await;
    let stop = Arc::new(AtomicBool::new(false));
    let probe = health_probe(http, stop.clone());
    // 400 pipelined requests for the PIN page (about 7 KB each): far more than the socket
    // buffers hold when nobody reads.
    let pipeline = "GET /pgwy/request/ast.html HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(400);
    let mut held = Vec::new();
    for _ in 0..STALLED {
        let mut stream = attacker_socket(http).await;
        stream.write_all(pipeline.as_bytes()).await.unwrap();
        // Never read: the task only notices the server closing the connection, by a write
        // failing (a reset) — reading would take the answers and unblock the server.
        held.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if stream.write_all(b"\r\n").await.is_err() {
                    return;
                }
            }
        }));
    }
    expect_closed_and_others_served(&held, stop, probe, "never-read pipelined").await;
    for task in &held {
        task.abort();
    }
}
