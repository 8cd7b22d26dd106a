//! Merging one batch of an import into `imported_certificates`, inside the batch's transaction:
//! what the batch's serials already are is read with two queries (issued here? imported
//! before?), new rows are inserted many per statement, and only known serials take a statement
//! each — so a batch costs a handful of round trips, not three per row (PostgreSQL over a
//! network). The statements are built from placeholders only (`$n`); every value is bound.

use std::collections::{HashMap, HashSet};

use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use super::super::StoreError;
use super::super::revocation::HOLD;
use super::{ImportOutcome, ImportRow, ImportedRevocation};

/// Rows per multi-row INSERT (12 parameters each: well under SQLite's and PostgreSQL's limits).
const INSERT_CHUNK: usize = 100;
/// Serials per `IN (…)` lookup.
const LOOKUP_CHUNK: usize = 500;

/// The stored row of a serial, as far as the merge needs it.
pub(super) struct Existing {
    pub sha256: Option<String>,
    pub status: String,
    pub reason: Option<String>,
}

impl Existing {
    fn of(row: &ImportRow) -> Existing {
        Existing {
            sha256: row.certificate.as_ref().map(|c| c.sha256.clone()),
            status: if row.revocation.is_some() {
                "revoked".into()
            } else {
                "good".into()
            },
            reason: row.revocation.as_ref().and_then(|r| r.reason.clone()),
        }
    }
}

/// Merges `rows` into the history of `ca`: one outcome per row, in order.
pub(super) async fn merge_batch(
    tx: &mut Transaction<'_, Any>,
    ca: &str,
    source: &str,
    rows: &[ImportRow],
    now: i64,
) -> Result<Vec<ImportOutcome>, StoreError> {
    let serials: Vec<&str> = rows.iter().map(|r| r.serial.as_str()).collect();
    let issued_here = issued_here(tx, ca, &serials).await?;
    let mut known = existing_many(tx, ca, &serials).await?;
    let mut pending: Vec<&ImportRow> = Vec::new();
    let mut outcomes = Vec::with_capacity(rows.len());
    for row in rows {
        if issued_here.contains(&row.serial) {
            outcomes.push(ImportOutcome::Refused(
                "issued-here",
                format!(
                    "serial {} was issued by this gateway; it is not history",
                    row.serial
                ),
            ));
            continue;
        }
        match known.get_mut(&row.serial) {
            None => {
                known.insert(row.serial.clone(), Existing::of(row));
                pending.push(row);
                outcomes.push(ImportOutcome::Imported);
            }
            Some(old) => {
                // The same serial twice in one batch: its first row is written first.
                if pending.iter().any(|p| p.serial == row.serial) {
                    insert_many(tx, ca, source, &pending, now).await?;
                    pending.clear();
                }
                outcomes.push(merge_known(tx, ca, row, old).await?);
            }
        }
    }
    insert_many(tx, ca, source, &pending, now).await?;
    Ok(outcomes)
}

