//! Making and recording one token: a place in the database writer's queue, the recipe on an
//! issuance worker, then the token and certificate rows and the `issued` audit
//! record committed before the token is handed out (as one file or one file per purpose).

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::filenames::{name_files, sanitise_filename};
use super::{Order, SoftToken};
use crate::ca::{Ca, IssuedCertificate};
use crate::issuance::admission::SHED;
use crate::issuance::recipe::{Attempt, MadeFile, MadeToken, Planned, TokenRecipe};
use crate::issuance::{Gateway, IssuanceError, Queue};
use crate::rules::Layout;
use crate::store::{
    AuditEvent, CertificateRecord, CertificateStatus, IssuanceRecord, StoreError, TokenRecord,
    WriteSlot,
};
use crate::token::Pkcs12Profile;

impl Gateway {
    /// Runs a recipe on an issuance worker (waiting in the bounded queue when all are busy;
    /// refused at once when it is full).
    pub(crate) async fn make(&self, recipe: Arc<TokenRecipe>) -> Result<MadeToken, IssuanceError> {
        let pool = self.key_pool.clone();
        self.admission.cpu.run(move || recipe.make(&pool)).await?
    }

    /// A place in the database writer's queue, taken before the token is made: a full queue
    /// refuses the request before any key is generated.
    pub(in crate::issuance) fn write_slot(&self) -> Result<WriteSlot, IssuanceError> {
        self.store.reserve_write().map_err(|e| {
            if let StoreError::QueueFull { .. } = e {
                metrics::counter!(SHED, "queue" => Queue::Write.as_str()).increment(1);
            }
            IssuanceError::from(e)
        })
    }

    /// Makes the token (keys, certificates, PKCS#12) and records it.
    pub(super) async fn attempt(
        &self,
        attempt: u32,
        order: &Order<'_>,
    ) -> Result<Attempt<SoftToken>, IssuanceError> {
        if attempt > 1 {
            tracing::warn!(
                request_id = order.request_id,
                attempt,
                "serial collision: making the token again with new serials"
            );
        }
        for planned in &order.recipe.plan {
            self.refuse_revoked_ca(planned.ca.name())?;
        }
        let slot = self.write_slot()?;
        let made = self.make(order.recipe.clone()).await?;
        let MadeToken {
            issued,
            files,
            stages,
        } = made;
        let store_started = Instant::now();
        let recorded = self.record(slot, order, issued, files).await;
        if let Ok(Attempt::Done(_)) = &recorded {
            crate::issuance::metrics::issued(
                &format!("handler.{}", order.handler.number),
                &order.handler.token_procedure,
                &stages,
                store_started.elapsed(),
            );
        }
        recorded
    }

    /// Records a made token through the group-commit writer (committed before anything
    /// leaves) and hands it out. On failure the PKCS#12 files are dropped here.
    async fn record(
        &self,
        slot: WriteSlot,
        order: &Order<'_>,
        issued: Vec<(Planned, IssuedCertificate)>,
        files: Vec<MadeFile>,
    ) -> Result<Attempt<SoftToken>, IssuanceError> {
        let profile = order.recipe.profile;
        let created_at = crate::issuance::unix(std::time::SystemTime::now());
        // Time-ordered (UUIDv7, 74 random bits): new rows land at the end of the tokens index
        // and of `certificates_token` instead of on a random page each, which every commit
        // then writes out again.
        let token_id = uuid::Uuid::now_v7().to_string();
        let layout = if files.iter().any(|f| f.certificate.is_some()) {
            Layout::PerPurpose
        } else {
            Layout::Combined
        };
        let token = token_record(order, &token_id, created_at, profile);
        let records = certificate_records(&issued, &token_id);
        let event = issued_event(order, &token, layout, &records);
        if let Attempt::Collision(serial) = self
            .write_issuance(slot, order, &token, &records, event)
            .await?
        {
            return Ok(Attempt::Collision(serial));
        }
        Ok(Attempt::Done(deliver(
            token_id, layout, profile, &issued, files, records,
        )))
    }

