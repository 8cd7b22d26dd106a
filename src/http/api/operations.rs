//! The API operations: extract, one call into `issuance`, convert. Their `#[utoipa::path]`
//! attributes are the OpenAPI document, so it cannot drift from the code.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::extract::{Call, accepts, idempotency_key, json, query, signed_body};
use super::model::{
    CertificateDetails, CertificateList, ErrorBody, HandlerList, HandlerView, ListQuery, Procedure,
    ProcedureList, ReinstateBody, RevokeBody, SerialPath, SoftTokenBody, SoftTokenJson, serial,
};
use crate::http::error::{ErrorFormat, respond};
use crate::issuance::{ApiTokenRequest, Gateway, IssuanceError};
use crate::store::CertificateQuery;
use crate::token::Pin;

/// Default and largest page of `GET certificates`.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// A JSON answer.
fn ok_json<T: Serialize>(value: &T, request_id: &str) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(e) => respond(
            &IssuanceError::invariant(format!("JSON encoding: {e}")),
            request_id,
            ErrorFormat::Json,
        ),
    }
}

fn refused(error: &IssuanceError, request_id: &str) -> Response {
    respond(error, request_id, ErrorFormat::Json)
}

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
            description = "Base64 DER detached CMS signature of the exact body by the officer's key; required when [api] signed_writes = \"required\""),
    ),
    responses(
        (status = 200, description = "The soft token", content(
            (SoftTokenJson = "application/json"),
            ("application/x-pkcs12"),
        )),
        (status = 400, description = "Malformed request, or a field that fails verification (`bad-request`, `field-missing`, `field-invalid`, `password-policy`, `duplicate-header`, `bad-header`)", body = ErrorBody),
        (status = 401, description = "No client certificate (`unauthenticated`)", body = ErrorBody),
        (status = 403, description = "Not an officer with the roles api.properties requires, a revoked officer, or a missing or bad signature (`missing-role`, `untrusted-caller`, `signature-required`, `bad-signature`)", body = ErrorBody),
        (status = 404, description = "No handler of api.properties serves this path (`no-handler`)", body = ErrorBody),
        (status = 409, description = "The Idempotency-Key was used before (`already-issued` with `serials`, or `conflict` for a different request)", body = ErrorBody),
        (status = 413, description = "The body is too large (`too-large`)", body = ErrorBody),
        (status = 415, description = "The body is not application/json (`unsupported-media-type`)", body = ErrorBody),
        (status = 429, description = "Too many tokens for this peer, identity or officer (`rate-limited`); `Retry-After` says when to try again", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Database or CA unavailable, or the node is overloaded (`unavailable`, `ca-expiring`); an overload answer carries `Retry-After`", body = ErrorBody,
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
    let (signed, read) = signed_body(&headers, body);
    let request = read
        .and_then(|()| json::<SoftTokenBody>(&headers, &signed.bytes))
        .map(ApiTokenRequest::from);
    let key = idempotency_key(&headers);
    let request_id = call.request_id.clone();
    // The domain bounds the request by [limits] request_timeout_secs and audits a timeout.
    match gateway.api_issue(call, signed, request, key).await {
        Ok(token) if accepts(&headers, "application/json") => {
            ok_json(&SoftTokenJson::from(&token), &request_id)
        }
        // Without JSON: the same single file as the form endpoint (a zip for per-purpose).
        Ok(token) => match crate::http::routes::token_file(token) {
            Ok((content_type, filename, body)) => (
                [
                    (header::CONTENT_TYPE, content_type.to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        crate::http::routes::content_disposition(&filename),
                    ),
                    (header::CACHE_CONTROL, "no-store".to_string()),
                ],
                body,
            )
                .into_response(),
            Err(e) => refused(&e, &request_id),
        },
        Err(e) => refused(&e, &request_id),
    }
}

/// List certificates.
///
/// Newest first (then by serial): a stable order, so `nextCursor` continues exactly after the
/// page, whatever is issued meanwhile.
#[utoipa::path(
    get,
    path = "/certificates",
    operation_id = "listCertificates",
    tag = "certificates",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of certificates", body = CertificateList),
        (status = 400, description = "A bad filter or cursor (`bad-request`)", body = ErrorBody),
        (status = 401, description = "No client certificate (`unauthenticated`)", body = ErrorBody),
        (status = 403, description = "Missing role or revoked officer (`missing-role`, `untrusted-caller`)", body = ErrorBody),
        (status = 404, description = "No handler of api.properties serves this path (`no-handler`)", body = ErrorBody),
        (status = 503, description = "Database unavailable (`unavailable`)", body = ErrorBody),
    ),
    security(("officerCertificate" = []))
)]
pub async fn list_certificates(
    State(gateway): State<Arc<Gateway>>,
    Call(call): Call,
    raw: axum::extract::RawQuery,
) -> Response {
    let filters = query::<ListQuery>(raw.0.as_deref()).and_then(certificate_query);
    match gateway.api_certificates(&call, filters).await {
        Ok(page) => ok_json(&CertificateList::from(&page), &call.request_id),
        Err(e) => refused(&e, &call.request_id),
    }
}

