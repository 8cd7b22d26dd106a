//! High availability on PostgreSQL, bounded: two plain PostgreSQL servers started by the test
//! (a primary and a synchronous streaming standby, `ha/pair.rs`), one gateway whose `[database]
//! url` names both (`postgres://…@h1,h2/db?target_session_attrs=read-write`) with
//! `require_synchronous_replication = true`.
//!
//! 1. Tokens issued through the form are all delivered (200) while the standby is synchronous.
//! 2. The primary turns read-only (`default_transaction_read_only`): issuance answers 503 with
//!    `Retry-After`, `/readyz` 503 (pooled connections to it are dropped, the standby is not
//!    writable); back to writable: ready again, issuing.
//! 3. `kill -9` of the primary's postmaster: 503 `unavailable` with `Retry-After`, `/readyz` 503.
//! 4. The standby is promoted: `/readyz` turns 200 by itself (the gateway finds the second
//!    server of the URL); it has no synchronous standby, so issuance is refused with 503
//!    `replication-required`, audited.
//! 5. A gateway on the same root without the requirement issues on the new primary.
//! 6. Every token answered 200 has its certificates and its audit row on the new primary, no
//!    serial twice, and `ast-gateway audit verify` (through the multi-host URL) is clean.
//!
//! Skipped when the PostgreSQL server binaries (`initdb`, `pg_ctl`, `pg_basebackup`) are missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "ha/pair.rs"]
mod pair;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ast_gateway::config::Root;
use ast_gateway::http::{Listeners, start};
use ast_gateway::issuance::Gateway;
use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};
use sqlx::{Connection as _, Row};

use crate::kit::{ALICE, TestGateway, client, skipped};
use pair::Pair;

const PIN: &str = "Str0ng-Pass!";

/// Points the root at `url` (EC keys: this test is about the database, not RSA).
fn configure(root: &Root, url: &str, require_synchronous: bool) {
    let toml = std::fs::read_to_string(root.gateway_toml()).unwrap();
    let database = format!(
        "url = \"{url}\"\nrequire_synchronous_replication = {require_synchronous}\nmax_connections = 4"
    );
    let edited = regex_lite_replace(&toml, &database)
        .replace("key = \"rsa-2048\"", "key = \"ec-p256\"")
        .replace("iterations = 10000", "iterations = 1000")
        .replace("admin = \"127.0.0.1:9102\"", "admin = \"\"");
    std::fs::write(root.gateway_toml(), edited).unwrap();
}

/// Replaces the `[database]` section's `url = …` line (and what this test set before).
fn regex_lite_replace(toml: &str, database: &str) -> String {
    let mut out = Vec::new();
    let mut in_database = false;
    for line in toml.lines() {
        if line.starts_with('[') {
            in_database = line.trim() == "[database]";
            out.push(line.to_string());
            if in_database {
                out.push(database.to_string());
            }
            continue;
        }
        let key = line.split('=').next().unwrap_or("").trim();
        if in_database
            && matches!(
                key,
                "url" | "require_synchronous_replication" | "max_connections"
            )
        {
            continue;
        }
        out.push(line.to_string());
    }
    out.join("\n") + "\n"
}

struct Answer {
    status: u16,
    code: String,
    retry_after: Option<String>,
    body: Vec<u8>,
}