/// `IN ($2, $3, …)` for `n` values after the first parameter.
fn placeholders(n: usize) -> String {
    (0..n)
        .map(|i| format!("${}", i + 2))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The serials of `serials` that this gateway issued from `ca`.
async fn issued_here(
    tx: &mut Transaction<'_, Any>,
    ca: &str,
    serials: &[&str],
) -> Result<HashSet<String>, StoreError> {
    let mut out = HashSet::new();
    for chunk in serials.chunks(LOOKUP_CHUNK) {
        let sql = format!(
            "SELECT serial FROM certificates WHERE ca = $1 AND serial IN ({})",
            placeholders(chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(ca);
        for serial in chunk {
            query = query.bind(*serial);
        }
        for row in query.fetch_all(&mut **tx).await? {
            out.insert(row.try_get::<String, _>(0)?);
        }
    }
    Ok(out)
}

/// The stored rows of `serials` in the history of `ca`.
async fn existing_many(
    tx: &mut Transaction<'_, Any>,
    ca: &str,
    serials: &[&str],
) -> Result<HashMap<String, Existing>, StoreError> {
    let mut out = HashMap::new();
    for chunk in serials.chunks(LOOKUP_CHUNK) {
        let sql = format!(
            "SELECT serial, sha256, status, revocation_reason FROM imported_certificates \
             WHERE ca = $1 AND serial IN ({})",
            placeholders(chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(ca);
        for serial in chunk {
            query = query.bind(*serial);
        }
        for row in query.fetch_all(&mut **tx).await? {
            out.insert(
                row.try_get(0)?,
                Existing {
                    sha256: row.try_get(1)?,
                    status: row.try_get(2)?,
                    reason: row.try_get(3)?,
                },
            );
        }
    }
    Ok(out)
}

/// The stored row of one serial.
pub(super) async fn existing(
    tx: &mut Transaction<'_, Any>,
    ca: &str,
    serial: &str,
) -> Result<Option<Existing>, StoreError> {
    Ok(existing_many(tx, ca, &[serial]).await?.remove(serial))
}

/// Merges a row whose serial is known: completes its certificate, adds a newer revocation, or
/// refuses different contents. `old` is updated to what is stored afterwards.
async fn merge_known(
    tx: &mut Transaction<'_, Any>,
    ca: &str,
    row: &ImportRow,
    old: &mut Existing,
) -> Result<ImportOutcome, StoreError> {
    let mut changed = false;
    if let Some(cert) = &row.certificate {
        match &old.sha256 {
            Some(sha) if *sha != cert.sha256 => {
                return Ok(ImportOutcome::Refused(
                    "conflict",
                    format!(
                        "serial {} is already imported with different contents (SHA-256 {sha}, this one {})",
                        row.serial, cert.sha256
                    ),
                ));
            }
            Some(_) => {}
            None => {
                sqlx::query(
                    "UPDATE imported_certificates SET subject = $1, not_after = $2, der = $3, sha256 = $4 \
                     WHERE ca = $5 AND serial = $6",
                )
                .bind(&cert.subject)
                .bind(cert.not_after)
                .bind(cert.der.clone())
                .bind(&cert.sha256)
                .bind(ca)
                .bind(&row.serial)
                .execute(&mut **tx)
                .await?;
                old.sha256 = Some(cert.sha256.clone());
                changed = true;
            }
        }
    }
    if let Some(revocation) = &row.revocation {
        // A revocation is never undone by an import; one on hold may become permanent.
        let on_hold = old.reason.as_deref() == Some(HOLD);
        let newer = old.status != "revoked"
            || (on_hold && revocation.reason.as_deref().is_some_and(|r| r != HOLD));
        if newer {
            set_revoked(tx, ca, &row.serial, revocation).await?;
            old.status = "revoked".into();
            old.reason = revocation.reason.clone();
            changed = true;
        }
    }
    Ok(if changed {
        ImportOutcome::Updated
    } else {
        ImportOutcome::AlreadyThere
    })
}

/// Inserts new rows, [`INSERT_CHUNK`] per statement.
pub(super) async fn insert_many(
    tx: &mut Transaction<'_, Any>,
    ca: &str,
    source: &str,
    rows: &[&ImportRow],
    now: i64,
) -> Result<(), StoreError> {
    const COLUMNS: usize = 12;
    for chunk in rows.chunks(INSERT_CHUNK) {
        let values: Vec<String> = (0..chunk.len())
            .map(|r| {
                let cells: Vec<String> = (1..=COLUMNS)
                    .map(|c| format!("${}", r * COLUMNS + c))
                    .collect();
                format!("({})", cells.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO imported_certificates (ca, serial, subject, not_after, status, revoked_at, \
             revocation_reason, invalidity_date, sha256, der, source, imported_at) VALUES {}",
            values.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for row in chunk {
            let cert = row.certificate.as_ref();
            let revocation = row.revocation.as_ref();
            query = query
                .bind(ca)
                .bind(&row.serial)
                .bind(cert.map(|c| c.subject.clone()))
                .bind(cert.map(|c| c.not_after))
                .bind(if revocation.is_some() {
                    "revoked"
                } else {
                    "good"
                })
                .bind(revocation.map(|r| r.revoked_at))
                .bind(revocation.and_then(|r| r.reason.clone()))
                .bind(revocation.and_then(|r| r.invalidity_date))
                .bind(cert.map(|c| c.sha256.clone()))
                .bind(cert.map(|c| c.der.clone()))
                .bind(source)
                .bind(now);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Marks a known serial revoked.
pub(super) async fn set_revoked(
    tx: &mut Transaction<'_, Any>,
    ca: &str,
    serial: &str,
    revocation: &ImportedRevocation,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE imported_certificates SET status = 'revoked', revoked_at = $1, revocation_reason = $2, \
         invalidity_date = $3 WHERE ca = $4 AND serial = $5",
    )
    .bind(revocation.revoked_at)
    .bind(revocation.reason.clone())
    .bind(revocation.invalidity_date)
    .bind(ca)
    .bind(serial)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
