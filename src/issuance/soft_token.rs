//! The soft-token pipeline (SPEC §1 steps 4–7).

use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::json;

use super::{Gateway, IssuanceError};
use crate::ca::{
    Ca, CaError, CertificateProfile, IssuedCertificate, PublishedUrls, Subject, issue_certificate,
};
use crate::config::{CertificateTemplate, Config, Handler};
use crate::identity::{Caller, Connection, OfficerStanding};
use crate::policy::{CertificateFacts, EvaluatedFields, IdentityHeaders, evaluate};
use crate::store::{
    AuditEvent, CertificateRecord, CertificateStatus, OfficerStatus, StoreError, TokenRecord,
};
use crate::token::{
    GeneratedKey, KeyPool, KeySource, Pin, Pkcs12Profile, TokenEntry, write_pkcs12,
};

/// A request for a soft token, as the HTTP layer hands it over.
#[derive(Debug)]
pub struct SoftTokenRequest {
    pub connection: Connection,
    /// The path after `/pgwy/ast/` (empty for `/pgwy/ast`).
    pub path_remainder: String,
    pub headers: IdentityHeaders,
    pub pin: Pin,
    /// The form field `profile`, if sent.
    pub profile: Option<String>,
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
    profile: Pkcs12Profile,
    plan: &'a [Planned],
    pin: Arc<Pin>,
    iterations: u32,
    public_url: &'a str,
    /// Write the AIA OCSP URL (SPEC §7.1, when `[ocsp] enabled`).
    ocsp: bool,
}

/// One certificate to make: its template, its CA and its subject.
#[derive(Clone)]
pub(crate) struct Planned {
    template: CertificateTemplate,
    ca: Arc<Ca>,
    subject: Subject,
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

