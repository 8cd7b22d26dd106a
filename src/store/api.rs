//! Narrow queries of the REST API: pages of certificates (filters and a keyset cursor over a
//! stable order) and idempotency keys.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, AssertSqlSafe, Row};

use super::records::{COLUMNS, from_row, like_literal};
use super::{CertificateRecord, CertificateStatus, StoreError};
use crate::ca::Serial;

/// Where a page starts: after the certificate created at `created_at` with `serial` (in the
/// listing order: newest first, then by serial).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    pub created_at: i64,
    pub serial: String,
}

/// Filters of a certificate listing. Times are Unix seconds, bounds inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateQuery {
    /// Case-insensitive substring of the subject DN.
    pub subject: Option<String>,
    pub serial: Option<Serial>,
    pub status: Option<CertificateStatus>,
    pub purpose: Option<String>,
    /// notBefore at or after / at or before.
    pub issued_after: Option<i64>,
    pub issued_before: Option<i64>,
    /// notAfter at or after / at or before.
    pub expiring_after: Option<i64>,
    pub expiring_before: Option<i64>,
    /// Continue after this certificate.
    pub after: Option<PageCursor>,
    /// Page size (at least 1).
    pub limit: u32,
}

/// One page of certificates and where the next one starts (`None`: this is the last).
#[derive(Debug, Clone)]
pub struct CertificatePage {
    pub certificates: Vec<CertificateRecord>,
    pub next: Option<PageCursor>,
}

/// An idempotency key of one caller, with the hash of the request it was first used for.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyKey<'a> {
    /// Whose key: the caller (officer) it belongs to.
    pub scope: &'a str,
    pub key: &'a str,
    /// SHA-256 of the request without its password, lower-case hex.
    pub request_hash: &'a str,
}

/// The token an idempotency key was used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentToken {
    pub token_id: String,
    pub request_hash: String,
    /// Serials of the token's certificates, sorted.
    pub serials: Vec<String>,
}

pub(super) async fn page(
    pool: &AnyPool,
    postgres: bool,
    query: &CertificateQuery,
) -> Result<CertificatePage, StoreError> {
    let sql = page_sql(postgres, query);
    let limit = query.limit.max(1);
    let rows = fetch_page(pool, sql, query, limit).await?;
    page_from_rows(&rows, limit)
}

/// The page's statement: one numbered placeholder per filter present, the cursor, the limit.
fn page_sql(postgres: bool, query: &CertificateQuery) -> String {
    let mut sql = format!("SELECT {COLUMNS}, created_at FROM certificates WHERE 1 = 1");
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if query.subject.is_some() {
        let like = if postgres { "ILIKE" } else { "LIKE" };
        sql += &format!(" AND subject {like} {} ESCAPE '\\'", next());
    }
    let comparisons = [
        (query.serial.is_some(), "serial ="),
        (query.status.is_some(), "status ="),
        (query.purpose.is_some(), "purpose ="),
        (query.issued_after.is_some(), "not_before >="),
        (query.issued_before.is_some(), "not_before <="),
        (query.expiring_after.is_some(), "not_after >="),
        (query.expiring_before.is_some(), "not_after <="),
    ];
    for (present, comparison) in comparisons {
        if present {
            sql += &format!(" AND {comparison} {}", next());
        }
    }
    if query.after.is_some() {
        let (a, b, c) = (next(), next(), next());
        sql += &format!(" AND (created_at < {a} OR (created_at = {b} AND serial > {c}))");
    }
    sql += &format!(" ORDER BY created_at DESC, serial LIMIT {}", next());
    sql
}

