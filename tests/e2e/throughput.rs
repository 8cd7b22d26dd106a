//! Throughput with bounded work (issues 12 and 15): the invariants, not the speed.
//!
//! * Abandoned requests cannot leave CPU work running outside the slots, and issue nothing.
//! * A full CPU queue and a full database write queue answer 503 `unavailable` with
//!   `Retry-After` at once and issue nothing; rate limits answer 429 `rate-limited`.
//! * Group commit: issuances that queue up during a commit are committed together, and every
//!   waiter gets its own token.
//! * Under concurrent load with a `kill -9` of the `serve` process in the middle, every
//!   delivered token's certificates are recorded and `audit verify` passes (SQLite and
//!   PostgreSQL).
//! * SIGHUP (reload) resizes the key pool.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub(crate) mod performance;
pub(crate) mod scale_out;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ast_gateway::config::Root;
use ast_gateway::store::Store;
use ast_gateway::token::KeyType;
use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};
use sqlx::Connection;

use crate::kit::databases::TestDatabase;
use crate::kit::{Anchored, Serve, TestGateway, client};

const PIN: &str = "Str0ng-Pass!";

/// Rewrites gateway.toml: P-256 keys (fast), no key pool, PKCS#12 at `iterations`, and extra
/// `[limits]` lines.
fn configure(root: &Root, iterations: u32, limits: &str) {
    let path = root.gateway_toml();
    let toml = std::fs::read_to_string(&path).unwrap();
    for needle in [
        "key = \"rsa-2048\"",
        "iterations = 10000",
        "rsa-2048 = 32",
        "request_timeout_secs = 60",
    ] {
        assert!(toml.contains(needle), "the default changed: {needle}");
    }
    let toml = toml
        .replacing("key = \"rsa-2048\"", "key = \"ec-p256\"")
        .replacing("iterations = 10000", &format!("iterations = {iterations}"))
        .replacing("rsa-2048 = 32", "rsa-2048 = 0")
        .replacing(
            "request_timeout_secs = 60",
            &format!("request_timeout_secs = 60\n{limits}"),
        );
    std::fs::write(&path, toml).unwrap();
}

async fn post(
    client: &reqwest::Client,
    base: &str,
    name: &str,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{base}/pgwy/ast"))
        .header("commonname", name)
        .header("country", "SE")
        .header("email", "load@example.com")
        .form(&[("password", PIN)])
        .send()
        .await
}

/// The leaf certificates (DER) of a PKCS#12 soft token.
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