    /// Audits a refusal of a soft-token request (also those the HTTP layer detects before the
    /// request reaches `issue_soft_token`, such as a malformed form) and returns the error.
    pub async fn refuse(
        &self,
        peer: std::net::IpAddr,
        path: &str,
        request_id: &str,
        error: IssuanceError,
    ) -> IssuanceError {
        let connection = Connection {
            peer: std::net::SocketAddr::new(peer, 0),
            client_certificate: None,
        };
        self.refuse_on(&connection, path, request_id, error).await
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
            .config()
            .ast
            .select(path)
            .map(|h| format!("handler.{}", h.number));
        super::metrics::refused(handler.as_deref().unwrap_or("none"), error.code());
        let rule = match &error {
            IssuanceError::Trust(trust) => trust.rule(),
            other => other.code(),
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
        if let Err(e) = self.store.record_audit(&event).await {
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
            .map_err(|e| IssuanceError::Unavailable(e.to_string()))?;
        Ok(record.map(|r| OfficerStanding {
            serial: r.serial,
            name: r.name,
            roles: r.roles,
            revoked: r.status != OfficerStatus::Active,
        }))
    }

    async fn issue_inner(&self, request: SoftTokenRequest) -> Result<SoftToken, IssuanceError> {
        let config = self.config();
        if !config.ast.enabled {
            return Err(IssuanceError::Disabled);
        }
        let handler = config
            .ast
            .select(&request.path_remainder)
            .ok_or(IssuanceError::NoHandler)?;
        // Looked up per request: a revoked officer is refused from the next request on.
        let officer = self.officer_standing(handler, &request.connection).await?;
        let caller = self.trust.authorize(
            handler.required_roles.as_ref(),
            &request.connection,
            officer.as_ref(),
        )?;
        handler.password_policy.check(&request.pin)?;
        let profile = handler
            .choose_profile(request.profile.as_deref())
            .map_err(IssuanceError::BadRequest)?;
        // The same configuration snapshot throughout, even if a reload swaps it meanwhile.
        let plan = self.plan(&config, handler, &request.headers, &caller)?;
        let iterations = config.gateway.pkcs12_iterations;
        let public_url = config.gateway.server.public_url.clone();
        let ocsp = config.gateway.ocsp.enabled;

        // Serials are random and unique-constrained; on the astronomically unlikely collision
        // (with a certificate issued earlier, on any node) the whole token is made again with
        // fresh keys and serials. Nothing of the failed attempt was recorded or delivered.
        let order = Order {
            handler,
            caller: &caller,
            request_id: &request.request_id,
            profile,
            plan: &plan,
            pin: Arc::new(request.pin),
            iterations,
            public_url: &public_url,
            ocsp,
        };
        with_fresh_serials(SERIAL_ATTEMPTS, |attempt| self.attempt(attempt, &order)).await
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
        let _slot = self
            .crypto_slots
            .acquire()
            .await
            .map_err(|_| IssuanceError::Unavailable("shutting down".into()))?;
        let (plan, pin, profile, iterations) = (
            order.plan.to_vec(),
            order.pin.clone(),
            order.profile,
            order.iterations,
        );
        let public_url = order.public_url.to_string();
        let ocsp = order.ocsp;
        let pool = self.key_pool.clone();
        let made = tokio::task::spawn_blocking(move || {
            make_token(plan, &pin, profile, iterations, &public_url, ocsp, &pool)
        })
        .await
        .map_err(|e| IssuanceError::Internal(format!("issuance task failed: {e}")))??;
        drop(_slot);
        let MadeToken {
            issued,
            pkcs12,
            stages,
        } = made;
        let store_started = Instant::now();
        let recorded = self
            .record(
                order.handler,
                order.caller,
                order.request_id,
                order.profile,
                issued,
                pkcs12,
            )
            .await;
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

    /// Records a made token (SPEC §9: commit before anything leaves) and hands it out. On
    /// failure the PKCS#12 is dropped here.
    async fn record(
        &self,
        handler: &Handler,
        caller: &Caller,
        request_id: &str,
        profile: Pkcs12Profile,
        issued: Vec<(Planned, IssuedCertificate)>,
        pkcs12: Vec<u8>,
    ) -> Result<Attempt<SoftToken>, IssuanceError> {
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
                not_before: unix(cert.not_before),
                not_after: unix(cert.not_after),
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
        match self.store.record_issuance(&token, &records, &event).await {
            Ok(()) => {}
            Err(StoreError::DuplicateSerial(serial)) => return Ok(Attempt::Collision(serial)),
            Err(e) => return Err(IssuanceError::Unavailable(e.to_string())),
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
        config: &Config,
        handler: &Handler,
        headers: &IdentityHeaders,
        caller: &Caller,
    ) -> Result<Vec<Planned>, IssuanceError> {
        let subjects = plan_subjects(config, handler, headers, caller.certificate_facts())?;
        let mut plan = Vec::with_capacity(subjects.len());
        for (template, subject) in subjects {
            let ca = self.cas.get(&template.ca).cloned().ok_or_else(|| {
                IssuanceError::Unavailable(format!("CA `{}` is not loaded", template.ca))
            })?;
            plan.push(Planned {
                template: template.clone(),
                ca,
                subject,
            });
        }
        Ok(plan)
    }
}

/// The subject of each certificate of the handler's token procedure, in token-procedure order:
/// the format evaluated over the headers and the caller's certificate facts. Pure: shared by
/// issuance and `config explain`.
pub(super) fn plan_subjects<'c>(
    config: &'c Config,
    handler: &Handler,
    headers: &IdentityHeaders,
    certificate: Option<&CertificateFacts>,
) -> Result<Vec<(&'c CertificateTemplate, Subject)>, IssuanceError> {
    let procedure = config
        .gateway
        .token_procedures
        .get(&handler.token_procedure)
        .ok_or_else(|| {
            IssuanceError::Internal(format!(
                "token procedure `{}` vanished",
                handler.token_procedure
            ))
        })?;
    let fields = evaluate(&handler.fields, headers, certificate)?;
    let mut plan = Vec::with_capacity(procedure.certificates.len());
    for (index, template) in procedure.certificates.iter().enumerate() {
        let subject = fields.subject_for(index);
        if subject.dn_values(&template.subject_order).is_empty() {
            return Err(IssuanceError::Policy(
                crate::policy::PolicyError::FieldMissing {
                    field: "subject".into(),
                    index: 0,
                    source_name: format!(
                        "certificate {index} ({}) would have an empty subject",
                        template.purpose
                    ),
                },
            ));
        }
        plan.push((template, subject));
    }
    Ok(plan)
}

/// How often a token is made again after a serial collision before giving up.
const SERIAL_ATTEMPTS: u32 = 3;

/// The outcome of one issuance attempt.
#[derive(Debug)]
enum Attempt<T> {
    Done(T),
    /// The database already holds a certificate with this serial; nothing was recorded.
    Collision(String),
}

/// Runs `attempt` (numbered from 1) until it is done, at most `attempts` times. Repeated
/// collisions mean the random number generator is broken: that is an internal error.
async fn with_fresh_serials<T, F, Fut>(attempts: u32, mut attempt: F) -> Result<T, IssuanceError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<Attempt<T>, IssuanceError>>,
{
    let mut last = String::new();
    for n in 1..=attempts {
        match attempt(n).await? {
            Attempt::Done(value) => return Ok(value),
            Attempt::Collision(serial) => last = serial,
        }
    }
    Err(IssuanceError::Internal(format!(
        "{attempts} serial collisions in a row (last {last}): is the random number generator broken?"
    )))
}

/// Where the time of one token went (metrics, `bench`).
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimes {
    /// Taking keys from the pool or generating them inline.
    pub keygen: Duration,
    /// Building and signing the certificates.
    pub sign: Duration,
    /// Writing the PKCS#12 (PBKDF2 dominates).
    pub pkcs12: Duration,
    /// Keys taken from the pool.
    pub pooled_keys: u32,
    /// Keys generated inline because the pool was empty.
    pub inline_keys: u32,
}

/// The certificates of a token (with what they were made from), its PKCS#12 and the time
/// each stage took.
pub(crate) struct MadeToken {
    pub(crate) issued: Vec<(Planned, IssuedCertificate)>,
    pub(crate) pkcs12: Vec<u8>,
    pub(crate) stages: StageTimes,
}

/// Pairs each certificate of a token procedure with its CA and a subject from already
/// evaluated fields (`bench`, which has no request). Pure: no keys, no signatures.
pub(crate) fn plan_certificates(
    config: &Config,
    cas: &std::collections::BTreeMap<String, Arc<Ca>>,
    procedure: &str,
    fields: &EvaluatedFields,
) -> Result<Vec<Planned>, IssuanceError> {
    let procedure = config
        .gateway
        .token_procedures
        .get(procedure)
        .ok_or_else(|| {
            IssuanceError::Internal(format!("token procedure `{procedure}` vanished"))
        })?;
    let mut plan = Vec::with_capacity(procedure.certificates.len());
    for (index, template) in procedure.certificates.iter().enumerate() {
        let ca = cas.get(&template.ca).cloned().ok_or_else(|| {
            IssuanceError::Unavailable(format!("CA `{}` is not loaded", template.ca))
        })?;
        plan.push(Planned {
            template: template.clone(),
            ca,
            subject: fields.subject_for(index),
        });
    }
    Ok(plan)
}

/// Keys (from the pool, else inline), certificates and the PKCS#12, on a blocking thread.
pub(crate) fn make_token(
    plan: Vec<Planned>,
    pin: &Pin,
    profile: Pkcs12Profile,
    iterations: u32,
    public_url: &str,
    ocsp: bool,
    pool: &KeyPool,
) -> Result<MadeToken, IssuanceError> {
    let mut stages = StageTimes::default();
    let mut keys: Vec<GeneratedKey> = Vec::with_capacity(plan.len());
    let mut issued = Vec::with_capacity(plan.len());
    for planned in plan {
        let started = Instant::now();
        let (key, source) = pool
            .key(planned.template.key)
            .map_err(|e| IssuanceError::Internal(e.to_string()))?;
        match source {
            KeySource::Pool => stages.pooled_keys += 1,
            KeySource::Inline => stages.inline_keys += 1,
        }
        let signing = Instant::now();
        stages.keygen += signing - started;
        let template = &planned.template;
        let certificate_profile = CertificateProfile {
            subject: &planned.subject,
            subject_order: &template.subject_order,
            spki_der: key.spki_der(),
            validity: template.validity,
            key_usage: template.key_usage,
            extended_key_usage: &template.extended_key_usage,
            policies: &template.policies,
            ca: None,
            published: Some(PublishedUrls::for_ca(public_url, planned.ca.name(), ocsp)),
        };
        let ca = &planned.ca;
        let certificate = issue_certificate(
            ca.certificate().tbs_certificate().subject(),
            ca.key_identifier(),
            ca.signer(),
            &certificate_profile,
        )
        .map_err(|e| match e {
            CaError::Value { attribute, message } => {
                IssuanceError::FieldEncoding { attribute, message }
            }
            CaError::Signing(_) => IssuanceError::Unavailable(e.to_string()),
            other => IssuanceError::Internal(other.to_string()),
        })?;
        stages.sign += signing.elapsed();
        keys.push(key);
        issued.push((planned, certificate));
    }
    let writing = Instant::now();
    let pkcs12 = {
        let entries: Vec<TokenEntry<'_>> = issued
            .iter()
            .zip(&keys)
            .map(|((planned, certificate), key)| TokenEntry {
                friendly_name: format!(
                    "{} {}",
                    planned
                        .subject
                        .first(crate::ca::Attribute::CommonName)
                        .unwrap_or("token"),
                    planned.template.purpose
                ),
                key,
                certificate_der: &certificate.der,
                chain: planned.ca.chain(),
            })
            .collect();
        write_pkcs12(&entries, pin, profile, iterations)
            .map_err(|e| IssuanceError::Internal(e.to_string()))?
    };
    stages.pkcs12 = writing.elapsed();
    Ok(MadeToken {
        issued,
        pkcs12,
        stages,
    })
}

fn issuer_dn(ca: &Ca) -> String {
    ca.certificate().tbs_certificate().subject().to_string()
}

fn unix(t: std::time::SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `<commonname>.p12` with everything but letters and digits (of any script, with their
/// combining marks), space, `.`, `-` and `_` replaced by `_`, so the name is safe on every file
/// system and in a Content-Disposition header (the HTTP layer adds the ASCII fallback and the
/// RFC 6266 `filename*`).
pub fn sanitise_filename(common_name: &str) -> String {
    let combining = |c: char| matches!(c, '\u{300}'..='\u{36F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}' | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}');
    let cleaned: String = common_name
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
    if cleaned.is_empty() {
        "token.p12".into()
    } else {
        format!("{cleaned}.p12")
    }
}

#[cfg(test)]
mod tests {
    use super::{Attempt, IssuanceError, sanitise_filename, with_fresh_serials};

    #[tokio::test]
    async fn collision_is_retried_with_fresh_serials() {
        let mut calls = Vec::new();
        let result = with_fresh_serials(3, |n| {
            calls.push(n);
            std::future::ready(Ok(if n < 3 {
                Attempt::Collision(format!("{n:02x}"))
            } else {
                Attempt::Done("token")
            }))
        })
        .await;
        assert_eq!(result.ok(), Some("token"));
        assert_eq!(calls, [1, 2, 3]);
    }

    #[tokio::test]
    async fn endless_collisions_are_an_internal_error() {
        let mut calls = 0;
        let result: Result<(), _> = with_fresh_serials(3, |_| {
            calls += 1;
            std::future::ready(Ok(Attempt::Collision("01".into())))
        })
        .await;
        assert!(
            matches!(result, Err(IssuanceError::Internal(ref m)) if m.contains("3 serial collisions"))
        );
        assert_eq!(calls, 3);
    }

    #[tokio::test]
    async fn other_errors_are_not_retried() {
        let mut calls = 0;
        let result: Result<(), _> = with_fresh_serials(3, |_| {
            calls += 1;
            std::future::ready(Err(IssuanceError::Unavailable("database down".into())))
        })
        .await;
        assert_eq!(result.err().map(|e| e.code()), Some("unavailable"));
        assert_eq!(calls, 1);
    }

    #[test]
    fn filenames() {
        assert_eq!(sanitise_filename("Alice Andersson"), "Alice Andersson.p12");
        assert_eq!(sanitise_filename("a\"b\r\nc/../d"), "a_b__c_.._d.p12");
        assert_eq!(sanitise_filename("Åsa Öberg"), "Åsa Öberg.p12");
        assert_eq!(sanitise_filename("𠮷田 太郎"), "𠮷田 太郎.p12");
        assert_eq!(sanitise_filename("A\u{30A}sa"), "A\u{30A}sa.p12");
        assert_eq!(
            sanitise_filename("\u{202E}gpj.exe\u{200B}A😀"),
            "_gpj.exe_A_.p12"
        );
        assert_eq!(sanitise_filename(".."), "token.p12");
    }
}
