//! Revocation use cases: revoke, reinstate, CRLs and OCSP answers.
//!
//! The CRL of a CA lives in the database (`crl_state`), so every node serves the same CRL and
//! a revocation made on any node is on every node's CRL. A served CRL is re-issued
//! when the revocation revision it reflects is behind the database (so a revocation is on the
//! CRL at the next request), or when half its validity has passed (so it is always re-issued
//! well before nextUpdate). OCSP answers are built per request from the certificates table.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::signed_write::SignedWrite;
use super::{Gateway, IssuanceError};
use crate::ca::ocsp::{self, OcspFailure, OcspStatus};
use crate::ca::{Ca, CrlEntry, CrlParameters, RevocationReason, Serial, issue_crl};
use crate::config::GatewayConfig;
use crate::identity::Caller;
use crate::rules::Rules;
use crate::store::{
    AuditEvent, CaUsage, CertificateRecord, CertificateStatus, HOLD, RevocationOutcome, StoredCrl,
};

/// An OCSP answer for the HTTP layer.
#[derive(Debug, Clone)]
pub struct OcspAnswer {
    /// The DER OCSPResponse (`application/ocsp-response`).
    pub der: Vec<u8>,
    /// Seconds a cache may keep it (RFC 5019 §6.2), `None` for unsigned error answers.
    pub max_age: Option<u64>,
    /// thisUpdate of a signed answer (Last-Modified).
    pub this_update: Option<SystemTime>,
}

/// Where a configured CA stands (`ca list`; which CRLs `serve` keeps fresh).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaState {
    /// Signs now: the CA of a token procedure, the parent of a configured CA, or the officers
    /// CA. The text says which.
    Active(String),
    /// Signs nothing new (e.g. replaced by `ca create --replaces`), but certificates it issued
    /// have not expired: it keeps signing CRLs and answering OCSP until `until`.
    Retiring { certificates: i64, until: i64 },
    /// Nothing uses it and every certificate it issued has expired (the last on
    /// `last_not_after`): its `[[ca]]` block may be removed.
    Retired { last_not_after: i64 },
    /// Nothing uses it and it never issued a certificate.
    Unused,
}

impl CaState {
    /// `active`, `retiring`, `retired` or `unused`.
    pub fn name(&self) -> &'static str {
        match self {
            CaState::Active(_) => "active",
            CaState::Retiring { .. } => "retiring",
            CaState::Retired { .. } => "retired",
            CaState::Unused => "unused",
        }
    }

    /// True while relying parties may still ask for the CA's CRL (it is in unexpired
    /// certificates).
    pub fn keeps_crl(&self) -> bool {
        matches!(self, CaState::Active(_) | CaState::Retiring { .. })
    }
}

impl std::fmt::Display for CaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let date = |t: i64| {
            time::OffsetDateTime::from_unix_timestamp(t)
                .ok()
                .and_then(|d| {
                    d.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_else(|| t.to_string())
        };
        match self {
            CaState::Active(why) => write!(f, "active ({why})"),
            CaState::Retiring {
                certificates,
                until,
            } => write!(
                f,
                "retiring: {certificates} certificate{} until {}",
                if *certificates == 1 { "" } else { "s" },
                date(*until)
            ),
            CaState::Retired { last_not_after } => write!(
                f,
                "retired (its last certificate expired on {})",
                date(*last_not_after)
            ),
            CaState::Unused => f.write_str("unused (no token procedure, no certificates)"),
        }
    }
}