/// The listing filters in domain terms.
fn certificate_query(q: ListQuery) -> Result<CertificateQuery, IssuanceError> {
    let time = |value: Option<String>, name: &str| -> Result<Option<i64>, IssuanceError> {
        value
            .map(|v| {
                time::OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339)
                    .map(|t| t.unix_timestamp())
                    .map_err(|_| {
                        IssuanceError::BadRequest(format!(
                            "query parameter `{name}` is not an RFC 3339 time such as 2026-12-01T00:00:00Z"
                        ))
                    })
            })
            .transpose()
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(IssuanceError::BadRequest(format!(
            "query parameter `limit` must be 1 to {MAX_LIMIT}"
        )));
    }
    Ok(CertificateQuery {
        subject: q.subject,
        serial: q
            .serial
            .as_deref()
            .map(|s| serial(s, "serial"))
            .transpose()?,
        status: q.status.map(|s| match s {
            super::model::Status::Good => crate::store::CertificateStatus::Good,
            super::model::Status::Revoked => crate::store::CertificateStatus::Revoked,
        }),
        purpose: q.purpose,
        issued_after: time(q.issued_after, "issuedAfter")?,
        issued_before: time(q.issued_before, "issuedBefore")?,
        expiring_after: time(q.expiring_after, "expiringAfter")?,
        expiring_before: time(q.expiring_before, "expiringBefore")?,
        after: q
            .cursor
            .as_deref()
            .map(crate::issuance::decode_cursor)
            .transpose()?,
        limit,
    })
}

/// Show one certificate.
#[utoipa::path(
    get,
    path = "/certificates/{serial}/details",
    operation_id = "getCertificateDetails",
    tag = "certificates",
    params(SerialPath),
    responses(
        (status = 200, description = "The certificate", body = CertificateDetails),
        (status = 400, description = "Not a serial number (`bad-request`)", body = ErrorBody),
        (status = 401, description = "No client certificate (`unauthenticated`)", body = ErrorBody),
        (status = 403, description = "Missing role or revoked officer (`missing-role`, `untrusted-caller`)", body = ErrorBody),
        (status = 404, description = "No such certificate (`not-found`), or no handler (`no-handler`)", body = ErrorBody),
        (status = 503, description = "Database unavailable (`unavailable`)", body = ErrorBody),
    ),
    security(("officerCertificate" = []))
)]
pub async fn certificate_details(
    State(gateway): State<Arc<Gateway>>,
    Call(call): Call,
    Path(SerialPath { serial: text }): Path<SerialPath>,
) -> Response {
    match gateway
        .api_certificate(&call, serial(&text, "serial"))
        .await
    {
        Ok(record) => ok_json(&CertificateDetails::from(&record), &call.request_id),
        Err(e) => refused(&e, &call.request_id),
    }
}

