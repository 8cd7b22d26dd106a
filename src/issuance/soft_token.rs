//! The soft-token use case: who is calling → which handler → format → recipe → record →
//! deliver. Every refusal is audited with the connection it came on; nothing is issued.

use std::sync::Arc;
use std::time::{Instant, UNIX_EPOCH};

use serde_json::json;
use tokio::sync::OwnedSemaphorePermit;

use super::recipe::{
    Attempt, MadeToken, Planned, SERIAL_ATTEMPTS, TokenRecipe, plan_subjects, with_cas,
    with_fresh_serials,
};
use super::{Gateway, IssuanceError};
use crate::ca::{Ca, IssuedCertificate};
use crate::identity::{Caller, Connection, OfficerStanding};
use crate::policy::{IdentityHeaders, evaluate};
use crate::rules::{Handler, Rules};
use crate::store::{
    AuditEvent, CertificateRecord, CertificateStatus, IssuanceRecord, OfficerStatus, StoreError,
    TokenRecord, WriteSlot,
};
use crate::token::{Pin, Pkcs12Profile};

/// What the user sent in the form: the PIN and, optionally, a PKCS#12 profile.
#[derive(Debug)]
pub struct TokenForm {
    pub pin: Pin,
    /// The form field `profile`, if sent.
    pub profile: Option<String>,
}

/// A request for a soft token, as the HTTP layer hands it over. A form the HTTP layer could
/// not read is handed over too (as `Err`), so that its refusal is audited like every other.
#[derive(Debug)]
pub struct SoftTokenRequest {
    pub connection: Connection,
    /// The path after `/pgwy/ast/` (empty for `/pgwy/ast`).
    pub path_remainder: String,
    pub headers: IdentityHeaders,
    pub form: Result<TokenForm, IssuanceError>,
    pub request_id: String,
}

/// A delivered soft token.
#[derive(Debug)]
pub struct SoftToken {
    pub token_id: String,
    /// The PKCS#12 file.
    pub pkcs12: Vec<u8>,
    /// Suggested file name: `<commonname>.p12`, sanitised.
    pub filename: String,
    pub profile: Pkcs12Profile,
    pub certificates: Vec<CertificateRecord>,
}

/// Everything one issuance attempt needs; the same for every attempt of a request.
struct Order<'a> {
    handler: &'a Handler,
    caller: &'a Caller,
    request_id: &'a str,
    recipe: Arc<TokenRecipe>,
}

impl Gateway {
    /// Issues a soft token, or refuses with an audited error. Nothing is issued on refusal;
    /// nothing is returned before the certificates are committed.
    pub async fn issue_soft_token(
        &self,
        request: SoftTokenRequest,
    ) -> Result<SoftToken, IssuanceError> {
        let request_id = request.request_id.clone();
        let connection = request.connection.clone();
        let handler_path = request.path_remainder.clone();
        match self.issue_inner(request).await {
            Ok(token) => Ok(token),
            Err(error) => Err(self
                .refuse_on(&connection, &handler_path, &request_id, error)
                .await),
        }
    }

    /// Audits a refusal: who (the verified client certificate's fingerprint if there is one,
    /// else the peer), from where (the TCP peer), which rule, and the operator message. Never
    /// a PIN or a header value. Returns the error.
    pub async fn refuse_on(
        &self,
        connection: &Connection,
        path: &str,
        request_id: &str,
        error: IssuanceError,
    ) -> IssuanceError {
        let peer = connection.peer.ip().to_string();
        let certificate = connection
            .client_certificate
            .as_ref()
            .map(|c| c.fingerprint().to_string());
        let actor = match &certificate {
            Some(fingerprint) => format!("certificate:{fingerprint}"),
            None => format!("peer:{peer}"),
        };
        let handler = self
            .rules()
            .select(path)
            .map(|h| format!("handler.{}", h.number));
        super::metrics::refused(handler.as_deref().unwrap_or("none"), error.code().as_str());
        let rule = match &error {
            IssuanceError::Trust(trust) => trust.rule(),
            other => other.code().as_str(),
        };
        let detail = json!({
            "code": error.code(),
            "rule": rule,
            "reason": error.to_string(),
            "path": path,
            "peer": peer,
            "clientCertificate": certificate,
        });
        let event = AuditEvent::now("refused", &actor, request_id, detail);
        // A refusal about load (overload, rate limit, timeout) must not wait for the database
        // it is protecting: its audit row goes with the writer's next batch.
        let recorded = if error.retry_after().is_some() {
            self.store.record_audit_soon(event).await
        } else {
            self.store.record_audit(&event).await
        };
        if let Err(e) = recorded {
            tracing::error!(target: "audit", request_id, error = %e, "could not record a refusal in the audit table");
        }
        error
    }

