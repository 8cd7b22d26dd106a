//! The tamper-evident audit trail: each row's hash covers the previous row's hash.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Any, AnyPool, Row, Transaction};

use super::StoreError;

/// One audit event. `detail` is JSON without secrets (no PIN, no key, no header values beyond
/// what identifies the request).
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    /// Unix milliseconds.
    pub at: i64,
    /// `issued`, `refused`, `revoked`, …
    pub event: String,
    /// Who: officer fingerprint, proxy address, or `cli`.
    pub actor: String,
    pub request_id: String,
    pub detail: serde_json::Value,
}

impl AuditEvent {
    /// An event happening now.
    pub fn now(event: &str, actor: &str, request_id: &str, detail: serde_json::Value) -> Self {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        AuditEvent {
            at,
            event: event.into(),
            actor: actor.into(),
            request_id: request_id.into(),
            detail,
        }
    }
}

/// Result of `audit verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditVerification {
    pub rows: i64,
    /// The first sequence number whose hash does not match, if any.
    pub first_bad: Option<i64>,
}

fn chain_hash(
    prev: &str,
    seq: i64,
    at: i64,
    event: &str,
    actor: &str,
    request_id: &str,
    detail: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [
        prev,
        &seq.to_string(),
        &at.to_string(),
        event,
        actor,
        request_id,
        detail,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Appends inside the caller's transaction. The first statement updates the head row, which
/// takes its lock (PostgreSQL row lock, SQLite write lock) before anything is read.
pub(super) async fn append(
    tx: &mut Transaction<'_, Any>,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    let row = sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
        .fetch_one(&mut **tx)
        .await?;
    let seq: i64 = row.try_get(0)?;
    let prev: String = row.try_get(1)?;
    let detail = event.detail.to_string();
    tracing::info!(target: "audit", seq, event = %event.event, actor = %event.actor, request_id = %event.request_id, detail = %detail);
    let hash = chain_hash(
        &prev,
        seq,
        event.at,
        &event.event,
        &event.actor,
        &event.request_id,
        &detail,
    );
    sqlx::query(
        "INSERT INTO audit (seq, at, event, actor, request_id, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(seq)
    .bind(event.at)
    .bind(&event.event)
    .bind(&event.actor)
    .bind(&event.request_id)
    .bind(&detail)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&hash)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// One stored audit row, as `audit export` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub event: String,
    pub actor: String,
    pub request_id: String,
    /// JSON text, as hashed.
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Up to `limit` rows with `seq > after_seq` and `at >= since_ms`, in chain order. Paging by
/// sequence number keeps an export of any length in bounded memory.
pub(super) async fn page(
    pool: &AnyPool,
    since_ms: i64,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, at, event, actor, request_id, detail, prev_hash, hash FROM audit \
         WHERE seq > $1 AND at >= $2 ORDER BY seq LIMIT $3",
    )
    .bind(after_seq)
    .bind(since_ms)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(AuditRow {
                seq: row.try_get(0)?,
                at: row.try_get(1)?,
                event: row.try_get(2)?,
                actor: row.try_get(3)?,
                request_id: row.try_get(4)?,
                detail: row.try_get(5)?,
                prev_hash: row.try_get(6)?,
                hash: row.try_get(7)?,
            })
        })
        .collect()
}

/// Rows read per query while verifying, so the trail never has to fit in memory.
const VERIFY_PAGE: i64 = 1000;

/// Verifies the chain up to the head as it is when the check starts. Other nodes may append
/// while it runs: the head row is committed in the same transaction as its audit row, so every
/// row up to the head read first is visible, and later rows are simply not part of this check.
pub(super) async fn verify(pool: &AnyPool) -> Result<AuditVerification, StoreError> {
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(pool)
        .await?;
    let head_seq: i64 = head.try_get(0)?;
    let head_hash: String = head.try_get(1)?;
    let rows: i64 = sqlx::query("SELECT COUNT(*) FROM audit WHERE seq <= $1")
        .bind(head_seq)
        .fetch_one(pool)
        .await?
        .try_get(0)?;
    let broken = |seq: i64| {
        Ok(AuditVerification {
            rows,
            first_bad: Some(seq),
        })
    };
    let mut prev = "0".repeat(64);
    let mut expected_seq: i64 = 1;
    while expected_seq <= head_seq {
        let page = sqlx::query(
            "SELECT seq, at, event, actor, request_id, detail, prev_hash, hash FROM audit \
             WHERE seq >= $1 AND seq <= $2 ORDER BY seq LIMIT $3",
        )
        .bind(expected_seq)
        .bind(head_seq)
        .bind(VERIFY_PAGE)
        .fetch_all(pool)
        .await?;
        if page.is_empty() {
            // Rows missing at the end.
            return broken(expected_seq);
        }
        for row in &page {
            let seq: i64 = row.try_get(0)?;
            let at: i64 = row.try_get(1)?;
            let event: String = row.try_get(2)?;
            let actor: String = row.try_get(3)?;
            let request_id: String = row.try_get(4)?;
            let detail: String = row.try_get(5)?;
            let prev_hash: String = row.try_get(6)?;
            let hash: String = row.try_get(7)?;
            let computed = chain_hash(&prev, seq, at, &event, &actor, &request_id, &detail);
            if seq != expected_seq || prev_hash != prev || hash != computed {
                // A gap reports the first missing row.
                return broken(expected_seq);
            }
            prev = hash;
            expected_seq += 1;
        }
    }
    if head_hash != prev {
        return broken(head_seq);
    }
    Ok(AuditVerification {
        rows,
        first_bad: None,
    })
}
