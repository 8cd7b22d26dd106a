//! Group commit against a real SQLite file: batching, collisions, backpressure, durability.

use super::*;
use crate::store::{CertificateStatus, StoreOptions};
use serde_json::json;
use sqlx::Connection;
use std::time::Instant;

fn record(id: &str, serial: &str) -> IssuanceRecord {
    IssuanceRecord {
        token: TokenRecord {
            id: id.into(),
            created_at: 1,
            handler: "handler.1".into(),
            token_procedure: "default".into(),
            caller: "proxy:127.0.0.1".into(),
            request_id: id.into(),
            profile: "modern".into(),
        },
        certificates: vec![CertificateRecord {
            serial: crate::ca::Serial::parse(serial).unwrap(),
            ca: "issuing".into(),
            issuer: "CN=Issuing".into(),
            subject: format!("CN={id}"),
            sans: vec![],
            not_before: 1,
            not_after: 2,
            purpose: "authentication".into(),
            token_id: id.into(),
            status: CertificateStatus::Good,
            revoked_at: None,
            revocation_reason: None,
            der: vec![0x30, 0x00],
        }],
        event: AuditEvent::now("issued", "proxy:127.0.0.1", id, json!({"token": id})),
    }
}

async fn sqlite(dir: &tempfile::TempDir, writer: WriterOptions) -> (Store, String) {
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
    let store = Store::open_tuned(&url, StoreOptions::new(4), writer)
        .await
        .unwrap();
    (store, url)
}

