//! The soft-token use case: who is calling → which handler → format → recipe → record →
//! deliver. Every refusal is audited with the connection it came on; nothing is issued.

use std::sync::Arc;
use std::time::{Instant, UNIX_EPOCH};

use serde_json::json;
use tokio::sync::OwnedSemaphorePermit;

use super::api::{ApiIssue, ApiIssued};
use super::recipe::{
    Attempt, MadeFile, MadeToken, Planned, SERIAL_ATTEMPTS, TokenRecipe, plan_subjects, with_cas,
    with_fresh_serials,
};
use super::{Gateway, IssuanceError};
use crate::ca::{Ca, IssuedCertificate};
use crate::identity::{Caller, Connection, OfficerStanding};
use crate::policy::{IdentityHeaders, evaluate};
use crate::rules::{Handler, Layout, Rules};
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

/// How the handler of a soft-token request is chosen, and who vouches for its identity fields.
#[derive(Debug)]
pub enum HandlerChoice {
    /// The form endpoint: the handler whose filter matches this path after `/pgwy/ast/` (empty
    /// for `/pgwy/ast`); the handler's trust rule decides whether the headers are believed.
    Path(String),
    /// The REST API: an officer authorized by api.properties supplies the fields.
    Api(ApiIssue),
}

/// A request for a soft token, as the HTTP layer hands it over. A form the HTTP layer could
/// not read is handed over too (as `Err`), so that its refusal is audited like every other.
#[derive(Debug)]
pub struct SoftTokenRequest {
    pub connection: Connection,
    pub handler: HandlerChoice,
    pub headers: IdentityHeaders,
    pub form: Result<TokenForm, IssuanceError>,
    pub request_id: String,
}

/// A delivered soft token.
#[derive(Debug)]
pub struct SoftToken {
    pub token_id: String,
    /// The PKCS#12 file with every key (layout `combined`). EMPTY for layout `per-purpose`:
    /// deliver `files` then.
    pub pkcs12: Vec<u8>,
    /// Suggested file name: `<commonname>.p12`, sanitised (for `per-purpose`, the name a
    /// container of `files` takes, e.g. `<commonname>.zip`).
    pub filename: String,
    /// How the token procedure delivers the keys.
    pub layout: Layout,
    /// What to deliver, under the same PIN: `combined`, one file (`pkcs12` under `filename`);
    /// `per-purpose`, one file per certificate, in token procedure order.
    pub files: Vec<TokenFile>,
    pub profile: Pkcs12Profile,
    pub certificates: Vec<CertificateRecord>,
}

/// One PKCS#12 file of a soft token.
#[derive(Debug, Clone)]
pub struct TokenFile {
    /// Suggested file name: `<commonname>.p12` (combined) or `<commonname> <purpose>.p12`
    /// (per-purpose), sanitised; unique within the token.
    pub name: String,
    /// The purpose of the one certificate in the file; `None` for the combined file.
    pub purpose: Option<String>,
    pub pkcs12: Vec<u8>,
}

