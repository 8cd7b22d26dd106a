//! The tamper-evident audit trail.
//!
//! Two chains run over the same rows:
//! - `hash`: SHA-256 over the previous row's hash and this row's fields (length-prefixed). It
//!   catches accidental damage and makes every row commit to the whole prefix before it, but
//!   anyone who can write the database can recompute it.
//! - `mac`: HMAC-SHA256 of `hash` under a key derived from the root's `data/secret.key`
//!   ([`AUDIT_KEY_LABEL`]). A database-only attacker cannot compute it, and since `hash`
//!   commits to the prefix, a valid `mac` on row n vouches for rows 1..=n.
//!
//! Rows written before the keyed chain existed (migration 0004), or by a store opened without
//! the key, have no `mac` ("legacy" rows). They are verified as the SHA-256 chain; the first
//! keyed row after them vouches for them. A legacy row *after* a keyed row is reported.
//! Deleting the tail is not visible in the chain itself: see `anchor` for the heads recorded
//! outside it. `audit_verify` checks all of it.

use std::path::PathBuf;

use aws_lc_rs::hmac;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Any, AnyPool, Row, Transaction};

use super::StoreError;

/// The HKDF label of the audit chain's key (see `config::SecretKey::derive_hmac_key`).
pub const AUDIT_KEY_LABEL: &str = "ast-gateway audit chain v1";

/// Longest stored `path` value in an audit detail (hostile requests carry long paths).
pub const PATH_LIMIT: usize = 256;
/// Longest stored string anywhere else in an audit row (detail values, actor).
pub const TEXT_LIMIT: usize = 8192;
/// Longest stored `officerSignature` (base64): the largest signature the API accepts, so a
/// kept signature is always whole and still verifies.
pub const SIGNATURE_LIMIT: usize = 16 * 1024;

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
        AuditEvent {
            at: now_ms(),
            event: event.into(),
            actor: actor.into(),
            request_id: request_id.into(),
            detail,
        }
    }

    /// The same event with `fields` set in its detail (a non-object detail is kept under
    /// `detail`). The store uses it to record what it actually wrote.
    pub(super) fn with_fields(&self, fields: &[(&str, serde_json::Value)]) -> AuditEvent {
        let mut event = self.clone();
        if !event.detail.is_object() {
            let old = std::mem::take(&mut event.detail);
            event.detail = if old.is_null() {
                serde_json::json!({})
            } else {
                serde_json::json!({ "detail": old })
            };
        }
        if let Some(map) = event.detail.as_object_mut() {
            for (k, v) in fields {
                map.insert((*k).to_string(), v.clone());
            }
        }
        event
    }
}

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How a store seals the audit trail: the chain key (derived from `data/secret.key`) and this
/// node's anchor file. Without a key the store writes legacy rows and verifies only the
/// SHA-256 chain; without a file it records anchors in the database and the log only.
#[derive(Clone, Default)]
pub struct AuditSeal {
    pub(super) key: Option<hmac::Key>,
    pub(super) anchor_file: Option<PathBuf>,
}

impl std::fmt::Debug for AuditSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSeal")
            .field("key", &self.key.as_ref().map(|_| "[redacted]"))
            .field("anchor_file", &self.anchor_file)
            .finish()
    }
}

impl AuditSeal {
    /// `key`: HMAC key derived with [`AUDIT_KEY_LABEL`]; `anchor_file`: usually
    /// `data/audit-anchors.log`.
    pub fn new(key: Option<hmac::Key>, anchor_file: Option<PathBuf>) -> AuditSeal {
        AuditSeal { key, anchor_file }
    }

    /// Whether rows and anchors get MACs.
    pub fn is_keyed(&self) -> bool {
        self.key.is_some()
    }
}

/// HMAC-SHA256 over length-prefixed parts, lower-case hex.
pub(super) fn mac_parts(key: &hmac::Key, parts: &[&[u8]]) -> String {
    let mut context = hmac::Context::with_key(key);
    for part in parts {
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part);
    }
    hex::encode(context.sign().as_ref())
}

