//! Token and certificate records.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, AssertSqlSafe, Row};

use super::StoreError;

/// A delivered (or about to be delivered) token.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: String,
    pub created_at: i64,
    pub handler: String,
    pub token_procedure: String,
    /// Officer certificate fingerprint or proxy address.
    pub caller: String,
    pub request_id: String,
    pub profile: String,
}

/// Certificate status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CertificateStatus {
    Good,
    Revoked,
}

impl CertificateStatus {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            CertificateStatus::Good => "good",
            CertificateStatus::Revoked => "revoked",
        }
    }
    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "good" => Ok(CertificateStatus::Good),
            "revoked" => Ok(CertificateStatus::Revoked),
            other => Err(StoreError::Corrupt(format!(
                "unknown certificate status `{other}`"
            ))),
        }
    }
}

/// One issued certificate, as stored.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRecord {
    /// Lower-case hex (as stored and shown), even length, no sign padding.
    pub serial: crate::ca::Serial,
    /// The CA's configured name.
    pub ca: String,
    /// Issuer DN.
    pub issuer: String,
    /// Subject DN.
    pub subject: String,
    pub sans: Vec<String>,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    pub purpose: String,
    pub token_id: String,
    pub status: CertificateStatus,
    pub revoked_at: Option<i64>,
    /// RFC 5280 reason (`certificateHold` while on hold).
    pub revocation_reason: Option<crate::ca::RevocationReason>,
    #[serde(skip)]
    pub der: Vec<u8>,
}

/// Listing filter.
#[derive(Debug, Clone, Default)]
pub struct CertificateFilter {
    /// Substring of the subject.
    pub subject: Option<String>,
    pub status: Option<CertificateStatus>,
    pub token_id: Option<String>,
    /// Only certificates whose notAfter lies in `(from, until]` (Unix seconds), soonest first.
    pub expiring: Option<(i64, i64)>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

pub(super) const COLUMNS: &str = "serial, ca, issuer, subject, sans, not_before, not_after, purpose, token_id, status, \
                       revoked_at, revocation_reason, der";

pub(super) fn from_row(row: &AnyRow) -> Result<CertificateRecord, StoreError> {
    let sans: String = row.try_get("sans")?;
    Ok(CertificateRecord {
        serial: crate::ca::Serial::parse(&row.try_get::<String, _>("serial")?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        ca: row.try_get("ca")?,
        issuer: row.try_get("issuer")?,
        subject: row.try_get("subject")?,
        sans: serde_json::from_str(&sans).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        not_before: row.try_get("not_before")?,
        not_after: row.try_get("not_after")?,
        purpose: row.try_get("purpose")?,
        token_id: row.try_get("token_id")?,
        status: CertificateStatus::parse(&row.try_get::<String, _>("status")?)?,
        revoked_at: row.try_get("revoked_at")?,
        revocation_reason: row
            .try_get::<Option<String>, _>("revocation_reason")?
            .map(|r| r.parse().map_err(StoreError::Corrupt))
            .transpose()?,
        der: row.try_get("der")?,
    })
}

pub(super) async fn get(
    pool: &AnyPool,
    serial: &str,
) -> Result<Option<CertificateRecord>, StoreError> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM certificates WHERE serial = $1"
    )))
    .bind(serial)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn list(
    pool: &AnyPool,
    postgres: bool,
    filter: &CertificateFilter,
) -> Result<Vec<CertificateRecord>, StoreError> {
    let mut sql = format!("SELECT {COLUMNS} FROM certificates WHERE 1 = 1");
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if filter.subject.is_some() {
        // ILIKE on PostgreSQL; SQLite's LIKE ignores ASCII case already. A backslash escapes `%`,
        // `_` and itself on both, so the text is matched literally.
        let like = if postgres { "ILIKE" } else { "LIKE" };
        sql += &format!(" AND subject {like} {} ESCAPE '\\'", next());
    }
    if filter.status.is_some() {
        sql += &format!(" AND status = {}", next());
    }
    if filter.token_id.is_some() {
        sql += &format!(" AND token_id = {}", next());
    }
    if filter.expiring.is_some() {
        sql += &format!(" AND not_after > {} AND not_after <= {}", next(), next());
    }
    let order = if filter.expiring.is_some() {
        "not_after, serial"
    } else {
        "created_at DESC, serial"
    };
    sql += &format!(" ORDER BY {order} LIMIT {} OFFSET {}", next(), next());
    // Safe: `sql` is built from constant fragments and numbered placeholders only.
    let mut query = sqlx::query(AssertSqlSafe(sql));
    if let Some(s) = &filter.subject {
        query = query.bind(format!("%{}%", like_literal(s)));
    }
    if let Some(s) = filter.status {
        query = query.bind(s.name());
    }
    if let Some(t) = &filter.token_id {
        query = query.bind(t.clone());
    }
    if let Some((from, until)) = filter.expiring {
        query = query.bind(from).bind(until);
    }
    query = query
        .bind(filter.limit.unwrap_or(1000))
        .bind(filter.offset.unwrap_or(0));
    query.fetch_all(pool).await?.iter().map(from_row).collect()
}

