//! Revocation state: revoking and reinstating certificates, the revoked list per CA, and the
//! per-CA CRL state (monotonic CRL number, revision counter, last CRL).

use sqlx::{Any, Connection, Row, Transaction};

use serde_json::json;

use super::{AuditEvent, AuditSeal, CertificateRecord, Store, StoreError, audit, records};
use crate::ca::Serial;

/// The reason name stored for a certificate on hold (RFC 5280 §5.3.1 `certificateHold`).
pub const HOLD: &str = "certificateHold";

/// What a revocation or reinstatement did.
#[derive(Debug, Clone)]
pub enum RevocationOutcome {
    /// Done; the record as it now is.
    Changed(Box<CertificateRecord>),
    /// No certificate with that serial.
    NotFound,
    /// Revoke: it is already revoked with this (non-hold) reason. Reinstate: it is revoked
    /// permanently (not on hold) with this reason.
    AlreadyRevoked(crate::ca::RevocationReason),
    /// Reinstate: it is not revoked at all.
    NotRevoked,
}

/// One entry of a CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Lower-case hex as stored.
    pub serial: String,
    /// Unix seconds.
    pub revoked_at: i64,
    pub reason: Option<String>,
    /// Unix seconds; imported revocations that carried one.
    pub invalidity_date: Option<i64>,
}

/// The stored CRL state of one CA.
#[derive(Debug, Clone, Default)]
pub struct CrlState {
    /// Last CRL number handed out (0: none yet).
    pub crl_number: i64,
    /// Bumped by every revocation and reinstatement of this CA's certificates.
    pub revision: i64,
    /// The revision the stored CRL reflects.
    pub crl_revision: Option<i64>,
    pub this_update: Option<i64>,
    pub next_update: Option<i64>,
    pub der: Option<Vec<u8>>,
}

/// A freshly signed CRL to store.
#[derive(Debug, Clone, Copy)]
pub struct StoredCrl<'a> {
    pub number: i64,
    /// The revocation revision it reflects.
    pub revision: i64,
    /// Unix seconds.
    pub this_update: i64,
    pub next_update: i64,
    pub der: &'a [u8],
}

/// The new status a change wrote, as the audit row records it.
struct NewStatus<'a> {
    serial: &'a str,
    status: &'static str,
    reason: Option<&'a str>,
    /// Unix seconds (revocations only).
    revoked_at: Option<i64>,
}