/// The keyed MAC of a row: its chain hash (which covers its fields and every row before it).
pub(super) fn row_mac(key: &hmac::Key, hash: &str) -> String {
    mac_parts(key, &[b"ast-gateway audit row v1", hash.as_bytes()])
}

pub(super) fn chain_hash(
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

/// `text` cut to `limit` characters, with a marker saying how long it was.
pub(super) fn bounded(text: &str, limit: usize) -> String {
    let total = text.chars().count();
    if total <= limit {
        return text.to_string();
    }
    let kept: String = text.chars().take(limit).collect();
    format!("{kept}…[truncated, {total} chars]")
}

/// Every string in `detail` bounded: `path` values to [`PATH_LIMIT`], `officerSignature` to
/// [`SIGNATURE_LIMIT`], others to [`TEXT_LIMIT`]. Network input reaches details (request paths, operator messages that quote
/// it); a stored row must not grow with it.
pub(super) fn bound_detail(detail: &serde_json::Value) -> serde_json::Value {
    fn walk(value: &serde_json::Value, limit: usize) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(bounded(s, limit)),
            Value::Array(items) => Value::Array(items.iter().map(|v| walk(v, limit)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let limit = match k.as_str() {
                            "path" | "lastPath" => PATH_LIMIT,
                            "officerSignature" => SIGNATURE_LIMIT,
                            _ => TEXT_LIMIT,
                        };
                        (k.clone(), walk(v, limit))
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    walk(detail, TEXT_LIMIT)
}

/// What an append wrote.
#[derive(Debug, Clone)]
pub(super) struct Appended {
    pub seq: i64,
    pub hash: String,
    pub mac: Option<String>,
}

/// One audit row as it is stored: the event's text bounded, chained after `prev` (the hash of
/// the row before it) and sealed with the keyed MAC when the store has the key. Written by
/// `append` one at a time and by the group-commit writer for a whole batch.
pub(super) struct SealedRow<'e> {
    pub seq: i64,
    pub event: &'e AuditEvent,
    pub actor: String,
    pub request_id: String,
    pub detail: String,
    pub prev: String,
    pub hash: String,
    pub mac: Option<String>,
}

impl<'e> SealedRow<'e> {
    pub(super) fn new(seal: &AuditSeal, event: &'e AuditEvent, seq: i64, prev: String) -> Self {
        let detail = bound_detail(&event.detail).to_string();
        let actor = bounded(&event.actor, TEXT_LIMIT);
        let request_id = bounded(&event.request_id, TEXT_LIMIT);
        tracing::info!(target: "audit", seq, event = %event.event, actor = %actor, request_id = %request_id, detail = %detail);
        let hash = chain_hash(
            &prev,
            seq,
            event.at,
            &event.event,
            &actor,
            &request_id,
            &detail,
        );
        let mac = seal.key.as_ref().map(|key| row_mac(key, &hash));
        SealedRow {
            seq,
            event,
            actor,
            request_id,
            detail,
            prev,
            hash,
            mac,
        }
    }
}

/// Appends inside the caller's transaction. The first statement updates the head row, which
/// takes its lock (PostgreSQL row lock, SQLite write lock) before anything is read.
pub(super) async fn append(
    tx: &mut Transaction<'_, Any>,
    seal: &AuditSeal,
    event: &AuditEvent,
) -> Result<Appended, StoreError> {
    let row = sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
        .fetch_one(&mut **tx)
        .await?;
    let seq: i64 = row.try_get(0)?;
    let prev: String = row.try_get(1)?;
    let sealed = SealedRow::new(seal, event, seq, prev);
    sqlx::query(
        "INSERT INTO audit (seq, at, event, actor, request_id, detail, prev_hash, hash, mac) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(seq)
    .bind(event.at)
    .bind(&event.event)
    .bind(&sealed.actor)
    .bind(&sealed.request_id)
    .bind(&sealed.detail)
    .bind(&sealed.prev)
    .bind(&sealed.hash)
    .bind(sealed.mac.clone())
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&sealed.hash)
        .execute(&mut **tx)
        .await?;
    let SealedRow { hash, mac, .. } = sealed;
    Ok(Appended { seq, hash, mac })
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

impl AuditRow {
    /// Reads a row selected as `seq, at, event, actor, request_id, detail, prev_hash, hash`
    /// (further columns are left to the caller).
    pub(super) fn read(row: &sqlx::any::AnyRow) -> Result<AuditRow, StoreError> {
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
    }
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
    rows.iter().map(AuditRow::read).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_strings_are_bounded_with_a_marker() {
        let path = "a".repeat(4096);
        let detail = serde_json::json!({
            "path": path,
            "reason": "é".repeat(TEXT_LIMIT + 2000),
            "nested": {"path": "b".repeat(300), "list": ["c".repeat(TEXT_LIMIT + 1000)]},
            "code": "no-handler",
            "n": 5,
        });
        let b = bound_detail(&detail);
        let p = b["path"].as_str().unwrap();
        assert!(p.starts_with(&"a".repeat(PATH_LIMIT)));
        assert!(p.ends_with("…[truncated, 4096 chars]"), "{p}");
        assert!(p.chars().count() < PATH_LIMIT + 40);
        let r = b["reason"].as_str().unwrap();
        assert_eq!(r.chars().filter(|c| *c == 'é').count(), TEXT_LIMIT);
        assert!(
            b["nested"]["path"]
                .as_str()
                .unwrap()
                .contains("truncated, 300 chars")
        );
        assert!(
            b["nested"]["list"][0]
                .as_str()
                .unwrap()
                .contains(&format!("truncated, {}", TEXT_LIMIT + 1000))
        );
        assert_eq!(b["code"], "no-handler");
        assert_eq!(b["n"], 5);
        // A signature of the largest accepted size is kept whole; one beyond it is cut.
        let whole = "A".repeat(SIGNATURE_LIMIT);
        let kept = bound_detail(&serde_json::json!({"officerSignature": whole}));
        assert_eq!(kept["officerSignature"], whole.as_str());
        let longer = "A".repeat(SIGNATURE_LIMIT + 1);
        let cut = bound_detail(&serde_json::json!({"officerSignature": longer}));
        assert!(
            cut["officerSignature"]
                .as_str()
                .unwrap()
                .contains("truncated")
        );
        // Short values are untouched.
        assert_eq!(
            bound_detail(&serde_json::json!({"path": "x/y"})),
            serde_json::json!({"path": "x/y"})
        );
    }

    #[test]
    fn row_macs_depend_on_key_and_hash() {
        let k1 = hmac::Key::new(hmac::HMAC_SHA256, b"one");
        let k2 = hmac::Key::new(hmac::HMAC_SHA256, b"two");
        let h = chain_hash("0", 1, 2, "e", "a", "r", "{}");
        assert_eq!(row_mac(&k1, &h), row_mac(&k1, &h));
        assert_ne!(row_mac(&k1, &h), row_mac(&k2, &h));
        let h2 = chain_hash("0", 1, 2, "e", "a", "r", "{ }");
        assert_ne!(row_mac(&k1, &h), row_mac(&k1, &h2));
        // Length prefixes: moving a byte between fields changes the hash.
        assert_ne!(
            chain_hash("0", 1, 2, "ab", "c", "", ""),
            chain_hash("0", 1, 2, "a", "bc", "", "")
        );
    }

    #[test]
    fn fields_are_added_to_any_detail() {
        let e = AuditEvent::now("x", "cli", "", serde_json::json!({"a": 1}));
        let f = e.with_fields(&[("serial", serde_json::json!("0a"))]);
        assert_eq!(f.detail, serde_json::json!({"a": 1, "serial": "0a"}));
        let e = AuditEvent::now("x", "cli", "", serde_json::json!([1]));
        let f = e.with_fields(&[("status", serde_json::json!("good"))]);
        assert_eq!(
            f.detail,
            serde_json::json!({"detail": [1], "status": "good"})
        );
    }
}