/// The state of every configured CA, from the configuration and the per-CA certificate counts
/// of the store (`Store::ca_usage`).
pub fn ca_states(
    settings: &GatewayConfig,
    rules: &Rules,
    usage: &[CaUsage],
) -> BTreeMap<String, CaState> {
    settings
        .cas
        .iter()
        .map(|ca| {
            let name = &ca.name;
            let mut why = Vec::new();
            let procedures: BTreeSet<&str> = rules
                .procedures
                .values()
                .filter(|p| p.certificates.iter().any(|c| &c.ca == name))
                .map(|p| p.name.as_str())
                .collect();
            if !procedures.is_empty() {
                why.push(format!(
                    "token procedure {}",
                    procedures.into_iter().collect::<Vec<_>>().join(", ")
                ));
            }
            let children: Vec<&str> = settings
                .cas
                .iter()
                .filter(|c| c.parent.as_ref() == Some(name))
                .map(|c| c.name.as_str())
                .collect();
            if !children.is_empty() {
                why.push(format!("parent of {}", children.join(", ")));
            }
            if name == super::OFFICERS_CA {
                why.push("officer certificates".into());
            }
            let used = usage.iter().find(|u| &u.ca == name);
            let state = match used {
                _ if !why.is_empty() => CaState::Active(why.join("; ")),
                Some(u) if u.unexpired > 0 => CaState::Retiring {
                    certificates: u.unexpired,
                    until: u.last_not_after,
                },
                Some(u) => CaState::Retired {
                    last_not_after: u.last_not_after,
                },
                None => CaState::Unused,
            };
            (name.clone(), state)
        })
        .collect()
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The audit detail with the signature fields of a signed write added.
fn with_signature(
    mut detail: serde_json::Value,
    signed: Option<&SignedWrite>,
) -> serde_json::Value {
    if let (Some(signed), Some(map)) = (signed, detail.as_object_mut())
        && let serde_json::Value::Object(fields) = signed.audit_fields()
    {
        map.extend(fields);
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
                IssuanceError::NotFound(format!("no certificate with serial `{serial}`"))
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

    /// The current CRL of a CA (DER): the stored one while it reflects every revocation and is
    /// less than half-way to its nextUpdate, else a freshly issued one.
    pub async fn crl(&self, ca_name: &str) -> Result<Vec<u8>, IssuanceError> {
        let ca = self.ca_named(ca_name)?;
        if let Some(der) = self.fresh_stored_crl(ca_name).await? {
            return Ok(der);
        }
        // One CRL build at a time per node; re-check after waiting, another task may have
        // built it meanwhile.
        let _guard = self.crl_lock.lock().await;
        if let Some(der) = self.fresh_stored_crl(ca_name).await? {
            return Ok(der);
        }
        self.build_crl(ca, &Caller::Service).await
    }

    /// Issues a new CRL now, whatever the stored one (`ast-gateway crl`).
    pub async fn issue_crl_now(
        &self,
        ca_name: &str,
        caller: &Caller,
    ) -> Result<Vec<u8>, IssuanceError> {
        let ca = self.ca_named(ca_name)?;
        let _guard = self.crl_lock.lock().await;
        self.build_crl(ca, caller).await
    }

    fn ca_named(&self, name: &str) -> Result<Arc<Ca>, IssuanceError> {
        self.cas
            .get(name)
            .cloned()
            .ok_or_else(|| IssuanceError::NotFound(format!("no CA named `{name}`")))
    }

    async fn fresh_stored_crl(&self, ca_name: &str) -> Result<Option<Vec<u8>>, IssuanceError> {
        let state = self.store.crl_state(ca_name).await?;
        let now = unix(SystemTime::now());
        let (Some(der), Some(revision), Some(this_update), Some(next_update)) = (
            state.der,
            state.crl_revision,
            state.this_update,
            state.next_update,
        ) else {
            return Ok(None);
        };
        let half_way = this_update + (next_update - this_update) / 2;
        Ok((revision >= state.revision && now < half_way).then_some(der))
    }

    async fn build_crl(&self, ca: Arc<Ca>, caller: &Caller) -> Result<Vec<u8>, IssuanceError> {
        let (number, revision) = self.store.next_crl_number(ca.name()).await?;
        let now = SystemTime::now();
        // Entries are read after the number and revision were taken: the CRL holds at least
        // every revocation up to `revision`.
        let mut revoked = self
            .store
            .revoked_certificates(ca.name(), unix(now))
            .await?;
        if ca.name() == super::OFFICERS_CA {
            // Officer certificates live in the officer registry, not the certificates table.
            revoked.extend(self.store.revoked_officers().await?);
            revoked.sort_by(|a, b| a.serial.cmp(&b.serial));
            revoked.dedup_by(|a, b| a.serial == b.serial);
        }
        let mut entries = Vec::with_capacity(revoked.len());
        for r in &revoked {
            let serial = hex::decode(&r.serial).map_err(|_| {
                IssuanceError::invariant(format!("stored serial `{}` is not hex", r.serial))
            })?;
            entries.push(CrlEntry {
                serial,
                revoked_at: from_unix(r.revoked_at),
                reason: r.reason.as_deref().and_then(|s| s.parse().ok()),
            });
        }
        // Whole seconds: the encoded times are whole seconds and the store keeps seconds.
        let this_update = from_unix(unix(now) - 60);
        let validity = self.settings().crl.validity;
        let parameters = CrlParameters {
            number: number.max(0) as u64,
            this_update,
            next_update: this_update + validity,
        };
        let signing_ca = ca.clone();
        let der =
            tokio::task::spawn_blocking(move || issue_crl(&signing_ca, &parameters, &entries))
                .await??;
        let event = AuditEvent::now(
            "crl-issued",
            &caller.to_string(),
            "",
            json!({"ca": ca.name(), "number": number, "entries": revoked.len(), "revision": revision}),
        );
        self.store
            .save_crl(
                ca.name(),
                &StoredCrl {
                    number,
                    revision,
                    this_update: unix(this_update),
                    next_update: unix(parameters.next_update),
                    der: &der,
                },
                &event,
            )
            .await?;
        Ok(der)
    }

    /// Re-issues, in the background, every CRL a certificate points at, and every published CRL
    /// that is due (half its validity passed) or behind a revocation, so a CRL is always
    /// re-issued before its nextUpdate even when nobody fetches it. Checks at start and then
    /// once a minute. A CA that signs something (another configured CA, the certificates of a
    /// token procedure, officer certificates) always has a CRL: whole-chain revocation
    /// checking needs the root's CRL as much as the issuing CA's. A CA that signs nothing gets
    /// one only once it was fetched or issued by `ast-gateway crl`.
    pub fn spawn_crl_refresher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let gateway = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(gateway) = gateway.upgrade() else {
                    return;
                };
                let signing = gateway.signing_cas().await;
                let names: Vec<String> = gateway.cas.keys().cloned().collect();
                for name in names {
                    if !signing.contains(&name) {
                        match gateway.store.crl_state(&name).await {
                            Ok(state) if state.der.is_some() => {}
                            Ok(_) => continue,
                            Err(e) => {
                                tracing::warn!(ca = %name, error = %e, "could not read the CRL state");
                                continue;
                            }
                        }
                    }
                    if let Err(e) = gateway.crl(&name).await {
                        tracing::warn!(ca = %name, error = %e, "could not refresh the CRL");
                    }
                }
            }
        })
    }

    /// The CAs whose CRL distribution point is in unexpired certificates: the active ones
    /// (parents of configured CAs, CAs of token procedures, the officers CA) and the retiring
    /// ones (replaced, with certificates not yet expired).
    async fn signing_cas(&self) -> BTreeSet<String> {
        let usage = match self.store.ca_usage(unix(SystemTime::now())).await {
            Ok(usage) => usage,
            Err(e) => {
                tracing::warn!(error = %e, "could not count the certificates per CA; refreshing the CRLs of active CAs only");
                Vec::new()
            }
        };
        ca_states(&self.settings, &self.rules(), &usage)
            .into_iter()
            .filter(|(name, state)| state.keeps_crl() && self.cas.contains_key(name))
            .map(|(name, _)| name)
            .collect()
    }

    /// Answers a DER OCSP request (RFC 6960). Never fails: problems become OCSP error statuses.
    pub async fn ocsp(&self, request_der: &[u8]) -> OcspAnswer {
        match self.ocsp_inner(request_der).await {
            Ok(answer) => answer,
            Err(why) => OcspAnswer {
                der: ocsp::failure_response(why),
                max_age: None,
                this_update: None,
            },
        }
    }

    async fn ocsp_inner(&self, request_der: &[u8]) -> Result<OcspAnswer, OcspFailure> {
        let request = ocsp::parse_request(request_der)?;
        let first = request
            .queries
            .first()
            .ok_or(OcspFailure::MalformedRequest)?;
        // Signed by the CA that issued the first certificate asked about; queries about other
        // issuers are answered `unknown`.
        let ca = self
            .cas
            .values()
            .find(|ca| first.is_issued_by(ca))
            .cloned()
            .ok_or(OcspFailure::Unauthorized)?;
        let mut statuses = Vec::with_capacity(request.queries.len());
        for query in &request.queries {
            let status = if !query.is_issued_by(&ca) {
                OcspStatus::Unknown
            } else {
                match self.store.certificate(&query.serial).await {
                    Err(e) => {
                        tracing::error!(error = %e, "OCSP: the database is unavailable");
                        return Err(OcspFailure::TryLater);
                    }
                    Ok(Some(record)) if record.ca == ca.name() => match record.status {
                        CertificateStatus::Good => OcspStatus::Good,
                        CertificateStatus::Revoked => OcspStatus::Revoked {
                            at: from_unix(record.revoked_at.unwrap_or(0)),
                            reason: record
                                .revocation_reason
                                .as_deref()
                                .and_then(|s| s.parse().ok()),
                        },
                    },
                    Ok(_) if ca.name() == super::OFFICERS_CA => {
                        match self.store.officer_revocation(&query.serial).await {
                            Ok(Some(None)) => OcspStatus::Good,
                            Ok(Some(Some(at))) => OcspStatus::Revoked {
                                at: from_unix(at),
                                reason: None,
                            },
                            Ok(None) => OcspStatus::Unknown,
                            Err(e) => {
                                tracing::error!(error = %e, "OCSP: the database is unavailable");
                                return Err(OcspFailure::TryLater);
                            }
                        }
                    }
                    Ok(_) => OcspStatus::Unknown,
                }
            };
            statuses.push(status);
        }
        let validity = self.settings().ocsp.validity;
        let this_update = from_unix(unix(SystemTime::now()));
        let next_update = this_update + validity;
        let der = tokio::task::spawn_blocking(move || {
            let answers: Vec<_> = request.queries.iter().zip(statuses).collect();
            ocsp::sign_response(
                &ca,
                &answers,
                request.nonce.as_deref(),
                this_update,
                next_update,
            )
        })
        .await
        .map_err(|_| OcspFailure::InternalError)?
        .map_err(|e| {
            tracing::error!(error = %e, "OCSP: signing failed");
            OcspFailure::InternalError
        })?;
        Ok(OcspAnswer {
            der,
            max_age: Some(validity.as_secs()),
            this_update: Some(this_update),
        })
    }
}

#[cfg(test)]
#[path = "revocation_tests.rs"]
mod tests;
