//! The officer registry: officer client certificates and the roles they hold, known by the
//! issuer and serial of the certificate (the fingerprint is kept for operators only).

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::{AuditEvent, AuditSeal, Store, StoreError, audit};
use crate::ca::Serial;

/// Whether an officer certificate may still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OfficerStatus {
    Active,
    Revoked,
}

impl OfficerStatus {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            OfficerStatus::Active => "active",
            OfficerStatus::Revoked => "revoked",
        }
    }
    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "active" => Ok(OfficerStatus::Active),
            "revoked" => Ok(OfficerStatus::Revoked),
            other => Err(StoreError::Corrupt(format!(
                "unknown officer status `{other}`"
            ))),
        }
    }
}

/// One registered officer certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OfficerRecord {
    /// Certificate serial, canonical lower-case hex (`ca::Serial`).
    pub serial: String,
    /// The issuer DN as RFC 4514 text (the officers CA's subject).
    pub issuer: String,
    /// The configured CA that issued it (its CRL and OCSP answers carry the revocation).
    pub ca: String,
    /// SHA-256 of the certificate DER as issued, lower-case hex. Informational: the same
    /// certificate can be re-encoded with another fingerprint, so nothing is looked up by it.
    pub fingerprint: String,
    pub name: String,
    pub roles: Vec<String>,
    pub status: OfficerStatus,
    /// Unix seconds.
    pub created: i64,
    pub revoked: Option<i64>,
    /// The certificate's notAfter (Unix seconds): its CA keeps a CRL for it until then.
    pub not_after: i64,
}

/// `SELECT` of the columns [`from_row`] reads `FROM officers`, then `$rest`.
macro_rules! select_officers {
    ($rest:literal) => {
        concat!(
            "SELECT serial, issuer, ca, fingerprint, name, roles, status, created, revoked, not_after FROM officers",
            $rest
        )
    };
}

fn from_row(row: &AnyRow) -> Result<OfficerRecord, StoreError> {
    let roles: String = row.try_get("roles")?;
    Ok(OfficerRecord {
        serial: row.try_get("serial")?,
        issuer: row.try_get("issuer")?,
        ca: row.try_get("ca")?,
        fingerprint: row.try_get("fingerprint")?,
        name: row.try_get("name")?,
        roles: serde_json::from_str(&roles).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        status: OfficerStatus::parse(&row.try_get::<String, _>("status")?)?,
        created: row.try_get("created")?,
        revoked: row.try_get("revoked")?,
        not_after: row.try_get("not_after")?,
    })
}

