//! The REST API's use cases: the same soft-token pipeline, revocation and listings as the form
//! endpoint and the CLI, with an officer authorized by api.properties as the caller.
//!
//! Every call is authorized first (client certificate → api.properties handler of the path →
//! officer registry → roles), then a write's signature is checked (`[api] signed_writes`), then
//! the request the HTTP layer parsed (handed over as `Err` when it could not be read, so that
//! its refusal is audited like every other). Every refusal is audited with the officer (or the
//! peer) as actor; every state change is audited by the use case it runs.
//!
//! `issue` holds `POST softtokens` (the soft-token pipeline and its idempotency keys); this file
//! holds what every call shares (authorization, signature, refusal) and the other operations.

mod issue;

use std::sync::Arc;

use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub(crate) use issue::{ApiIssue, ApiIssued};

use super::signed_write::{SIGNED_AT_WINDOW_SECS, SignatureError, SignedWrite, signed_at, verify};
use super::{Gateway, IssuanceError};
use crate::ca::{RevocationReason, Serial};
use crate::config::SignedWrites;
use crate::identity::{Caller, Connection, TrustError};
use crate::rules::Rules;
use crate::store::{CertificatePage, CertificateQuery, CertificateRecord, PageCursor};
use crate::token::Pin;

/// What every API call carries.
#[derive(Debug, Clone)]
pub struct ApiCall {
    pub connection: Connection,
    /// The path after `/pgwy/api/`, as api.properties filters see it.
    pub path: String,
    pub request_id: String,
}

/// A write's body exactly as received, and its `X-Officer-Signature` header. The body of a
/// soft-token request holds the password: it is zeroised on drop.
#[derive(Debug, Default)]
pub struct SignedBody {
    pub bytes: Zeroizing<Vec<u8>>,
    pub signature: Option<String>,
    /// `X-Officer-Signature` was sent more than once (refused, whatever `signed_writes` says).
    pub duplicate_signature: bool,
}

/// An `Idempotency-Key`: 1 to 255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Parses the header value.
    pub fn parse(raw: &[u8]) -> Result<IdempotencyKey, IssuanceError> {
        let bad = || {
            IssuanceError::BadRequest(
                "the header Idempotency-Key must be 1 to 255 printable ASCII characters".into(),
            )
        };
        let text = std::str::from_utf8(raw).map_err(|_| bad())?.trim();
        if text.is_empty() || text.len() > 255 || !text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(bad());
        }
        Ok(IdempotencyKey(text.to_string()))
    }

    /// The key as sent (trimmed).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `POST softtokens` as parsed by the HTTP layer.
#[derive(Debug)]
pub struct ApiTokenRequest {
    /// Chooses the AST handler as the form endpoint's path would (`/pgwy/ast/<handler>`).
    pub handler: Option<String>,
    /// Chooses the first AST handler using this token procedure (or checks the handler's).
    pub token_procedure: Option<String>,
    pub password: Pin,
    pub profile: Option<String>,
    /// Identity fields, read by the handler's format exactly as identity headers are.
    pub fields: Vec<(String, String)>,
}

/// SHA-256 over the request without its password: what tells a retry from a different request
/// under the same key.
fn request_hash(request: &ApiTokenRequest) -> String {
    let mut fields: Vec<(String, &str)> = request
        .fields
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.as_str()))
        .collect();
    fields.sort();
    let canonical = json!({
        "handler": request.handler,
        "tokenProcedure": request.token_procedure,
        "profile": request.profile,
        "fields": fields,
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// A page cursor as the API hands it out: opaque, URL-safe.
pub fn encode_cursor(cursor: &PageCursor) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}.{}", cursor.created_at, cursor.serial))
}

