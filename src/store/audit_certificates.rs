//! `audit verify`'s check of the certificates table: every column that revocation, CRLs, OCSP
//! and listings read must be the one the chain implies.
//!
//! What the chain records about a certificate: its `issued` event lists it (since this check
//! exists, with its CA, notAfter and a SHA-256 digest of every column written at issuance, see
//! [`issued_certificates`]); `revoked` and `reinstated` events record the status, reason, CA
//! and (since this check exists) the revocation time. Older events lack some of these, so for
//! them the check falls back on what the row's own certificate (the CA-signed DER, which a
//! database-only attacker cannot forge) says: serial and notAfter.

use std::collections::HashMap;

use der::Decode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};

use super::audit_report::AuditVerification;
use super::{CertificateRecord, StoreError};
use crate::ca::Serial;

/// A serial read back from stored text, canonical; `None` when it is not one.
pub(super) fn normalise_serial(text: &str) -> Option<String> {
    Serial::parse(text).ok().map(|s| s.hex().to_string())
}

/// Rows read per query.
const PAGE: i64 = 1000;

/// The columns written once, at issuance, as stored.
struct Issued<'a> {
    serial: &'a str,
    ca: &'a str,
    issuer: &'a str,
    subject: &'a str,
    sans_json: &'a str,
    not_before: i64,
    not_after: i64,
    purpose: &'a str,
    token_id: &'a str,
    der: &'a [u8],
    created_at: i64,
}

impl Issued<'_> {
    /// SHA-256 over the columns, length-prefixed, lower-case hex.
    fn digest(&self) -> String {
        let mut h = Sha256::new();
        let (nb, na, ca) = (
            self.not_before.to_string(),
            self.not_after.to_string(),
            self.created_at.to_string(),
        );
        for part in [
            b"ast-gateway certificate row v1".as_slice(),
            self.serial.as_bytes(),
            self.ca.as_bytes(),
            self.issuer.as_bytes(),
            self.subject.as_bytes(),
            self.sans_json.as_bytes(),
            nb.as_bytes(),
            na.as_bytes(),
            self.purpose.as_bytes(),
            self.token_id.as_bytes(),
            self.der,
            ca.as_bytes(),
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        hex::encode(h.finalize())
    }
}

/// What an `issued` event records per certificate: serial, CA, notAfter and the digest of the
/// row as inserted (`created_at`: the token's time, stored with each certificate).
pub(super) fn issued_certificates(certificates: &[CertificateRecord], created_at: i64) -> Value {
    let list: Vec<Value> = certificates
        .iter()
        .map(|c| {
            let sans = serde_json::to_string(&c.sans).unwrap_or_else(|_| "[]".into());
            let digest = Issued {
                serial: c.serial.hex(),
                ca: &c.ca,
                issuer: &c.issuer,
                subject: &c.subject,
                sans_json: &sans,
                not_before: c.not_before,
                not_after: c.not_after,
                purpose: &c.purpose,
                token_id: &c.token_id,
                der: &c.der,
                created_at,
            }
            .digest();
            json!({"serial": c.serial, "ca": c.ca, "notAfter": c.not_after, "digest": digest})
        })
        .collect();
    Value::Array(list)
}

/// A certificate's status as the chain implies it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) enum Implied {
    #[default]
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

/// Everything the chain says about one certificate (`None`: an older event did not say).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Facts {
    pub status: Implied,
    /// The row of the last status change (or of the issuance).
    pub seq: i64,
    /// The revocation time of the last `revoked` event, when it recorded one.
    pub revoked_at: Option<i64>,
    pub ca: Option<String>,
    pub not_after: Option<i64>,
    pub digest: Option<String>,
}

/// One certificate row as read for the check.
struct TableRow {
    serial: String,
    status: String,
    reason: Option<String>,
    revoked_at: Option<i64>,
    ca: String,
    not_after: i64,
    der: Vec<u8>,
    digest: String,
}

impl TableRow {
    fn read(row: &sqlx::any::AnyRow) -> Result<TableRow, StoreError> {
        let serial: String = row.try_get(0)?;
        let (ca, issuer, subject, sans): (String, String, String, String) = (
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
            row.try_get(4)?,
        );
        let (not_before, not_after): (i64, i64) = (row.try_get(5)?, row.try_get(6)?);
        let (purpose, token_id): (String, String) = (row.try_get(7)?, row.try_get(8)?);
        let der: Vec<u8> = row.try_get(12)?;
        let created_at: i64 = row.try_get(13)?;
        let digest = Issued {
            serial: &serial,
            ca: &ca,
            issuer: &issuer,
            subject: &subject,
            sans_json: &sans,
            not_before,
            not_after,
            purpose: &purpose,
            token_id: &token_id,
            der: &der,
            created_at,
        }
        .digest();
        Ok(TableRow {
            status: row.try_get(9)?,
            revoked_at: row.try_get(10)?,
            reason: row.try_get(11)?,
            serial,
            ca,
            not_after,
            der,
            digest,
        })
    }

