//! Scale-out: two real `ast-gateway serve` processes on one
//! PostgreSQL database and one CA. 100 concurrent tokens across both nodes: every delivered
//! certificate is recorded, serials are unique, the audit chain verifies. Then a database
//! outage (a proxy between the nodes and PostgreSQL is cut): both nodes answer 503
//! `unavailable` and record nothing, and recover by themselves when the database returns.
//!
//! Between the two: a certificate revoked through node A's root (the CLI, on the shared
//! database) is on node B's served CRL within 5 seconds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::kit::{Anchored, ser};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ast_gateway::store::Store;
use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};

use crate::kit::Serve;
use crate::kit::databases::{TestDatabase, postgres_addr};
use crate::kit::tcp_proxy::TcpProxy;

const PIN: &str = "Str0ng-Pass!";
const TOKENS: usize = 100;

/// A running `ast-gateway serve` process (the kit's `Serve`) with a name; killed when dropped.
struct Node {
    name: &'static str,
    base: String,
    serve: Serve,
}

impl Node {
    fn start(name: &'static str, root: &Path) -> Node {
        let serve = Serve::start(root);
        Node {
            name,
            base: serve.base().to_string(),
            serve,
        }
    }

    fn log(&self) -> String {
        self.serve.log_text()
    }

    fn assert_alive(&mut self) {
        if !self.serve.running() {
            panic!("node {} exited; log:\n{}", self.name, self.log());
        }
    }

    async fn readyz(&self, client: &reqwest::Client) -> Option<u16> {
        client
            .get(format!("{}/readyz", self.base))
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16())
    }

    async fn wait_ready(&mut self, client: &reqwest::Client, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            self.assert_alive();
            if self.readyz(client).await == Some(200) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "node {} not ready after {within:?}; log:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn issue(client: &reqwest::Client, node: &str, i: usize) -> reqwest::Response {
    client
        .post(format!("{node}/pgwy/ast"))
        .header("commonname", format!("User {i}"))
        .header("email", format!("user{i}@example.com"))
        .header("country", "SE")
        .form(&[("password", PIN)])
        .send()
        .await
        .unwrap()
}

/// The leaf certificates (DER) of a PKCS#12 soft token.
/// Serials (lower-case hex) on a DER CRL, parsed by x509-parser.
fn crl_serials(der: &[u8]) -> Vec<String> {
    let (_, crl) = x509_parser::parse_x509_crl(der).unwrap();
    crl.iter_revoked_certificates()
        .map(|r| hex::encode(r.raw_serial()))
        .collect()
}

fn leaves(p12: &[u8]) -> Vec<Vec<u8>> {
    let keystore = KeyStore::from_pkcs12(p12, PIN, Pkcs12ImportPolicy::Strict).unwrap();
    keystore
        .entries()
        .filter_map(|(_, entry)| match entry {
            KeyStoreEntry::PrivateKeyChain(chain) => {
                chain.certs().first().map(|c| c.as_der().to_vec())
            }
            _ => None,
        })
        .collect()
}

fn serial_and_subject(der: &[u8]) -> (String, String, bool) {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    (
        hex::encode(cert.tbs_certificate.raw_serial()),
        cert.subject().to_string(),
        cert.is_ca(),
    )
}

