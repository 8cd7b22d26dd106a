//! `audit verify`'s cross-check: every certificate's and officer's status in its table must be
//! the one implied by the last chained event about it (`issued` → good, `revoked` → revoked
//! with that reason, `reinstated` → good; `officer-issued`, `officer-revoked`), and every
//! certificate or officer the chain records must still have its row.

use std::collections::HashMap;

use sqlx::{Any, Row, Transaction};

use super::audit_report::AuditVerification;
use super::{Store, StoreError};
use crate::ca::Serial;

/// A serial read back from stored text, canonical; `None` when it is not one.
fn normalise_serial(text: &str) -> Option<String> {
    Serial::parse(text).ok().map(|s| s.hex().to_string())
}

/// Rows read per query.
const PAGE: i64 = 1000;

/// A certificate's status as the chain implies it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Implied {
    Good,
    Revoked(Option<String>),
}

impl std::fmt::Display for Implied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Implied::Good => f.write_str("good"),
            Implied::Revoked(Some(reason)) => write!(f, "revoked ({reason})"),
            Implied::Revoked(None) => f.write_str("revoked"),
        }
    }
}

/// Last status-changing event per certificate and per officer, with its seq.
#[derive(Default)]
pub(super) struct Statuses {
    certificates: HashMap<String, (Implied, i64)>,
    officers: HashMap<String, (bool, i64)>,
}

impl Statuses {
    pub(super) fn observe(&mut self, seq: i64, event: &str, detail: &str) {
        if !matches!(
            event,
            "issued" | "revoked" | "reinstated" | "officer-issued" | "officer-revoked"
        ) {
            return;
        }
        let Ok(detail) = serde_json::from_str::<serde_json::Value>(detail) else {
            return;
        };
        let serial = || detail["serial"].as_str().and_then(normalise_serial);
        match event {
            "issued" => {
                for s in detail["serials"].as_array().into_iter().flatten() {
                    if let Some(s) = s.as_str().and_then(normalise_serial) {
                        self.certificates.insert(s, (Implied::Good, seq));
                    }
                }
            }
            "revoked" => {
                if let Some(s) = serial() {
                    let reason = detail["reason"].as_str().map(str::to_string);
                    self.certificates.insert(s, (Implied::Revoked(reason), seq));
                }
            }
            "reinstated" => {
                if let Some(s) = serial() {
                    self.certificates.insert(s, (Implied::Good, seq));
                }
            }
            "officer-issued" => {
                if let Some(s) = serial() {
                    let revoked = detail["status"].as_str() == Some("revoked");
                    self.officers.insert(s, (revoked, seq));
                }
            }
            _ => {
                if let Some(s) = serial() {
                    self.officers.insert(s, (true, seq));
                }
            }
        }
    }
}

impl Store {
    /// Each certificate's and officer's status must be the one its last chained event implies.
    pub(super) async fn cross_check(
        &self,
        tx: &mut Transaction<'_, Any>,
        statuses: Statuses,
        report: &mut AuditVerification,
    ) -> Result<(), StoreError> {
        cross_check_certificates(tx, statuses.certificates, report).await?;
        cross_check_officers(tx, statuses.officers, report).await
    }
}

