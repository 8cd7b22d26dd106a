//! High availability on PostgreSQL, bounded: two plain PostgreSQL servers started by the test
//! (a primary and a synchronous streaming standby, `ha/pair.rs`), a gateway node (`ha/node.rs`)
//! whose `[database] url` names both (`postgres://…@h1,h2/db?target_session_attrs=read-write`)
//! with `require_synchronous_replication = true`.
//!
//! 1. Tokens issued through the form and the API are all delivered while the standby is
//!    synchronous; `db durability` says so.
//! 2. The primary turns read-only (`default_transaction_read_only`): issuance answers 503 with
//!    `Retry-After`, `/readyz` 503 (pooled connections to it are dropped, the standby is not
//!    writable); back to writable: ready again, issuing.
//! 3. `kill -9` of the primary's postmaster: 503 `unavailable` with `Retry-After` (also for an
//!    API call with an `Idempotency-Key`), `/readyz` 503.
//! 4. The standby is promoted: `/readyz` turns 200 by itself (the gateway finds the second
//!    server of the URL); it has no synchronous standby, so issuance is refused with 503
//!    `replication-required`, audited.
//! 5. A second node (the files docs/scale-out.md says a new node takes), without the requirement, issues on the new primary;
//!    the API call refused in 3 and 4 is retried there with its key: issued once, and a further
//!    retry answers 409 `already-issued` with the same serials.
//! 6. Every token answered 200 has its certificates and its audit row on the new primary, no
//!    serial twice, and `ast-gateway audit verify` (through the multi-host URL) is clean.
//!
//! Skipped when the PostgreSQL server binaries (`initdb`, `pg_ctl`, `pg_basebackup`) are missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "ha/node.rs"]
mod node;
#[path = "ha/pair.rs"]
mod pair;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use sqlx::{Connection as _, Row};

use crate::kit::{TestGateway, client, run, run_ok, skipped};
use node::{api, configure, copy_node, form};
use pair::Pair;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ast-gateway"))
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

/// Issues `count` tokens through the form, each expected to be delivered.
async fn form_delivered(
    node: &TestGateway,
    from: usize,
    count: usize,
    delivered: &mut Vec<String>,
) {
    for n in from..from + count {
        let answer = form(node, n).await;
        assert_eq!(answer.status, 200, "token {n}: {}", answer.code);
        let serials = answer.serials();
        assert_eq!(serials.len(), 2, "token {n}: two certificates");
        delivered.extend(serials);
    }
}

