//! The store test suite. Every test runs the same code against SQLite and PostgreSQL (a fresh
//! database per test run; PostgreSQL is skipped with a message only when no server answers).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub(crate) mod db_copy;
pub(crate) mod ha;

use crate::kit::ser;
use std::time::{Duration, Instant};

use ast_gateway::store::{
    AuditEvent, CertificateFilter, CertificateRecord, CertificateStatus, Store, StoreError,
    StoreOptions, TokenRecord,
};
use serde_json::json;
use sqlx::AnyPool;

use crate::kit::databases::{Backend, TestDatabase};
use crate::kit::tcp_proxy::TcpProxy;

fn token(id: &str, created_at: i64) -> TokenRecord {
    TokenRecord {
        id: id.into(),
        created_at,
        handler: "handler.1".into(),
        token_procedure: "default".into(),
        caller: "proxy:127.0.0.1".into(),
        request_id: format!("req-{id}"),
        profile: "modern".into(),
    }
}

fn random_serial() -> String {
    let mut serial = *uuid::Uuid::new_v4().as_bytes();
    serial[0] = (serial[0] & 0x7f) | 0x01;
    hex::encode(serial)
}

fn certificate(serial: &str, token_id: &str, subject: &str, purpose: &str) -> CertificateRecord {
    CertificateRecord {
        serial: ser(serial),
        ca: "issuing".into(),
        issuer: "CN=Demo Issuing CA,O=Demo".into(),
        subject: subject.into(),
        sans: vec![
            "rfc822name:alice@example.com".into(),
            "upn:alice@corp.example".into(),
        ],
        not_before: 1_700_000_000,
        not_after: 1_731_536_000,
        purpose: purpose.into(),
        token_id: token_id.into(),
        status: CertificateStatus::Good,
        revoked_at: None,
        revocation_reason: None,
        // Every byte value, so a text column or an encoding step would show.
        der: (0..=255u8).chain([0, 0, 0xff]).collect(),
    }
}

fn issued(token_id: &str, serials: &[&str]) -> AuditEvent {
    AuditEvent::now(
        "issued",
        "proxy:127.0.0.1",
        &format!("req-{token_id}"),
        json!({"token": token_id, "serials": serials}),
    )
}

async fn open(db: &TestDatabase) -> Store {
    Store::open(&db.url, 4)
        .await
        .unwrap_or_else(|e| panic!("{:?}: open: {e}", db.backend))
}

#[tokio::test]
async fn store_records_an_issuance_and_reads_it_back() {
    for db in TestDatabase::all().await {
        let store = open(&db).await;
        let (a, b) = (random_serial(), random_serial());
        let mut signing = certificate(&b, "t1", "CN=Alice Andersson,C=SE", "signing");
        signing.der = vec![0x30, 0x00];
        let written = [
            certificate(&a, "t1", "CN=Alice Andersson,C=SE", "authentication"),
            signing,
        ];
        store
            .record_issuance(
                &token("t1", 1_700_000_100),
                &written,
                &issued("t1", &[&a, &b]),
            )
            .await
            .unwrap();

        for w in &written {
            // Lookup takes a serial as a person types it: upper case, colons.
            let typed = w
                .serial
                .hex()
                .to_uppercase()
                .as_bytes()
                .chunks(2)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join(":");
            let r = store
                .certificate(&ser(&typed))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{:?}: {typed} not found", db.backend));
            assert_eq!(r.serial, w.serial, "{:?}", db.backend);
            assert_eq!(
                (r.ca.as_str(), r.issuer.as_str(), r.subject.as_str()),
                (w.ca.as_str(), w.issuer.as_str(), w.subject.as_str())
            );
            assert_eq!(r.sans, w.sans, "{:?}", db.backend);
            assert_eq!(
                (r.not_before, r.not_after),
                (w.not_before, w.not_after),
                "{:?}",
                db.backend
            );
            assert_eq!(
                (r.purpose.as_str(), r.token_id.as_str()),
                (w.purpose.as_str(), "t1")
            );
            assert_eq!(r.status, CertificateStatus::Good);
            assert_eq!((r.revoked_at, r.revocation_reason), (None, None));
            assert_eq!(
                r.der, w.der,
                "{:?}: DER must round-trip byte for byte",
                db.backend
            );
        }
        assert!(
            store
                .certificate(&ser(random_serial()))
                .await
                .unwrap()
                .is_none()
        );
        assert!(ast_gateway::ca::Serial::parse("not hex").is_err());
        assert_eq!(store.count_certificates().await.unwrap(), 2);
        assert_eq!(store.count_tokens().await.unwrap(), 1);
        assert_eq!(store.count_audit().await.unwrap(), 1);
        let v = store.verify_audit().await.unwrap();
        assert_eq!((v.rows, v.first_bad), (1, None), "{:?}", db.backend);
        store.ping().await.unwrap();
        store.close().await;
    }
}