/// Binds the filters, the cursor and the limit in the order of [`page_sql`]'s placeholders,
/// and fetches up to `limit` + 1 rows.
async fn fetch_page(
    pool: &AnyPool,
    sql: String,
    query: &CertificateQuery,
    limit: u32,
) -> Result<Vec<AnyRow>, StoreError> {
    // Safe: `sql` is built from constant fragments and numbered placeholders only.
    let mut statement = sqlx::query(AssertSqlSafe(sql));
    if let Some(s) = &query.subject {
        statement = statement.bind(format!("%{}%", like_literal(s)));
    }
    if let Some(s) = &query.serial {
        statement = statement.bind(s.hex().to_string());
    }
    if let Some(s) = query.status {
        statement = statement.bind(s.name());
    }
    if let Some(p) = &query.purpose {
        statement = statement.bind(p.clone());
    }
    for bound in [
        query.issued_after,
        query.issued_before,
        query.expiring_after,
        query.expiring_before,
    ]
    .into_iter()
    .flatten()
    {
        statement = statement.bind(bound);
    }
    if let Some(cursor) = &query.after {
        statement = statement
            .bind(cursor.created_at)
            .bind(cursor.created_at)
            .bind(cursor.serial.clone());
    }
    // One more than asked tells whether another page follows.
    statement = statement.bind(i64::from(limit) + 1);
    Ok(statement.fetch_all(pool).await?)
}

/// The first `limit` rows as certificates; the cursor after the last of them when another
/// row follows.
fn page_from_rows(rows: &[AnyRow], limit: u32) -> Result<CertificatePage, StoreError> {
    let mut certificates = Vec::with_capacity(rows.len());
    let mut last = None;
    for row in rows.iter().take(limit as usize) {
        let record = from_row(row)?;
        last = Some(PageCursor {
            created_at: row.try_get("created_at")?,
            serial: record.serial.to_string(),
        });
        certificates.push(record);
    }
    let next = if rows.len() > limit as usize {
        last
    } else {
        None
    };
    Ok(CertificatePage { certificates, next })
}

pub(super) async fn idempotent_token(
    pool: &AnyPool,
    scope: &str,
    key: &str,
) -> Result<Option<IdempotentToken>, StoreError> {
    let Some(row) = sqlx::query(
        "SELECT token_id, request_hash FROM api_idempotency WHERE scope = $1 AND idempotency_key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let token_id: String = row.try_get("token_id")?;
    let serials =
        sqlx::query("SELECT serial FROM certificates WHERE token_id = $1 ORDER BY serial")
            .bind(&token_id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("serial"))
            .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(IdempotentToken {
        token_id,
        request_hash: row.try_get("request_hash")?,
        serials,
    }))
}

/// Inserts the key inside the issuance transaction; a key already there (this caller used it
/// before, or a concurrent request just did) fails the whole transaction.
pub(super) async fn insert_key(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    key: &IdempotencyKey<'_>,
    token_id: &str,
    created_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO api_idempotency (scope, idempotency_key, request_hash, token_id, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(key.scope)
    .bind(key.key)
    .bind(key.request_hash)
    .bind(token_id)
    .bind(created_at)
    .execute(&mut **tx)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db)
            if db.is_unique_violation()
                && (db.constraint() == Some("api_idempotency_pkey")
                    || db.message().contains("api_idempotency")) =>
        {
            StoreError::DuplicateIdempotencyKey
        }
        _ => StoreError::Database(e),
    })?;
    Ok(())
}

impl super::Store {
    /// Records that `scope` (the officer) had the signed body with this SHA-256 accepted, until
    /// `expires_at` (Unix seconds; rows expired before `now` are deleted first). `Ok(false)`:
    /// the same body was accepted before and has not expired (a replay).
    pub async fn claim_signed_body(
        &self,
        scope: &str,
        body_sha256: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut connection = self.connection().await?;
        self.bounded(async {
            sqlx::query("DELETE FROM signed_bodies WHERE expires_at < $1")
                .bind(now)
                .execute(&mut *connection)
                .await?;
            let inserted = sqlx::query(
                "INSERT INTO signed_bodies (scope, body_sha256, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (scope, body_sha256) DO NOTHING",
            )
            .bind(scope)
            .bind(body_sha256)
            .bind(expires_at)
            .execute(&mut *connection)
            .await?
            .rows_affected();
            Ok(inserted == 1)
        })
        .await
    }
}