/// The end of every status change: the CA's revision moves (so every node re-signs its CRL)
/// and the audit row is appended, in the transaction that changed the status, then commit.
/// `row` is the `RETURNING ca` of the status UPDATE. The row carries the serial, CA, new
/// status and reason exactly as written, which `audit verify` compares with the table.
async fn commit_status_change(
    mut tx: Transaction<'_, Any>,
    seal: &AuditSeal,
    row: &sqlx::any::AnyRow,
    change: NewStatus<'_>,
    event: &AuditEvent,
) -> Result<bool, StoreError> {
    let ca: String = row.try_get(0)?;
    bump_revision(&mut tx, &ca).await?;
    let event = event.with_fields(&[
        ("serial", json!(change.serial)),
        ("ca", json!(ca)),
        ("status", json!(change.status)),
        ("reason", json!(change.reason)),
        ("revokedAt", json!(change.revoked_at)),
    ]);
    audit::append(&mut tx, seal, &event).await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn ensure_row(tx: &mut Transaction<'_, Any>, ca: &str) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO crl_state (ca, crl_number, revision) VALUES ($1, 0, 0) ON CONFLICT (ca) DO NOTHING")
        .bind(ca)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Runs `update` (an `UPDATE … RETURNING ca` of one certificate) and, when it matched a row,
    /// commits the change with its chained event ([`commit_status_change`]), all in one
    /// transaction. `false`, with nothing written, when no row matched.
    async fn change_status<'q>(
        &self,
        update: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
        change: NewStatus<'_>,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut connection = self.connection().await?;
        self.bounded(async {
            let mut tx = connection.begin().await?;
            let Some(row) = update.fetch_optional(&mut *tx).await? else {
                tx.rollback().await?;
                return Ok(false);
            };
            commit_status_change(tx, &self.audit, &row, change, event).await
        })
        .await
    }

    /// The record after a committed status change.
    async fn changed_outcome(&self, serial: &str) -> Result<RevocationOutcome, StoreError> {
        Ok(records::get(&self.pool, serial)
            .await?
            .map_or(RevocationOutcome::NotFound, |r| {
                RevocationOutcome::Changed(Box::new(r))
            }))
    }

    /// Revokes a certificate with an RFC 5280 reason name, at `revoked_at` (Unix seconds),
    /// and appends `event` to the audit trail, all in one transaction. A certificate on hold
    /// may be revoked again with a permanent reason (the hold is replaced).
    pub async fn revoke_certificate(
        &self,
        serial: &Serial,
        reason: &str,
        revoked_at: i64,
        event: &AuditEvent,
    ) -> Result<RevocationOutcome, StoreError> {
        let serial = serial.hex();
        // The UPDATE comes first: it takes the row lock (PostgreSQL) or the write lock (SQLite),
        // so two nodes revoking at once serialise.
        let update = sqlx::query(
            "UPDATE certificates SET status = 'revoked', revoked_at = $1, revocation_reason = $2 \
             WHERE serial = $3 AND (status = 'good' OR (revocation_reason = $4 AND $2 <> $4)) RETURNING ca",
        )
        .bind(revoked_at)
        .bind(reason)
        .bind(serial)
        .bind(HOLD);
        let change = NewStatus {
            serial,
            status: "revoked",
            reason: Some(reason),
            revoked_at: Some(revoked_at),
        };
        let changed = self.change_status(update, change, event).await?;
        if !changed {
            return Ok(match records::get(&self.pool, serial).await? {
                None => RevocationOutcome::NotFound,
                Some(c) => RevocationOutcome::AlreadyRevoked(
                    c.revocation_reason
                        .unwrap_or(crate::ca::RevocationReason::Unspecified),
                ),
            });
        }
        self.changed_outcome(serial).await
    }

    /// Takes a certificate off hold (only from `certificateHold`), auditing it in the same
    /// transaction.
    pub async fn reinstate_certificate(
        &self,
        serial: &Serial,
        event: &AuditEvent,
    ) -> Result<RevocationOutcome, StoreError> {
        let serial = serial.hex();
        let update = sqlx::query(
            "UPDATE certificates SET status = 'good', revoked_at = NULL, revocation_reason = NULL \
             WHERE serial = $1 AND status = 'revoked' AND revocation_reason = $2 RETURNING ca",
        )
        .bind(serial)
        .bind(HOLD);
        let change = NewStatus {
            serial,
            status: "good",
            reason: None,
            revoked_at: None,
        };
        let changed = self.change_status(update, change, event).await?;
        if !changed {
            return Ok(match records::get(&self.pool, serial).await? {
                None => RevocationOutcome::NotFound,
                Some(c) if c.revocation_reason.is_some() => RevocationOutcome::AlreadyRevoked(
                    c.revocation_reason
                        .unwrap_or(crate::ca::RevocationReason::Unspecified),
                ),
                Some(_) => RevocationOutcome::NotRevoked,
            });
        }
        self.changed_outcome(serial).await
    }

    /// Every revoked certificate of a CA that has not expired before `now` (RFC 5280 §3.3:
    /// an expired certificate may leave the CRL), serial order.
    pub async fn revoked_certificates(
        &self,
        ca: &str,
        now: i64,
    ) -> Result<Vec<RevokedEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT serial, revoked_at, revocation_reason FROM certificates \
             WHERE ca = $1 AND status = 'revoked' AND not_after >= $2 ORDER BY serial",
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
                    invalidity_date: None,
                })
            })
            .collect()
    }

    /// Revoked officer certificates (the `officers` table) that CA `ca` issued and that have
    /// not expired before `now`, for its CRL. The registry records no reason, so the entries
    /// carry none.
    pub async fn revoked_officers(
        &self,
        ca: &str,
        now: i64,
    ) -> Result<Vec<RevokedEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT serial, revoked FROM officers \
             WHERE ca = $1 AND status = 'revoked' AND not_after >= $2 ORDER BY serial",
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
                    reason: None,
                    invalidity_date: None,
                })
            })
            .collect()
    }

    /// The status of an officer certificate CA `ca` issued, by serial: `None` when it issued
    /// no officer certificate with it, else `Some(None)` while active and
    /// `Some(Some(revoked_at))` once revoked.
    pub async fn officer_revocation(
        &self,
        ca: &str,
        serial: &Serial,
    ) -> Result<Option<Option<i64>>, StoreError> {
        let serial = serial.hex();
        let row = sqlx::query("SELECT status, revoked FROM officers WHERE serial = $1 AND ca = $2")
            .bind(serial)
            .bind(ca)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let status: String = row.try_get(0)?;
        let revoked: Option<i64> = row.try_get(1)?;
        Ok(Some(if status == "revoked" {
            Some(revoked.unwrap_or(0))
        } else {
            None
        }))
    }

    /// The CRL state of a CA (all zero/empty before the first CRL).
    pub async fn crl_state(&self, ca: &str) -> Result<CrlState, StoreError> {
        let row = sqlx::query(
            "SELECT crl_number, revision, crl_revision, this_update, next_update, der FROM crl_state WHERE ca = $1",
        )
        .bind(ca)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(CrlState::default());
        };
        Ok(CrlState {
            crl_number: row.try_get(0)?,
            revision: row.try_get(1)?,
            crl_revision: row.try_get(2)?,
            this_update: row.try_get(3)?,
            next_update: row.try_get(4)?,
            der: row.try_get(5)?,
        })
    }

    /// Hands out the next CRL number of a CA and returns it with the revision the new CRL
    /// must reflect. `UPDATE … RETURNING` is atomic on both back ends, so concurrent nodes
    /// never get the same number.
    pub async fn next_crl_number(&self, ca: &str) -> Result<(i64, i64), StoreError> {
        let mut connection = self.connection().await?;
        self.bounded(async {
            let mut tx = connection.begin().await?;
            ensure_row(&mut tx, ca).await?;
            let row = sqlx::query(
                "UPDATE crl_state SET crl_number = crl_number + 1 WHERE ca = $1 RETURNING crl_number, revision",
            )
            .bind(ca)
            .fetch_one(&mut *tx)
            .await?;
            let number: i64 = row.try_get(0)?;
            let revision: i64 = row.try_get(1)?;
            tx.commit().await?;
            Ok((number, revision))
        })
        .await
    }

    /// Stores a freshly signed CRL unless a newer one (higher number) is already stored, and
    /// audits its issuance. The audit row is then anchored (`anchor`): each CRL records the
    /// chain's head outside the chain.
    pub async fn save_crl(
        &self,
        ca: &str,
        crl: &StoredCrl<'_>,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        let appended = self.bounded(async {
        let mut tx = connection.begin().await?;
        ensure_row(&mut tx, ca).await?;
        let appended = audit::append(&mut tx, &self.audit, event).await?;
        sqlx::query(
            "UPDATE crl_state SET crl_revision = $1, this_update = $2, next_update = $3, der = $4, der_number = $5 \
             WHERE ca = $6 AND (der_number IS NULL OR der_number < $5)",
        )
        .bind(crl.revision)
        .bind(crl.this_update)
        .bind(crl.next_update)
        .bind(crl.der.to_vec())
        .bind(crl.number)
        .bind(ca)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(appended)
        })
        .await?;
        drop(connection);
        // The CRL is stored either way; a failed anchor is logged and the checkpoint retries.
        if let Err(e) = self
            .anchor(&appended, &format!("crl:{ca}:{}", crl.number))
            .await
        {
            tracing::error!(target: "audit", error = %e, "could not anchor the audit chain head after a CRL");
        }
        Ok(())
    }
}

pub(super) async fn bump_revision(
    tx: &mut Transaction<'_, Any>,
    ca: &str,
) -> Result<(), StoreError> {
    ensure_row(tx, ca).await?;
    sqlx::query("UPDATE crl_state SET revision = revision + 1 WHERE ca = $1")
        .bind(ca)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