    /// Writes the rows and the audit record. With an idempotency key the issuance is its own
    /// transaction (the key row must commit with it); otherwise it joins the writer's next
    /// batch. A serial the database already holds is a collision: nothing was recorded.
    async fn write_issuance(
        &self,
        slot: WriteSlot,
        order: &Order<'_>,
        token: &TokenRecord,
        records: &[CertificateRecord],
        event: AuditEvent,
    ) -> Result<Attempt<()>, IssuanceError> {
        let caller = order.caller;
        let scope = caller.to_string();
        let key = order.api.and_then(|api| api.idempotency_key(&scope));
        // With an idempotency key the issuance is its own transaction (the key row must commit
        // with it); otherwise it joins the writer's next batch.
        let written = match key {
            Some(key) => {
                drop(slot);
                self.store
                    .record_issuance_once(token, records, &event, Some(&key))
                    .await
            }
            None => {
                slot.record(IssuanceRecord {
                    token: token.clone(),
                    certificates: records.to_vec(),
                    event,
                })
                .await
            }
        };
        match written {
            Ok(()) => {}
            Err(StoreError::DuplicateSerial(serial)) => return Ok(Attempt::Collision(serial)),
            // A concurrent request with the same key committed first: this token is dropped
            // here, unrecorded and undelivered.
            Err(StoreError::DuplicateIdempotencyKey) => {
                return Err(match order.api {
                    Some(api) => self.already_issued(caller, api).await,
                    None => IssuanceError::invariant("idempotency key without an API request"),
                });
            }
            Err(e) => return Err(e.into()),
        }
        Ok(Attempt::Done(()))
    }
}

/// The token's row.
fn token_record(
    order: &Order<'_>,
    token_id: &str,
    created_at: i64,
    profile: Pkcs12Profile,
) -> TokenRecord {
    TokenRecord {
        id: token_id.to_string(),
        created_at,
        handler: format!("handler.{}", order.handler.number),
        token_procedure: order.handler.token_procedure.clone(),
        caller: order.caller.to_string(),
        request_id: order.request_id.to_string(),
        profile: profile.name().into(),
    }
}

/// The row of each certificate of the token.
fn certificate_records(
    issued: &[(Planned, IssuedCertificate)],
    token_id: &str,
) -> Vec<CertificateRecord> {
    issued
        .iter()
        .map(|(planned, cert)| CertificateRecord {
            serial: crate::ca::Serial::from_bytes(&cert.serial),
            ca: planned.ca.name().to_string(),
            issuer: issuer_dn(&planned.ca),
            subject: planned.subject.display_dn(&planned.template.subject_order),
            sans: planned
                .subject
                .san_values()
                .map(|(a, v)| format!("{}:{v}", a.label()))
                .collect(),
            not_before: crate::issuance::unix(cert.not_before),
            not_after: crate::issuance::unix(cert.not_after),
            purpose: planned.template.purpose.clone(),
            token_id: token_id.to_string(),
            status: CertificateStatus::Good,
            revoked_at: None,
            revocation_reason: None,
            der: cert.der.clone(),
        })
        .collect()
}

/// The `issued` audit record (with the API's facts for a REST API request).
fn issued_event(
    order: &Order<'_>,
    token: &TokenRecord,
    layout: Layout,
    records: &[CertificateRecord],
) -> AuditEvent {
    let mut detail = json!({
        "token": token.id,
        "handler": token.handler,
        "tokenProcedure": token.token_procedure,
        "profile": token.profile,
        "layout": layout.name(),
        "serials": records.iter().map(|r| r.serial.clone()).collect::<Vec<_>>(),
    });
    if let Some(api) = order.api {
        api.add_audit_fields(&mut detail);
    }
    AuditEvent::now(
        "issued",
        &order.caller.to_string(),
        order.request_id,
        detail,
    )
}

/// The recorded token as it is handed out: its files named, the combined file also as `pkcs12`.
fn deliver(
    token_id: String,
    layout: Layout,
    profile: Pkcs12Profile,
    issued: &[(Planned, IssuedCertificate)],
    files: Vec<MadeFile>,
    records: Vec<CertificateRecord>,
) -> SoftToken {
    let common_name = |planned: Option<&Planned>| {
        planned
            .and_then(|p| p.subject.first(crate::ca::Attribute::CommonName))
            .unwrap_or("token")
            .to_string()
    };
    let filename = sanitise_filename(&common_name(issued.first().map(|(p, _)| p)));
    let files = name_files(files, issued, &filename, common_name);
    let pkcs12 = match (layout, files.as_slice()) {
        (Layout::Combined, [file]) => file.pkcs12.clone(),
        _ => Vec::new(),
    };
    SoftToken {
        token_id,
        pkcs12,
        filename,
        layout,
        files,
        profile,
        certificates: records,
    }
}

fn issuer_dn(ca: &Ca) -> String {
    crate::ca::display_name(ca.certificate().tbs_certificate().subject())
}