/// `ast-gateway audit verify`, run without blocking the runtime (the outage proxy lives on it).
async fn audit_verify(root: &Path) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ast-gateway"))
        .args(["audit", "verify", "--root"])
        .arg(root)
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Writes the embedded default into `root` and points it at `database_url`. EC keys keep the
/// test about the database rather than RSA key generation (which only lowers concurrency).
fn init_root(root: &Path, database_url: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_ast-gateway"))
        .args(["init", "--root"])
        .arg(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml_path = root.join("conf/gateway.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    assert!(
        toml.contains("url = \"sqlite://data/ast-gateway.db\""),
        "the default database line changed"
    );
    let toml = toml
        .replacing(
            "url = \"sqlite://data/ast-gateway.db\"",
            &format!("url = \"{database_url}\"\nmax_connections = 4"),
        )
        .replacing("key = \"rsa-2048\"", "key = \"ec-p256\"");
    std::fs::write(&toml_path, toml).unwrap();
}

/// Copies a root (configuration and CA files, modes kept): the second node has the same CA.
fn copy_root(from: &Path, to: &Path) {
    let out = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cp -a failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// Multi-threaded: the database proxy shares this runtime with 100 client tasks; on a loaded
// machine (CI runs the other e2e tests beside this one) a single thread starved it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_one_database_nothing_lost_and_outage_recovery() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let proxy = TcpProxy::start(postgres_addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let (root_a, root_b) = (dir.path().join("node-a"), dir.path().join("node-b"));
    init_root(&root_a, &db.url_via(proxy.addr));
    copy_root(&root_a, &root_b);
    assert_eq!(
        std::fs::read(root_a.join("data/ca/issuing.key")).unwrap(),
        std::fs::read(root_b.join("data/ca/issuing.key")).unwrap(),
        "one CA key"
    );

    // Both nodes start at once on an empty database: migrations must not race.
    let mut nodes = [Node::start("A", &root_a), Node::start("B", &root_b)];
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    for node in &mut nodes {
        node.wait_ready(&client, Duration::from_secs(60)).await;
    }
    let pids: Vec<u32> = nodes.iter().map(|n| n.serve.pid()).collect();
    let direct = Store::open(&db.url, 2).await.unwrap();

    // 100 tokens, concurrently, alternating between the nodes.
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..TOKENS {
        let (client, base) = (client.clone(), nodes[i % 2].base.clone());
        tasks.spawn(async move {
            let response = issue(&client, &base, i).await;
            let status = response.status().as_u16();
            let error = response
                .headers()
                .get("x-ast-error")
                .map(|v| v.to_str().unwrap_or("?").to_string());
            (i, status, error, response.bytes().await.unwrap().to_vec())
        });
    }
    let mut delivered: BTreeMap<String, (usize, Vec<u8>)> = BTreeMap::new();
    let mut certificates = 0;
    while let Some(result) = tasks.join_next().await {
        let (i, status, error, body) = result.unwrap();
        assert_eq!(
            status,
            200,
            "token {i} on node {}: {error:?}",
            ["A", "B"][i % 2]
        );
        let leaves = leaves(&body);
        assert_eq!(
            leaves.len(),
            2,
            "token {i}: an authentication and a signing certificate"
        );
        for der in leaves {
            let (serial, subject, is_ca) = serial_and_subject(&der);
            assert!(
                !is_ca && subject.contains(&format!("CN=User {i}")),
                "token {i}: unexpected leaf {subject}"
            );
            certificates += 1;
            assert!(
                delivered.insert(serial.clone(), (i, der)).is_none(),
                "serial {serial} delivered twice"
            );
        }
    }
    let elapsed = started.elapsed();
    println!(
        "scale-out: {TOKENS} tokens across two nodes in {elapsed:?} ({:.1} tokens/s)",
        TOKENS as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(certificates, 2 * TOKENS, "certificates delivered");
    assert_eq!(delivered.len(), 2 * TOKENS, "unique serials");
    for (serial, (i, der)) in &delivered {
        let record = direct
            .certificate(&ser(serial))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("token {i}: delivered serial {serial} is not recorded"));
        assert_eq!(
            &record.der, der,
            "token {i}: the recorded DER differs from the delivered one"
        );
    }
    assert_eq!(
        direct.count_certificates().await.unwrap(),
        2 * TOKENS as i64,
        "recorded, and nothing more"
    );
    assert_eq!(direct.count_tokens().await.unwrap(), TOKENS as i64);
    // One `issued` row per token, plus the `crl-issued` rows of the CRLs each node keeps
    // fresh from its start (root, issuing, officers: issue 13).
    let rows = direct.count_audit().await.unwrap();
    assert!(rows >= TOKENS as i64, "{rows} audit rows");
    let (ok, text) = audit_verify(&root_b).await;
    assert!(
        ok && text.contains(&format!("audit trail intact: {rows} rows")),
        "audit verify: {text}"
    );

    // A revocation made through node A is on node B's CRL within 5 s.
    let crl_url = format!("{}/pgwy/crl/issuing.crl", nodes[1].base);
    let before = client.get(&crl_url).send().await.unwrap();
    assert_eq!(before.status().as_u16(), 200, "node B serves a CRL");
    let (victim, _) = delivered
        .iter()
        .next()
        .map(|(s, v)| (s.clone(), v.0))
        .unwrap();
    assert!(!crl_serials(&before.bytes().await.unwrap()).contains(&victim));
    let revoked_at = Instant::now();
    // Off the runtime thread: the database proxy runs on it.
    let (root, serial) = (root_a.clone(), victim.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_ast-gateway"))
            .args([
                "--root",
                root.to_str().unwrap(),
                "certs",
                "revoke",
                &serial,
                "--reason",
                "keyCompromise",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "revoke on node A: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = loop {
        let crl = client
            .get(&crl_url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        if crl_serials(&crl).contains(&victim) {
            break revoked_at.elapsed();
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(5),
            "revocation not on node B's CRL within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("scale-out: revocation on node A visible on node B's CRL after {seen:?}");

    // The outage.
    let (certs_before, audit_before) = (
        direct.count_certificates().await.unwrap(),
        direct.count_audit().await.unwrap(),
    );
    proxy.cut().await;
    for (n, node) in nodes.iter().enumerate() {
        // The first request notices the outage (acquire timeout 5 s, plus 1 s for the attempt to
        // audit the refusal); later ones, /readyz included, fail within the 1 s timeout.
        let mut took = Vec::new();
        for attempt in 0..2 {
            let started = Instant::now();
            let response = issue(&client, &node.base, 1000 + 10 * n + attempt).await;
            took.push(started.elapsed());
            let status = response.status().as_u16();
            let code = response
                .headers()
                .get("x-ast-error")
                .map(|v| v.to_str().unwrap_or("?").to_string());
            let content_type = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap_or("?").to_string());
            assert_eq!(
                (status, code.as_deref()),
                (503, Some("unavailable")),
                "node {} during the outage",
                node.name
            );
            assert_ne!(
                content_type.as_deref(),
                Some("application/x-pkcs12"),
                "no token during the outage"
            );
        }
        let started = Instant::now();
        assert_eq!(
            node.readyz(&client).await,
            Some(503),
            "node {} /readyz during the outage",
            node.name
        );
        let readyz = started.elapsed();
        println!(
            "scale-out: node {} refused issuance after {:?} (first) and {:?} (next), /readyz 503 after {readyz:?}",
            node.name, took[0], took[1]
        );
        assert!(
            took[0] < Duration::from_secs(10),
            "node {}: first refusal took {:?}",
            node.name,
            took[0]
        );
        assert!(
            took[1] < Duration::from_secs(4),
            "node {}: must fail fast, took {:?}",
            node.name,
            took[1]
        );
        assert!(
            readyz < Duration::from_secs(3),
            "node {}: /readyz took {readyz:?}",
            node.name
        );
    }
    assert_eq!(
        direct.count_certificates().await.unwrap(),
        certs_before,
        "nothing recorded during the outage"
    );
    assert_eq!(direct.count_audit().await.unwrap(), audit_before);

    // The database returns: both nodes recover by themselves, same processes.
    proxy.restore().await;
    for node in &mut nodes {
        let after = node.wait_ready(&client, Duration::from_secs(20)).await;
        println!(
            "scale-out: node {} ready again {after:?} after the database returned",
            node.name
        );
    }
    for (n, node) in nodes.iter().enumerate() {
        let response = issue(&client, &node.base, 2000 + n).await;
        assert_eq!(
            response.status().as_u16(),
            200,
            "node {} after the outage",
            node.name
        );
        for der in leaves(&response.bytes().await.unwrap()) {
            let (serial, _, _) = serial_and_subject(&der);
            assert!(
                direct.certificate(&ser(&serial)).await.unwrap().is_some(),
                "serial {serial} after the outage not recorded"
            );
        }
    }
    assert_eq!(
        nodes.iter().map(|n| n.serve.pid()).collect::<Vec<_>>(),
        pids,
        "no restart"
    );
    for node in &mut nodes {
        node.assert_alive();
    }
    assert_eq!(direct.count_certificates().await.unwrap(), certs_before + 4);
    let (ok, text) = audit_verify(&root_a).await;
    assert!(
        ok && text.contains("audit trail intact"),
        "audit verify: {text}"
    );
    direct.close().await;
    drop(nodes);
}