    /// The columns that differ from the chain's facts (and from the row's own certificate).
    fn differences(&self, facts: &Facts) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(ca) = facts.ca.as_ref().filter(|ca| **ca != self.ca) {
            out.push(format!("ca is `{}`, the chain says `{ca}`", self.ca));
        }
        if let Some(na) = facts.not_after.filter(|na| *na != self.not_after) {
            out.push(format!(
                "not_after is {}, the chain says {na}",
                self.not_after
            ));
        }
        match (&facts.status, self.revoked_at, facts.revoked_at) {
            (Implied::Revoked(_), Some(table), Some(chain)) if table != chain => {
                out.push(format!("revoked_at is {table}, the chain says {chain}"))
            }
            (Implied::Revoked(_), None, _) => out.push("revoked_at is empty".into()),
            (Implied::Good, Some(t), _) => {
                out.push(format!("revoked_at is {t} on a good certificate"))
            }
            _ => {}
        }
        if facts.status == Implied::Good && self.reason.is_some() {
            out.push("revocation_reason is set on a good certificate".into());
        }
        if facts.digest.as_ref().is_some_and(|d| *d != self.digest) && out.is_empty() {
            out.push("a column written at issuance (issuer, subject, sans, not_before, purpose, token, DER or issue time) differs from what the chain recorded".into());
        }
        if let Ok(cert) = x509_cert::Certificate::from_der(&self.der) {
            let tbs = cert.tbs_certificate();
            let der_serial = Serial::from_bytes(tbs.serial_number().as_bytes());
            if normalise_serial(&self.serial).as_deref() != Some(der_serial.hex()) {
                out.push(format!("the certificate's own serial is {der_serial}"));
            }
            let der_not_after = tbs.validity().not_after.to_unix_duration().as_secs() as i64;
            if der_not_after != self.not_after && facts.not_after.is_none() {
                out.push(format!(
                    "not_after is {}, the certificate says {der_not_after}",
                    self.not_after
                ));
            }
        }
        out
    }
}

/// The certificates table, page by page, against the chain; then the certificates the chain
/// records whose rows are gone.
pub(super) async fn cross_check_certificates(
    tx: &mut Transaction<'_, Any>,
    mut certificates: HashMap<String, Facts>,
    report: &mut AuditVerification,
) -> Result<(), StoreError> {
    let mut after = String::new();
    loop {
        let page = sqlx::query(
            "SELECT serial, ca, issuer, subject, sans, not_before, not_after, purpose, token_id, \
             status, revoked_at, revocation_reason, der, created_at \
             FROM certificates WHERE serial > $1 ORDER BY serial LIMIT $2",
        )
        .bind(&after)
        .bind(PAGE)
        .fetch_all(&mut **tx)
        .await?;
        let Some(last) = page.last() else { break };
        after = last.try_get(0)?;
        for row in &page {
            let row = TableRow::read(row)?;
            report.certificates_checked += 1;
            let key = normalise_serial(&row.serial).unwrap_or_else(|| row.serial.clone());
            check_row(&row, certificates.remove(&key), report);
        }
    }
    let mut missing: Vec<_> = certificates.into_iter().collect();
    missing.sort_by_key(|(_, facts)| facts.seq);
    for (serial, facts) in missing {
        let (implied, seq) = (facts.status, facts.seq);
        report.problem(
            "missing-row",
            Some(seq),
            Some(&serial),
            format!("certificate {serial} is in the chain ({implied}, row {seq}) but not in the table: its row was deleted"),
        );
    }
    Ok(())
}

/// One row against the chain's facts about it.
fn check_row(row: &TableRow, facts: Option<Facts>, report: &mut AuditVerification) {
    let serial = &row.serial;
    let table = match row.status.as_str() {
        "good" => Implied::Good,
        "revoked" => Implied::Revoked(row.reason.clone()),
        other => {
            let seq = facts.as_ref().map(|f| f.seq);
            let chain = facts.map_or_else(|| "nothing".into(), |f| f.status.to_string());
            report.problem(
                "unexpected-status",
                seq,
                Some(serial),
                format!("certificate {serial}: the table's status `{}` is neither good nor revoked (the chain says {chain}): CRLs and OCSP would leave it out", other.chars().take(40).collect::<String>()),
            );
            return;
        }
    };
    let Some(facts) = facts else {
        report.problem(
            "missing-event",
            None,
            Some(serial),
            format!("certificate {serial} is in the table ({table}) but no `issued` event in the chain lists it"),
        );
        return;
    };
    let seq = facts.seq;
    if facts.status != table {
        report.problem(
            "status-mismatch",
            Some(seq),
            Some(serial),
            format!(
                "certificate {serial}: the table says {table}, the chain says {} (row {seq})",
                facts.status
            ),
        );
        return;
    }
    let differences = row.differences(&facts);
    if !differences.is_empty() {
        report.problem(
            "field-mismatch",
            Some(seq),
            Some(serial),
            format!(
                "certificate {serial}: {} (row {seq})",
                differences.join("; ")
            ),
        );
    }
}
