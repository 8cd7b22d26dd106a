//! Revocation use cases: revoke, reinstate, CRLs and OCSP answers.
//!
//! The CRL of a CA lives in the database (`crl_state`), so every node serves the same CRL and
//! a revocation made on any node is on every node's CRL. A served CRL is re-issued
//! when the revocation revision it reflects is behind the database (so a revocation is on the
//! CRL at the next request), or when half its validity has passed (so it is always re-issued
//! well before nextUpdate). OCSP answers are built per request from the certificates table.
//!
//! This file holds revoke and reinstate; `crl` builds, serves and refreshes CRLs, `ocsp` answers
//! OCSP requests, and `ca_state` says which CAs still need a CRL.

mod ca_certificate;
mod ca_state;
mod crl;
mod import;
mod ocsp;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

pub use ca_state::{CaState, ca_states};
pub use import::{HistoryImport, IMPORT_BATCH, ImportError, ImportReport};
pub use ocsp::OcspAnswer;

use super::signed_write::SignedWrite;
use super::{Gateway, IssuanceError};
use crate::ca::{RevocationReason, Serial};
use crate::identity::Caller;
use crate::store::{AuditEvent, CertificateRecord, HOLD, RevocationOutcome};

use super::unix;

/// The audit detail with the signature fields of a signed write added.
fn with_signature(
    mut detail: serde_json::Value,
    signed: Option<&SignedWrite>,
) -> serde_json::Value {
    if let Some(signed) = signed {
        signed.add_to_audit(&mut detail);
    }
    detail
}

fn from_unix(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64)
}

impl Gateway {
    /// Revokes a certificate (or puts it on hold with `certificateHold`). Audited, also when
    /// refused.
    pub async fn revoke(
        &self,
        serial: &Serial,
        reason: RevocationReason,
        caller: &Caller,
        request_id: &str,
    ) -> Result<CertificateRecord, IssuanceError> {
        self.revoke_signed(serial, reason, caller, request_id, None)
            .await
    }

    /// As [`Gateway::revoke`], keeping the officer's signature of the request in the audit
    /// record (signed API writes).
    pub async fn revoke_signed(
        &self,
        serial: &Serial,
        reason: RevocationReason,
        caller: &Caller,
        request_id: &str,
        signed: Option<&SignedWrite>,
    ) -> Result<CertificateRecord, IssuanceError> {
        let now = unix(SystemTime::now());
        let event = AuditEvent::now(
            "revoked",
            &caller.to_string(),
            request_id,
            with_signature(
                json!({"serial": serial.hex(), "reason": reason.name()}),
                signed,
            ),
        );
        let outcome = self
            .store
            .revoke_certificate(serial, reason.name(), now, &event)
            .await?;
        let result = match outcome {
            RevocationOutcome::Changed(record) => return Ok(*record),
            RevocationOutcome::NotFound => {
                // Not issued here: perhaps the certificate of a CA one of ours issued.
                let actor = caller.to_string();
                match self
                    .revoke_ca_certificate(serial, reason, &actor, request_id)
                    .await
                {
                    Some(Ok(record)) => {
                        // This node stops issuing from the revoked CA at once.
                        if let Err(e) = self.refresh_revoked_cas().await {
                            tracing::warn!(error = %e, "could not refresh the revoked CA certificates");
                        }
                        return Ok(record);
                    }
                    Some(Err(e)) => e,
                    None => {
                        IssuanceError::NotFound(format!("no certificate with serial `{serial}`"))
                    }
                }
            }
            RevocationOutcome::AlreadyRevoked(current) => IssuanceError::Conflict(format!(
                "certificate `{serial}` is already revoked ({current}); only a certificate on hold can be revoked again"
            )),
            RevocationOutcome::NotRevoked => {
                IssuanceError::invariant("revoke reported `not revoked`")
            }
        };
        self.audit_refusal("revoke-refused", caller, request_id, serial, &result)
            .await;
        Err(result)
    }

    /// Takes a certificate off hold. Only `certificateHold` can be undone (RFC 5280 §5.3.1).
    pub async fn reinstate(
        &self,
        serial: &Serial,
        caller: &Caller,
        request_id: &str,
    ) -> Result<CertificateRecord, IssuanceError> {
        self.reinstate_signed(serial, caller, request_id, None)
            .await
    }

    /// As [`Gateway::reinstate`], keeping the officer's signature of the request in the audit
    /// record (signed API writes).
    pub async fn reinstate_signed(
        &self,
        serial: &Serial,
        caller: &Caller,
        request_id: &str,
        signed: Option<&SignedWrite>,
    ) -> Result<CertificateRecord, IssuanceError> {
        let event = AuditEvent::now(
            "reinstated",
            &caller.to_string(),
            request_id,
            with_signature(json!({"serial": serial.hex()}), signed),
        );
        let outcome = self.store.reinstate_certificate(serial, &event).await?;
        let result = match outcome {
            RevocationOutcome::Changed(record) => return Ok(*record),
            RevocationOutcome::NotFound => {
                IssuanceError::NotFound(format!("no certificate with serial `{serial}`"))
            }
            RevocationOutcome::AlreadyRevoked(reason) => IssuanceError::Conflict(format!(
                "certificate `{serial}` is revoked permanently ({reason}); only {HOLD} can be reinstated"
            )),
            RevocationOutcome::NotRevoked => IssuanceError::Conflict(format!(
                "certificate `{serial}` is not revoked; nothing to reinstate"
            )),
        };
        self.audit_refusal("reinstate-refused", caller, request_id, serial, &result)
            .await;
        Err(result)
    }

    async fn audit_refusal(
        &self,
        event: &str,
        caller: &Caller,
        request_id: &str,
        serial: &Serial,
        error: &IssuanceError,
    ) {
        let detail =
            json!({"serial": serial.hex(), "code": error.code(), "reason": error.to_string()});
        if let Err(e) = self
            .store
            .record_audit(&AuditEvent::now(
                event,
                &caller.to_string(),
                request_id,
                detail,
            ))
            .await
        {
            tracing::error!(target: "audit", request_id, error = %e, "could not record a refusal in the audit table");
        }
    }
}

#[cfg(test)]
#[path = "revocation_tests.rs"]
mod tests;
