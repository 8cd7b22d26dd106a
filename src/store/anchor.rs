//! Anchors: the audit chain's head (seq, hash, MAC) recorded where a database-only attacker
//! cannot rewrite it consistently, so that deleting the tail of the chain (and rewinding
//! `audit_head`) is detected.
//!
//! Each anchor is written three times: a row in `audit_anchor` (MACed, so it cannot be forged,
//! though it can be deleted), a line in this node's `data/audit-anchors.log` (append-only, mode
//! 0600, outside the database), and an `audit` log line. Anchors are taken after each CRL is
//! stored and by the periodic checkpoint (`Store::spawn_audit_upkeep`) whenever the head moved.
//! Only a keyed store takes anchors: an unauthenticated anchor would prove nothing.

use std::io::{BufRead, Write};
use std::path::Path;

use aws_lc_rs::hmac;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::audit::{Appended, mac_parts, now_ms};
use super::{Store, StoreError};

/// One recorded head of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Anchor {
    /// Anchor format version (1).
    #[serde(default = "one")]
    pub v: u32,
    /// Unix milliseconds when it was taken.
    pub at: i64,
    /// The head's sequence number.
    pub seq: i64,
    /// The head row's chain hash.
    pub hash: String,
    /// The head row's MAC (`None` when the head was a legacy row).
    pub mac: Option<String>,
    /// Why: `crl:<ca>:<number>` or `checkpoint`.
    pub reason: String,
    /// HMAC over all the fields above.
    pub anchor_mac: String,
}

fn one() -> u32 {
    1
}

impl Anchor {
    fn new(key: &hmac::Key, seq: i64, hash: &str, mac: Option<&str>, reason: &str) -> Anchor {
        let mut anchor = Anchor {
            v: 1,
            at: now_ms(),
            seq,
            hash: hash.to_string(),
            mac: mac.map(str::to_string),
            reason: reason.to_string(),
            anchor_mac: String::new(),
        };
        anchor.anchor_mac = anchor.expected_mac(key);
        anchor
    }

    fn expected_mac(&self, key: &hmac::Key) -> String {
        mac_parts(
            key,
            &[
                b"ast-gateway audit anchor v1",
                self.at.to_string().as_bytes(),
                self.seq.to_string().as_bytes(),
                self.hash.as_bytes(),
                self.mac.as_deref().unwrap_or("").as_bytes(),
                self.reason.as_bytes(),
            ],
        )
    }

    /// Whether the anchor was made with this key.
    pub(super) fn is_authentic(&self, key: &hmac::Key) -> bool {
        let expected = self.expected_mac(key);
        // Both are hex of a MAC we compute; compare in constant time anyway.
        aws_lc_rs::constant_time::verify_slices_are_equal(
            expected.as_bytes(),
            self.anchor_mac.as_bytes(),
        )
        .is_ok()
    }
}

/// Where an anchor was read from, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Source {
    File(usize),
    Database(i64),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(line) => write!(f, "anchor file line {line}"),
            Source::Database(id) => write!(f, "audit_anchor row {id}"),
        }
    }
}

/// Appends one line to the anchor file, creating it with mode 0600.
fn append_line(path: &Path, anchor: &Anchor) -> std::io::Result<()> {
    let mut line = serde_json::to_string(anchor).map_err(std::io::Error::other)?;
    line.push('\n');
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = crate::private_files::append(path)?;
    // One write of one short line: with O_APPEND, lines of concurrent writers do not mix.
    file.write_all(line.as_bytes())?;
    file.sync_data()
}

/// Anchors with where each was read.
pub(super) type Sourced = Vec<(Source, Anchor)>;

/// The anchors of a file, with the lines that could not be read (line number, why).
pub(super) fn read_file(path: &Path) -> std::io::Result<(Sourced, Vec<(usize, String)>)> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(e),
    };
    let mut anchors = Vec::new();
    let mut unreadable = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                unreadable.push((i + 1, e.to_string()));
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Anchor>(&line) {
            Ok(anchor) => anchors.push((Source::File(i + 1), anchor)),
            Err(e) => unreadable.push((i + 1, e.to_string())),
        }
    }
    Ok((anchors, unreadable))
}

