//! `audit verify` checks every column the CRL, OCSP and the API read, not only the status: a
//! database-only attacker who edits notAfter, the CA, the revocation time or the status to an
//! unexpected value (each of which drops a revoked certificate from the next CRL), widens an
//! officer's roles, or appends rows above the recorded head is reported. SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ast_gateway::ca::RevocationReason;
use ast_gateway::identity::Caller;
use ast_gateway::store::{AuditEvent, OfficerRecord, OfficerStatus};
use serde_json::{Value, json};

use crate::kit::databases::TestDatabase;
use crate::kit::ser;
use crate::operations::audit::{LOOPBACK, cli_verify, gateway, issue, kinds, sql};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_of_any_column_the_crl_or_the_api_read_are_reported() {
    for db in TestDatabase::all().await {
        let b = db.backend;
        let gw = gateway(&db, LOOPBACK).await;
        let store = gw.gateway.store();
        let mut revoked = Vec::new();
        for name in ["Fay One", "Fay Two", "Fay Three", "Fay Four"] {
            let serial = issue(&gw, name).await[0].clone();
            gw.gateway
                .revoke(
                    &ser(&serial),
                    RevocationReason::KeyCompromise,
                    &Caller::Cli,
                    "r",
                )
                .await
                .unwrap();
            revoked.push(serial);
        }
        let officer = OfficerRecord {
            serial: "0a0b0c".into(),
            issuer: "CN=Officers".into(),
            fingerprint: "00".repeat(32),
            name: "Olle Reader".into(),
            roles: vec!["api-read".into()],
            status: OfficerStatus::Active,
            created: 1_700_000_000,
            revoked: None,
            ca: "officers".into(),
            not_after: 4_000_000_000,
        };
        let event = AuditEvent::now("officer-issued", "cli", "", json!({"name": officer.name}));
        store.register_officer(&officer, &event).await.unwrap();
        let crl = gw.get("/pgwy/crl/issuing.crl").await;
        assert_eq!(crl.status(), 200);
        let v = store.verify_audit().await.unwrap();
        assert!(v.is_intact(), "{b:?}: {v:?}");
        assert_eq!(v.officers_checked, 1);

        // The attacker: plain SQL, no key.
        let pool = sql(&db).await;
        let edits = [
            (
                "UPDATE certificates SET not_after = 1000 WHERE serial = $1",
                &revoked[0],
            ),
            (
                "UPDATE certificates SET status = 'gone' WHERE serial = $1",
                &revoked[1],
            ),
            (
                "UPDATE certificates SET ca = 'other' WHERE serial = $1",
                &revoked[2],
            ),
            (
                "UPDATE certificates SET revoked_at = revoked_at + 86400000 WHERE serial = $1",
                &revoked[3],
            ),
        ];
        for (statement, serial) in edits {
            let n = sqlx::query(statement)
                .bind(serial)
                .execute(&pool)
                .await
                .unwrap();
            assert_eq!(n.rows_affected(), 1, "{statement}");
        }
        sqlx::query(
            "UPDATE officers SET roles = '[\"api-read\",\"api-revoke\"]' WHERE serial = '0a0b0c'",
        )
        .execute(&pool)
        .await
        .unwrap();
        // A row appended above the head, outside the chain.
        sqlx::query(
            "INSERT INTO audit (seq, at, event, actor, request_id, detail, prev_hash, hash) \
             SELECT seq + 1, 0, 'revoked', 'cli', '', '{}', hash, hash FROM audit_head WHERE id = 1",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;

        let v = store.verify_audit().await.unwrap();
        assert_eq!(v.first_bad, None, "{b:?}: {v:?}");
        let mut found = kinds(&v);
        found.sort();
        assert_eq!(
            found,
            [
                "beyond-head",
                "field-mismatch",
                "field-mismatch",
                "field-mismatch",
                "roles-mismatch",
                "unexpected-status"
            ],
            "{b:?}: {v:#?}"
        );
        let about = |serial: &str| {
            v.problems
                .iter()
                .find(|p| p.serial.as_deref() == Some(serial))
                .unwrap_or_else(|| panic!("{b:?}: nothing about {serial}: {v:#?}"))
        };
        assert!(
            about(&revoked[0]).message.contains("not_after is 1000"),
            "{:?}",
            about(&revoked[0])
        );
        assert_eq!(about(&revoked[1]).kind, "unexpected-status");
        assert!(about(&revoked[1]).message.contains("`gone`"));
        assert!(
            about(&revoked[2])
                .message
                .contains("ca is `other`, the chain says `issuing`")
        );
        assert!(about(&revoked[3]).message.contains("revoked_at is"));
        assert!(about("0a0b0c").message.contains("api-revoke"));
        let out = cli_verify(&gw, true);
        assert!(!out.status.success(), "{b:?}");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["problemCount"], 6, "{report}");
    }
}

/// A refusal flood from a new source address per request (all of 127.0.0.0/8 is this host):
/// rows are capped per minute, the rest is counted in one overflow row, and every refusal is
/// accounted for (rows + counts = requests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_fresh_addresses_is_bounded_in_rows_and_fully_counted() {
    const REQUESTS: usize = 1500;
    let db = TestDatabase::sqlite();
    let gw = gateway(&db, "proxies = [\"192.0.2.0/24\"]").await;
    let store = gw.gateway.store().clone();
    let before = store.count_audit().await.unwrap();
    let url = format!("{}/pgwy/ast", gw.base);
    let mut tasks = Vec::new();
    for worker in 0..8usize {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            for i in (worker..REQUESTS).step_by(8) {
                let source = std::net::Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8);
                let http = reqwest::Client::builder()
                    .no_proxy()
                    .local_address(std::net::IpAddr::V4(source))
                    .build()
                    .unwrap();
                let r = http
                    .post(&url)
                    .header("commonname", "Mallory")
                    .form(&[("password", "Str0ng-Pass!")])
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_client_error(), "{}", r.status());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    store.flush_refusals().await.unwrap();
    let rows = store.count_audit().await.unwrap() - before;
    let pool = sql(&db).await;
    let details: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM audit WHERE event = 'refused-aggregate'")
            .fetch_all(&pool)
            .await
            .unwrap();
    let single: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit WHERE event = 'refused'")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    let counted: u64 = details
        .iter()
        .map(|d| {
            serde_json::from_str::<Value>(d).unwrap()["count"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(
        single as u64 + counted,
        REQUESTS as u64,
        "every refusal is counted"
    );
    // At most the cap per minute in full (two minutes if the flood crossed one), plus the
    // overflow rows.
    let cap = ast_gateway::store::REFUSAL_ROWS_PER_MINUTE as i64;
    assert!(rows <= 2 * cap + 4, "{rows} rows for {REQUESTS} refusals");
    assert!(
        details.iter().any(|d| d.contains("\"overflow\":true")),
        "no overflow row: {details:?}"
    );
}