#[tokio::test]
async fn store_filters_and_pages_the_same_on_both_backends() {
    for db in TestDatabase::all().await {
        let store = open(&db).await;
        let subjects = [
            "CN=Alice Andersson,C=SE",
            "CN=bob_100%,C=SE",
            "CN=Bobby,C=NO",
            "CN=back\\slash,C=SE",
        ];
        for (i, subject) in subjects.iter().enumerate() {
            let id = format!("t{i}");
            let serial = random_serial();
            let certs = [certificate(&serial, &id, subject, "authentication")];
            store
                .record_issuance(
                    &token(&id, 1_700_000_000 + i as i64),
                    &certs,
                    &issued(&id, &[&serial]),
                )
                .await
                .unwrap();
        }
        let subjects_of = |filter: CertificateFilter| {
            let store = store.clone();
            async move {
                store
                    .certificates(&filter)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|c| c.subject)
                    .collect::<Vec<_>>()
            }
        };
        let by = |s: &str| CertificateFilter {
            subject: Some(s.into()),
            ..Default::default()
        };
        // Newest first.
        assert_eq!(
            subjects_of(CertificateFilter::default()).await,
            subjects
                .iter()
                .rev()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
            "{:?}",
            db.backend
        );
        // Case-insensitive substring; `%`, `_` and `\` are literal.
        assert_eq!(
            subjects_of(by("ALICE")).await,
            ["CN=Alice Andersson,C=SE"],
            "{:?}",
            db.backend
        );
        assert_eq!(
            subjects_of(by("bob")).await,
            ["CN=Bobby,C=NO", "CN=bob_100%,C=SE"],
            "{:?}",
            db.backend
        );
        assert_eq!(
            subjects_of(by("_100%")).await,
            ["CN=bob_100%,C=SE"],
            "{:?}",
            db.backend
        );
        assert_eq!(
            subjects_of(by("%")).await,
            ["CN=bob_100%,C=SE"],
            "{:?}",
            db.backend
        );
        assert!(
            subjects_of(by("b_b")).await.is_empty(),
            "{:?}: `_` must not be a wildcard",
            db.backend
        );
        assert_eq!(
            subjects_of(by("k\\s")).await,
            ["CN=back\\slash,C=SE"],
            "{:?}",
            db.backend
        );
        let good = CertificateFilter {
            status: Some(CertificateStatus::Good),
            ..Default::default()
        };
        assert_eq!(subjects_of(good).await.len(), 4);
        let revoked = CertificateFilter {
            status: Some(CertificateStatus::Revoked),
            ..Default::default()
        };
        assert!(subjects_of(revoked).await.is_empty());
        let of_token = CertificateFilter {
            token_id: Some("t2".into()),
            ..Default::default()
        };
        assert_eq!(subjects_of(of_token).await, ["CN=Bobby,C=NO"]);
        let page = CertificateFilter {
            limit: Some(2),
            offset: Some(1),
            ..Default::default()
        };
        assert_eq!(
            subjects_of(page).await,
            ["CN=Bobby,C=NO", "CN=bob_100%,C=SE"],
            "{:?}",
            db.backend
        );
        store.close().await;
    }
}

