//! Recording an issuance and a lone audit event: through the group-commit writer (see
//! `writer`), or in a transaction of its own when the issuance carries an idempotency key.

use sqlx::Connection;

use super::{
    AuditEvent, CertificateRecord, IdempotencyKey, IssuanceRecord, Store, StoreError, TokenRecord,
    api, audit, durability, records,
};

impl Store {
    /// Records a token, its certificates and the audit event, committed whole (possibly in one
    /// transaction with other issuances). Returns only after the commit: the caller may then
    /// deliver the token. [`StoreError::QueueFull`] at once when the writer's queue is full.
    pub async fn record_issuance(
        &self,
        token: &TokenRecord,
        certificates: &[CertificateRecord],
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let event = with_serials(event, token, certificates);
        self.reserve_write()?
            .record(IssuanceRecord {
                token: token.clone(),
                certificates: certificates.to_vec(),
                event,
            })
            .await
    }

    /// As [`Store::record_issuance`], and when `key` is given, records it for the token in the
    /// same transaction: a key the caller used before fails the whole transaction with
    /// [`StoreError::DuplicateIdempotencyKey`] (nothing is written). With a key the issuance is
    /// its own transaction, outside the group-commit writer (API retries are rare; the audit
    /// chain stays linear because both paths take the chain head's row first).
    pub async fn record_issuance_once(
        &self,
        token: &TokenRecord,
        certificates: &[CertificateRecord],
        event: &AuditEvent,
        key: Option<&IdempotencyKey<'_>>,
    ) -> Result<(), StoreError> {
        if key.is_none() {
            return self.record_issuance(token, certificates, event).await;
        }
        let event = with_serials(event, token, certificates);
        let mut connection = self.connection().await?;
        self.bounded(async {
            let mut tx = connection.begin().await?;
            audit::append(&mut tx, &self.audit, &event).await?;
            records::insert_issuance(&mut tx, token, certificates).await?;
            if let Some(key) = key {
                api::insert_key(&mut tx, key, &token.id, token.created_at).await?;
            }
            if self.requires_synchronous() {
                durability::require_synchronous(&mut tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Appends an audit event on its own (refusals, CLI actions).
    pub async fn record_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        self.bounded(async {
            let mut tx = connection.begin().await?;
            audit::append(&mut tx, &self.audit, event).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }
}

/// The event with the certificates actually inserted (serials, and each row's CA, notAfter and
/// digest), so `audit verify` can cross-check them.
fn with_serials(
    event: &AuditEvent,
    token: &TokenRecord,
    certificates: &[CertificateRecord],
) -> AuditEvent {
    let serials: Vec<&str> = certificates.iter().map(|c| c.serial.hex()).collect();
    event.with_fields(&[
        ("serials", serde_json::json!(serials)),
        (
            "certificates",
            super::audit_certificates::issued_certificates(certificates, token.created_at),
        ),
    ])
}
