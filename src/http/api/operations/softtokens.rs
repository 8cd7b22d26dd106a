//! `POST softtokens`: issue a soft token, answered as the PKCS#12 file (or the per-purpose zip)
//! or, with `Accept: application/json`, as JSON.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::Response;

use super::super::extract::{Call, accepts, idempotency_key, signed_json};
use super::super::model::{ErrorBody, SoftTokenBody, SoftTokenJson};
use super::{ok_json, refused};
use crate::issuance::{ApiTokenRequest, Gateway};
use crate::token::Pin;

impl From<SoftTokenBody> for ApiTokenRequest {
    fn from(body: SoftTokenBody) -> Self {
        ApiTokenRequest {
            handler: body.handler,
            token_procedure: body.token_procedure,
            password: Pin::new(body.password),
            profile: body.profile,
            fields: body.fields.0,
        }
    }
}

/// Issue a soft token.
///
/// Runs the same pipeline as the form endpoint: the `fields` go through the chosen AST
/// handler's format, modifiers and verifiers exactly as identity headers do, the certificates
/// are recorded before the token is answered. The answer is the PKCS#12 file, or with
/// `Accept: application/json` the file in base64 with the list of its certificates. With an
/// `Idempotency-Key` a retry of the same request answers 409 `already-issued` with the serials
/// of the token issued the first time (the PKCS#12 itself is not kept).
#[utoipa::path(
    post,
    path = "/softtokens",
    operation_id = "createSoftToken",
    tag = "softtokens",
    request_body(content = SoftTokenBody, content_type = "application/json"),
    params(
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]([ -~]{0,253}[!-~])?$",
            description = "Makes a retry safe: the same key with the same request issues once"),
        ("X-Officer-Signature" = Option<String>, Header,
            description = "Base64 DER detached CMS signature of the exact body by the officer's key, at most 16384 characters, sent once; required when [api] signed_writes = \"required\" (the body then carries signedAt, and is accepted once)"),
    ),
    responses(
        (status = 200, description = "The soft token", content(
            (SoftTokenJson = "application/json"),
            ("application/x-pkcs12"),
        )),
        (status = 400, description = "Malformed request, or a field that fails verification (`bad-request`, `field-missing`, `field-invalid`, `password-policy`, `duplicate-header`, `bad-header`, `field-suspicious`)", body = ErrorBody),
        (status = 401, description = "No client certificate (`unauthenticated`)", body = ErrorBody),
        (status = 403, description = "Not an officer with the roles api.properties requires, a revoked officer, or a missing or bad signature (`missing-role`, `untrusted-caller`, `signature-required`, `bad-signature`, `replayed-signature`)", body = ErrorBody),
        (status = 404, description = "No handler of api.properties serves this path (`no-handler`)", body = ErrorBody),
        (status = 409, description = "The Idempotency-Key was used before (`already-issued` with `serials`, or `conflict` for a different request)", body = ErrorBody),
        (status = 413, description = "The body is too large (`too-large`)", body = ErrorBody),
        (status = 415, description = "The body is not application/json (`unsupported-media-type`)", body = ErrorBody),
        (status = 429, description = "Too many tokens for this peer, identity or officer (`rate-limited`); `Retry-After` says when to try again", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Database or CA unavailable, or the node is overloaded (`unavailable`, `ca-expiring`, `replication-required`); a database or overload answer carries `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait (overload only)"))),
    ),
    security(("officerCertificate" = []))
)]
pub async fn create_soft_token(
    State(gateway): State<Arc<Gateway>>,
    Call(call): Call,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (signed, request) = signed_json::<SoftTokenBody>(&headers, body);
    let request = request.map(ApiTokenRequest::from);
    let key = idempotency_key(&headers);
    let request_id = call.request_id.clone();
    // The domain bounds the request by [limits] request_timeout_secs and audits a timeout.
    match gateway.api_issue(call, signed, request, key).await {
        Ok(token) if accepts(&headers, "application/json") => {
            ok_json(&SoftTokenJson::from(&token), &request_id)
        }
        // Without JSON: the same single file as the form endpoint (a zip for per-purpose).
        Ok(token) => {
            crate::http::routes::attachment(token).unwrap_or_else(|e| refused(&e, &request_id))
        }
        Err(e) => refused(&e, &request_id),
    }
}
