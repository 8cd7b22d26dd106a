//! The soft-token use case: who is calling → which handler → format → recipe → record →
//! deliver. Every refusal is audited with the connection it came on; nothing is issued.
//!
//! This file holds the request and the answer and runs the pipeline up to the recipe;
//! `attempt` makes and records the token (committed before it is handed out), `filenames`
//! names its files, and `refusal` audits every refusal.

mod attempt;
mod filenames;
mod refusal;

use std::sync::Arc;

use super::api::{ApiIssue, ApiIssued};
use super::recipe::{
    Planned, SERIAL_ATTEMPTS, TokenRecipe, plan_subjects, with_cas, with_fresh_serials,
};
use super::{Gateway, IssuanceError};
use crate::identity::{Caller, Connection, OfficerStanding};
use crate::policy::{IdentityHeaders, evaluate};
use crate::rules::{Handler, Layout, Rules};
use crate::store::{CertificateRecord, OfficerStatus};
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
    /// for `/pgwy/ast`), as sent (percent-encoded; see `rules::decode_remainder`); the handler's
    /// trust rule decides whether the headers are believed.
    Path(String),
    /// The REST API: an officer authorized by api.properties supplies the fields.
    Api(Box<ApiIssue>),
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

    /// The registry entry of the connection's client certificate, when the handler needs one,
    /// looked up by issuer and serial (never by fingerprint: see `identity::CertificateId`).
    /// A revoked entry is also remembered for the TLS client verifier, so the certificate's
    /// next connection to this node is refused in the handshake.
    pub(super) async fn officer_standing(
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
            HandlerChoice::Path(sent) => {
                let form = form?;
                let handler = select(&rules, &decoded_remainder(&sent)?)?;
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
                let (caller, issued) = self.admit_api_issue(&rules, &connection, *issue).await?;
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
            None => rules.header_encoding_for(handler),
        };
        let headers = headers
            .decoded_as(encoding)
            .refusing_suspicious(handler.refuse_suspicious);
        let plan = self.plan(&rules, handler, &headers, &caller)?;
        // Rate limits count tokens about to be made: after every check that needs no CPU.
        if let Caller::Officer { .. } = caller {
            self.admission.rates.officer(&caller.to_string())?;
        }
        // Per user: what the front (or certificate) asserted, not the DN (see `asserted_identity`).
        let asserted = crate::policy::asserted_identity(
            &handler.fields,
            &headers,
            caller.certificate_facts(),
        )?;
        let identity = asserted.or_else(|| {
            plan.first()
                .map(|first| first.subject.display_dn(&first.template.subject_order))
        });
        if let Some(identity) = identity {
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

/// The remainder a handler filter sees, from the one in the URL; an ambiguous spelling (an
/// escaped unreserved character or `/`, a dot segment) is refused with 400 `bad-request`.
pub(crate) fn decoded_remainder(sent: &str) -> Result<String, IssuanceError> {
    crate::rules::decode_remainder(sent).map_err(|e| IssuanceError::BadRequest(e.to_string()))
}

/// The handler for a (decoded) path remainder, or why there is none (shared with `config
/// explain`).
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
