//! The audit trail against a database-only attacker, on SQLite and PostgreSQL: a real gateway
//! writes the trail, the test then edits the database directly as an attacker with SQL access
//! (but without `data/secret.key` or `data/audit-anchors.log`) would, and `audit verify` (the
//! library call and the real CLI) must notice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;

use ast_gateway::ca::RevocationReason;
use ast_gateway::store::{AuditEvent, AuditVerification, PATH_LIMIT, Store};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Row};

use crate::kit::databases::TestDatabase;
use crate::kit::{ALICE, Anchored, TestGateway, client, ser};

const PIN: &str = "Str0ng-Pass!";

/// A gateway on `db` (EC keys, no RSA pool: fast in a debug build), with `proxies` trusted.
pub(crate) async fn gateway(db: &TestDatabase, proxies: &str) -> TestGateway {
    let url = db.url.clone();
    let proxies = proxies.to_string();
    TestGateway::start_with(move |root| {
        let path = root.gateway_toml();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text
            .replacing(
                "url = \"sqlite://data/ast-gateway.db\"",
                &format!("url = \"{url}\""),
            )
            .replacing("key = \"rsa-2048\"", "key = \"ec-p256\"")
            .replacing("rsa-2048 = 32", "rsa-2048 = 0")
            .replacing("proxies = [\"127.0.0.1/32\", \"::1/128\"]", &proxies);
        std::fs::write(path, text).unwrap();
    })
    .await
}

pub(crate) const LOOPBACK: &str = "proxies = [\"127.0.0.1/32\", \"::1/128\"]";

/// Issues a token for `cn` over HTTP and returns its certificate serials.
pub(crate) async fn issue(gw: &TestGateway, cn: &str) -> Vec<String> {
    let mut headers = ALICE.to_vec();
    headers[0] = ("commonname", cn);
    let response = gw.post("", &headers, &[("password", PIN)]).await;
    assert_eq!(
        response.status(),
        200,
        "issuance failed: {:?}",
        response.headers().get("x-ast-error")
    );
    let certs = gw
        .gateway
        .store()
        .certificates(&Default::default())
        .await
        .unwrap();
    let subject_cn = format!("CN={cn}");
    certs
        .into_iter()
        .filter(|c| c.subject.contains(&subject_cn))
        .map(|c| c.serial.to_string())
        .collect()
}

/// `ast-gateway audit verify [--json]` on the gateway's root.
pub(crate) fn cli_verify(gw: &TestGateway, json: bool) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ast-gateway"));
    command
        .arg("--root")
        .arg(gw.root.path())
        .args(["audit", "verify"]);
    if json {
        command.arg("--json");
    }
    command.output().unwrap()
}

pub(crate) fn stdout(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The attacker's connection: plain SQL, no key.
pub(crate) async fn sql(db: &TestDatabase) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPool::connect(&db.url).await.unwrap()
}

