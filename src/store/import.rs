//! A CA's history from before this gateway (`imported_certificates`): certificates and
//! revocations brought in by `certs import` / `ca import-crl`, written a batch per transaction
//! with one chained audit row per batch; and CA certificates one of our CAs issued, recorded
//! when one is revoked. The CRL and OCSP of the CA read them beside the `certificates` table.

use sqlx::{Any, Connection, Row, Transaction};

use serde_json::json;

use super::revocation::{HOLD, RevokedEntry, bump_revision, ensure_row};

mod merge;
use super::{AuditEvent, Store, StoreError, audit};

/// One certificate or revocation of an import.
#[derive(Debug, Clone, Default)]
pub struct ImportRow {
    /// Canonical lower-case hex.
    pub serial: String,
    /// The certificate, when seen (`None`: a revocation-only row).
    pub certificate: Option<ImportedCertificate>,
    pub revocation: Option<ImportedRevocation>,
}

/// The certificate of an [`ImportRow`].
#[derive(Debug, Clone)]
pub struct ImportedCertificate {
    pub subject: String,
    /// Unix seconds.
    pub not_after: i64,
    pub der: Vec<u8>,
    /// SHA-256 of `der`, lower-case hex.
    pub sha256: String,
}

/// A revocation of an [`ImportRow`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedRevocation {
    /// Unix seconds.
    pub revoked_at: i64,
    /// RFC 5280 name; `None` when the source gave none.
    pub reason: Option<String>,
    pub invalidity_date: Option<i64>,
}

/// What the import did with one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// New.
    Imported,
    /// Known, and completed (the certificate of a revocation-only row, or a new revocation).
    Updated,
    /// Known with the same contents: nothing written.
    AlreadyThere,
    /// Refused: the reason code and a message.
    Refused(&'static str, String),
}

/// The status of a serial in a CA's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedStatus {
    pub revocation: Option<ImportedRevocation>,
}

impl Store {
    /// Writes one batch of an import for `ca` in one transaction: each row is merged (new,
    /// completed, already there, or refused), `event` gets the counts and is appended to the
    /// audit chain, the CA's revocation revision moves when anything changed, and the CA's CRL
    /// number is raised to `crl_number` when given (a later CRL then numbers above it).
    pub async fn import_batch(
        &self,
        ca: &str,
        source: &str,
        rows: &[ImportRow],
        crl_number: Option<i64>,
        event: &AuditEvent,
        now: i64,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        let mut connection = self.connection().await?;
        self.bounded(async {
            let mut tx = connection.begin().await?;
            let outcomes = merge::merge_batch(&mut tx, ca, source, rows, now).await?;
            let count = |wanted: &ImportOutcome| outcomes.iter().filter(|o| *o == wanted).count();
            let (imported, updated) = (
                count(&ImportOutcome::Imported),
                count(&ImportOutcome::Updated),
            );
            let mut raised = false;
            if let Some(number) = crl_number {
                ensure_row(&mut tx, ca).await?;
                raised = sqlx::query(
                    "UPDATE crl_state SET crl_number = $1 WHERE ca = $2 AND crl_number < $1",
                )
                .bind(number)
                .bind(ca)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    > 0;
            }
            if imported + updated > 0 || raised {
                bump_revision(&mut tx, ca).await?;
            }
            let refused: Vec<_> = outcomes
                .iter()
                .filter_map(|o| match o {
                    ImportOutcome::Refused(code, message) => {
                        Some(json!({"code": code, "message": message}))
                    }
                    _ => None,
                })
                .take(20)
                .collect();
            let event = event.with_fields(&[
                ("ca", json!(ca)),
                ("imported", json!(imported)),
                ("updated", json!(updated)),
                ("alreadyThere", json!(count(&ImportOutcome::AlreadyThere))),
                ("refused", json!(refused)),
                (
                    "crlNumberRaisedTo",
                    json!(raised.then_some(crl_number).flatten()),
                ),
            ]);
            audit::append(&mut tx, &self.audit, &event).await?;
            tx.commit().await?;
            Ok(outcomes)
        })
        .await
    }

    /// The status of `serial` in the history of `ca` (`None`: not known there).
    pub async fn imported_status(
        &self,
        ca: &str,
        serial: &str,
    ) -> Result<Option<ImportedStatus>, StoreError> {
        let row = sqlx::query(
            "SELECT status, revoked_at, revocation_reason, invalidity_date FROM imported_certificates \
             WHERE ca = $1 AND serial = $2",
        )
        .bind(ca)
        .bind(serial)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let status: String = row.try_get(0)?;
        let revocation = if status == "revoked" {
            Some(ImportedRevocation {
                revoked_at: row.try_get::<Option<i64>, _>(1)?.unwrap_or(0),
                reason: row.try_get(2)?,
                invalidity_date: row.try_get(3)?,
            })
        } else {
            None
        };
        Ok(Some(ImportedStatus { revocation }))
    }

    /// The revoked entries of a CA's history for its CRL: every revoked row whose certificate
    /// has not expired before `now`, and every revocation-only row (its notAfter is unknown).
    pub async fn imported_revocations(
        &self,
        ca: &str,
        now: i64,
    ) -> Result<Vec<RevokedEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT serial, revoked_at, revocation_reason, invalidity_date FROM imported_certificates \
             WHERE ca = $1 AND status = 'revoked' AND (not_after IS NULL OR not_after >= $2) ORDER BY serial",
        )
        .bind(ca)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RevokedEntry {
                    serial: row.try_get(0)?,
                    revoked_at: row.try_get::<Option<i64>, _>(1)?.unwrap_or(0),
                    reason: row.try_get(2)?,
                    invalidity_date: row.try_get(3)?,
                })
            })
            .collect()
    }

    /// Number of rows in the history of `ca` (`certs import` reports it).
    pub async fn imported_count(&self, ca: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM imported_certificates WHERE ca = $1")
            .bind(ca)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// True when `serial` is in the history of any CA: a new certificate must not take it.
    pub async fn serial_imported(&self, serial: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM imported_certificates WHERE serial = $1 LIMIT 1")
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }
}

/// True when `serial` is in any CA's history, inside a transaction (the issuance writer checks
/// new serials with it before inserting them).
pub(super) async fn serial_taken(
    tx: &mut Transaction<'_, Any>,
    serial: &str,
) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT 1 FROM imported_certificates WHERE serial = $1 LIMIT 1")
        .bind(serial)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.is_some())
}

impl Store {
    /// Records the revocation of a CA certificate that `parent` issued (CA certificates are
    /// made by `ca create`, not by issuance, so they are not in `certificates`), with its
    /// chained `event`, in one transaction. `false` when it is already revoked permanently
    /// (nothing written).
    pub async fn revoke_ca_certificate(
        &self,
        parent: &str,
        row: &ImportRow,
        event: &AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut connection = self.connection().await?;
        self.bounded(async {
            let mut tx = connection.begin().await?;
            match merge::existing(&mut tx, parent, &row.serial).await? {
                None => merge::insert_many(&mut tx, parent, "ca", &[row], now).await?,
                Some(old) if old.status == "revoked" && old.reason.as_deref() != Some(HOLD) => {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Some(_) => match &row.revocation {
                    Some(revocation) => {
                        merge::set_revoked(&mut tx, parent, &row.serial, revocation).await?
                    }
                    None => {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                },
            }
            bump_revision(&mut tx, parent).await?;
            let event = event.with_fields(&[("serial", json!(row.serial)), ("ca", json!(parent))]);
            audit::append(&mut tx, &self.audit, &event).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }
}