    /// The registry entry of the connection's client certificate, when the handler needs one.
    async fn officer_standing(
        &self,
        handler: &Handler,
        connection: &Connection,
    ) -> Result<Option<OfficerStanding>, IssuanceError> {
        let (Some(_), Some(certificate)) =
            (&handler.required_roles, &connection.client_certificate)
        else {
            return Ok(None);
        };
        let record = self
            .store
            .officer_by_fingerprint(certificate.fingerprint())
            .await
            .map_err(IssuanceError::from)?;
        Ok(record.map(|r| OfficerStanding {
            serial: r.serial,
            name: r.name,
            roles: r.roles,
            revoked: r.status != OfficerStatus::Active,
        }))
    }

    async fn issue_inner(&self, request: SoftTokenRequest) -> Result<SoftToken, IssuanceError> {
        // Every request of a peer counts, refused or not, before any other work.
        self.admission.rates.peer(request.connection.peer.ip())?;
        let form = request.form?;
        // The same rules throughout, even if a reload swaps them meanwhile.
        let rules = self.rules();
        let handler = select(&rules, &request.path_remainder)?;
        // Looked up per request: a revoked officer is refused from the next request on.
        let officer = self.officer_standing(handler, &request.connection).await?;
        let caller = self.trust.authorize(
            handler.required_roles.as_ref(),
            &request.connection,
            officer.as_ref(),
        )?;
        handler.password_policy.check(&form.pin)?;
        let profile = handler
            .choose_profile(form.profile.as_deref())
            .map_err(|e| IssuanceError::BadRequest(e.to_string()))?;
        let plan = self.plan(&rules, handler, &request.headers, &caller)?;
        // Rate limits count tokens about to be made: after every check that needs no CPU.
        if let Caller::Officer { .. } = caller {
            self.admission.rates.officer(&caller.to_string())?;
        }
        if let Some(first) = plan.first() {
            let identity = first.subject.display_dn(&first.template.subject_order);
            self.admission.rates.identity(&identity)?;
        }
        let order = Order {
            handler,
            caller: &caller,
            request_id: &request.request_id,
            recipe: Arc::new(TokenRecipe::new(plan, form.pin, profile, &self.settings)),
        };
        // Serials are random and unique-constrained; on the astronomically unlikely collision
        // (with a certificate issued earlier, on any node) the whole token is made again with
        // fresh keys and serials. Nothing of the failed attempt was recorded or delivered.
        with_fresh_serials(SERIAL_ATTEMPTS, |attempt| self.attempt(attempt, &order)).await
    }

    /// Runs a recipe on a blocking thread, holding one of the CPU slots (waiting for one in the
    /// bounded queue; refused at once when it is full).
    pub(crate) async fn make(&self, recipe: Arc<TokenRecipe>) -> Result<MadeToken, IssuanceError> {
        let slot = self.admission.cpu.enter().await?;
        self.make_in(slot, recipe).await
    }

    /// Runs a recipe on a blocking thread that owns `slot`: the slot is freed when the CPU work
    /// ends, not when the request does, so an abandoned request cannot leave key generation
    /// running outside the bound.
    async fn make_in(
        &self,
        slot: OwnedSemaphorePermit,
        recipe: Arc<TokenRecipe>,
    ) -> Result<MadeToken, IssuanceError> {
        let pool = self.key_pool.clone();
        tokio::task::spawn_blocking(move || {
            let made = recipe.make(&pool);
            drop(slot);
            made
        })
        .await?
    }

    /// A place in the database writer's queue, taken before the token is made: a full queue
    /// refuses the request before any key is generated.
    fn write_slot(&self) -> Result<WriteSlot, IssuanceError> {
        self.store.reserve_write().map_err(|e| {
            if let StoreError::QueueFull { .. } = e {
                metrics::counter!(super::admission::SHED, "queue" => super::Queue::Write.as_str())
                    .increment(1);
            }
            IssuanceError::from(e)
        })
    }

    /// Makes the token (keys, certificates, PKCS#12) and records it.
    async fn attempt(
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
        let cpu = self.admission.cpu.enter().await?;
        let slot = self.write_slot()?;
        let made = self.make_in(cpu, order.recipe.clone()).await?;
        let MadeToken {
            issued,
            pkcs12,
            stages,
        } = made;
        let store_started = Instant::now();
        let recorded = self.record(slot, order, issued, pkcs12).await;
        if let Ok(Attempt::Done(_)) = &recorded {
            super::metrics::issued(
                &format!("handler.{}", order.handler.number),
                &order.handler.token_procedure,
                &stages,
                store_started.elapsed(),
            );
        }
        recorded
    }

