//! EST (RFC 7030) under `/.well-known/est/` and `/.well-known/est/<label>/`: the third front
//! door. Each handler extracts (the path's label and operation, HTTP Basic credentials, the
//! base64 CSR), makes one call into `issuance` and converts the answer (`wire`: PKCS#7
//! certs-only, `application/csrattrs`, `multipart/mixed` with the PKCS#8 key or the key
//! encrypted to the client). Refusals are
//! JSON like the API's, with `WWW-Authenticate: Basic` where credentials are wanted.

mod wire;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::any;

use super::connection::is_body_timeout;
use super::error::{ErrorFormat, respond};
use super::routes::{Peer, RequestId, Transport};
use crate::issuance::{
    DeliveredKey, EstCall, EstOperation, EstRefusal, EstRequest, Gateway, IssuanceError,
    MAX_CSR_BYTES,
};
use crate::policy::IdentityHeaders;

/// The EST routes, merged into the main router.
pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/.well-known/est", any(est))
        .route("/.well-known/est/", any(est))
        .route("/.well-known/est/{*rest}", any(est))
}

/// What the path names: the label (if any) and the operation.
fn split_path(path: &str) -> (Option<String>, String) {
    let rest = path
        .strip_prefix("/.well-known/est")
        .unwrap_or_default()
        .trim_start_matches('/');
    // Bounded: a label is at most 64 characters, an operation 14.
    let mut segments = rest.splitn(3, '/');
    let first: String = segments
        .next()
        .unwrap_or_default()
        .chars()
        .take(80)
        .collect();
    match (segments.next(), segments.next()) {
        (None, _) => (None, first),
        (Some(op), None) => (Some(first), op.chars().take(80).collect()),
        // Deeper paths are no operation; keep the label for the audit row.
        (Some(op), Some(_)) => (
            Some(first),
            format!("{}/…", op.chars().take(80).collect::<String>()),
        ),
    }
}

#[allow(clippy::too_many_arguments)]
async fn est(
    State(gateway): State<Arc<Gateway>>,
    RequestId(request_id): RequestId,
    Peer(connection): Peer,
    Transport { over_tls }: Transport,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (label, operation) = split_path(uri.path());
    let call = EstCall {
        connection,
        label,
        over_tls,
        request_id,
    };
    let issuing = match operation.as_str() {
        "simpleenroll" => Some(EstOperation::Enroll),
        "simplereenroll" => Some(EstOperation::Reenroll),
        "serverkeygen" => Some(EstOperation::ServerKeygen),
        _ => None,
    };
    let wanted: &'static str = if issuing.is_some() { "POST" } else { "GET" };
    let known = issuing.is_some() || matches!(operation.as_str(), "cacerts" | "csrattrs");
    if !known {
        let error = IssuanceError::NotFound(
            "no EST operation here; the operations are cacerts, csrattrs, simpleenroll, simplereenroll and serverkeygen under /.well-known/est/ or /.well-known/est/<label>/".into(),
        );
        return refused(&gateway, &call, &operation, error).await;
    }
    if method.as_str() != wanted {
        let error = IssuanceError::MethodNotAllowed {
            method: method.as_str().chars().take(32).collect(),
        };
        let mut response = refused(&gateway, &call, &operation, error).await;
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(wanted));
        return response;
    }
    match issuing {
        None if operation == "cacerts" => match gateway.est_cacerts(&call).await {
            Ok(chain) => wire::certs_only(&chain).map_or_else(
                |e| respond(&e, &call.request_id, ErrorFormat::Json),
                // RFC 7030 §4.1.3 names the type without parameters (and some clients
                // compare it whole).
                |der| wire::base64_body("application/pkcs7-mime", &der),
            ),
            Err(e) => answer_refusal(&e, &call),
        },
        None => match gateway.est_csrattrs(&call).await {
            Ok(der) => wire::base64_body("application/csrattrs", &der),
            Err(e) => answer_refusal(&e, &call),
        },
        Some(operation) => enroll(&gateway, call, operation, &headers, body).await,
    }
}