async fn insert(
    pool: &AnyPool,
    seal: &AuditSeal,
    officer: &OfficerRecord,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    // The chain records what the registry gets, for `audit verify`'s cross-check.
    let event = event.with_fields(&[
        ("serial", officer.serial.clone().into()),
        ("status", officer.status.name().into()),
        ("roles", serde_json::json!(officer.roles)),
        ("ca", officer.ca.clone().into()),
    ]);
    let mut tx = pool.begin().await?;
    audit::append(&mut tx, seal, &event).await?;
    sqlx::query(
        "INSERT INTO officers (serial, issuer, fingerprint, name, roles, status, created, revoked, ca, not_after) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&officer.serial)
    .bind(&officer.issuer)
    .bind(&officer.fingerprint)
    .bind(&officer.name)
    .bind(serde_json::to_string(&officer.roles).unwrap_or_else(|_| "[]".into()))
    .bind(officer.status.name())
    .bind(officer.created)
    .bind(officer.revoked)
    .bind(&officer.ca)
    .bind(officer.not_after)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn by_fingerprint(
    pool: &AnyPool,
    fingerprint: &str,
) -> Result<Option<OfficerRecord>, StoreError> {
    let row = sqlx::query(select_officers!(" WHERE fingerprint = $1"))
        .bind(fingerprint)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

async fn by_certificate(
    pool: &AnyPool,
    issuer: &str,
    serial: &str,
) -> Result<Option<OfficerRecord>, StoreError> {
    let row = sqlx::query(select_officers!(" WHERE serial = $1 AND issuer = $2"))
        .bind(serial)
        .bind(issuer)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// (issuer, serial) of every revoked officer.
async fn revoked(pool: &AnyPool) -> Result<Vec<(String, String)>, StoreError> {
    let rows = sqlx::query("SELECT issuer, serial FROM officers WHERE status = 'revoked'")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("issuer")?, r.try_get("serial")?)))
        .collect()
}

/// Gives rows registered before issuers were recorded (empty issuer) the issuer `issuer`.
async fn adopt_legacy(pool: &AnyPool, issuer: &str) -> Result<u64, StoreError> {
    Ok(
        sqlx::query("UPDATE officers SET issuer = $1 WHERE issuer = ''")
            .bind(issuer)
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

async fn list(pool: &AnyPool) -> Result<Vec<OfficerRecord>, StoreError> {
    let rows = sqlx::query(select_officers!(" ORDER BY created, serial"))
        .fetch_all(pool)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Marks an officer revoked; `Ok(None)` when no such serial, the record (already revoked or
/// just now) otherwise. The audit row is written only when the status changes.
async fn revoke(
    pool: &AnyPool,
    seal: &AuditSeal,
    serial: &str,
    at: i64,
    event: &AuditEvent,
) -> Result<Option<OfficerRecord>, StoreError> {
    let mut tx = pool.begin().await?;
    let changed = sqlx::query("UPDATE officers SET status = 'revoked', revoked = $1 WHERE serial = $2 AND status = 'active'")
        .bind(at)
        .bind(serial)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let row = sqlx::query(select_officers!(" WHERE serial = $1"))
        .bind(serial)
        .fetch_optional(&mut *tx)
        .await?;
    let record = row.as_ref().map(from_row).transpose()?;
    if changed > 0
        && let Some(record) = &record
    {
        let event = event.with_fields(&[
            ("serial", serial.into()),
            ("status", OfficerStatus::Revoked.name().into()),
            ("ca", record.ca.clone().into()),
        ]);
        audit::append(&mut tx, seal, &event).await?;
        // The CRL of the CA that issued it must be re-issued.
        super::revocation::bump_revision(&mut tx, &record.ca).await?;
    }
    tx.commit().await?;
    Ok(record)
}

impl Store {
    /// Registers an officer certificate and records the audit event, in one transaction.
    pub async fn register_officer(
        &self,
        officer: &OfficerRecord,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        insert(&self.pool, &self.audit, officer, event).await
    }

    /// The officer holding the certificate with this issuer (RFC 4514 text) and serial: how a
    /// client certificate is looked up on every request.
    pub async fn officer_by_certificate(
        &self,
        issuer: &str,
        serial: &Serial,
    ) -> Result<Option<OfficerRecord>, StoreError> {
        by_certificate(&self.pool, issuer, serial.hex()).await
    }

    /// (issuer, serial) of every revoked officer certificate, for the TLS client verifier.
    pub async fn revoked_officer_certificates(&self) -> Result<Vec<(String, Serial)>, StoreError> {
        revoked(&self.pool)
            .await?
            .into_iter()
            .map(|(issuer, serial)| {
                Serial::parse(&serial)
                    .map(|s| (issuer, s))
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }

    /// Records `issuer` on officer rows registered before issuers were stored (migration
    /// 0006); returns how many rows it updated.
    pub async fn adopt_legacy_officers(&self, issuer: &str) -> Result<u64, StoreError> {
        adopt_legacy(&self.pool, issuer).await
    }

    /// The officer whose certificate, as issued, has this SHA-256 fingerprint (lower-case
    /// hex). For operators' look-ups only: a certificate can be re-encoded with another
    /// fingerprint, so identity checks use [`Store::officer_by_certificate`].
    pub async fn officer_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<OfficerRecord>, StoreError> {
        by_fingerprint(&self.pool, fingerprint).await
    }

    /// Every registered officer, oldest first.
    pub async fn officers(&self) -> Result<Vec<OfficerRecord>, StoreError> {
        list(&self.pool).await
    }

    /// Revokes an officer by certificate serial. `Ok(None)`: no such officer. The audit event
    /// is recorded only when the status changes.
    pub async fn revoke_officer(
        &self,
        serial: &Serial,
        at: i64,
        event: &AuditEvent,
    ) -> Result<Option<OfficerRecord>, StoreError> {
        revoke(&self.pool, &self.audit, serial.hex(), at, event).await
    }
}