/// Download one certificate.
///
/// PEM by default; DER with `Accept: application/pkix-cert`.
#[utoipa::path(
    get,
    path = "/certificates/{serial}/download",
    operation_id = "downloadCertificate",
    tag = "certificates",
    params(SerialPath),
    responses(
        (status = 200, description = "The certificate", content(
            ("application/x-pem-file"),
            ("application/pkix-cert"),
        )),
        (status = 400, description = "Not a serial number (`bad-request`)", body = ErrorBody),
        (status = 401, description = "No client certificate (`unauthenticated`)", body = ErrorBody),
        (status = 403, description = "Missing role or revoked officer (`missing-role`, `untrusted-caller`)", body = ErrorBody),
        (status = 404, description = "No such certificate (`not-found`), or no handler (`no-handler`)", body = ErrorBody),
        (status = 503, description = "Database unavailable (`unavailable`)", body = ErrorBody),
    ),
    security(("officerCertificate" = []))
)]
pub async fn download_certificate(
    State(gateway): State<Arc<Gateway>>,
    Call(call): Call,
    Path(SerialPath { serial: text }): Path<SerialPath>,
    headers: HeaderMap,
) -> Response {
    let record = match gateway
        .api_certificate(&call, serial(&text, "serial"))
        .await
    {
        Ok(record) => record,
        Err(e) => return refused(&e, &call.request_id),
    };
    let (media, extension, body) = if accepts(&headers, "application/pkix-cert") {
        ("application/pkix-cert", "cer", record.der.clone())
    } else {
        (
            "application/x-pem-file",
            "pem",
            crate::ca::pem_certificate(&record.der).into_bytes(),
        )
    };
    (
        [
            (header::CONTENT_TYPE, media.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.{extension}\"", record.serial),
            ),
        ],
        body,
    )
        .into_response()
}

/// Revoke a certificate.
///
/// `certificateHold` puts it on hold (undo with reinstate); a certificate on hold may be revoked
/// again with a permanent reason. Audited with the officer as actor (and the signature, when
/// writes are signed).
#[utoipa::path(
    post,
    path = "/certificates/revoke",
    operation_id = "revokeCertificate",
    tag = "certificates",
    request_body(content = RevokeBody, content_type = "application/json"),
    params(
        ("X-Officer-Signature" = Option<String>, Header,
            description = "Base64 DER detached CMS signature of the exact body by the officer's key; required when [api] signed_writes = \"required\""),
    ),
    responses(
        (status = 200, description = "The certificate as it now is", body = super::model::Certificate),
        (status = 400, description = "Malformed request (`bad-request`)", body = ErrorBody),
        (status = 401, description = "No client certificate (`unauthenticated`)", body = ErrorBody),
        (status = 403, description = "Missing role, revoked officer, missing or bad signature (`missing-role`, `untrusted-caller`, `signature-required`, `bad-signature`)", body = ErrorBody),
        (status = 404, description = "No such certificate (`not-found`), or no handler (`no-handler`)", body = ErrorBody),
        (status = 409, description = "Already revoked (`conflict`)", body = ErrorBody),
        (status = 413, description = "The body is too large (`too-large`)", body = ErrorBody),
        (status = 415, description = "The body is not application/json (`unsupported-media-type`)", body = ErrorBody),
        (status = 503, description = "Database unavailable (`unavailable`)", body = ErrorBody),
    ),
    security(("officerCertificate" = []))
)]
pub async fn revoke_certificate(
    State(gateway): State<Arc<Gateway>>,
    Call(call): Call,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (signed, read) = signed_body(&headers, body);
    let request = read
        .and_then(|()| json::<RevokeBody>(&headers, &signed.bytes))
        .and_then(|b| Ok((serial(&b.serial, "serial")?, b.reason.into())));
    match gateway.api_revoke(&call, signed, request).await {
        Ok(record) => ok_json(&super::model::Certificate::from(&record), &call.request_id),
        Err(e) => refused(&e, &call.request_id),
    }
}

/// Reinstate a certificate on hold.
#[utoipa::path(
    post,
    path = "/certificates/reinstate",
    operation_id = "reinstateCertificate",
    tag = "certificates",
    request_body(content = ReinstateBody, content_type = "application/json"),
    params(
        ("X-Officer-Signature" = Option<String>, Header,
            description = "Base64 DER detached CMS signature of the exact body by the officer's key; required when [api] signed_writes = \"required\""),
    ),
    responses(
        (status = 200, description = "The certificate as it now is", body = super::model::Certificate),
        (status = 400, description = "Malformed request (`bad-request`)", body = ErrorBody),
        (status = 401, description = "No client certificate (`unauthenticated`)", body = ErrorBody),
        (status = 403, description = "Missing role, revoked officer, missing or bad signature (`missing-role`, `untrusted-caller`, `signature-required`, `bad-signature`)", body = ErrorBody),
        (status = 404, description = "No such certificate (`not-found`), or no handler (`no-handler`)", body = ErrorBody),
        (status = 409, description = "Not on hold (`conflict`)", body = ErrorBody),
        (status = 413, description = "The body is too large (`too-large`)", body = ErrorBody),
        (status = 415, description = "The body is not application/json (`unsupported-media-type`)", body = ErrorBody),
        (status = 503, description = "Database unavailable (`unavailable`)", body = ErrorBody),
    ),
    security(("officerCertificate" = []))
)]
pub async fn reinstate_certificate(
    State(gateway): State<Arc<Gateway>>,
    Call(call): Call,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (signed, read) = signed_body(&headers, body);
    let request = read
        .and_then(|()| json::<ReinstateBody>(&headers, &signed.bytes))
        .and_then(|b| serial(&b.serial, "serial"));
    match gateway.api_reinstate(&call, signed, request).await {
        Ok(record) => ok_json(&super::model::Certificate::from(&record), &call.request_id),
        Err(e) => refused(&e, &call.request_id),
    }
}