#[tokio::test]
async fn store_refuses_a_duplicate_serial_and_records_nothing_of_it() {
    for db in TestDatabase::all().await {
        let store = open(&db).await;
        let taken = random_serial();
        let first = [certificate(&taken, "t1", "CN=First", "authentication")];
        store
            .record_issuance(&token("t1", 1), &first, &issued("t1", &[&taken]))
            .await
            .unwrap();

        // A second token whose second certificate collides with the first token's serial.
        let fresh = random_serial();
        let second = [
            certificate(&fresh, "t2", "CN=Second", "authentication"),
            certificate(&taken, "t2", "CN=Second", "signing"),
        ];
        let result = store
            .record_issuance(&token("t2", 2), &second, &issued("t2", &[&fresh, &taken]))
            .await;
        match result {
            Err(StoreError::DuplicateSerial(s)) => assert_eq!(s, taken, "{:?}", db.backend),
            other => panic!("{:?}: expected DuplicateSerial, got {other:?}", db.backend),
        }
        // The whole transaction rolled back: no token, no certificate, no audit row, chain intact.
        assert_eq!(store.count_tokens().await.unwrap(), 1, "{:?}", db.backend);
        assert_eq!(
            store.count_certificates().await.unwrap(),
            1,
            "{:?}",
            db.backend
        );
        assert!(store.certificate(&ser(&fresh)).await.unwrap().is_none());
        assert_eq!(
            store
                .certificate(&ser(&taken))
                .await
                .unwrap()
                .map(|c| c.subject),
            Some("CN=First".into())
        );
        let v = store.verify_audit().await.unwrap();
        assert_eq!((v.rows, v.first_bad), (1, None), "{:?}", db.backend);
        // The retry with a new serial goes through.
        let again = [
            certificate(&fresh, "t2", "CN=Second", "authentication"),
            certificate(&random_serial(), "t2", "CN=Second", "signing"),
        ];
        store
            .record_issuance(&token("t2", 2), &again, &issued("t2", &[]))
            .await
            .unwrap();
        assert_eq!(store.count_certificates().await.unwrap(), 3);
        assert_eq!(store.verify_audit().await.unwrap().first_bad, None);
        store.close().await;
    }
}