    /// Records a made token through the group-commit writer (committed before anything
    /// leaves) and hands it out. On failure the PKCS#12 is dropped here.
    async fn record(
        &self,
        slot: WriteSlot,
        order: &Order<'_>,
        issued: Vec<(Planned, IssuedCertificate)>,
        pkcs12: Vec<u8>,
    ) -> Result<Attempt<SoftToken>, IssuanceError> {
        let Order {
            handler,
            caller,
            request_id,
            ..
        } = *order;
        let profile = order.recipe.profile;
        let created_at = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let token_id = uuid::Uuid::new_v4().to_string();
        let token = TokenRecord {
            id: token_id.clone(),
            created_at,
            handler: format!("handler.{}", handler.number),
            token_procedure: handler.token_procedure.clone(),
            caller: caller.to_string(),
            request_id: request_id.to_string(),
            profile: profile.name().into(),
        };
        let records: Vec<CertificateRecord> = issued
            .iter()
            .map(|(planned, cert)| CertificateRecord {
                serial: hex::encode(&cert.serial),
                ca: planned.ca.name().to_string(),
                issuer: issuer_dn(&planned.ca),
                subject: planned.subject.display_dn(&planned.template.subject_order),
                sans: planned
                    .subject
                    .san_values()
                    .map(|(a, v)| format!("{}:{v}", a.label()))
                    .collect(),
                not_before: super::unix(cert.not_before),
                not_after: super::unix(cert.not_after),
                purpose: planned.template.purpose.clone(),
                token_id: token_id.clone(),
                status: CertificateStatus::Good,
                revoked_at: None,
                revocation_reason: None,
                der: cert.der.clone(),
            })
            .collect();
        let event = AuditEvent::now(
            "issued",
            &caller.to_string(),
            request_id,
            json!({
                "token": token_id,
                "handler": token.handler,
                "tokenProcedure": token.token_procedure,
                "profile": token.profile,
                "serials": records.iter().map(|r| r.serial.clone()).collect::<Vec<_>>(),
            }),
        );
        let written = slot
            .record(IssuanceRecord {
                token,
                certificates: records.clone(),
                event,
            })
            .await;
        match written {
            Ok(()) => {}
            Err(StoreError::DuplicateSerial(serial)) => return Ok(Attempt::Collision(serial)),
            Err(e) => return Err(e.into()),
        }
        let common_name = issued
            .first()
            .and_then(|(p, _)| {
                p.subject
                    .first(crate::ca::Attribute::CommonName)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "token".into());
        Ok(Attempt::Done(SoftToken {
            token_id,
            pkcs12,
            filename: sanitise_filename(&common_name),
            profile,
            certificates: records,
        }))
    }

    /// Evaluates the handler's format and pairs each certificate of the token procedure with its
    /// CA and subject. Pure: no keys, no signatures.
    fn plan(
        &self,
        rules: &Rules,
        handler: &Handler,
        headers: &IdentityHeaders,
        caller: &Caller,
    ) -> Result<Vec<Planned>, IssuanceError> {
        let procedure = procedure_of(rules, handler)?;
        let fields = evaluate(&handler.fields, headers, caller.certificate_facts())?;
        with_cas(plan_subjects(procedure, &fields)?, &self.cas)
    }
}

/// The handler for a path remainder, or why there is none (shared with `config explain`).
pub(crate) fn select<'r>(rules: &'r Rules, remainder: &str) -> Result<&'r Handler, IssuanceError> {
    if !rules.enabled {
        return Err(IssuanceError::Disabled);
    }
    rules.select(remainder).ok_or(IssuanceError::NoHandler)
}

/// The handler's token procedure (the rules guarantee it exists).
pub(crate) fn procedure_of<'r>(
    rules: &'r Rules,
    handler: &Handler,
) -> Result<&'r crate::rules::TokenProcedure, IssuanceError> {
    rules.procedure(&handler.token_procedure).ok_or_else(|| {
        IssuanceError::invariant(format!(
            "token procedure `{}` vanished",
            handler.token_procedure
        ))
    })
}

fn issuer_dn(ca: &Ca) -> String {
    ca.certificate().tbs_certificate().subject().to_string()
}

/// `<commonname>.p12` with everything but letters, digits, space, `.`, `-` and `_` replaced, so
/// the name is safe in a Content-Disposition header and on every file system.
pub fn sanitise_filename(common_name: &str) -> String {
    let cleaned: String = common_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.');
    if cleaned.is_empty() {
        "token.p12".into()
    } else {
        format!("{cleaned}.p12")
    }
}

#[cfg(test)]
mod tests {
    use super::sanitise_filename;

    #[test]
    fn filenames() {
        assert_eq!(sanitise_filename("Alice Andersson"), "Alice Andersson.p12");
        assert_eq!(sanitise_filename("a\"b\r\nc/../d"), "a_b__c_.._d.p12");
        assert_eq!(sanitise_filename("Åsa Öberg"), "_sa _berg.p12");
        assert_eq!(sanitise_filename(".."), "token.p12");
    }
}
