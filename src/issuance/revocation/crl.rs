//! CRLs: the stored CRL of a CA while it is fresh, else a newly issued one (one build at a time
//! per node), and the background refresher that re-issues every CRL before its nextUpdate.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::json;

use super::ca_states;
use super::{from_unix, unix};
use crate::ca::{Ca, CrlEntry, CrlParameters, issue_crl};
use crate::identity::Caller;
use crate::issuance::{Gateway, IssuanceError};
use crate::store::{AuditEvent, StoredCrl};

impl Gateway {
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
        // Officer certificates live in the officer registry, not the certificates table (the
        // officers CA, and one it replaced, until their officers expire).
        revoked.extend(self.store.revoked_officers(ca.name(), unix(now)).await?);
        // The CA's history from before this gateway, and the CA certificates it revoked.
        revoked.extend(
            self.store
                .imported_revocations(ca.name(), unix(now))
                .await?,
        );
        revoked.sort_by(|a, b| a.serial.cmp(&b.serial));
        revoked.dedup_by(|a, b| a.serial == b.serial);
        let mut entries = Vec::with_capacity(revoked.len());
        for r in &revoked {
            let serial = hex::decode(&r.serial).map_err(|_| {
                IssuanceError::invariant(format!("stored serial `{}` is not hex", r.serial))
            })?;
            entries.push(CrlEntry {
                serial,
                revoked_at: from_unix(r.revoked_at),
                reason: r.reason.as_deref().and_then(|s| s.parse().ok()),
                invalidity_date: r.invalidity_date.map(from_unix),
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
}