/// Two pools on one database stand for two gateway nodes. Many concurrent writers of both
/// kinds (issuance and plain audit events) must leave one linear, verifiable chain.
#[tokio::test]
async fn store_audit_chain_stays_linear_with_two_nodes_writing_concurrently() {
    const WRITES: usize = 200;
    for db in TestDatabase::all().await {
        // Generous waits: this is about the chain, not about how fast a loaded machine is.
        let options = StoreOptions {
            acquire_timeout: Duration::from_secs(60),
            operation_timeout: Duration::from_secs(60),
            ..StoreOptions::new(4)
        };
        let nodes = [
            Store::open_with(&db.url, options).await.unwrap(),
            Store::open_with(&db.url, options).await.unwrap(),
        ];
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..WRITES {
            let store = nodes[i % 2].clone();
            tasks.spawn(async move {
                if i % 3 == 0 {
                    store
                        .record_audit(&AuditEvent::now(
                            "refused",
                            "peer:10.0.0.1",
                            &format!("r{i}"),
                            json!({"i": i}),
                        ))
                        .await
                } else {
                    let id = format!("t{i}");
                    let serial = random_serial();
                    let certs = [certificate(&serial, &id, "CN=Load", "authentication")];
                    store
                        .record_issuance(&token(&id, i as i64), &certs, &issued(&id, &[&serial]))
                        .await
                }
            });
        }
        // `audit verify` while both nodes write: it checks up to the head it saw first.
        let verifier = {
            let store = nodes[0].clone();
            tokio::spawn(async move {
                let mut checks = Vec::new();
                for _ in 0..20 {
                    checks.push(store.verify_audit().await.unwrap());
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                checks
            })
        };
        let mut failures = Vec::new();
        while let Some(result) = tasks.join_next().await {
            if let Err(e) = result.unwrap() {
                failures.push(e.to_string());
            }
        }
        assert!(
            failures.is_empty(),
            "{:?}: {} of {WRITES} writes failed, first: {}",
            db.backend,
            failures.len(),
            failures[0]
        );
        println!(
            "{:?}: {WRITES} concurrent audit writes from two pools in {:?}",
            db.backend,
            started.elapsed()
        );
        for check in verifier.await.unwrap() {
            assert_eq!(
                check.first_bad, None,
                "{:?}: verification during writes ({} rows) reported a break",
                db.backend, check.rows
            );
        }
        let v = nodes[1].verify_audit().await.unwrap();
        assert_eq!(
            (v.rows, v.first_bad),
            (WRITES as i64, None),
            "{:?}: chain must be linear",
            db.backend
        );
        let issuances = (0..WRITES).filter(|i| i % 3 != 0).count() as i64;
        assert_eq!(nodes[0].count_certificates().await.unwrap(), issuances);
        for node in &nodes {
            node.close().await;
        }
    }
}

#[tokio::test]
async fn store_audit_verification_finds_tampering() {
    for db in TestDatabase::all().await {
        let store = open(&db).await;
        for i in 0..5 {
            store
                .record_audit(&AuditEvent::now(
                    "refused",
                    "peer:10.0.0.1",
                    &format!("r{i}"),
                    json!({"i": i}),
                ))
                .await
                .unwrap();
        }
        assert_eq!(store.verify_audit().await.unwrap().first_bad, None);
        let raw = AnyPool::connect(&db.url).await.unwrap();
        sqlx::query("UPDATE audit SET actor = 'mallory' WHERE seq = 3")
            .execute(&raw)
            .await
            .unwrap();
        let v = store.verify_audit().await.unwrap();
        assert_eq!((v.rows, v.first_bad), (5, Some(3)), "{:?}", db.backend);
        // Deleting the last row is caught by the head.
        sqlx::query("UPDATE audit SET actor = 'peer:10.0.0.1' WHERE seq = 3")
            .execute(&raw)
            .await
            .unwrap();
        sqlx::query("DELETE FROM audit WHERE seq = 5")
            .execute(&raw)
            .await
            .unwrap();
        let v = store.verify_audit().await.unwrap();
        assert_eq!((v.rows, v.first_bad), (4, Some(5)), "{:?}", db.backend);
        // So is a row missing in the middle.
        sqlx::query("DELETE FROM audit WHERE seq = 2")
            .execute(&raw)
            .await
            .unwrap();
        let v = store.verify_audit().await.unwrap();
        assert_eq!((v.rows, v.first_bad), (3, Some(2)), "{:?}", db.backend);
        raw.close().await;
        store.close().await;
    }
}

/// Migrations run at start. Opening again is a no-op; on PostgreSQL several nodes starting at
/// once on an empty database queue on the migrator's advisory lock instead of racing.
#[tokio::test]
async fn store_migrations_are_idempotent_and_race_free() {
    for db in TestDatabase::all().await {
        let starts = if db.backend == Backend::Postgres {
            6
        } else {
            1
        };
        let opened = futures_join_all((0..starts).map(|_| {
            let url = db.url.clone();
            async move { Store::open(&url, 2).await }
        }))
        .await;
        for (i, store) in opened.iter().enumerate() {
            assert!(
                store.is_ok(),
                "{:?}: node {i} failed to start: {:?}",
                db.backend,
                store.as_ref().err()
            );
        }
        let again = open(&db).await;
        assert_eq!(again.is_postgres(), db.backend == Backend::Postgres);
        assert_eq!(again.count_audit().await.unwrap(), 0);
        assert_eq!(again.verify_audit().await.unwrap().first_bad, None);
        for store in opened.into_iter().flatten() {
            store.close().await;
        }
        again.close().await;
    }
}

async fn futures_join_all<F: Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// A database outage (PostgreSQL through a proxy the test cuts): writes and pings fail fast,
/// nothing is written, and the same pool works again once the database is back.
#[tokio::test]
async fn store_fails_fast_during_an_outage_and_reconnects_by_itself() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let proxy = TcpProxy::start(crate::kit::databases::postgres_addr()).await;
    let options = StoreOptions {
        max_connections: 4,
        acquire_timeout: Duration::from_secs(3),
        unreachable_timeout: Duration::from_millis(500),
        operation_timeout: Duration::from_secs(5),
    };
    let store = Store::open_with(&db.url_via(proxy.addr), options)
        .await
        .unwrap();
    let direct = open(&db).await;
    let serial = random_serial();
    store
        .record_issuance(
            &token("t0", 0),
            &[certificate(&serial, "t0", "CN=Before", "authentication")],
            &issued("t0", &[&serial]),
        )
        .await
        .unwrap();

    proxy.cut().await;
    // The first operation notices the outage within the acquire timeout ...
    let started = Instant::now();
    assert!(
        store.ping().await.is_err(),
        "ping must fail during the outage"
    );
    let noticed = started.elapsed();
    // ... the following ones fail within the short unreachable timeout.
    let started = Instant::now();
    let serial = random_serial();
    let result = store
        .record_issuance(
            &token("t1", 1),
            &[certificate(&serial, "t1", "CN=During", "authentication")],
            &issued("t1", &[&serial]),
        )
        .await;
    assert!(matches!(result, Err(StoreError::Database(_))), "{result:?}");
    let issuance_failed = started.elapsed();
    let started = Instant::now();
    let audit = store
        .record_audit(&AuditEvent::now("refused", "x", "r", json!({})))
        .await;
    assert!(audit.is_err());
    let audit_failed = started.elapsed();
    println!(
        "outage: noticed after {noticed:?}, then issuance failed after {issuance_failed:?}, audit after {audit_failed:?}"
    );
    assert!(
        noticed < Duration::from_millis(4500),
        "first failure took {noticed:?}"
    );
    assert!(
        issuance_failed < Duration::from_millis(1500),
        "issuance took {issuance_failed:?}"
    );
    assert!(
        audit_failed < Duration::from_millis(1500),
        "audit took {audit_failed:?}"
    );
    assert_eq!(
        direct.count_certificates().await.unwrap(),
        1,
        "nothing recorded during the outage"
    );
    assert_eq!(direct.count_audit().await.unwrap(), 1);

    proxy.restore().await;
    let started = Instant::now();
    while store.ping().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the pool did not reconnect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "outage: pool reconnected {:?} after the database returned",
        started.elapsed()
    );
    store
        .record_issuance(
            &token("t1", 1),
            &[certificate(&serial, "t1", "CN=After", "authentication")],
            &issued("t1", &[&serial]),
        )
        .await
        .unwrap();
    assert_eq!(direct.count_certificates().await.unwrap(), 2);
    assert_eq!(direct.verify_audit().await.unwrap().first_bad, None);
    store.close().await;
    direct.close().await;
}