fn serial_and_subject(der: &[u8]) -> (String, String) {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    (
        hex::encode(cert.tbs_certificate.raw_serial()),
        cert.subject().to_string(),
    )
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

async fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the audit trail accounts for `rows` events: refusals of one kind in a minute
/// after the first are counted in one `refused-aggregate` row (flushed here), which stands for
/// its `count` refusals.
async fn audit_rows_with(store: &Store, within: Duration, rows: i64) {
    let deadline = Instant::now() + within;
    loop {
        store.flush_refusals().await.unwrap();
        let accounted: i64 = store
            .audit_page(i64::MIN, 0, 100_000)
            .await
            .unwrap()
            .iter()
            .map(|row| match row.event.as_str() {
                "refused-aggregate" => serde_json::from_str::<serde_json::Value>(&row.detail)
                    .ok()
                    .and_then(|d| d["count"].as_i64())
                    .unwrap_or(0),
                _ => 1,
            })
            .sum();
        if accounted >= rows {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "audit rows missing: {accounted} of {rows}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// 40 requests abandoned after 50 ms: the CPU work already started finishes inside its slots
/// (the slot belongs to the work, not to the request), the queued ones never start, and no
/// token is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_requests_leave_no_work_running_and_issue_nothing() {
    // PKCS#12 at 1 000 000 iterations: each token is seconds of CPU.
    let gw = TestGateway::start_with(|r| configure(r, 1_000_000, "identity_per_minute = 0")).await;
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (client, base) = (impatient.clone(), gw.base.clone());
        tasks.spawn(async move { post(&client, &base, &format!("Gone {i}")).await.is_err() });
    }
    while let Some(abandoned) = tasks.join_next().await {
        assert!(abandoned.unwrap(), "a request finished within 50 ms");
    }
    let gateway = gw.gateway.clone();
    // The queue empties as the server notices the clients are gone ...
    wait_for("the queue to empty", Duration::from_secs(10), || {
        gateway.load().cpu_waiting == 0
    })
    .await;
    let load = gateway.load();
    println!("after abandoning 40 requests: {load:?}");
    assert!(load.cpu_busy <= cores(), "{load:?}");
    // ... and the work already running ends inside its slots.
    wait_for("the CPU work to end", Duration::from_secs(120), || {
        gateway.load().cpu_busy == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let store = gateway.store();
    assert_eq!(store.count_tokens().await.unwrap(), 0, "no token");
    assert_eq!(
        store.count_certificates().await.unwrap(),
        0,
        "no certificate"
    );
    assert_eq!(gateway.load().writer.written, 0);
}

/// Every CPU slot busy and `issuance_queue = 0`: more requests are refused at once with 503
/// and the configured Retry-After; the slow ones still get their tokens, and nothing else is
/// issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cpu_queue_answers_503_with_retry_after_at_once_and_issues_nothing() {
    let gw = TestGateway::start_with(|r| {
        configure(
            r,
            1_000_000,
            "identity_per_minute = 0\nissuance_queue = 0\nretry_after_secs = 7",
        )
    })
    .await;
    let slots = cores();
    let http = client();
    let mut slow = tokio::task::JoinSet::new();
    for i in 0..slots {
        let (client, base) = (http.clone(), gw.base.clone());
        slow.spawn(async move {
            let response = post(&client, &base, &format!("Slow {i}")).await.unwrap();
            (response.status().as_u16(), response.bytes().await.unwrap())
        });
    }
    let gateway = gw.gateway.clone();
    wait_for("every CPU slot busy", Duration::from_secs(30), || {
        gateway.load().cpu_busy == slots
    })
    .await;
    for i in 0..3 {
        let started = Instant::now();
        let response = post(&http, &gw.base, &format!("Shed {i}")).await.unwrap();
        let took = started.elapsed();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["x-ast-error"], "unavailable");
        assert_eq!(response.headers()["retry-after"], "7");
        // Shed without waiting for a slot (a slow token takes seconds here).
        assert!(took < Duration::from_secs(5), "took {took:?}");
    }
    assert!(
        gateway.load().cpu_busy == slots,
        "the slow tokens were still being made while the others were shed"
    );
    while let Some(done) = slow.join_next().await {
        let (status, body) = done.unwrap();
        assert_eq!(status, 200);
        assert_eq!(leaves(&body).len(), 2);
    }
    let store = gateway.store();
    assert_eq!(store.count_tokens().await.unwrap(), slots as i64);
    // Each refusal is audited (with the writer's next batch).
    audit_rows_with(store, Duration::from_secs(10), slots as i64 + 3).await;
    let verification = store.verify_audit().await.unwrap();
    assert_eq!(verification.first_bad, None);
}

/// The database is locked by another session: the writer's first batch (one issuance) waits
/// for the lock, six more made tokens wait in its queue (`write_queue = 6`), and two more
/// requests are refused at once with 503 + Retry-After. When the lock goes, the six queued
/// issuances are committed together and each waiter gets its own token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_issuances_commit_together_and_a_full_write_queue_answers_503() {
    let gw = TestGateway::start_with(|r| {
        configure(
            r,
            1_000,
            "identity_per_minute = 0\nwrite_queue = 6\nretry_after_secs = 3",
        )
    })
    .await;
    let url = gw.gateway.settings().database_url.clone();
    let mut blocker = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();
    // SQLite gives up on a lock after 5 s: everything below must happen before.
    let locked = Instant::now();
    let http = client();
    let mut waiting = tokio::task::JoinSet::new();
    let gateway = gw.gateway.clone();
    for i in 0..7 {
        let (client, base) = (http.clone(), gw.base.clone());
        waiting.spawn(async move {
            let name = format!("Batch User {i}");
            let response = post(&client, &base, &name).await.unwrap();
            let status = response.status().as_u16();
            (name, status, response.bytes().await.unwrap())
        });
        if i == 0 {
            wait_for("the first batch", Duration::from_secs(2), || {
                gateway.load().writer.in_flight == 1
            })
            .await;
        }
    }
    wait_for("six issuances queued", Duration::from_secs(3), || {
        gateway.load().writer.queued == 6
    })
    .await;
    for i in 0..2 {
        let response = post(&http, &gw.base, &format!("Shed {i}")).await.unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["x-ast-error"], "unavailable");
        assert_eq!(response.headers()["retry-after"], "3");
    }
    assert!(
        locked.elapsed() < Duration::from_secs(5),
        "too slow to test inside SQLite's busy timeout: {:?}",
        locked.elapsed()
    );
    sqlx::raw_sql("COMMIT").execute(&mut blocker).await.unwrap();
    let mut serials = BTreeMap::new();
    while let Some(done) = waiting.join_next().await {
        let (name, status, body) = done.unwrap();
        assert_eq!(status, 200, "{name}");
        for der in leaves(&body) {
            let (serial, subject) = serial_and_subject(&der);
            assert!(
                subject.contains(&format!("CN={name}")),
                "{name} got {subject}"
            );
            assert!(
                serials.insert(serial, name.clone()).is_none(),
                "serial twice"
            );
        }
    }
    assert_eq!(
        serials.len(),
        14,
        "two certificates per token, all distinct"
    );
    let stats = gateway.load().writer;
    println!("writer after the lock: {stats:?}");
    assert_eq!(stats.largest_batch, 6, "{stats:?}");
    assert_eq!(stats.written, 7);
    assert!(stats.refused >= 2, "{stats:?}");
    let store = gateway.store();
    for serial in serials.keys() {
        let serial: ast_gateway::ca::Serial = serial.parse().unwrap();
        assert!(store.certificate(&serial).await.unwrap().is_some());
    }
    assert_eq!(
        store.count_tokens().await.unwrap(),
        7,
        "nothing for the shed requests"
    );
    audit_rows_with(store, Duration::from_secs(10), 9).await;
    assert_eq!(store.verify_audit().await.unwrap().first_bad, None);
}

