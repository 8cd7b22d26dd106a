//! A garbage run: 400 hostile or malformed requests over raw TCP (random bytes, broken request
//! lines and headers, bad bodies and encodings, fuzzed form, OCSP, CRL and CA paths) must get
//! no 5xx answer, and the server must stay live and able to issue.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::kit::TestGateway;

/// A small deterministic generator (xorshift64*), so a failing run can be replayed by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "CONNECT", "BREW", "",
];
const PATHS: &[&str] = &[
    "/pgwy/ast",
    "/pgwy/ast/",
    "/pgwy/ast/../../etc/passwd",
    "/pgwy/ast/%00",
    "/pgwy/ast/%ff%fe",
    "/pgwy/request/ast.html",
    "/pgwy/ocsp",
    "/pgwy/ocsp/",
    "/pgwy/crl/issuing.crl",
    "/pgwy/crl/../issuing.crl",
    "/pgwy/ca/root.pem",
    "/pgwy/ca/root.cer",
    "/pgwy/ca/%2e%2e",
    "/healthz",
    "/readyz",
    "*",
    "http://evil.example/pgwy/ast",
    "//pgwy//ast",
];
const HEADERS: &[&str] = &[
    "commonname: Alice",
    "commonname: Alice\r\ncommonname: Bob",
    "common_name: Alice",
    "CommonName: \u{1}x",
    "country: SWEDEN",
    "email: a@b@c",
    "x-forwarded-for: 10.0.0.1",
    "content-type: application/x-www-form-urlencoded",
    "content-type: multipart/form-data; boundary=x",
    "content-type: application/json",
    "transfer-encoding: chunked",
    "transfer-encoding: gzip, chunked",
    "content-length: 5",
    "content-length: -1",
    "content-length: 99999999999",
    "origin: https://evil.example",
    "sec-fetch-site: cross-site",
    "expect: 100-continue",
    "connection: upgrade",
    "upgrade: h2c",
    "host:",
    " folded: continuation",
    "accept: */*",
];

/// One hostile request.
fn request(rng: &mut Rng, host: &str) -> Vec<u8> {
    match rng.below(6) {
        0 => {
            let n = rng.below(600);
            rng.bytes(n)
        }
        1 => {
            // A request line with random bytes in it.
            let mut line = format!("{} ", rng.pick(METHODS)).into_bytes();
            let n = rng.below(80);
            line.extend(rng.bytes(n));
            line.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
            line
        }
        2 => {
            // Form posts with fuzzed bodies.
            let mut body = match rng.below(4) {
                0 => b"password=".to_vec(),
                1 => b"password=%zz%&password=x&profile=legacy".to_vec(),
                2 => format!("password={}", "A".repeat(rng.below(40_000))).into_bytes(),
                _ => Vec::new(),
            };
            let n = rng.below(200);
            body.extend(rng.bytes(n));
            let mut text = format!(
                "POST {} HTTP/1.1\r\nHost: {host}\r\ncommonname: Alice\r\n",
                rng.pick(&["/pgwy/ast", "/pgwy/ast/x", "/pgwy/ast/%00"])
            );
            for _ in 0..rng.below(4) {
                text.push_str(rng.pick(HEADERS));
                text.push_str("\r\n");
            }
            text.push_str(&format!(
                "content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n",
                body.len()
            ));
            let mut out = text.into_bytes();
            out.extend(body);
            out
        }
        3 => {
            // OCSP with random DER-ish bodies and paths.
            let n = rng.below(300);
            let mut der = vec![0x30, 0x82, (n >> 8) as u8, n as u8];
            der.extend(rng.bytes(n));
            if rng.below(2) == 0 {
                let mut out = format!(
                    "POST /pgwy/ocsp HTTP/1.1\r\nHost: {host}\r\ncontent-type: application/ocsp-request\r\ncontent-length: {}\r\n\r\n",
                    der.len()
                )
                .into_bytes();
                out.extend(der);
                out
            } else {
                use base64::Engine;
                let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
                format!("GET /pgwy/ocsp/{b64} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
            }
        }
        4 => {
            // Random method, path and header mixtures, sometimes with a lying content-length
            // or a broken chunked body.
            let mut text = format!(
                "{} {}{} HTTP/1.{}\r\nHost: {host}\r\n",
                rng.pick(METHODS),
                rng.pick(PATHS),
                if rng.below(3) == 0 { "?a=%%%&b" } else { "" },
                rng.below(2)
            );
            for _ in 0..rng.below(6) {
                text.push_str(rng.pick(HEADERS));
                text.push_str("\r\n");
            }
            text.push_str("\r\n");
            if rng.below(2) == 0 {
                text.push_str("zz\r\nnot-hex\r\n0\r\n\r\n");
            }
            text.into_bytes()
        }
        _ => {
            // Oversized or odd header sections.
            let value = "v".repeat(rng.below(70_000));
            format!(
                "GET {} HTTP/1.1\r\nHost: {host}\r\nx-big: {value}\r\n\r\n",
                rng.pick(PATHS)
            )
            .into_bytes()
        }
    }
}

/// Sends raw bytes and returns the status code of the first response, if any arrived.
async fn send(addr: &str, bytes: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(bytes)).await;
    let _ = stream.shutdown().await;
    let mut buffer = vec![0u8; 4096];
    let mut read = 0;
    while read < 16 {
        match tokio::time::timeout(Duration::from_secs(15), stream.read(&mut buffer[read..])).await
        {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(n)) => read += n,
        }
    }
    let head = String::from_utf8_lossy(&buffer[..read]);
    let status = head.strip_prefix("HTTP/1.")?.get(2..5)?;
    status.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_gets_no_5xx_and_the_server_stays_live() {
    let gw = TestGateway::start().await;
    let addr = gw.base.trim_start_matches("http://").to_string();
    let seed = 0x05ee_da57_u64 ^ std::process::id() as u64;
    eprintln!("garbage run seed {seed:#x}");
    let mut rng = Rng(seed | 1);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut no_answer = 0;
    for chunk in 0..40 {
        // Ten at a time, so slow ones overlap.
        let requests: Vec<Vec<u8>> = (0..10).map(|_| request(&mut rng, &addr)).collect();
        let tasks: Vec<_> = requests
            .iter()
            .map(|r| {
                let (addr, r) = (addr.clone(), r.clone());
                tokio::spawn(async move { send(&addr, &r).await })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        for (i, answer) in answers.into_iter().enumerate() {
            match answer {
                Some(status) => {
                    assert!(
                        status < 500,
                        "request {} of the garbage run (seed {seed:#x}) got {status}: {:?}",
                        chunk * 10 + i,
                        String::from_utf8_lossy(&requests[i][..requests[i].len().min(300)])
                    );
                    *statuses.entry(status).or_default() += 1;
                }
                None => no_answer += 1,
            }
        }
    }
    eprintln!("garbage run: statuses {statuses:?}, {no_answer} closed without an answer");
    assert!(
        statuses.values().sum::<usize>() > 200,
        "most garbage requests must get an answer: {statuses:?}"
    );
    // Still live, still issuing.
    assert_eq!(gw.get("/healthz").await.status(), 200);
    let response = gw
        .post(
            "",
            &[("commonname", "After Garbage"), ("country", "SE")],
            &[("password", "Str0ng-Pass!")],
        )
        .await;
    assert_eq!(response.status(), 200);
}