/// A database that stops answering in the middle of a write (here: another session holds the
/// audit chain's lock and never lets go) fails the write within the operation timeout,
/// records nothing, and the store works again once the lock is released.
#[tokio::test]
async fn store_write_stuck_on_the_chain_lock_times_out_and_records_nothing() {
    use sqlx::Connection;
    for db in TestDatabase::all().await {
        let options = StoreOptions {
            max_connections: 2,
            acquire_timeout: Duration::from_secs(3),
            unreachable_timeout: Duration::from_millis(500),
            operation_timeout: Duration::from_secs(2),
        };
        let store = Store::open_with(&db.url, options).await.unwrap();
        store
            .record_audit(&AuditEvent::now("refused", "x", "r0", json!({})))
            .await
            .unwrap();

        let mut blocker = sqlx::AnyConnection::connect(&db.url).await.unwrap();
        let lock = match db.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        sqlx::raw_sql(lock).execute(&mut blocker).await.unwrap();
        sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
            .execute(&mut blocker)
            .await
            .unwrap();

        let started = Instant::now();
        let serial = random_serial();
        let result = store
            .record_issuance(
                &token("t1", 1),
                &[certificate(&serial, "t1", "CN=Stuck", "authentication")],
                &issued("t1", &[&serial]),
            )
            .await;
        let took = started.elapsed();
        println!(
            "{:?}: stuck write failed after {took:?}: {result:?}",
            db.backend
        );
        assert!(result.is_err(), "{:?}: the write must fail", db.backend);
        assert!(
            took < Duration::from_secs(4),
            "{:?}: took {took:?}",
            db.backend
        );

        sqlx::raw_sql("ROLLBACK")
            .execute(&mut blocker)
            .await
            .unwrap();
        blocker.close().await.unwrap();
        // Nothing of the failed write; the next one goes through and the chain is intact.
        let mut recovered = false;
        for _ in 0..50 {
            let serial = random_serial();
            let certs = [certificate(&serial, "t2", "CN=After", "authentication")];
            if store
                .record_issuance(&token("t2", 2), &certs, &issued("t2", &[&serial]))
                .await
                .is_ok()
            {
                recovered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(recovered, "{:?}: writes did not work again", db.backend);
        assert!(
            store.certificate(&ser(&serial)).await.unwrap().is_none(),
            "{:?}: the stuck write was recorded",
            db.backend
        );
        assert_eq!(store.count_tokens().await.unwrap(), 1, "{:?}", db.backend);
        let v = store.verify_audit().await.unwrap();
        assert_eq!((v.rows, v.first_bad), (2, None), "{:?}", db.backend);
        store.close().await;
    }
}

/// `/readyz` on a busy node: every pooled connection is waiting on the chain lock, yet the
/// readiness check answers at once (it does not queue behind the requests).
#[tokio::test]
async fn store_ping_answers_while_every_connection_is_busy() {
    use sqlx::Connection;
    for db in TestDatabase::all().await {
        let options = StoreOptions {
            acquire_timeout: Duration::from_secs(3),
            operation_timeout: Duration::from_secs(30),
            ..StoreOptions::new(2)
        };
        let store = Store::open_with(&db.url, options).await.unwrap();
        let mut blocker = sqlx::AnyConnection::connect(&db.url).await.unwrap();
        let lock = match db.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        sqlx::raw_sql(lock).execute(&mut blocker).await.unwrap();
        sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
            .execute(&mut blocker)
            .await
            .unwrap();
        // Two writers take both pooled connections and wait for the lock.
        let writers: Vec<_> = (0..2)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .record_audit(&AuditEvent::now(
                            "refused",
                            "x",
                            &format!("w{i}"),
                            json!({}),
                        ))
                        .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        let ping = store.ping().await;
        let took = started.elapsed();
        println!(
            "{:?}: ping with every connection busy: {ping:?} after {took:?}",
            db.backend
        );
        assert!(ping.is_ok(), "{:?}: {ping:?}", db.backend);
        assert!(
            took < Duration::from_secs(2),
            "{:?}: ping queued behind the writers ({took:?})",
            db.backend
        );
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut blocker)
            .await
            .unwrap();
        blocker.close().await.unwrap();
        for writer in writers {
            let result = writer.await.unwrap();
            // SQLite's own busy timeout (5 s) may give up first; PostgreSQL waits for the lock.
            if db.backend == Backend::Postgres {
                assert!(result.is_ok(), "{result:?}");
            }
        }
        assert_eq!(store.verify_audit().await.unwrap().first_bad, None);
        store.close().await;
    }
}