/// List token procedures.
#[utoipa::path(
    get,
    path = "/tokenprocedures",
    operation_id = "listTokenProcedures",
    tag = "configuration",
    responses(
        (status = 200, description = "The token procedures", body = ProcedureList),
        (status = 401, description = "No client certificate (`unauthenticated`)", body = ErrorBody),
        (status = 403, description = "Missing role or revoked officer (`missing-role`, `untrusted-caller`)", body = ErrorBody),
        (status = 404, description = "No handler of api.properties serves this path (`no-handler`)", body = ErrorBody),
        (status = 503, description = "Database unavailable (`unavailable`)", body = ErrorBody),
    ),
    security(("officerCertificate" = []))
)]
pub async fn list_token_procedures(
    State(gateway): State<Arc<Gateway>>,
    Call(call): Call,
) -> Response {
    match gateway.api_rules(&call).await {
        Ok(rules) => ok_json(
            &ProcedureList {
                token_procedures: rules.procedures.values().map(Procedure::from).collect(),
            },
            &call.request_id,
        ),
        Err(e) => refused(&e, &call.request_id),
    }
}

/// List AST handlers and what each maps.
///
/// What `ast-gateway config explain` shows: per handler its filter, format, token procedure,
/// trust rule, PIN policy, PKCS#12 profiles and every format field (source → target, modules).
#[utoipa::path(
    get,
    path = "/handlers",
    operation_id = "listHandlers",
    tag = "configuration",
    responses(
        (status = 200, description = "The AST handlers", body = HandlerList),
        (status = 401, description = "No client certificate (`unauthenticated`)", body = ErrorBody),
        (status = 403, description = "Missing role or revoked officer (`missing-role`, `untrusted-caller`)", body = ErrorBody),
        (status = 404, description = "No handler of api.properties serves this path (`no-handler`)", body = ErrorBody),
        (status = 503, description = "Database unavailable (`unavailable`)", body = ErrorBody),
    ),
    security(("officerCertificate" = []))
)]
pub async fn list_handlers(State(gateway): State<Arc<Gateway>>, Call(call): Call) -> Response {
    match gateway.api_rules(&call).await {
        Ok(rules) => ok_json(
            &HandlerList {
                handlers: rules.handlers.iter().map(HandlerView::from).collect(),
            },
            &call.request_id,
        ),
        Err(e) => refused(&e, &call.request_id),
    }
}

/// A method the path does not serve: 405 (axum adds `Allow`), audited.
pub async fn method_not_allowed(
    State(gateway): State<Arc<Gateway>>,
    Call(call): Call,
    method: Method,
) -> Response {
    let error = IssuanceError::MethodNotAllowed {
        method: method.as_str().chars().take(32).collect(),
    };
    let error = gateway.refuse_api_call(&call, error).await;
    refused(&error, &call.request_id)
}

/// A path under /pgwy/api that is no operation: 404, audited.
pub async fn no_operation(State(gateway): State<Arc<Gateway>>, Call(call): Call) -> Response {
    let error = IssuanceError::NotFound(
        "no API operation at this path; GET /pgwy/api/openapi.json lists them".into(),
    );
    let error = gateway.refuse_api_call(&call, error).await;
    refused(&error, &call.request_id)
}

/// The OpenAPI document (public: it describes, it holds no data).
pub async fn openapi_json() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        super::openapi::document(),
    )
        .into_response()
}
