//! The audit upkeep of the real `serve`: anchors in `data/audit-anchors.log` at start, every
//! `[audit] anchor_interval_secs` and at stop (SIGTERM); refusal counts written at stop, so every
//! refusal is in the database; and a database-only deletion of the newest rows of a node that
//! died without stopping (SIGKILL) is reported by `audit verify` as truncated, from the anchor
//! file the database cannot touch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::Row;

use crate::kit::{Anchored, Serve, ast, client, skipped, tool};

pub(crate) fn output(root: &Path, args: &[&str]) -> Output {
    ast(root).args(args).stdin(Stdio::null()).output().unwrap()
}

/// POSTs the form to a running `serve`; returns (status, request id).
async fn post(serve: &Serve, cn: &str, password: &str) -> (u16, String) {
    let response = client()
        .post(serve.url("/pgwy/ast"))
        .header("commonname", cn)
        .header("country", "SE")
        .form(&[("password", password)])
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    (response.status().as_u16(), id)
}

/// Sends `signal` and waits (at most 30 s) for the process to end.
fn stop(serve: &mut Serve, signal: &str) {
    serve.signal(signal);
    serve.wait_exit(Duration::from_secs(30));
}

/// The anchor file's lines as JSON.
fn anchors(root: &Path) -> Vec<Value> {
    std::fs::read_to_string(root.join("data/audit-anchors.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `audit export`: every row.
fn export(root: &Path) -> Vec<Value> {
    let out = output(root, &["audit", "export"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Waits (at most `within`) for an anchor with `reason` at or beyond `seq`. `reason` "any":
/// a checkpoint or a CRL's anchor (the CRLs `serve` signs at start are anchored too, and a
/// checkpoint is taken only when the head moved since the last anchor).
fn wait_for_anchor(root: &Path, reason: &str, seq: i64, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    let fits = |a: &Value| match reason {
        "any" => a["reason"] == "checkpoint" || a["reason"].as_str().unwrap().starts_with("crl:"),
        _ => a["reason"] == reason,
    };
    loop {
        if let Some(a) = anchors(root)
            .into_iter()
            .find(|a| fits(a) && a["seq"].as_i64().unwrap() >= seq)
        {
            return a;
        }
        assert!(
            Instant::now() < deadline,
            "no `{reason}` anchor at seq {seq} within {within:?}: {:#?}",
            anchors(root)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn head(root: &Path) -> i64 {
    export(root)
        .last()
        .map_or(0, |r| r["seq"].as_i64().unwrap())
}

pub(crate) fn init(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    let out = output(&root, &["init"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml = root.join("conf/gateway.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let text = text
        .replacing("# anchor_interval_secs = 60", "anchor_interval_secs = 1")
        .replacing("key = \"rsa-2048\"", "key = \"ec-p256\"")
        .replacing("rsa-2048 = 32", "rsa-2048 = 0");
    assert!(text.contains("\nanchor_interval_secs = 1"));
    std::fs::write(&toml, text).unwrap();
    root
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_anchors_at_start_every_interval_and_at_stop_and_keeps_every_refusal() {
    if tool("kill").is_none() {
        skipped("serve_anchors", "kill not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = init(dir.path());
    let mut serve = Serve::start(&root);
    let start = wait_for_anchor(&root, "startup", 1, Duration::from_secs(10));
    let (status, _) = post(&serve, "Upkeep One", "Str0ng-Pass!").await;
    assert_eq!(status, 200);
    let first = wait_for_anchor(&root, "any", head(&root), Duration::from_secs(20));
    assert!(first["seq"].as_i64() > start["seq"].as_i64());
    // Once the start's CRLs are anchored, a new row waits only for the next checkpoint.
    let (status, _) = post(&serve, "Upkeep Two", "Str0ng-Pass!").await;
    assert_eq!(status, 200);
    wait_for_anchor(&root, "checkpoint", head(&root), Duration::from_secs(20));

    // Ten refusals of one kind: the first has its row, nine are counted in memory.
    let mut refused = Vec::new();
    for _ in 0..10 {
        let (status, id) = post(&serve, "Upkeep Refused", "123").await;
        assert_eq!(status, 400);
        refused.push(id);
    }
    // Each is in the log at once (the counted ones as "refusal counted …"); the log is read
    // through a pipe, so give the reader a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    for id in &refused {
        while !serve.lines().iter().any(|l| l.contains(id.as_str())) {
            assert!(Instant::now() < deadline, "refusal {id} is not in the log");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let counted = serve
        .lines()
        .iter()
        .filter(|l| l.contains("refusal counted in this minute's aggregate"))
        .count();
    // Nine, or eight when a minute ended among them (its first refusal gets a row).
    assert!(counted >= 8, "{counted} counted refusals logged");
    stop(&mut serve, "-TERM");
    let rows = export(&root);
    let last = rows.last().unwrap();
    assert_eq!(last["event"], "service-stopped", "{last}");
    let stop = anchors(&root).pop().unwrap();
    assert_eq!(stop["reason"], "shutdown");
    assert_eq!(
        stop["seq"], last["seq"],
        "the stop anchor names the last row"
    );
    for id in &refused {
        let kept = rows.iter().any(|r| {
            r["requestId"] == id.as_str()
                || r["detail"]["requestIds"]
                    .as_array()
                    .is_some_and(|ids| ids.iter().any(|i| i == id.as_str()))
        });
        assert!(kept, "refusal {id} is not in the audit trail");
    }
    let counted: u64 = rows
        .iter()
        .filter(|r| r["event"] == "refused-aggregate")
        .map(|r| r["detail"]["count"].as_u64().unwrap())
        .sum();
    let single = rows.iter().filter(|r| r["event"] == "refused").count() as u64;
    assert_eq!(single + counted, 10, "every refusal is accounted for");
    let verified = output(&root, &["audit", "verify"]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );

    // The lag between a row and the first anchor naming it or a later row.
    let all = anchors(&root);
    let lag = rows
        .iter()
        .map(|r| {
            let seq = r["seq"].as_i64().unwrap();
            let at = time::OffsetDateTime::parse(
                r["at"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap();
            let at = (at.unix_timestamp_nanos() / 1_000_000) as i64;
            let covered = all.iter().filter(|a| a["seq"].as_i64().unwrap() >= seq);
            covered
                .map(|a| a["at"].as_i64().unwrap() - at)
                .min()
                .unwrap()
        })
        .max()
        .unwrap();
    println!("measured: anchor_interval_secs = 1, longest wait of a row for its anchor {lag} ms");
    assert!(lag < 2500, "{lag} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_newest_rows_of_a_killed_node_is_reported_as_truncated() {
    if tool("kill").is_none() {
        skipped("deleting_the_newest_rows", "kill not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = init(dir.path());
    let mut serve = Serve::start(&root);
    wait_for_anchor(&root, "startup", 1, Duration::from_secs(10));
    assert_eq!(post(&serve, "Kept Karl", "Str0ng-Pass!").await.0, 200);
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for cn in ["Gone One", "Gone Two", "Gone Three"] {
        assert_eq!(post(&serve, cn, "Str0ng-Pass!").await.0, 200);
    }
    let newest = head(&root);
    wait_for_anchor(&root, "any", newest, Duration::from_secs(20));
    // Dies without a stop anchor.
    stop(&mut serve, "-KILL");

    // The attacker deletes every row of the last five minutes newer than `since` (the last
    // three issuances: audit rows, certificates, tokens, the database's anchors) and rewinds
    // the head to a consistent, correctly MACed prefix.
    let url = format!("sqlite://{}", root.join("data/ast-gateway.db").display());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let cutoff = since;
    let gone = sqlx::query("DELETE FROM audit WHERE at >= $1")
        .bind(cutoff)
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
    assert!(gone >= 3, "{gone}");
    let kept = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let (seq, hash): (i64, String) = (kept.get(0), kept.get(1));
    let tokens = "SELECT id FROM tokens WHERE created_at >= $1";
    for statement in [
        format!("DELETE FROM certificates WHERE token_id IN ({tokens})"),
        format!("DELETE FROM tokens WHERE id IN ({tokens})"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(cutoff / 1000)
            .execute(&pool)
            .await
            .unwrap();
    }
    sqlx::query("DELETE FROM audit_anchor WHERE seq > $1")
        .bind(seq)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(&hash)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let out = output(&root, &["audit", "verify", "--json"]);
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["headSeq"], seq, "{report}");
    assert!(
        report["truncated"]["seq"].as_i64().unwrap() >= newest,
        "{report}"
    );
    assert_ne!(report["truncated"]["reason"], "startup", "{report}");
    assert!(
        report["truncated"]["source"]
            .as_str()
            .unwrap()
            .starts_with("anchor file line"),
        "{report}"
    );
}
