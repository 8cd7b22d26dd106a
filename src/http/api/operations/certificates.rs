//! The certificate database operations: list, show, download, revoke, reinstate.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::super::extract::{Call, negotiate, query, signed_json};
use super::super::model::{
    self, CertificateDetails, CertificateList, ErrorBody, ListQuery, ReinstateBody, RevokeBody,
    SerialPath, serial,
};
use super::{ok_json, refused};
use crate::issuance::{Gateway, IssuanceError};
use crate::store::CertificateQuery;

/// Default and largest page of `GET certificates`.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

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
                crate::timestamp::Timestamp::parse_rfc3339(&v)
                    .map(crate::timestamp::Timestamp::unix)
                    .ok_or_else(|| {
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
            model::Status::Good => crate::store::CertificateStatus::Good,
            model::Status::Revoked => crate::store::CertificateStatus::Revoked,
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
/// PEM by default; DER when `Accept` prefers `application/pkix-cert` or
/// `application/octet-stream` (answered as the type asked for).
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
            ("application/octet-stream"),
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
    let media = negotiate(
        &headers,
        &[
            "application/x-pem-file",
            "application/pkix-cert",
            "application/octet-stream",
        ],
    );
    let (extension, body) = match media {
        "application/x-pem-file" => ("pem", crate::ca::pem_certificate(&record.der).into_bytes()),
        _ => ("cer", record.der.clone()),
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
            description = "Base64 DER detached CMS signature of the exact body by the officer's key, at most 16384 characters, sent once; required when [api] signed_writes = \"required\" (the body then carries signedAt, and is accepted once)"),
    ),
    responses(
        (status = 200, description = "The certificate as it now is", body = model::Certificate),
        (status = 400, description = "Malformed request (`bad-request`)", body = ErrorBody),
        (status = 401, description = "No client certificate (`unauthenticated`)", body = ErrorBody),
        (status = 403, description = "Missing role, revoked officer, missing or bad signature (`missing-role`, `untrusted-caller`, `signature-required`, `bad-signature`, `replayed-signature`)", body = ErrorBody),
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
    let (signed, request) = signed_json::<RevokeBody>(&headers, body);
    let request = request.and_then(|b| Ok((serial(&b.serial, "serial")?, b.reason.into())));
    match gateway.api_revoke(&call, signed, request).await {
        Ok(record) => ok_json(&model::Certificate::from(&record), &call.request_id),
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
            description = "Base64 DER detached CMS signature of the exact body by the officer's key, at most 16384 characters, sent once; required when [api] signed_writes = \"required\" (the body then carries signedAt, and is accepted once)"),
    ),
    responses(
        (status = 200, description = "The certificate as it now is", body = model::Certificate),
        (status = 400, description = "Malformed request (`bad-request`)", body = ErrorBody),
        (status = 401, description = "No client certificate (`unauthenticated`)", body = ErrorBody),
        (status = 403, description = "Missing role, revoked officer, missing or bad signature (`missing-role`, `untrusted-caller`, `signature-required`, `bad-signature`, `replayed-signature`)", body = ErrorBody),
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
    let (signed, request) = signed_json::<ReinstateBody>(&headers, body);
    let request = request.and_then(|b| serial(&b.serial, "serial"));
    match gateway.api_reinstate(&call, signed, request).await {
        Ok(record) => ok_json(&model::Certificate::from(&record), &call.request_id),
        Err(e) => refused(&e, &call.request_id),
    }
}