async fn issue(base: &str, n: usize) -> Answer {
    let mut request = client()
        .post(format!("{base}/pgwy/ast"))
        .timeout(Duration::from_secs(60))
        .form(&[("password", PIN)]);
    for (name, value) in ALICE {
        let value = match *name {
            "commonname" => format!("HA User {n}"),
            _ => value.to_string(),
        };
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    Answer {
        status: response.status().as_u16(),
        code: header("x-ast-error").unwrap_or_default(),
        retry_after: header("retry-after"),
        body: response.bytes().await.unwrap().to_vec(),
    }
}

async fn readyz(base: &str) -> u16 {
    client()
        .get(format!("{base}/readyz"))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Waits until `/readyz` answers `status`; how long it took.
async fn wait_readyz(base: &str, status: u16, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if readyz(base).await == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "/readyz did not answer {status} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Serials (lower-case hex) of the leaf certificates in a delivered PKCS#12.
fn serials(p12: &[u8]) -> Vec<String> {
    let keystore = KeyStore::from_pkcs12(p12, PIN, Pkcs12ImportPolicy::Strict).unwrap();
    keystore
        .entries()
        .filter_map(|(_, entry)| match entry {
            KeyStoreEntry::PrivateKeyChain(chain) => chain.certs().first().map(|c| {
                let (_, cert) = x509_parser::parse_x509_certificate(c.as_der()).unwrap();
                crate::kit::ser(hex::encode(cert.tbs_certificate.raw_serial())).to_string()
            }),
            _ => None,
        })
        .collect()
}

/// Issues `count` tokens, each expected to be delivered; their serials go into `delivered`.
async fn issue_delivered(base: &str, from: usize, count: usize, delivered: &mut Vec<String>) {
    for n in from..from + count {
        let answer = issue(base, n).await;
        assert_eq!(answer.status, 200, "token {n}: {}", answer.code);
        let leaves = serials(&answer.body);
        assert_eq!(leaves.len(), 2, "token {n}: two certificates");
        delivered.extend(leaves);
    }
}

/// A refusal that asks the client to come back: 503, the code, a `Retry-After`.
fn assert_retry_later(answer: &Answer, code: &str, when: &str) {
    assert_eq!(
        (answer.status, answer.code.as_str()),
        (503, code),
        "{when}: {}",
        String::from_utf8_lossy(&answer.body)
    );
    assert!(answer.retry_after.is_some(), "{when}: Retry-After");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_failover_with_a_multi_host_url_loses_nothing_delivered() {
    let Some(pair) = Pair::start().await else {
        skipped(
            "ha_failover",
            "no PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup)",
        );
        return;
    };
    let started = Instant::now();
    let mut primary = pair.primary.connect().await;
    sqlx::query("CREATE DATABASE ast")
        .execute(&mut primary)
        .await
        .unwrap();
    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/ast?target_session_attrs=read-write",
        pair.primary.port, pair.standby.port
    );
    let gateway = TestGateway::start_with(|root| configure(root, &url, true)).await;
    let base = gateway.base.clone();
    let root = gateway.root();
    let durability = crate::kit::run_ok(
        std::path::Path::new(env!("CARGO_BIN_EXE_ast-gateway")),
        &["db", "durability", "--root", root.dir().to_str().unwrap()],
    );
    assert!(
        durability.contains("synchronous replication: a commit is acknowledged after a standby")
            && durability.contains(&format!("127.0.0.1:{}", pair.primary.port)),
        "{durability}"
    );

    // 1. Synchronous pair: delivered.
    let mut delivered = Vec::new();
    issue_delivered(&base, 0, 6, &mut delivered).await;
    assert_eq!(readyz(&base).await, 200);

    // 2. The primary turns read-only: refused, unready; back: ready, issuing.
    sqlx::query("ALTER SYSTEM SET default_transaction_read_only = on")
        .execute(&mut primary)
        .await
        .unwrap();
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&mut primary)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_retry_later(&issue(&base, 100).await, "unavailable", "read-only primary");
    wait_readyz(&base, 503, Duration::from_secs(15)).await;
    sqlx::query("ALTER SYSTEM RESET default_transaction_read_only")
        .execute(&mut primary)
        .await
        .unwrap();
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&mut primary)
        .await
        .unwrap();
    wait_readyz(&base, 200, Duration::from_secs(15)).await;
    issue_delivered(&base, 6, 2, &mut delivered).await;
    drop(primary);

    // 3. kill -9 of the primary: refused with Retry-After, unready.
    pair.kill_primary();
    let killed = Instant::now();
    assert_retry_later(&issue(&base, 200).await, "unavailable", "primary killed");
    wait_readyz(&base, 503, Duration::from_secs(15)).await;

    // 4. Promotion: ready again by itself, on the second server; no synchronous standby there,
    //    so issuance is refused with replication-required (audited below).
    pair.promote_standby();
    let ready_after = wait_readyz(&base, 200, Duration::from_secs(30)).await;
    println!(
        "ha: ready {ready_after:?} after the promotion, {:?} after kill -9",
        killed.elapsed()
    );
    let refused = issue(&base, 300).await;
    assert_retry_later(&refused, "replication-required", "asynchronous new primary");
    assert!(
        String::from_utf8_lossy(&refused.body).contains("synchronous replication"),
        "the message says why"
    );

    // 5. Without the requirement, the same root issues on the new primary.
    configure(&root, &url, false);
    let config = ast_gateway::rules::load(&root).unwrap();
    let second = Gateway::open(config).await.unwrap();
    let server = start(
        second,
        Listeners {
            http: Some("127.0.0.1:0".parse().unwrap()),
            ..Listeners::default()
        },
    )
    .await
    .unwrap();
    let base2 = format!("http://{}", server.http_addr.unwrap());
    issue_delivered(&base2, 400, 4, &mut delivered).await;

    // 6. Every delivered certificate and its audit row are on the new primary.
    let unique: BTreeSet<&String> = delivered.iter().collect();
    assert_eq!(unique.len(), delivered.len(), "no serial delivered twice");
    let mut standby = sqlx::PgConnection::connect(&pair.standby.url("ast"))
        .await
        .unwrap();
    for serial in &delivered {
        let row = sqlx::query(
            "SELECT (SELECT count(*) FROM certificates WHERE serial = $1), \
             (SELECT count(*) FROM audit WHERE event = 'issued' AND detail LIKE '%' || $1 || '%')",
        )
        .bind(serial)
        .fetch_one(&mut standby)
        .await
        .unwrap();
        let (certificates, audit): (i64, i64) = (row.get(0), row.get(1));
        assert_eq!(
            (certificates, audit),
            (1, 1),
            "serial {serial} on the new primary"
        );
    }
    let row = sqlx::query(
        "SELECT count(*) FROM certificates UNION ALL \
         SELECT count(*) FROM audit WHERE event = 'refused' AND detail LIKE '%replication-required%'",
    )
    .fetch_all(&mut standby)
    .await
    .unwrap();
    assert_eq!(
        row[0].get::<i64, _>(0),
        delivered.len() as i64,
        "nothing recorded but what was delivered (refusals issue nothing)"
    );
    assert!(
        row[1].get::<i64, _>(0) >= 1,
        "the replication-required refusal is audited"
    );
    let verify = crate::kit::run(
        std::path::Path::new(env!("CARGO_BIN_EXE_ast-gateway")),
        &["audit", "verify", "--root", root.dir().to_str().unwrap()],
    );
    let text = String::from_utf8_lossy(&verify.stdout).to_string();
    assert!(verify.status.success() && text.contains("intact"), "{text}");
    println!("ha: whole test {:?}", started.elapsed());
}