/// The certificates table, page by page, against the chain; then the certificates the chain
/// records whose rows are gone.
async fn cross_check_certificates(
    tx: &mut Transaction<'_, Any>,
    mut certificates: HashMap<String, (Implied, i64)>,
    report: &mut AuditVerification,
) -> Result<(), StoreError> {
    let mut after = String::new();
    loop {
        let page = sqlx::query(
            "SELECT serial, status, revocation_reason FROM certificates WHERE serial > $1 ORDER BY serial LIMIT $2",
        )
        .bind(&after)
        .bind(PAGE)
        .fetch_all(&mut **tx)
        .await?;
        let Some(last) = page.last() else { break };
        after = last.try_get(0)?;
        for row in &page {
            let serial: String = row.try_get(0)?;
            let status: String = row.try_get(1)?;
            let reason: Option<String> = row.try_get(2)?;
            report.certificates_checked += 1;
            let table = match status.as_str() {
                "good" => Implied::Good,
                _ => Implied::Revoked(reason),
            };
            let key = normalise_serial(&serial).unwrap_or_else(|| serial.clone());
            match certificates.remove(&key) {
                None => report.problem(
                    "missing-event",
                    None,
                    Some(&serial),
                    format!("certificate {serial} is in the table ({table}) but no `issued` event in the chain lists it"),
                ),
                Some((implied, seq)) if implied != table => report.problem(
                    "status-mismatch",
                    Some(seq),
                    Some(&serial),
                    format!("certificate {serial}: the table says {table}, the chain says {implied} (row {seq})"),
                ),
                Some(_) => {}
            }
        }
    }
    let mut missing: Vec<_> = certificates.into_iter().collect();
    missing.sort_by_key(|(_, (_, seq))| *seq);
    for (serial, (implied, seq)) in missing {
        report.problem(
            "missing-row",
            Some(seq),
            Some(&serial),
            format!("certificate {serial} is in the chain ({implied}, row {seq}) but not in the table: its row was deleted"),
        );
    }
    Ok(())
}

/// The officers table against the chain; then the officers the chain records whose rows are
/// gone.
async fn cross_check_officers(
    tx: &mut Transaction<'_, Any>,
    mut officers: HashMap<String, (bool, i64)>,
    report: &mut AuditVerification,
) -> Result<(), StoreError> {
    let rows = sqlx::query("SELECT serial, status FROM officers ORDER BY serial")
        .fetch_all(&mut **tx)
        .await?;
    for row in &rows {
        let serial: String = row.try_get(0)?;
        let status: String = row.try_get(1)?;
        report.officers_checked += 1;
        let revoked = status == "revoked";
        let name = |r: bool| if r { "revoked" } else { "active" };
        let key = normalise_serial(&serial).unwrap_or_else(|| serial.clone());
        match officers.remove(&key) {
            None => report.problem(
                "missing-event",
                None,
                Some(&serial),
                format!("officer certificate {serial} is registered ({}) but no `officer-issued` event in the chain names it", name(revoked)),
            ),
            Some((implied, seq)) if implied != revoked => report.problem(
                "status-mismatch",
                Some(seq),
                Some(&serial),
                format!("officer certificate {serial}: the table says {}, the chain says {} (row {seq})", name(revoked), name(implied)),
            ),
            Some(_) => {}
        }
    }
    let mut missing: Vec<_> = officers.into_iter().collect();
    missing.sort_by_key(|(_, (_, seq))| *seq);
    for (serial, (_, seq)) in missing {
        report.problem(
            "missing-row",
            Some(seq),
            Some(&serial),
            format!("officer certificate {serial} is in the chain (row {seq}) but not in the officers table: its row was deleted"),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_event_about_a_serial_wins() {
        let mut s = Statuses::default();
        s.observe(1, "issued", r#"{"serials":["0A","0b"]}"#);
        s.observe(
            2,
            "revoked",
            r#"{"serial":"0a","reason":"certificateHold"}"#,
        );
        s.observe(3, "reinstated", r#"{"serial":"0A"}"#);
        s.observe(4, "revoked", r#"{"serial":"0b","reason":"keyCompromise"}"#);
        s.observe(5, "refused", r#"{"serial":"0b"}"#);
        s.observe(6, "revoked", "not json");
        s.observe(7, "officer-issued", r#"{"serial":"0c","status":"active"}"#);
        s.observe(8, "officer-revoked", r#"{"serial":"0C"}"#);
        assert_eq!(s.certificates["0a"], (Implied::Good, 3));
        assert_eq!(
            s.certificates["0b"],
            (Implied::Revoked(Some("keyCompromise".into())), 4)
        );
        assert_eq!(s.officers["0c"], (true, 8));
        assert_eq!(
            Implied::Revoked(Some("keyCompromise".into())).to_string(),
            "revoked (keyCompromise)"
        );
    }
}