/// Issues through the form until a request is refused (the server's change takes a moment to
/// reach every session): tokens delivered meanwhile count as delivered. The refusal.
async fn until_refused(
    node: &TestGateway,
    from: usize,
    delivered: &mut Vec<String>,
) -> node::Answer {
    for n in from..from + 20 {
        let answer = form(node, n).await;
        if answer.status != 200 {
            return answer;
        }
        delivered.extend(answer.serials());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("20 requests after the change were all delivered");
}

async fn set_read_only(primary: &mut sqlx::PgConnection, on: bool) {
    let sql = if on {
        "ALTER SYSTEM SET default_transaction_read_only = on"
    } else {
        "ALTER SYSTEM RESET default_transaction_read_only"
    };
    sqlx::query(sql).execute(&mut *primary).await.unwrap();
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&mut *primary)
        .await
        .unwrap();
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
    let a = TestGateway::start_https(|root| configure(root, &url, true)).await;
    let root = a.root();
    let (_, officer) = a.officer("HA Officer", &["api-issue"]).await;
    let root_arg = root.dir().to_str().unwrap().to_string();
    let durability = run_ok(bin(), &["db", "durability", "--root", &root_arg]);
    assert!(
        durability.contains("synchronous replication: a commit is acknowledged after a standby")
            && durability.contains(&format!("127.0.0.1:{}", pair.primary.port)),
        "{durability}"
    );
    let check = run_ok(bin(), &["config", "check", "--root", &root_arg]);
    assert!(
        check.contains("database durability: PostgreSQL at") && !check.contains("REFUSING"),
        "{check}"
    );

    // 1. Synchronous pair: delivered, through the form and the API.
    let mut delivered = Vec::new();
    form_delivered(&a, 0, 5, &mut delivered).await;
    let first = api(&a, &officer, "ha-first", 1).await;
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    delivered.extend(first.serials());
    assert_eq!(readyz(&a.base).await, 200);

    // 2. The primary turns read-only: refused, unready; back: ready, issuing.
    set_read_only(&mut primary, true).await;
    until_refused(&a, 100, &mut delivered)
        .await
        .assert_retry_later("unavailable", "read-only primary");
    wait_readyz(&a.base, 503, Duration::from_secs(15)).await;
    set_read_only(&mut primary, false).await;
    wait_readyz(&a.base, 200, Duration::from_secs(15)).await;
    form_delivered(&a, 6, 2, &mut delivered).await;
    drop(primary);

    // 3. kill -9 of the primary: refused with Retry-After (an API call too), unready.
    pair.kill_primary();
    let killed = Instant::now();
    until_refused(&a, 200, &mut delivered)
        .await
        .assert_retry_later("unavailable", "primary killed");
    api(&a, &officer, "ha-across", 2)
        .await
        .assert_retry_later("unavailable", "API call, primary killed");
    wait_readyz(&a.base, 503, Duration::from_secs(15)).await;

    // 4. Promotion: ready again by itself, on the second server; no synchronous standby there,
    //    so issuance is refused with replication-required (audited below).
    pair.promote_standby();
    let ready_after = wait_readyz(&a.base, 200, Duration::from_secs(30)).await;
    println!(
        "ha: ready {ready_after:?} after the promotion, {:?} after kill -9",
        killed.elapsed()
    );
    let refused = form(&a, 300).await;
    refused.assert_retry_later("replication-required", "asynchronous new primary");
    assert!(
        String::from_utf8_lossy(&refused.body).contains("synchronous replication"),
        "the message says why"
    );
    api(&a, &officer, "ha-across", 2)
        .await
        .assert_retry_later("replication-required", "API retry, asynchronous");

    // 5. Another node (a copy of the root) without the requirement issues on the new primary;
    //    the API call refused above is retried there with its key: issued once.
    let b = TestGateway::start_https(|root_b| {
        copy_node(&root, root_b);
        configure(root_b, &url, false);
    })
    .await;
    let root_b = b.root();
    form_delivered(&b, 400, 3, &mut delivered).await;
    let issued = api(&b, &officer, "ha-across", 2).await;
    assert_eq!(
        issued.status,
        200,
        "{}",
        String::from_utf8_lossy(&issued.body)
    );
    delivered.extend(issued.serials());
    let again = api(&b, &officer, "ha-across", 2).await;
    assert_eq!((again.status, again.code.as_str()), (409, "already-issued"));
    assert_eq!(again.serials(), issued.serials(), "the recorded token");

    // 6. Every delivered certificate and its audit row are on the new primary.
    let unique: BTreeSet<&String> = delivered.iter().collect();
    assert_eq!(unique.len(), delivered.len(), "no serial delivered twice");
    let mut new_primary = sqlx::PgConnection::connect(&pair.standby.url("ast"))
        .await
        .unwrap();
    for serial in &delivered {
        let row = sqlx::query(
            "SELECT (SELECT count(*) FROM certificates WHERE serial = $1), \
             (SELECT count(*) FROM audit WHERE event = 'issued' AND detail LIKE '%' || $1 || '%')",
        )
        .bind(serial)
        .fetch_one(&mut new_primary)
        .await
        .unwrap();
        let (certificates, audit): (i64, i64) = (row.get(0), row.get(1));
        assert_eq!(
            (certificates, audit),
            (1, 1),
            "serial {serial} on the new primary"
        );
    }
    let counts = sqlx::query(
        "SELECT count(*) FROM certificates UNION ALL \
         SELECT count(*) FROM audit WHERE event = 'refused' AND detail LIKE '%replication-required%'",
    )
    .fetch_all(&mut new_primary)
    .await
    .unwrap();
    // Nothing recorded but what was delivered (refusals issue nothing) — except the one token
    // whose commit was in flight when the primary was killed: it can be durable on the standby
    // while its acknowledgement died with the primary, so its request was refused (503, the
    // outcome unknown to the gateway) and the token never left. At most one such token.
    let recorded = counts[0].get::<i64, _>(0);
    let extra = recorded - delivered.len() as i64;
    let undelivered_tokens: i64 = sqlx::query(
        "SELECT count(DISTINCT token_id) FROM certificates WHERE NOT (serial = ANY($1))",
    )
    .bind(&delivered)
    .fetch_one(&mut new_primary)
    .await
    .unwrap()
    .get(0);
    assert!(
        (0..=2).contains(&extra) && undelivered_tokens <= 1,
        "recorded {recorded} certificates, delivered {}: {undelivered_tokens} undelivered tokens",
        delivered.len()
    );
    assert!(
        counts[1].get::<i64, _>(0) >= 1,
        "the replication-required refusal is audited"
    );
    // Both roots: a's own anchors, and b's (b started without a's anchor file, as a new node).
    for root in [&root, &root_b] {
        let verify = run(
            bin(),
            &["audit", "verify", "--root", root.dir().to_str().unwrap()],
        );
        let text = String::from_utf8_lossy(&verify.stdout).to_string();
        assert!(verify.status.success() && text.contains("intact"), "{text}");
    }
    println!("ha: whole test {:?}", started.elapsed());
}