/// Everything one issuance attempt needs; the same for every attempt of a request.
struct Order<'a> {
    handler: &'a Handler,
    caller: &'a Caller,
    request_id: &'a str,
    recipe: Arc<TokenRecipe>,
    /// For the REST API: the idempotency key and the signature to keep.
    api: Option<&'a ApiIssued>,
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
        let (path, api) = match &request.handler {
            HandlerChoice::Path(path) => (path.clone(), false),
            HandlerChoice::Api(issue) => (issue.path.clone(), true),
        };
        // `[limits] request_timeout_secs` bounds the whole pipeline here, in the domain, so a
        // request that runs out of time is refused and audited like every other refusal. The CPU
        // work already started finishes inside its slot (the permit belongs to it).
        let timeout = self.settings.limits.request_timeout;
        let result = tokio::time::timeout(timeout, self.issue_inner(request))
            .await
            .unwrap_or_else(|_| Err(IssuanceError::Unavailable(super::Unavailable::TimedOut)));
        match result {
            Ok(token) => Ok(token),
            Err(error) if api => Err(self
                .refuse_api(&connection, &path, &request_id, error)
                .await),
            Err(error) => Err(self.refuse_on(&connection, &path, &request_id, error).await),
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
        let handler = self
            .rules()
            .select(path)
            .map(|h| format!("handler.{}", h.number));
        self.record_refusal(
            connection,
            path,
            handler.as_deref().unwrap_or("none"),
            request_id,
            error,
        )
        .await
    }

    /// Audits a refusal at `path` (counted in metrics under `label`) and returns it.
    pub(crate) async fn record_refusal(
        &self,
        connection: &Connection,
        path: &str,
        label: &str,
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
        super::metrics::refused(label, error.code().as_str());
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
        // Aggregated per peer, code and minute: a flood of refusals adds rows per minute, not
        // per request (the store bounds the stored path, too).
        // A refusal about load (overload, rate limit) must not wait for the database it is
        // protecting: its row, when one is written, goes with the writer's next batch.
        let code = error.code().as_str();
        let recorded = if error.retry_after().is_some() {
            self.store.record_load_refusal(&peer, code, &event).await
        } else {
            self.store.record_refusal(&peer, code, &event).await
        };
        if let Err(e) = recorded {
            tracing::error!(target: "audit", request_id, error = %e, "could not record a refusal in the audit table");
        }
        error
    }

    /// The registry entry of the connection's client certificate, when the handler needs one,
    /// looked up by issuer and serial (never by fingerprint: see `identity::CertificateId`).
    /// A revoked entry is also remembered for the TLS client verifier, so the certificate's
    /// next connection to this node is refused in the handshake.
    async fn officer_standing(
        &self,
        handler: &Handler,
        connection: &Connection,
    ) -> Result<Option<OfficerStanding>, IssuanceError> {
        if handler.required_roles.is_none() {
            return Ok(None);
        }
        self.officer_of(connection).await
    }

    /// The registry entry of the connection's client certificate, if it has one and it is
    /// registered. Looked up per request: a revoked officer is refused from the next request on.
    pub(crate) async fn officer_of(
        &self,
        connection: &Connection,
    ) -> Result<Option<OfficerStanding>, IssuanceError> {
        let Some(certificate) = &connection.client_certificate else {
            return Ok(None);
        };
        let Some(id) = certificate.id() else {
            return Ok(None);
        };
        let record = self
            .store
            .officer_by_certificate(&id.issuer, &id.serial)
            .await
            .map_err(IssuanceError::from)?;
        let standing = record.map(|r| OfficerStanding {
            serial: r.serial,
            name: r.name,
            roles: r.roles,
            revoked: r.status != OfficerStatus::Active,
        });
        if standing.as_ref().is_some_and(|o| o.revoked) {
            self.revoked_officers.insert(id.clone());
        }
        Ok(standing)
    }

    async fn issue_inner(&self, request: SoftTokenRequest) -> Result<SoftToken, IssuanceError> {
        let SoftTokenRequest {
            connection,
            handler: choice,
            headers,
            form,
            request_id,
        } = request;
        // Every request of a peer counts, refused or not, before any other work.
        self.admission.rates.peer(connection.peer.ip())?;
        // The same rules throughout, even if a reload swaps them meanwhile.
        let rules = self.rules();
        let (form, handler, caller, api) = match choice {
            HandlerChoice::Path(remainder) => {
                let form = form?;
                let handler = select(&rules, &remainder)?;
                // Looked up per request: a revoked officer is refused from the next request on.
                let officer = self.officer_standing(handler, &connection).await?;
                let caller = self.trust.authorize(
                    handler.required_roles.as_ref(),
                    &connection,
                    officer.as_ref(),
                )?;
                (form, handler, caller, None)
            }
            HandlerChoice::Api(issue) => {
                let (caller, issued) = self.admit_api_issue(&rules, &connection, issue).await?;
                let form = form?;
                // A retry gets the first answer's serials even if the rules changed since.
                self.check_idempotency(&caller, &issued).await?;
                let handler = issued.select(&rules)?;
                (form, handler, caller, Some(issued))
            }
        };
        handler.password_policy.check(&form.pin)?;
        let profile = handler
            .choose_profile(form.profile.as_deref())
            .map_err(|e| IssuanceError::BadRequest(e.to_string()))?;
        // Headers from a front are in the front's encoding; API fields arrive as JSON text.
        let encoding = match api {
            Some(_) => crate::policy::HeaderEncoding::Utf8,
            None => handler
                .header_encoding
                .unwrap_or(self.settings.header_encoding),
        };
        let headers = headers.decoded_as(encoding);
        let plan = self.plan(&rules, handler, &headers, &caller)?;
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
            request_id: &request_id,
            recipe: Arc::new(
                TokenRecipe::new(plan, form.pin, profile, &self.settings)
                    .with_layout(procedure_of(&rules, handler)?.layout),
            ),
            api: api.as_ref(),
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
            files,
            stages,
        } = made;
        let store_started = Instant::now();
        let recorded = self.record(slot, order, issued, files).await;
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
    /// leaves) and hands it out. On failure the PKCS#12 files are dropped here.
    async fn record(
        &self,
        slot: WriteSlot,
        order: &Order<'_>,
        issued: Vec<(Planned, IssuedCertificate)>,
        files: Vec<MadeFile>,
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
        let layout = if files.iter().any(|f| f.certificate.is_some()) {
            Layout::PerPurpose
        } else {
            Layout::Combined
        };
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
        let mut detail = json!({
            "token": token_id,
            "handler": token.handler,
            "tokenProcedure": token.token_procedure,
            "profile": token.profile,
            "layout": layout.name(),
            "serials": records.iter().map(|r| r.serial.clone()).collect::<Vec<_>>(),
        });
        if let Some(api) = order.api {
            api.add_audit_fields(&mut detail);
        }
        let event = AuditEvent::now("issued", &caller.to_string(), request_id, detail);
        let scope = caller.to_string();
        let key = order.api.and_then(|api| api.idempotency_key(&scope));
        // With an idempotency key the issuance is its own transaction (the key row must commit
        // with it); otherwise it joins the writer's next batch.
        let written = match key {
            Some(key) => {
                drop(slot);
                self.store
                    .record_issuance_once(&token, &records, &event, Some(&key))
                    .await
            }
            None => {
                slot.record(IssuanceRecord {
                    token: token.clone(),
                    certificates: records.clone(),
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
        let common_name = |planned: Option<&Planned>| {
            planned
                .and_then(|p| p.subject.first(crate::ca::Attribute::CommonName))
                .unwrap_or("token")
                .to_string()
        };
        let filename = sanitise_filename(&common_name(issued.first().map(|(p, _)| p)));
        let files = name_files(files, &issued, &filename, common_name);
        let pkcs12 = match (layout, files.as_slice()) {
            (Layout::Combined, [file]) => file.pkcs12.clone(),
            _ => Vec::new(),
        };
        Ok(Attempt::Done(SoftToken {
            token_id,
            pkcs12,
            filename,
            layout,
            files,
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

/// Names the files of a made token: the combined file `filename`, a per-purpose file
/// `<its certificate's commonname> <purpose>.p12`; a name already taken gets ` (2)`, ` (3)` ….
fn name_files(
    files: Vec<MadeFile>,
    issued: &[(Planned, IssuedCertificate)],
    filename: &str,
    common_name: impl Fn(Option<&Planned>) -> String,
) -> Vec<TokenFile> {
    let mut named: Vec<TokenFile> = Vec::with_capacity(files.len());
    for file in files {
        let planned = file
            .certificate
            .and_then(|index| issued.get(index))
            .map(|(p, _)| p);
        let purpose = planned.map(|p| p.template.purpose.clone());
        let base = match &purpose {
            Some(purpose) => per_purpose_stem(&common_name(planned), purpose),
            None => filename
                .strip_suffix(".p12")
                .unwrap_or(filename)
                .to_string(),
        };
        let name = unique_name(&base, |name| {
            named.iter().any(|f| f.name.eq_ignore_ascii_case(name))
        });
        named.push(TokenFile {
            name,
            purpose,
            pkcs12: file.pkcs12,
        });
    }
    named
}

/// `<commonname> <purpose>`, each part sanitised like [`sanitise_filename`].
fn per_purpose_stem(common_name: &str, purpose: &str) -> String {
    format!(
        "{} {}",
        sanitise_stem(common_name).unwrap_or_else(|| "token".into()),
        sanitise_stem(purpose).unwrap_or_else(|| "certificate".into())
    )
}

/// `<stem>.p12`, or `<stem> (2).p12`, `<stem> (3).p12` … while `taken`.
fn unique_name(stem: &str, taken: impl Fn(&str) -> bool) -> String {
    let mut name = format!("{stem}.p12");
    let mut n = 2;
    while taken(&name) {
        name = format!("{stem} ({n}).p12");
        n += 1;
    }
    name
}

/// `<commonname>.p12` with everything but letters and digits (of any script, with their
/// combining marks), space, `.`, `-` and `_` replaced by `_`, so the name is safe on every file
/// system and in a Content-Disposition header (the HTTP layer adds the ASCII fallback and the
/// RFC 6266 `filename*`).
pub fn sanitise_filename(common_name: &str) -> String {
    match sanitise_stem(common_name) {
        Some(stem) => format!("{stem}.p12"),
        None => "token.p12".into(),
    }
}

/// The sanitised text of [`sanitise_filename`] without the extension; `None` if nothing is left.
fn sanitise_stem(text: &str) -> Option<String> {
    let combining = |c: char| matches!(c, '\u{300}'..='\u{36F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}' | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}');
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || combining(c) || matches!(c, ' ' | '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.');
    (!cleaned.is_empty()).then(|| cleaned.to_string())
}

#[cfg(test)]
#[path = "soft_token_tests.rs"]
mod tests;