/// `peer_per_minute = 3`: the fourth request of a peer is answered 429 with Retry-After;
/// The `Retry-After` of a refusal, in seconds.
fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// `identity_per_minute = 1`: a second token for the same subject too, another subject not.
#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let gw = TestGateway::start_with(|r| {
        configure(r, 1_000, "peer_per_minute = 3\nidentity_per_minute = 1")
    })
    .await;
    let http = client();
    assert_eq!(
        post(&http, &gw.base, "Rita Rate").await.unwrap().status(),
        200
    );
    let again = post(&http, &gw.base, "Rita Rate").await.unwrap();
    assert_eq!(again.status(), 429);
    assert_eq!(again.headers()["x-ast-error"], "rate-limited");
    let wait = retry_after(&again);
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(again.text().await.unwrap().contains("identity"));
    assert_eq!(
        post(&http, &gw.base, "Otto Other").await.unwrap().status(),
        200
    );
    // Fourth request of this peer in the minute.
    let peer = post(&http, &gw.base, "Third Person").await.unwrap();
    assert_eq!(peer.status(), 429);
    assert_eq!(peer.headers()["x-ast-error"], "rate-limited");
    let wait = retry_after(&peer);
    assert!(
        (1..=20).contains(&wait),
        "3 per minute: one every 20 s; got {wait}"
    );
    assert!(peer.text().await.unwrap().contains("peer"));
    let store = gw.gateway.store();
    assert_eq!(store.count_tokens().await.unwrap(), 2);
    // Two issued, two refused (audited with the writer's next batch).
    audit_rows_with(store, Duration::from_secs(10), 4).await;
    assert_eq!(store.verify_audit().await.unwrap().first_bad, None);
}

/// A reload with a new `[key_pool]` resizes the running pool (no restart needed).
#[tokio::test]
async fn reload_resizes_the_key_pool() {
    let gw = TestGateway::start_with(|r| {
        configure(r, 1_000, "");
        let path = r.gateway_toml();
        let toml = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            toml.replacing("rsa-2048 = 0", "rsa-2048 = 0\nec-p256 = 3"),
        )
        .unwrap();
    })
    .await;
    let pool = gw.gateway.key_pool().clone();
    assert!(pool.wait_full(Duration::from_secs(30)));
    assert_eq!(pool.fill()[0].capacity, 3);
    let path = gw.root().gateway_toml();
    let toml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, toml.replacing("ec-p256 = 3", "ec-p256 = 7")).unwrap();
    let summary = gw.gateway.reload().unwrap();
    assert!(
        !summary.restart_needed.contains(&"[key_pool]"),
        "{:?}",
        summary.restart_needed
    );
    assert!(pool.wait_full(Duration::from_secs(30)), "{:?}", pool.fill());
    let fill = pool.fill();
    assert_eq!(
        (fill[0].key_type, fill[0].keys, fill[0].capacity),
        (KeyType::EcP256, 7, 7)
    );
    assert!(pool.refill_threads() >= 1);
}

