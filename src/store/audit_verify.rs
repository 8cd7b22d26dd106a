//! `audit verify`: the chain (hashes, MACs, links, head), the anchors (authentic, matching the
//! rows they name, none beyond the head), and the certificate and officer tables against the
//! status changes the chain records.
//!
//! Everything is read in one read transaction (REPEATABLE READ on PostgreSQL; a SQLite read
//! transaction in WAL mode is a snapshot too), so rows other nodes append meanwhile are not
//! half-seen: the head, the rows and the tables are of one moment. Memory: one entry per
//! certificate, officer and anchor (the cross-check needs the last status of each). The
//! report's types are in `audit_report`, the tables' cross-check in `audit_crosscheck`.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::anchor::{self, Anchor, Source};
use super::audit::{AuditRow, chain_hash, row_mac};
use super::audit_crosscheck::Statuses;
use super::audit_report::{AnchorSeen, AuditVerification};
use super::{Store, StoreError};

/// Rows read per query while verifying, so the trail never has to fit in memory.
const VERIFY_PAGE: i64 = 1000;

impl Store {
    /// Verifies the audit trail: the chain up to the head as it is now (other nodes may keep
    /// appending meanwhile), the anchors, and the certificate and officer tables against the
    /// chain. See [`AuditVerification`].
    pub async fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        let mut connection = self.pool.acquire().await?;
        let mut tx = sqlx::Connection::begin(&mut *connection).await?;
        if self.is_postgres() {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *tx)
                .await?;
        }
        let mut report = AuditVerification {
            macs_checked: self.audit.is_keyed(),
            ..AuditVerification::default()
        };
        let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        report.head_seq = head.try_get(0)?;
        let head_hash: String = head.try_get(1)?;
        report.rows = sqlx::query("SELECT COUNT(*) FROM audit WHERE seq <= $1")
            .bind(report.head_seq)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let beyond: i64 = sqlx::query("SELECT COUNT(*) FROM audit WHERE seq > $1")
            .bind(report.head_seq)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if beyond > 0 {
            report.problem(
                "beyond-head",
                Some(report.head_seq + 1),
                None,
                format!("{beyond} audit row(s) lie above the recorded head (seq {}): the head was rewound, or rows were inserted outside the chain", report.head_seq),
            );
        }
        let anchors = self.load_anchors(&mut tx, &mut report).await?;
        let mut statuses = Statuses::default();
        let complete = self
            .walk(&mut tx, &head_hash, &anchors, &mut statuses, &mut report)
            .await?;
        // The file's copy first among equals: it is the one the database cannot touch.
        let furthest = anchors
            .values()
            .flatten()
            .max_by_key(|(source, a)| (a.seq, matches!(source, Source::File(_))));
        if let Some((source, anchor)) = furthest {
            let seen = AnchorSeen {
                seq: anchor.seq,
                at: anchor.at,
                reason: anchor.reason.clone(),
                source: source.to_string(),
            };
            if anchor.seq > report.head_seq {
                report.problem(
                    "truncated",
                    Some(anchor.seq),
                    None,
                    format!(
                        "the chain ends at seq {} but an anchor ({}, {}, taken at {} ms) says seq {} existed: rows were deleted and the head rewound",
                        report.head_seq, seen.source, seen.reason, seen.at, seen.seq
                    ),
                );
                report.truncated = Some(seen.clone());
            }
            report.latest_anchor = Some(seen);
        }
        if complete {
            self.cross_check(&mut tx, statuses, &mut report).await?;
        }
        tx.rollback().await?;
        Ok(report)
    }

    /// Anchors from the file and the database that are authentic (with the key) by seq.
    async fn load_anchors(
        &self,
        tx: &mut Transaction<'_, Any>,
        report: &mut AuditVerification,
    ) -> Result<BTreeMap<i64, Vec<(Source, Anchor)>>, StoreError> {
        let mut all = Vec::new();
        if let Some(path) = &self.audit.anchor_file {
            match anchor::read_file(path) {
                Ok((anchors, unreadable)) => {
                    report.file_anchors = anchors.len();
                    all.extend(anchors);
                    for (line, why) in unreadable {
                        report.problem(
                            "anchor-unreadable",
                            None,
                            None,
                            format!("{} line {line} is not an anchor: {why}", path.display()),
                        );
                    }
                }
                Err(e) => report.problem(
                    "anchor-unreadable",
                    None,
                    None,
                    format!("cannot read {}: {e}", path.display()),
                ),
            }
        }
        let database = anchor::read_database(tx).await?;
        report.database_anchors = database.len();
        all.extend(database);
        let mut by_seq: BTreeMap<i64, Vec<(Source, Anchor)>> = BTreeMap::new();
        for (source, a) in all {
            if let Some(key) = &self.audit.key
                && !a.is_authentic(key)
            {
                report.problem(
                    "anchor-forged",
                    Some(a.seq),
                    None,
                    format!("{source} (seq {}) does not carry a valid MAC: forged, altered, or made with another secret.key", a.seq),
                );
                continue;
            }
            by_seq.entry(a.seq).or_default().push((source, a));
        }
        Ok(by_seq)
    }

    /// Walks rows 1..=head. Returns whether it reached the head without a break.
    async fn walk(
        &self,
        tx: &mut Transaction<'_, Any>,
        head_hash: &str,
        anchors: &BTreeMap<i64, Vec<(Source, Anchor)>>,
        statuses: &mut Statuses,
        report: &mut AuditVerification,
    ) -> Result<bool, StoreError> {
        let head_seq = report.head_seq;
        let mut prev = "0".repeat(64);
        let mut expected_seq: i64 = 1;
        let mut keyed_seen = false;
        while expected_seq <= head_seq {
            let page = sqlx::query(
                "SELECT seq, at, event, actor, request_id, detail, prev_hash, hash, mac FROM audit \
                 WHERE seq >= $1 AND seq <= $2 ORDER BY seq LIMIT $3",
            )
            .bind(expected_seq)
            .bind(head_seq)
            .bind(VERIFY_PAGE)
            .fetch_all(&mut **tx)
            .await?;
            if page.is_empty() {
                report.broken(
                    expected_seq,
                    "row-missing",
                    format!("rows {expected_seq}..={head_seq} are missing below the head"),
                );
                return Ok(false);
            }
            for row in &page {
                let row = ChainRow::read(row)?;
                if !self.check_row(&row, &prev, expected_seq, &mut keyed_seen, anchors, report) {
                    return Ok(false);
                }
                statuses.observe(row.row.seq, &row.row.event, &row.row.detail);
                prev = row.row.hash;
                expected_seq += 1;
            }
        }
        if head_hash != prev {
            report.broken(
                head_seq,
                "head-mismatch",
                format!("audit_head does not match row {head_seq}"),
            );
            return Ok(false);
        }
        if report.keyed_rows > 0 && !self.audit.is_keyed() {
            report.problem(
                "no-key",
                None,
                None,
                format!("{} rows carry a MAC but the audit key is not available (data/secret.key): they were checked as a SHA-256 chain only", report.keyed_rows),
            );
        }
        Ok(true)
    }

    /// Checks one row against the row before it (`prev`: its hash), the audit key and the
    /// anchors that name it. Returns false, with the break reported, when the chain is broken
    /// here.
    fn check_row(
        &self,
        row: &ChainRow,
        prev: &str,
        expected_seq: i64,
        keyed_seen: &mut bool,
        anchors: &BTreeMap<i64, Vec<(Source, Anchor)>>,
        report: &mut AuditVerification,
    ) -> bool {
        let (seq, event, hash) = (row.row.seq, &row.row.event, &row.row.hash);
        if seq != expected_seq {
            // A gap reports the first missing row.
            report.broken(
                expected_seq,
                "row-missing",
                format!("row {expected_seq} is missing"),
            );
            return false;
        }
        let computed = chain_hash(
            prev,
            seq,
            row.row.at,
            event,
            &row.row.actor,
            &row.row.request_id,
            &row.row.detail,
        );
        if row.row.prev_hash != prev || *hash != computed {
            report.broken(seq, "row-changed", format!("row {seq} ({event}) was changed: its hash does not match its content or the row before it"));
            return false;
        }
        if !self.check_mac(row, keyed_seen, report) {
            return false;
        }
        for (source, a) in anchors.get(&seq).into_iter().flatten() {
            let mac_differs = a.mac.is_some() && a.mac != row.mac;
            if a.hash != *hash || mac_differs {
                report.broken(seq, "anchor-mismatch", format!("row {seq} is not the row that {source} recorded ({}): the chain was rewritten from there on", a.reason));
                return false;
            }
        }
        true
    }

    /// Checks a row's MAC (with the key) and counts keyed and legacy rows. Returns false, with
    /// the break reported, when the MAC does not match or a row lacks one after keyed rows.
    fn check_mac(
        &self,
        row: &ChainRow,
        keyed_seen: &mut bool,
        report: &mut AuditVerification,
    ) -> bool {
        let (seq, event) = (row.row.seq, &row.row.event);
        match (&row.mac, &self.audit.key) {
            (Some(mac), Some(key)) => {
                let expected = row_mac(key, &row.row.hash);
                if aws_lc_rs::constant_time::verify_slices_are_equal(
                    expected.as_bytes(),
                    mac.as_bytes(),
                )
                .is_err()
                {
                    report.broken(seq, "mac-mismatch", format!("row {seq} ({event}): the MAC does not match — the row or one before it was rewritten (and the hash chain recomputed), or it was written with another secret.key"));
                    return false;
                }
                *keyed_seen = true;
                report.keyed_rows += 1;
            }
            (Some(_), None) => {
                *keyed_seen = true;
                report.keyed_rows += 1;
            }
            (None, _) => {
                if *keyed_seen && self.audit.is_keyed() {
                    report.broken(seq, "unkeyed-row", format!("row {seq} ({event}) has no MAC although rows before it have one: written without the audit key (forged, or by a node without data/secret.key)"));
                    return false;
                }
                report.legacy_rows += 1;
            }
        }
        true
    }
}

/// One audit row as `audit verify` reads it: the chained fields and the row's MAC.
struct ChainRow {
    row: AuditRow,
    mac: Option<String>,
}

impl ChainRow {
    fn read(row: &AnyRow) -> Result<ChainRow, StoreError> {
        Ok(ChainRow {
            row: AuditRow::read(row)?,
            mac: row.try_get(8)?,
        })
    }
}