/// Reads a cursor handed out by [`encode_cursor`].
pub fn decode_cursor(text: &str) -> Result<PageCursor, IssuanceError> {
    let bad = || {
        IssuanceError::BadRequest(
            "`cursor` is not a cursor this service handed out (nextCursor of a page)".into(),
        )
    };
    if text.len() > 256 {
        return Err(bad());
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (created_at, serial) = text.split_once('.').ok_or_else(bad)?;
    let serial = Serial::parse(serial).map_err(|_| bad())?;
    Ok(PageCursor {
        created_at: created_at.parse().map_err(|_| bad())?,
        serial: serial.hex().to_string(),
    })
}

impl Gateway {
    /// Authorizes an API call: a client certificate (else 401), an api.properties handler for
    /// the path, the officer registry (looked up now: a revoked officer is refused at once) and
    /// the handler's roles.
    async fn authorize_api(
        &self,
        rules: &Rules,
        path: &str,
        connection: &Connection,
    ) -> Result<Caller, IssuanceError> {
        if connection.client_certificate.is_none() {
            return Err(IssuanceError::Unauthenticated);
        }
        let handler = rules
            .api
            .select(path)
            .ok_or_else(|| IssuanceError::NoApiHandler(path.chars().take(200).collect()))?;
        let officer = self.officer_of(connection).await?;
        self.trust
            .authorize(Some(&handler.required_roles), connection, officer.as_ref())
            .map_err(|e| match e {
                TrustError::NoClientCertificate => IssuanceError::Unauthenticated,
                other => other.into(),
            })
    }

    /// The signature of a write, verified when `[api] signed_writes = "required"`: made by
    /// this officer over this body, the body's `signedAt` near now, and the body not accepted
    /// before (a replay is refused).
    async fn check_signature(
        &self,
        body: &SignedBody,
        connection: &Connection,
        caller: &Caller,
    ) -> Result<Option<SignedWrite>, IssuanceError> {
        if body.duplicate_signature {
            return Err(SignatureError::Duplicate.into());
        }
        if self.settings.api.signed_writes == SignedWrites::Off {
            return Ok(None);
        }
        let certificate = connection
            .client_certificate
            .as_ref()
            .ok_or(IssuanceError::Unauthenticated)?;
        let signature = body.signature.as_deref().ok_or(SignatureError::Missing)?;
        let mut signed = verify(signature, &body.bytes, certificate.der())?;
        let now = super::unix(std::time::SystemTime::now());
        signed.signed_at = signed_at(&body.bytes, now)?;
        let expires = signed.signed_at + SIGNED_AT_WINDOW_SECS;
        let scope = caller.to_string();
        if !self
            .store
            .claim_signed_body(&scope, &signed.body_sha256, expires, now)
            .await?
        {
            return Err(SignatureError::Replayed.into());
        }
        Ok(Some(signed))
    }

    /// Authorization, signature, then the parsed request of a write.
    async fn admit_write<T>(
        &self,
        call: &ApiCall,
        body: &SignedBody,
        request: Result<T, IssuanceError>,
    ) -> Result<(Caller, Option<SignedWrite>, T), IssuanceError> {
        let rules = self.rules();
        let caller = self
            .authorize_api(&rules, &call.path, &call.connection)
            .await?;
        let signed = self
            .check_signature(body, &call.connection, &caller)
            .await?;
        Ok((caller, signed, request?))
    }

    /// `POST certificates/revoke`.
    pub async fn api_revoke(
        &self,
        call: &ApiCall,
        body: SignedBody,
        request: Result<(Serial, RevocationReason), IssuanceError>,
    ) -> Result<CertificateRecord, IssuanceError> {
        let (caller, signed, (serial, reason)) = match self.admit_write(call, &body, request).await
        {
            Ok(admitted) => admitted,
            Err(e) => return Err(self.refuse_api_call(call, e).await),
        };
        self.revoke_signed(&serial, reason, &caller, &call.request_id, signed.as_ref())
            .await
    }

    /// `POST certificates/reinstate`.
    pub async fn api_reinstate(
        &self,
        call: &ApiCall,
        body: SignedBody,
        request: Result<Serial, IssuanceError>,
    ) -> Result<CertificateRecord, IssuanceError> {
        let (caller, signed, serial) = match self.admit_write(call, &body, request).await {
            Ok(admitted) => admitted,
            Err(e) => return Err(self.refuse_api_call(call, e).await),
        };
        self.reinstate_signed(&serial, &caller, &call.request_id, signed.as_ref())
            .await
    }

    /// `GET handlers`, `GET tokenprocedures`: the rules in effect, to a reader.
    pub async fn api_rules(&self, call: &ApiCall) -> Result<Arc<Rules>, IssuanceError> {
        let rules = self.rules();
        match self
            .authorize_api(&rules, &call.path, &call.connection)
            .await
        {
            Ok(_) => Ok(rules),
            Err(e) => Err(self.refuse_api_call(call, e).await),
        }
    }

    /// `GET certificates`: one page.
    pub async fn api_certificates(
        &self,
        call: &ApiCall,
        query: Result<CertificateQuery, IssuanceError>,
    ) -> Result<CertificatePage, IssuanceError> {
        let result = async {
            let rules = self.rules();
            self.authorize_api(&rules, &call.path, &call.connection)
                .await?;
            Ok(self.store.certificate_page(&query?).await?)
        }
        .await;
        match result {
            Ok(page) => Ok(page),
            Err(e) => Err(self.refuse_api_call(call, e).await),
        }
    }

    /// `GET certificates/{serial}/details` and `/download`.
    pub async fn api_certificate(
        &self,
        call: &ApiCall,
        serial: Result<Serial, IssuanceError>,
    ) -> Result<CertificateRecord, IssuanceError> {
        let result = async {
            let rules = self.rules();
            self.authorize_api(&rules, &call.path, &call.connection)
                .await?;
            let serial = serial?;
            self.store.certificate(&serial).await?.ok_or_else(|| {
                IssuanceError::NotFound(format!("no certificate with serial `{serial}`"))
            })
        }
        .await;
        match result {
            Ok(record) => Ok(record),
            Err(e) => Err(self.refuse_api_call(call, e).await),
        }
    }

    /// Audits a refusal the HTTP layer decides before any use case (wrong method, no such
    /// operation) and returns it.
    pub async fn refuse_api_call(&self, call: &ApiCall, error: IssuanceError) -> IssuanceError {
        self.refuse_api(&call.connection, &call.path, &call.request_id, error)
            .await
    }

    /// Audits an API refusal: who (the client certificate's fingerprint, else the peer), the
    /// path, the rule and the operator message. Never a password or a field value.
    pub(crate) async fn refuse_api(
        &self,
        connection: &Connection,
        path: &str,
        request_id: &str,
        error: IssuanceError,
    ) -> IssuanceError {
        let shown: String = path.chars().take(256).collect();
        self.record_refusal(
            connection,
            &format!("/pgwy/api/{shown}"),
            "api",
            request_id,
            error,
        )
        .await
    }
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
