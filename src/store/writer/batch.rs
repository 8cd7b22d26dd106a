//! A batch in a handful of statements, whatever its size: the audit rows of the whole batch in
//! one INSERT (the head advanced once), the token rows in one, the certificate rows in one; on
//! SQLite, several statements per round trip, four trips per batch in all.
//!
//! Why: every statement is a round trip to the database (on SQLite, to sqlx's worker thread:
//! two thread switches), and writing row by row made the store a fifth of a served token's CPU.
//! The rows, their order and the audit chain are exactly what `audit::append` and
//! `records::insert_issuance` write one at a time; those stay the path that finds *which*
//! issuance of a batch holds a duplicate serial (a multi-row INSERT cannot say), taken only when
//! this one reports a collision.

use std::collections::HashSet;
use std::fmt::Write as _;

// The statements are built from fixed table and column names and numbered placeholders only:
// every value is bound.
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use super::IssuanceRecord;
use crate::store::audit::SealedRow;
use crate::store::{AuditEvent, AuditSeal, CertificateRecord, StoreError};

/// Rows per INSERT statement: far below PostgreSQL's 65 535 and SQLite's 32 766 bound
/// parameters for the widest table (12 per certificate row).
const ROWS_PER_STATEMENT: usize = 256;

/// Why a batch could not be written.
pub(super) enum BatchError {
    /// The issuance at this index (a serial the imported history or an earlier issuance of the
    /// same batch holds).
    At(usize, StoreError),
    /// A serial already in `certificates`, of an issuance the statement does not name.
    DuplicateSerial,
    /// Anything else.
    Batch(StoreError),
}

impl From<sqlx::Error> for BatchError {
    fn from(e: sqlx::Error) -> Self {
        BatchError::Batch(StoreError::Database(e))
    }
}

/// `INSERT INTO table (columns) VALUES ($n, …), (…)` for `rows` rows of `columns.len()`
/// parameters each, numbered from `first`; `constant` columns after them take a literal SQL
/// value in every row.
fn insert_sql(
    table: &str,
    columns: &[&str],
    rows: usize,
    constant: &[(&str, &str)],
    first: usize,
) -> String {
    let width = columns.len();
    let mut sql = format!("INSERT INTO {table} (");
    let names = columns.iter().chain(constant.iter().map(|(name, _)| name));
    for (i, name) in names.enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(name);
    }
    sql.push_str(") VALUES ");
    for row in 0..rows {
        sql.push_str(if row > 0 { ", (" } else { "(" });
        for column in 0..width {
            if column > 0 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "${}", first + row * width + column);
        }
        for (_, value) in constant {
            let _ = write!(sql, ", {value}");
        }
        sql.push(')');
    }
    sql
}

/// `$first, $first+1, …` for `count` parameters.
fn placeholders(first: usize, count: usize) -> String {
    let mut list = String::new();
    for i in 0..count {
        let _ = write!(list, "{}${}", if i > 0 { ", " } else { "" }, first + i);
    }
    list
}

const AUDIT_COLUMNS: [&str; 9] = [
    "seq",
    "at",
    "event",
    "actor",
    "request_id",
    "detail",
    "prev_hash",
    "hash",
    "mac",
];
const TOKEN_COLUMNS: [&str; 7] = [
    "id",
    "created_at",
    "handler",
    "token_procedure",
    "caller",
    "request_id",
    "profile",
];
const CERTIFICATE_COLUMNS: [&str; 12] = [
    "serial",
    "ca",
    "issuer",
    "subject",
    "sans",
    "not_before",
    "not_after",
    "purpose",
    "token_id",
    "status",
    "der",
    "created_at",
];
const NULL_COLUMNS: [(&str, &str); 2] = [("revoked_at", "NULL"), ("revocation_reason", "NULL")];

/// Statements per round trip: SQLite runs several statements of one query in one trip to its
/// worker thread (binding `$n` across them); PostgreSQL prepares one statement at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trips {
    /// Four round trips whatever the batch: begin; the head and the imported-history check;
    /// every row; commit.
    Joined,
    /// One statement per round trip (and per chunk of rows).
    Separate,
}