/// The unkeyed SHA-256 chain, as anyone reading the schema can reimplement it.
fn sha256_chain(prev: &str, seq: i64, at: i64, fields: [&str; 4]) -> String {
    let mut h = Sha256::new();
    let (seq, at) = (seq.to_string(), at.to_string());
    for part in [prev, &seq, &at, fields[0], fields[1], fields[2], fields[3]] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Recomputes `prev_hash`/`hash` of every row and the head, as an attacker who changed rows
/// would. `strip_macs` also clears the MAC column (pretending the rows are legacy rows).
async fn recompute_chain(pool: &AnyPool, strip_macs: bool) {
    let rows =
        sqlx::query("SELECT seq, at, event, actor, request_id, detail FROM audit ORDER BY seq")
            .fetch_all(pool)
            .await
            .unwrap();
    let mut prev = "0".repeat(64);
    for row in &rows {
        let seq: i64 = row.get(0);
        let at: i64 = row.get(1);
        let fields: [String; 4] = [row.get(2), row.get(3), row.get(4), row.get(5)];
        let hash = sha256_chain(
            &prev,
            seq,
            at,
            [&fields[0], &fields[1], &fields[2], &fields[3]],
        );
        sqlx::query("UPDATE audit SET prev_hash = $1, hash = $2 WHERE seq = $3")
            .bind(&prev)
            .bind(&hash)
            .bind(seq)
            .execute(pool)
            .await
            .unwrap();
        prev = hash;
    }
    if strip_macs {
        sqlx::query("UPDATE audit SET mac = NULL")
            .execute(pool)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&prev)
        .execute(pool)
        .await
        .unwrap();
}

pub(crate) fn kinds(v: &AuditVerification) -> Vec<&str> {
    v.problems.iter().map(|p| p.kind.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewritten_rows_with_a_recomputed_sha256_chain_are_detected() {
    for db in TestDatabase::all().await {
        let b = db.backend;
        let gw = gateway(&db, LOOPBACK).await;
        issue(&gw, "Alice One").await;
        issue(&gw, "Alice Two").await;
        let store = gw.gateway.store();
        let clean = store.verify_audit().await.unwrap();
        assert!(clean.is_intact(), "{b:?}: {clean:?}");
        assert!(clean.macs_checked && clean.keyed_rows == 2 && clean.legacy_rows == 0);
        assert!(cli_verify(&gw, false).status.success(), "{b:?}");

        // Rewrite who asked for the first token and recompute the SHA-256 chain: the old
        // verification passed this; the MAC does not.
        let pool = sql(&db).await;
        sqlx::query("UPDATE audit SET actor = 'peer:10.6.6.6' WHERE seq = 1")
            .execute(&pool)
            .await
            .unwrap();
        recompute_chain(&pool, false).await;
        let v = store.verify_audit().await.unwrap();
        assert_eq!(v.first_bad, Some(1), "{b:?}: {v:?}");
        assert_eq!(kinds(&v), ["mac-mismatch"], "{b:?}");
        let out = cli_verify(&gw, false);
        assert!(!out.status.success(), "{b:?}");
        assert!(stdout(&out).contains("BROKEN at row 1"), "{}", stdout(&out));
        assert!(stdout(&out).contains("PROBLEM [mac-mismatch]"));
        pool.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_downgraded_to_legacy_rows_is_caught_by_the_anchor() {
    for db in TestDatabase::all().await {
        let b = db.backend;
        let gw = gateway(&db, LOOPBACK).await;
        issue(&gw, "Bob One").await;
        issue(&gw, "Bob Two").await;
        let store = gw.gateway.store();
        let anchor = store
            .anchor_audit_head("checkpoint")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(anchor.seq, 2, "{b:?}");
        // The head did not move: no second anchor.
        assert!(
            store
                .anchor_audit_head("checkpoint")
                .await
                .unwrap()
                .is_none()
        );

        // Rewrite a row, recompute the SHA-256 chain and drop every MAC, so that the trail
        // looks like one written before the keyed chain existed.
        let pool = sql(&db).await;
        sqlx::query("UPDATE audit SET actor = 'peer:10.6.6.6' WHERE seq = 1")
            .execute(&pool)
            .await
            .unwrap();
        recompute_chain(&pool, true).await;
        pool.close().await;
        let v = store.verify_audit().await.unwrap();
        assert_eq!(v.first_bad, Some(2), "{b:?}: {v:?}");
        assert_eq!(kinds(&v), ["anchor-mismatch"], "{b:?}");
        assert!(!cli_verify(&gw, false).status.success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_tail_and_rewinding_the_head_is_reported_as_truncation() {
    for db in TestDatabase::all().await {
        let b = db.backend;
        let gw = gateway(&db, LOOPBACK).await;
        issue(&gw, "Carol One").await;
        // A CRL anchors the head (the crl-issued row, seq 2).
        let crl = gw.get("/pgwy/crl/issuing.crl").await;
        assert_eq!(crl.status(), 200);
        let hidden = issue(&gw, "Carol Two").await;
        issue(&gw, "Carol Three").await;
        let store = gw.gateway.store();
        let checkpoint = store
            .anchor_audit_head("checkpoint")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(checkpoint.seq, 4, "{b:?}");
        let anchors = std::fs::read_to_string(gw.root().audit_anchors()).unwrap();
        assert_eq!(anchors.lines().count(), 2, "{anchors}");
        assert!(
            anchors.contains("\"reason\":\"crl:issuing:1\""),
            "{anchors}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(gw.root().audit_anchors())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(store.verify_audit().await.unwrap().is_intact());

        // The attacker removes the last two issuances everywhere in the database: audit rows,
        // head, certificates, tokens, and the database's own anchors.
        let pool = sql(&db).await;
        let head2: String = sqlx::query("SELECT hash FROM audit WHERE seq = 2")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
        for statement in [
            "DELETE FROM audit WHERE seq > 2",
            "DELETE FROM audit_anchor",
        ] {
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
        let tokens: Vec<String> = sqlx::query(
            "SELECT DISTINCT token_id FROM certificates WHERE subject LIKE '%Carol T%'",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
        assert_eq!(tokens.len(), 2, "{b:?}");
        for t in &tokens {
            sqlx::query("DELETE FROM certificates WHERE token_id = $1")
                .bind(t)
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query("DELETE FROM tokens WHERE id = $1")
                .bind(t)
                .execute(&pool)
                .await
                .unwrap();
        }
        sqlx::query("UPDATE audit_head SET seq = 2, hash = $1 WHERE id = 1")
            .bind(&head2)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        assert!(store.certificate(&ser(&hidden[0])).await.unwrap().is_none());

        // What remains is a consistent, correctly MACed chain of two rows, but this node's
        // anchor file says seq 4 existed.
        let v = store.verify_audit().await.unwrap();
        assert_eq!(v.first_bad, None, "{b:?}: {v:?}");
        let truncated = v
            .truncated
            .clone()
            .unwrap_or_else(|| panic!("{b:?}: {v:?}"));
        assert_eq!(truncated.seq, 4);
        assert_eq!(truncated.source, "anchor file line 2");
        assert_eq!(kinds(&v), ["truncated"], "{b:?}");
        assert!(!v.is_intact());
        let out = cli_verify(&gw, false);
        assert!(!out.status.success(), "{b:?}");
        let text = stdout(&out);
        assert!(
            text.contains("TRUNCATED: the chain ends at seq 2 but anchor file line 2 says seq 4"),
            "{text}"
        );
        let out = cli_verify(&gw, true);
        assert!(!out.status.success());
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["truncated"]["seq"], 4, "{report}");
        assert_eq!(report["headSeq"], 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrevoking_a_certificate_in_sql_is_detected() {
    for db in TestDatabase::all().await {
        let b = db.backend;
        let gw = gateway(&db, LOOPBACK).await;
        let serials = issue(&gw, "Dave Victim").await;
        let victim = serials[0].clone();
        gw.gateway
            .revoke(
                &ser(&victim),
                RevocationReason::KeyCompromise,
                &Caller::Cli,
                "req-revoke",
            )
            .await
            .unwrap();
        assert!(gw.gateway.store().verify_audit().await.unwrap().is_intact());
        assert!(cli_verify(&gw, false).status.success());

        let pool = sql(&db).await;
        let changed = sqlx::query(
            "UPDATE certificates SET status = 'good', revoked_at = NULL, revocation_reason = NULL WHERE serial = $1",
        )
        .bind(&victim)
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
        assert_eq!(changed, 1);
        pool.close().await;

        let v = gw.gateway.store().verify_audit().await.unwrap();
        assert_eq!(v.first_bad, None, "{b:?}: {v:?}");
        assert_eq!(kinds(&v), ["status-mismatch"], "{b:?}");
        assert_eq!(v.problems[0].serial.as_deref(), Some(victim.as_str()));
        assert!(
            v.problems[0]
                .message
                .contains("the table says good, the chain says revoked (keyCompromise)"),
            "{}",
            v.problems[0].message
        );
        let out = cli_verify(&gw, true);
        assert!(!out.status.success(), "{b:?}");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["problems"][0]["kind"], "status-mismatch", "{report}");
        assert_eq!(report["problems"][0]["serial"], victim.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_revoke_reinstate_is_chained_and_verifies() {
    for db in TestDatabase::all().await {
        let b = db.backend;
        let gw = gateway(&db, LOOPBACK).await;
        let serials = issue(&gw, "Erin Hold").await;
        let s = serials[0].clone();
        let g = &gw.gateway;
        g.revoke(
            &ser(&s),
            RevocationReason::CertificateHold,
            &Caller::Cli,
            "r1",
        )
        .await
        .unwrap();
        g.reinstate(&ser(s.to_uppercase()), &Caller::Cli, "r2")
            .await
            .unwrap();
        g.revoke(&ser(&s), RevocationReason::Superseded, &Caller::Cli, "r3")
            .await
            .unwrap();
        assert_eq!(gw.get("/pgwy/crl/issuing.crl").await.status(), 200);

        let v = g.store().verify_audit().await.unwrap();
        assert!(v.is_intact(), "{b:?}: {v:?}");
        assert_eq!(v.certificates_checked, serials.len() as i64);
        assert_eq!((v.keyed_rows, v.legacy_rows), (5, 0), "{b:?}");
        assert_eq!(v.database_anchors, 1);
        assert_eq!(v.file_anchors, 1);
        let out = cli_verify(&gw, false);
        assert!(out.status.success(), "{}", stdout(&out));
        assert!(
            stdout(&out).contains("audit trail intact: 5 rows"),
            "{}",
            stdout(&out)
        );

        // The status changes carry serial, new status and reason as written.
        let pool = sql(&db).await;
        let details: Vec<(String, Value)> =
            sqlx::query("SELECT event, detail FROM audit ORDER BY seq")
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r.get(0),
                        serde_json::from_str(&r.get::<String, _>(1)).unwrap(),
                    )
                })
                .collect();
        pool.close().await;
        let changes: Vec<(&str, &Value, &Value, &Value)> = details
            .iter()
            .filter(|(e, _)| e == "revoked" || e == "reinstated")
            .map(|(e, d)| (e.as_str(), &d["serial"], &d["status"], &d["reason"]))
            .collect();
        assert_eq!(
            changes,
            [
                (
                    "revoked",
                    &json!(s),
                    &json!("revoked"),
                    &json!("certificateHold")
                ),
                ("reinstated", &json!(s), &json!("good"), &Value::Null),
                (
                    "revoked",
                    &json!(s),
                    &json!("revoked"),
                    &json!("superseded")
                ),
            ],
            "{b:?}"
        );
        let mut listed: Vec<String> =
            serde_json::from_value(details[0].1["serials"].clone()).unwrap();
        let mut expected = serials.clone();
        listed.sort();
        expected.sort();
        assert_eq!(listed, expected, "{b:?}: the issued row lists the serials");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_rows_before_the_keyed_chain_verify_and_unkeyed_rows_after_it_do_not() {
    for db in TestDatabase::all().await {
        let b = db.backend;
        // Rows from before the keyed chain (a store without the key, as before migration 0004).
        let legacy = Store::open(&db.url, 2).await.unwrap();
        for i in 0..2 {
            legacy
                .record_audit(&AuditEvent::now("note", "cli", "", json!({"i": i})))
                .await
                .unwrap();
        }
        legacy.close().await;
        let gw = gateway(&db, LOOPBACK).await;
        issue(&gw, "Frank Later").await;
        let v = gw.gateway.store().verify_audit().await.unwrap();
        assert!(v.is_intact(), "{b:?}: {v:?}");
        assert_eq!((v.legacy_rows, v.keyed_rows), (2, 1), "{b:?}");
        assert!(stdout(&cli_verify(&gw, false)).contains("1 keyed, 2 legacy"));

        // A row without a MAC after keyed rows: written by someone without the key.
        let forger = Store::open(&db.url, 2).await.unwrap();
        forger
            .record_audit(&AuditEvent::now("note", "cli", "", json!({"forged": true})))
            .await
            .unwrap();
        forger.close().await;
        let v = gw.gateway.store().verify_audit().await.unwrap();
        assert_eq!(v.first_bad, Some(4), "{b:?}: {v:?}");
        assert_eq!(kinds(&v), ["unkeyed-row"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_flood_adds_a_handful_of_rows_with_bounded_paths() {
    const REQUESTS: usize = 2000;
    for db in TestDatabase::all().await {
        let b = db.backend;
        // 127.0.0.1 is not a trusted proxy here: every request is refused.
        let gw = gateway(&db, "proxies = [\"192.0.2.0/24\"]").await;
        let store = gw.gateway.store().clone();
        let before = store.count_audit().await.unwrap();
        let long_path = format!("/{}", "p".repeat(4096));
        let url = format!("{}/pgwy/ast{long_path}", gw.base);
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (url, http) = (url.clone(), client());
            tasks.push(tokio::spawn(async move {
                let mut codes = Vec::new();
                for _ in 0..REQUESTS / 16 {
                    let r = http
                        .post(&url)
                        .header("commonname", "Mallory")
                        .form(&[("password", PIN)])
                        .send()
                        .await
                        .unwrap();
                    codes.push((
                        r.status().as_u16(),
                        r.headers()["x-ast-error"].to_str().unwrap().to_string(),
                    ));
                }
                codes
            }));
        }
        let mut statuses = std::collections::BTreeSet::new();
        for t in tasks {
            statuses.extend(t.await.unwrap());
        }
        assert!(
            statuses.iter().all(|(s, _)| *s >= 400 && *s < 500),
            "{statuses:?}"
        );
        // The first refusal of each kind is stored at once.
        let immediate = store.count_audit().await.unwrap() - before;
        assert!(
            (1..=4).contains(&immediate),
            "{b:?}: {immediate} rows right after the flood"
        );
        store.flush_refusals().await.unwrap();
        let added = store.count_audit().await.unwrap() - before;
        // One first row + one aggregate per (code, minute); the flood may straddle a minute.
        assert!(
            added <= 2 * 2 * statuses.len() as i64,
            "{b:?}: {added} rows for {REQUESTS} refusals"
        );
        assert!(added >= 2, "{b:?}: the counted refusals were not written");

        let pool = sql(&db).await;
        let rows = sqlx::query("SELECT event, detail FROM audit WHERE seq > $1 ORDER BY seq")
            .bind(before)
            .fetch_all(&pool)
            .await
            .unwrap();
        let mut accounted = 0u64;
        for row in &rows {
            let event: String = row.get(0);
            let detail: Value = serde_json::from_str(&row.get::<String, _>(1)).unwrap();
            let path = match event.as_str() {
                "refused" => {
                    accounted += 1;
                    &detail["path"]
                }
                "refused-aggregate" => {
                    accounted += detail["count"].as_u64().unwrap();
                    &detail["last"]["path"]
                }
                other => panic!("unexpected {other}"),
            };
            let path = path.as_str().unwrap();
            assert!(path.contains("…[truncated, 4096 chars]"), "{path}");
            assert!(path.chars().count() <= PATH_LIMIT + 30, "{}", path.len());
        }
        let longest: i64 = sqlx::query("SELECT MAX(LENGTH(detail)) FROM audit")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
        pool.close().await;
        // An aggregate row lists at most 64 request ids (36 characters each) besides its counts.
        assert!(longest < 4096, "{b:?}: a {longest}-byte detail was stored");
        assert_eq!(
            accounted, REQUESTS as u64,
            "{b:?}: every refusal is counted"
        );
        assert!(store.verify_audit().await.unwrap().is_intact());
    }
}

use ast_gateway::identity::Caller;