/// Every anchor row of the database, oldest first.
pub(super) async fn read_database(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
) -> Result<Vec<(Source, Anchor)>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, at, seq, hash, mac, reason, anchor_mac FROM audit_anchor ORDER BY id",
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                Source::Database(row.try_get(0)?),
                Anchor {
                    v: 1,
                    at: row.try_get(1)?,
                    seq: row.try_get(2)?,
                    hash: row.try_get(3)?,
                    mac: row.try_get(4)?,
                    reason: row.try_get(5)?,
                    anchor_mac: row.try_get(6)?,
                },
            ))
        })
        .collect()
}

impl Store {
    /// Records the chain's current head as an anchor (`reason`: why). Nothing happens on a
    /// store without the audit key, on an empty chain, or when the head has not moved since
    /// this store's last anchor. Returns the anchor taken.
    pub async fn anchor_audit_head(&self, reason: &str) -> Result<Option<Anchor>, StoreError> {
        if !self.audit.is_keyed() {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT h.seq, h.hash, a.mac FROM audit_head h LEFT JOIN audit a ON a.seq = h.seq WHERE h.id = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        let seq: i64 = row.try_get(0)?;
        let hash: String = row.try_get(1)?;
        let mac: Option<String> = row.try_get(2)?;
        if seq == 0
            || self
                .upkeep
                .last_anchor
                .load(std::sync::atomic::Ordering::Relaxed)
                == seq
        {
            return Ok(None);
        }
        self.anchor(&Appended { seq, hash, mac }, reason).await
    }

    /// Records `head` as an anchor in the database, the anchor file and the log.
    pub(super) async fn anchor(
        &self,
        head: &Appended,
        reason: &str,
    ) -> Result<Option<Anchor>, StoreError> {
        let Some(key) = &self.audit.key else {
            return Ok(None);
        };
        let anchor = Anchor::new(key, head.seq, &head.hash, head.mac.as_deref(), reason);
        tracing::info!(target: "audit", anchor_seq = anchor.seq, hash = %anchor.hash, mac = anchor.mac.as_deref().unwrap_or(""), reason, "audit chain head anchored");
        // The file first: it is the copy a database-only attacker cannot touch.
        if let Some(path) = self.audit.anchor_file.clone() {
            let line = anchor.clone();
            let written = tokio::task::spawn_blocking(move || append_line(&path, &line)).await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(target: "audit", error = %e, "cannot append to the audit anchor file")
                }
                Err(e) => {
                    tracing::error!(target: "audit", error = %e, "cannot append to the audit anchor file")
                }
            }
        }
        let mut connection = self.connection().await?;
        self.bounded(async {
            sqlx::query(
                "INSERT INTO audit_anchor (at, seq, hash, mac, reason, anchor_mac) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(anchor.at)
            .bind(anchor.seq)
            .bind(&anchor.hash)
            .bind(anchor.mac.clone())
            .bind(&anchor.reason)
            .bind(&anchor.anchor_mac)
            .execute(&mut *connection)
            .await?;
            Ok(())
        })
        .await?;
        self.upkeep
            .last_anchor
            .fetch_max(anchor.seq, std::sync::atomic::Ordering::Relaxed);
        Ok(Some(anchor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_are_authenticated_and_round_trip_through_the_file() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"k");
        let other = hmac::Key::new(hmac::HMAC_SHA256, b"other");
        let a = Anchor::new(&key, 7, &"ab".repeat(32), Some("cd"), "checkpoint");
        assert!(a.is_authentic(&key));
        assert!(!a.is_authentic(&other));
        let mut forged = a.clone();
        forged.seq = 8;
        assert!(!forged.is_authentic(&key));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/audit-anchors.log");
        append_line(&path, &a).unwrap();
        let b = Anchor::new(&key, 9, &"ef".repeat(32), None, "crl:issuing:3");
        append_line(&path, &b).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"not json\n")
            .unwrap();
        let (anchors, unreadable) = read_file(&path).unwrap();
        assert_eq!(anchors.len(), 2);
        assert_eq!(anchors[0], (Source::File(1), a));
        assert_eq!(anchors[1], (Source::File(2), b));
        assert_eq!(unreadable.len(), 1);
        assert_eq!(unreadable[0].0, 3);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // A missing file is no anchors, not an error.
        let (none, bad) = read_file(&dir.path().join("absent")).unwrap();
        assert!(none.is_empty() && bad.is_empty());
    }
}