/// The rows of a batch in the caller's transaction: the audit rows of `events` in order,
/// chained as `audit::append` would one by one (the head row is advanced by all of them
/// first, taking its lock, as `append` does), then the token and certificate rows of
/// `records`. A serial of the imported history, or one drawn twice within the batch, fails that
/// issuance (`At`); one already in `certificates` fails the statement (`DuplicateSerial`).
pub(super) async fn write_rows(
    tx: &mut Transaction<'_, Any>,
    seal: &AuditSeal,
    events: &[&AuditEvent],
    records: &[&IssuanceRecord],
    trips: Trips,
) -> Result<(), BatchError> {
    let owner = certificates_of(records)?;
    let joined = trips == Trips::Joined
        && events.len() * AUDIT_COLUMNS.len()
            + records.len() * TOKEN_COLUMNS.len()
            + owner.len() * CERTIFICATE_COLUMNS.len()
            < MAX_JOINED_PARAMETERS;
    // The head (and, joined, the imported history in the same trip).
    let count = events.len() as i64;
    let mut sql = String::new();
    if !events.is_empty() {
        sql.push_str("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash");
    }
    let check_imported = joined && !owner.is_empty();
    if check_imported {
        if !sql.is_empty() {
            sql.push_str("; ");
        }
        let first = if events.is_empty() { 1 } else { 2 };
        let _ = write!(
            sql,
            "SELECT serial FROM imported_certificates WHERE serial IN ({})",
            placeholders(first, owner.len())
        );
    }
    let mut head = None;
    let mut imported = None;
    if !sql.is_empty() {
        let mut query = sqlx::query(AssertSqlSafe(sql));
        if !events.is_empty() {
            query = query.bind(count);
        }
        if check_imported {
            for (_, certificate) in &owner {
                query = query.bind(certificate.serial.hex());
            }
        }
        for row in query.fetch_all(&mut **tx).await? {
            if row.columns().len() == 2 {
                head = Some((row.try_get::<i64, _>(0)?, row.try_get::<String, _>(1)?));
            } else if imported.is_none() {
                imported = Some(row.try_get::<String, _>(0)?);
            }
        }
    }
    if !check_imported {
        imported = imported_serial(tx, &owner).await?;
    }
    if let Some(taken) = imported
        && let Some((index, certificate)) = owner.iter().find(|(_, c)| c.serial.hex() == taken)
    {
        return Err(BatchError::At(
            *index,
            StoreError::DuplicateSerial(certificate.serial.to_string()),
        ));
    }
    let rows = match head {
        Some((last, prev)) => chain(seal, events, last, prev),
        None if events.is_empty() => Vec::new(),
        None => return Err(sqlx::Error::RowNotFound.into()),
    };
    if joined {
        insert_joined(tx, &rows, records, &owner).await
    } else {
        insert_separate(tx, &rows, records, &owner).await
    }
}

/// Parameters of one joined statement list, below SQLite's 32 766; a larger batch (a large
/// `write_batch`) takes the separate statements.
const MAX_JOINED_PARAMETERS: usize = 30_000;

/// Each certificate of `records` with the index of its issuance; a serial drawn twice within
/// the batch fails the later issuance.
fn certificates_of<'r>(
    records: &[&'r IssuanceRecord],
) -> Result<Vec<(usize, &'r CertificateRecord)>, BatchError> {
    let mut owner = Vec::new();
    let mut seen = HashSet::new();
    for (index, record) in records.iter().enumerate() {
        for certificate in &record.certificates {
            if !seen.insert(certificate.serial.hex()) {
                return Err(BatchError::At(
                    index,
                    StoreError::DuplicateSerial(certificate.serial.to_string()),
                ));
            }
            owner.push((index, certificate));
        }
    }
    Ok(owner)
}

/// A serial of `owner` that the imported history holds (new serials never take one of a CA's
/// imported history: checked, not just improbable).
async fn imported_serial(
    tx: &mut Transaction<'_, Any>,
    owner: &[(usize, &CertificateRecord)],
) -> Result<Option<String>, BatchError> {
    for chunk in owner.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "SELECT serial FROM imported_certificates WHERE serial IN ({})",
            placeholders(1, chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (_, certificate) in chunk {
            query = query.bind(certificate.serial.hex());
        }
        if let Some(row) = query.fetch_optional(&mut **tx).await? {
            return Ok(Some(row.try_get(0)?));
        }
    }
    Ok(None)
}

/// The audit rows of `events`, chained from the head before them (`last` is the head's new
/// `seq`, `prev` the hash of the row before the first).
fn chain<'e>(
    seal: &AuditSeal,
    events: &[&'e AuditEvent],
    last: i64,
    mut prev: String,
) -> Vec<SealedRow<'e>> {
    let first = last - events.len() as i64 + 1;
    let mut rows = Vec::with_capacity(events.len());
    for (seq, event) in (first..).zip(events) {
        let row = SealedRow::new(seal, event, seq, prev);
        prev = row.hash.clone();
        rows.push(row);
    }
    rows
}

type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

fn bind_audit<'q>(query: AnyQuery<'q>, row: &'q SealedRow<'_>) -> AnyQuery<'q> {
    query
        .bind(row.seq)
        .bind(row.event.at)
        .bind(row.event.event.as_str())
        .bind(row.actor.as_str())
        .bind(row.request_id.as_str())
        .bind(row.detail.as_str())
        .bind(row.prev.as_str())
        .bind(row.hash.as_str())
        .bind(row.mac.as_deref())
}