/// `serve` with the admin listener on a port the OS assigns; waits until `/readyz` answers 200.
async fn serve_ready(root: &Path, client: &reqwest::Client) -> Serve {
    let serve = Serve::spawn(Serve::command(root, &["--admin", "127.0.0.1:0"]));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = client.get(serve.url("/readyz")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            return serve;
        }
        assert!(
            Instant::now() < deadline,
            "serve not ready: {}",
            serve.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sum and count of a Prometheus summary/histogram in a scrape.
fn sum_and_count(text: &str, name: &str) -> (f64, f64) {
    let value = |suffix: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name}{suffix} ")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    (value("_sum"), value("_count"))
}

/// Concurrent load on a `serve` process, `kill -9` in the middle: every token that was
/// delivered has its certificates recorded (byte for byte), and the audit chain verifies.
async fn kill_under_load(database: Option<&TestDatabase>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let out = Command::new(env!("CARGO_BIN_EXE_ast-gateway"))
        .args(["init", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = Root::new(&root);
    configure(&r, 1_000, "identity_per_minute = 0");
    if let Some(db) = database {
        let path = r.gateway_toml();
        let toml = std::fs::read_to_string(&path).unwrap();
        let line = "url = \"sqlite://data/ast-gateway.db\"";
        assert!(toml.contains(line));
        std::fs::write(
            &path,
            toml.replacing(line, &format!("url = \"{}\"", db.url)),
        )
        .unwrap();
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut serve = serve_ready(&root, &http).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..24 {
        let (http, base, stop) = (http.clone(), serve.base().to_string(), stop.clone());
        clients.spawn(async move {
            let mut delivered = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let name = format!("Load {c}-{n}");
                let Ok(response) = post(&http, &base, &name).await else {
                    break;
                };
                let status = response.status().as_u16();
                // A body cut by the kill is not a delivered token.
                let Ok(body) = response.bytes().await else {
                    break;
                };
                if status == 200 {
                    delivered.push((name, body.to_vec()));
                }
            }
            delivered
        });
    }
    // Let the load run, look at the batches, then kill -9 while requests are in flight.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let metrics = http
        .get(serve.metrics_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (sum, count) = sum_and_count(&metrics, "ast_store_batch_size");
    println!(
        "before the kill: {count} batches, {sum} issuances, {:.2} per batch",
        sum / count.max(1.0)
    );
    serve.kill();
    stop.store(true, Ordering::Relaxed);
    let mut delivered = Vec::new();
    while let Some(done) = clients.join_next().await {
        delivered.extend(done.unwrap());
    }
    assert!(
        delivered.len() >= 10,
        "only {} tokens before the kill",
        delivered.len()
    );

    let url = match database {
        Some(db) => db.url.clone(),
        None => format!(
            "sqlite://{}?mode=rw",
            root.join("data/ast-gateway.db").display()
        ),
    };
    let store = Store::open(&url, 2).await.unwrap();
    let mut certificates = 0;
    for (name, p12) in &delivered {
        let leaves = leaves(p12);
        assert_eq!(leaves.len(), 2, "{name}");
        for der in leaves {
            let (serial, subject) = serial_and_subject(&der);
            assert!(subject.contains(&format!("CN={name}")), "{name}: {subject}");
            let serial: ast_gateway::ca::Serial = serial.parse().unwrap();
            let record = store
                .certificate(&serial)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{name}: delivered but not recorded"));
            assert_eq!(record.der, der, "{name}: recorded DER differs");
            certificates += 1;
        }
    }
    let recorded = store.count_tokens().await.unwrap();
    println!(
        "kill -9 under load: {} tokens delivered ({certificates} certificates), {recorded} recorded",
        delivered.len()
    );
    assert!(recorded >= delivered.len() as i64);
    store.close().await;
    let verify = Command::new(env!("CARGO_BIN_EXE_ast-gateway"))
        .args(["audit", "verify", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "audit verify after kill -9: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_delivered_token_sqlite() {
    kill_under_load(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_delivered_token_postgres() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    kill_under_load(Some(&db)).await;
}

/// `[limits] request_timeout_secs` is enforced by the domain: a request that runs out of time
/// (here: its commit waits on a database another session holds locked) is answered 503 and
/// audited like every other refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_request_is_refused_and_audited() {
    let gw = TestGateway::start_with(|r| {
        configure(r, 1_000, "identity_per_minute = 0");
        let path = r.gateway_toml();
        let toml = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            toml.replacing("request_timeout_secs = 60", "request_timeout_secs = 1"),
        )
        .unwrap();
    })
    .await;
    let url = gw.gateway.settings().database_url.clone();
    let mut blocker = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let response = post(&client(), &gw.base, "Timed Out").await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["x-ast-error"], "unavailable");
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut blocker)
        .await
        .unwrap();
    drop(blocker);
    let store = gw.gateway.store();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        store.flush_refusals().await.unwrap();
        let rows = store.audit_page(i64::MIN, 0, 10_000).await.unwrap();
        let audited = rows.iter().any(|row| {
            row.event == "refused"
                && row.request_id == request_id
                && row.detail.contains("\"unavailable\"")
        });
        if audited {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the timed-out request {request_id} is not in the audit trail"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