/// Number of good (unrevoked) certificates whose notAfter lies in `(from, until]`.
pub(super) async fn count_expiring(
    pool: &AnyPool,
    from: i64,
    until: i64,
) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) FROM certificates WHERE status = $1 AND not_after > $2 AND not_after <= $3",
    )
    .bind(CertificateStatus::Good.name())
    .bind(from)
    .bind(until)
    .fetch_one(pool)
    .await?;
    Ok(row.try_get::<i64, _>(0)?)
}

/// The certificates one CA issued, as far as the store knows: those of the certificates table
/// and the officer certificates of the officer registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaUsage {
    pub ca: String,
    /// Certificates whose notAfter lies after `now` (revoked ones included: they stay on the
    /// CRL until they expire).
    pub unexpired: i64,
    /// Every certificate ever issued.
    pub total: i64,
    /// The latest notAfter (Unix seconds).
    pub last_not_after: i64,
}

pub(super) async fn ca_usage(pool: &AnyPool, now: i64) -> Result<Vec<CaUsage>, StoreError> {
    let rows = sqlx::query(
        "SELECT ca, SUM(CASE WHEN not_after > $1 THEN 1 ELSE 0 END), COUNT(*), MAX(not_after) \
         FROM (SELECT ca, not_after FROM certificates UNION ALL SELECT ca, not_after FROM officers) AS issued \
         GROUP BY ca ORDER BY ca",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(CaUsage {
                ca: row.try_get(0)?,
                unexpired: row.try_get(1)?,
                total: row.try_get(2)?,
                last_not_after: row.try_get(3)?,
            })
        })
        .collect()
}

/// Escapes backslash, `%` and `_` for a `LIKE … ESCAPE` pattern whose escape is a backslash.
pub(super) fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Inserts a token row and its certificate rows in `tx` (the caller has appended the audit
/// row first and commits). A serial already taken is [`StoreError::DuplicateSerial`].
pub(super) async fn insert_issuance(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    token: &TokenRecord,
    certificates: &[CertificateRecord],
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tokens (id, created_at, handler, token_procedure, caller, request_id, profile) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&token.id)
    .bind(token.created_at)
    .bind(&token.handler)
    .bind(&token.token_procedure)
    .bind(&token.caller)
    .bind(&token.request_id)
    .bind(&token.profile)
    .execute(&mut **tx)
    .await?;
    for c in certificates {
        // New serials never take one of a CA's imported history (checked, not just improbable).
        if super::import::serial_taken(tx, c.serial.hex()).await? {
            return Err(StoreError::DuplicateSerial(c.serial.to_string()));
        }
        sqlx::query(
            "INSERT INTO certificates (serial, ca, issuer, subject, sans, not_before, not_after, purpose, \
             token_id, status, revoked_at, revocation_reason, der, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, $11, $12)",
        )
        .bind(c.serial.hex())
        .bind(&c.ca)
        .bind(&c.issuer)
        .bind(&c.subject)
        .bind(serde_json::to_string(&c.sans).unwrap_or_else(|_| "[]".into()))
        .bind(c.not_before)
        .bind(c.not_after)
        .bind(&c.purpose)
        .bind(&c.token_id)
        .bind(c.status.name())
        .bind(c.der.clone())
        .bind(token.created_at)
        .execute(&mut **tx)
        .await
        .map_err(|e| super::duplicate_serial(e, c.serial.hex()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_escapes() {
        assert_eq!(like_literal("a%b_c\\d"), "a\\%b\\_c\\\\d");
        assert_eq!(like_literal("Alice"), "Alice");
    }
}