fn bind_token<'q>(query: AnyQuery<'q>, record: &'q IssuanceRecord) -> AnyQuery<'q> {
    let token = &record.token;
    query
        .bind(token.id.as_str())
        .bind(token.created_at)
        .bind(token.handler.as_str())
        .bind(token.token_procedure.as_str())
        .bind(token.caller.as_str())
        .bind(token.request_id.as_str())
        .bind(token.profile.as_str())
}

fn bind_certificate<'q>(
    query: AnyQuery<'q>,
    c: &'q CertificateRecord,
    created_at: i64,
) -> AnyQuery<'q> {
    query
        .bind(c.serial.hex())
        .bind(c.ca.as_str())
        .bind(c.issuer.as_str())
        .bind(c.subject.as_str())
        .bind(serde_json::to_string(&c.sans).unwrap_or_else(|_| "[]".into()))
        .bind(c.not_before)
        .bind(c.not_after)
        .bind(c.purpose.as_str())
        .bind(c.token_id.as_str())
        .bind(c.status.name())
        .bind(c.der.as_slice())
        .bind(created_at)
}

/// A unique violation on a certificate's serial, of an issuance the statement does not name.
fn certificate_error(e: sqlx::Error) -> BatchError {
    match crate::store::duplicate_serial(e, "") {
        StoreError::DuplicateSerial(_) => BatchError::DuplicateSerial,
        other => BatchError::Batch(other),
    }
}

/// Every row in one query: the audit rows, the head's hash, the tokens, the certificates.
async fn insert_joined(
    tx: &mut Transaction<'_, Any>,
    rows: &[SealedRow<'_>],
    records: &[&IssuanceRecord],
    owner: &[(usize, &CertificateRecord)],
) -> Result<(), BatchError> {
    let mut sql = String::new();
    let mut next = 1;
    if !rows.is_empty() {
        sql.push_str(&insert_sql("audit", &AUDIT_COLUMNS, rows.len(), &[], next));
        next += rows.len() * AUDIT_COLUMNS.len();
        let _ = write!(sql, "; UPDATE audit_head SET hash = ${next} WHERE id = 1");
        next += 1;
    }
    if !records.is_empty() {
        if !sql.is_empty() {
            sql.push_str("; ");
        }
        sql.push_str(&insert_sql(
            "tokens",
            &TOKEN_COLUMNS,
            records.len(),
            &[],
            next,
        ));
        next += records.len() * TOKEN_COLUMNS.len();
    }
    if !owner.is_empty() {
        sql.push_str("; ");
        sql.push_str(&insert_sql(
            "certificates",
            &CERTIFICATE_COLUMNS,
            owner.len(),
            &NULL_COLUMNS,
            next,
        ));
    }
    if sql.is_empty() {
        return Ok(());
    }
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for row in rows {
        query = bind_audit(query, row);
    }
    if let Some(last) = rows.last() {
        query = query.bind(last.hash.as_str());
    }
    for record in records {
        query = bind_token(query, record);
    }
    for (index, certificate) in owner {
        query = bind_certificate(query, certificate, records[*index].token.created_at);
    }
    query.execute(&mut **tx).await.map_err(certificate_error)?;
    Ok(())
}

/// The rows in one statement per table (per chunk of rows).
async fn insert_separate(
    tx: &mut Transaction<'_, Any>,
    rows: &[SealedRow<'_>],
    records: &[&IssuanceRecord],
    owner: &[(usize, &CertificateRecord)],
) -> Result<(), BatchError> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = insert_sql("audit", &AUDIT_COLUMNS, chunk.len(), &[], 1);
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for row in chunk {
            query = bind_audit(query, row);
        }
        query.execute(&mut **tx).await?;
    }
    if let Some(last) = rows.last() {
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
            .bind(last.hash.as_str())
            .execute(&mut **tx)
            .await?;
    }
    for chunk in records.chunks(ROWS_PER_STATEMENT) {
        let sql = insert_sql("tokens", &TOKEN_COLUMNS, chunk.len(), &[], 1);
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for record in chunk {
            query = bind_token(query, record);
        }
        query.execute(&mut **tx).await?;
    }
    for chunk in owner.chunks(ROWS_PER_STATEMENT) {
        let sql = insert_sql(
            "certificates",
            &CERTIFICATE_COLUMNS,
            chunk.len(),
            &NULL_COLUMNS,
            1,
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (index, certificate) in chunk {
            query = bind_certificate(query, certificate, records[*index].token.created_at);
        }
        query.execute(&mut **tx).await.map_err(certificate_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::insert_sql;

    #[test]
    fn placeholders_are_numbered_across_rows_and_constants_repeat() {
        let sql = insert_sql("t", &["a", "b"], 2, &[("c", "NULL")], 5);
        assert_eq!(
            sql,
            "INSERT INTO t (a, b, c) VALUES ($5, $6, NULL), ($7, $8, NULL)"
        );
    }
}