/// simpleenroll, simplereenroll, serverkeygen.
async fn enroll(
    gateway: &Gateway,
    call: EstCall,
    operation: EstOperation,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let limits = &gateway.settings().limits;
    let request = EstRequest {
        operation,
        headers: IdentityHeaders::new(headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes()))),
        basic: wire::basic_credentials(headers).map_err(IssuanceError::from),
        csr: read_csr(headers, body, limits.body_timeout.as_secs()),
        call: call.clone(),
    };
    match gateway.est_enroll(request).await {
        Ok(issued) => {
            let certificate = match wire::certs_only(std::slice::from_ref(&issued.certificate)) {
                Ok(der) => der,
                Err(e) => return respond(&e, &call.request_id, ErrorFormat::Json),
            };
            match issued.private_key {
                Some(DeliveredKey::Pkcs8(key)) => {
                    wire::key_and_certificate(wire::PKCS8, &key, &certificate)
                }
                Some(DeliveredKey::Encrypted(key)) => {
                    wire::key_and_certificate(wire::SERVER_GENERATED_KEY, &key, &certificate)
                }
                None => wire::base64_body(wire::CERTS_ONLY, &certificate),
            }
        }
        Err(e) => answer_refusal(&e, &call),
    }
}

/// The CSR: `application/pkcs10`, base64 (whitespace allowed) of at most [`MAX_CSR_BYTES`]
/// of DER.
fn read_csr(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    body_timeout: u64,
) -> Result<Vec<u8>, IssuanceError> {
    let body = match body {
        Ok(b) => b,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(IssuanceError::TooLarge);
        }
        Err(rejection) if is_body_timeout(&rejection) => {
            return Err(IssuanceError::BodyTimeout(body_timeout));
        }
        Err(rejection) => return Err(IssuanceError::BadRequest(rejection.body_text())),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.split(';').next().map(str::trim) != Some("application/pkcs10") {
        return Err(IssuanceError::UnsupportedMediaType(
            "send the certification request as Content-Type: application/pkcs10 (base64 of DER, RFC 7030 §4.2.1)".into(),
        ));
    }
    // Base64 takes 4 characters per 3 bytes, plus line breaks.
    if body.len() > MAX_CSR_BYTES * 4 / 3 + MAX_CSR_BYTES / 16 {
        return Err(IssuanceError::TooLarge);
    }
    wire::decode_base64(&body).ok_or_else(|| {
        IssuanceError::from(EstRefusal::Csr(
            "the body is not base64 (RFC 7030 sends the DER request base64-encoded)".into(),
        ))
    })
}

/// Audits a refusal the HTTP layer decided and presents it.
async fn refused(
    gateway: &Gateway,
    call: &EstCall,
    operation: &str,
    error: IssuanceError,
) -> Response {
    let error = gateway.refuse_est(call, operation, error).await;
    answer_refusal(&error, call)
}

/// A refusal as JSON (`code`, `message`, `requestId`), inviting HTTP Basic credentials when
/// they are what is missing. The bare challenge to a request without credentials has no body:
/// clients answer it at once, and some (BouncyCastle's) close it unread and fail when it has one.
fn answer_refusal(error: &IssuanceError, call: &EstCall) -> Response {
    let mut response = respond(error, &call.request_id, ErrorFormat::Json);
    if EstRefusal::asks_for_basic(error) {
        let realm = match &call.label {
            Some(label) => format!("Basic realm=\"est/{label}\""),
            None => "Basic realm=\"est\"".to_string(),
        };
        if let Ok(value) = HeaderValue::from_str(&realm) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
    }
    if matches!(error, IssuanceError::Est(EstRefusal::NoCredentials)) {
        let (mut parts, _) = response.into_parts();
        parts.headers.remove(header::CONTENT_TYPE);
        parts.headers.remove(header::CONTENT_LENGTH);
        response = Response::from_parts(parts, axum::body::Body::empty());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::split_path;

    #[test]
    fn paths() {
        assert_eq!(
            split_path("/.well-known/est/cacerts"),
            (None, "cacerts".into())
        );
        assert_eq!(
            split_path("/.well-known/est/devices/simpleenroll"),
            (Some("devices".into()), "simpleenroll".into())
        );
        assert_eq!(split_path("/.well-known/est"), (None, String::new()));
        assert_eq!(split_path("/.well-known/est/a/b/c").1, "b/…");
    }
}