/// Holds SQLite's write lock from a second connection, so the writer's first batch waits
/// and everything submitted meanwhile queues up: the next batch must take it all at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuances_queued_during_a_commit_go_into_one_batch_and_each_gets_its_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (store, url) = sqlite(&dir, WriterOptions::default()).await;
    let mut blocker = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.spawn(async move {
            let slot = store.reserve_write().unwrap();
            slot.record(record(&format!("t{i}"), &format!("{i:040x}")))
                .await
                .map(|()| i)
        });
    }
    // All 20 are queued (the first one is in the blocked batch, 19 wait behind it).
    let deadline = Instant::now() + Duration::from_secs(10);
    let waiting = |s: WriterStats| s.queued + s.in_flight;
    while waiting(store.writer_stats()) < 20 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        waiting(store.writer_stats()),
        20,
        "{:?}",
        store.writer_stats()
    );
    sqlx::raw_sql("COMMIT").execute(&mut blocker).await.unwrap();
    let mut answered = Vec::new();
    while let Some(done) = tasks.join_next().await {
        answered.push(done.unwrap().unwrap());
    }
    answered.sort();
    assert_eq!(answered, (0..20).collect::<Vec<_>>());
    let stats = store.writer_stats();
    assert_eq!(stats.written, 20, "{stats:?}");
    assert!(stats.largest_batch >= 2, "{stats:?}");
    assert!(stats.batches < 20, "{stats:?}");
    assert_eq!(store.count_tokens().await.unwrap(), 20);
    assert_eq!(store.count_certificates().await.unwrap(), 20);
    let verification = store.verify_audit().await.unwrap();
    assert_eq!((verification.rows, verification.first_bad), (20, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_serial_fails_only_its_own_issuance() {
    let dir = tempfile::tempdir().unwrap();
    let (store, url) = sqlite(&dir, WriterOptions::default()).await;
    store
        .reserve_write()
        .unwrap()
        .record(record("first", "aa"))
        .await
        .unwrap();
    let mut blocker = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();
    // One issuance in flight (blocked), then three queued together; the middle one reuses
    // the serial already recorded.
    let submit = |id: &'static str, serial: &'static str| {
        let slot = store.reserve_write().unwrap();
        tokio::spawn(async move { slot.record(record(id, serial)).await })
    };
    let head = submit("head", "01");
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.writer_stats().in_flight < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let a = submit("a", "02");
    let b = submit("b", "aa");
    let c = submit("c", "03");
    while store.writer_stats().queued < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sqlx::raw_sql("COMMIT").execute(&mut blocker).await.unwrap();
    head.await.unwrap().unwrap();
    a.await.unwrap().unwrap();
    c.await.unwrap().unwrap();
    let collided = b.await.unwrap();
    assert!(
        matches!(&collided, Err(StoreError::DuplicateSerial(s)) if s == "aa"),
        "{collided:?}"
    );
    assert_eq!(store.count_tokens().await.unwrap(), 4);
    assert_eq!(store.count_certificates().await.unwrap(), 4);
    let verification = store.verify_audit().await.unwrap();
    assert_eq!((verification.rows, verification.first_bad), (4, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_audit_events_do_not_wait_for_a_locked_database() {
    let dir = tempfile::tempdir().unwrap();
    let (store, url) = sqlite(&dir, WriterOptions::default()).await;
    let mut blocker = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();
    // A direct write would wait for the lock (and fail after SQLite's busy timeout).
    for i in 0..5 {
        let event = AuditEvent::now("refused", "peer:192.0.2.1", &format!("r{i}"), json!({}));
        store.record_audit_soon(event).await.unwrap();
    }
    assert_eq!(store.count_audit().await.unwrap(), 0);
    // Still queued while the database is locked: draining (as at shutdown) says so.
    assert!(!store.drain_audit_queue(Duration::from_millis(50)).await);
    sqlx::raw_sql("COMMIT").execute(&mut blocker).await.unwrap();
    assert!(store.drain_audit_queue(Duration::from_secs(10)).await);
    assert_eq!(store.count_audit().await.unwrap(), 5);
    let verification = store.verify_audit().await.unwrap();
    assert_eq!((verification.rows, verification.first_bad), (5, None));
}

#[tokio::test]
async fn a_full_queue_is_refused_at_once_and_a_dropped_slot_frees_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let options = WriterOptions {
        queue: 2,
        batch: 8,
        delay: Duration::ZERO,
        retry_after: Duration::from_secs(3),
    };
    let (store, _) = sqlite(&dir, options).await;
    let first = store.reserve_write().unwrap();
    let second = store.reserve_write().unwrap();
    let refused = store.reserve_write().unwrap_err();
    assert!(
        matches!(refused, StoreError::QueueFull { retry_after } if retry_after == Duration::from_secs(3)),
        "{refused:?}"
    );
    assert_eq!(store.writer_stats().refused, 1);
    drop(first);
    second.record(record("t", "0b")).await.unwrap();
    store
        .reserve_write()
        .unwrap()
        .record(record("u", "0c"))
        .await
        .unwrap();
    assert_eq!(store.count_tokens().await.unwrap(), 2);
}

#[tokio::test]
async fn sqlite_commits_with_synchronous_full() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = sqlite(&dir, WriterOptions::default()).await;
    let mut connection = store.connection().await.unwrap();
    let row = sqlx::query("PRAGMA synchronous")
        .fetch_one(&mut *connection)
        .await
        .unwrap();
    // 2 = FULL: every commit (every batch) is fsynced before a waiter is answered.
    assert_eq!(sqlx::Row::try_get::<i64, _>(&row, 0).unwrap(), 2);
}

/// While tokens that hold a place in the queue are still being made, the writer waits for them
/// (up to `delay`) so that one commit serves them all: three issuances whose places were taken
/// together, recorded one after the other, are committed in one batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_waits_for_tokens_still_being_made() {
    let dir = tempfile::tempdir().unwrap();
    let options = WriterOptions {
        delay: Duration::from_secs(30),
        ..WriterOptions::default()
    };
    let (store, _) = sqlite(&dir, options).await;
    let slots: Vec<WriteSlot> = (0..3).map(|_| store.reserve_write().unwrap()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, slot) in slots.into_iter().enumerate() {
        tasks.spawn(async move {
            slot.record(record(&format!("t{i}"), &format!("{i:040x}")))
                .await
        });
        // The next token is still "being made".
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    let stats = store.writer_stats();
    assert_eq!(
        (stats.batches, stats.largest_batch, stats.written),
        (1, 3, 3),
        "{stats:?}"
    );
}

/// A lone issuance (nothing else being made) is committed at once, not after the delay.
#[tokio::test]
async fn a_lone_issuance_does_not_wait_for_the_delay() {
    let dir = tempfile::tempdir().unwrap();
    let options = WriterOptions {
        delay: Duration::from_secs(3600),
        ..WriterOptions::default()
    };
    let (store, _) = sqlite(&dir, options).await;
    let slot = store.reserve_write().unwrap();
    // An hour of delay would outlast this bound; a commit at once takes milliseconds.
    tokio::time::timeout(
        Duration::from_secs(120),
        slot.record(record("t0", &format!("{:040x}", 1))),
    )
    .await
    .expect("the lone issuance waited for the delay")
    .unwrap();
    assert_eq!(store.writer_stats().written, 1);
}
