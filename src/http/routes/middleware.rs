//! The layers every request passes: the request id, the header-section limit and the security
//! headers of every response.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use super::super::error::{ErrorFormat, respond};
use super::super::server::OverTls;
use super::{RequestId, connection_of};
use crate::issuance::{Gateway, IssuanceError};

/// Headers on every response: no MIME sniffing (the error page echoes request text), no
/// Referer leaking gateway URLs, a locked-down CSP unless the route set its own (the PIN page),
/// and HSTS on HTTPS (a TLS-terminating front adds its own).
pub(super) async fn security_headers(request: Request, next: Next) -> Response {
    let over_tls = request.extensions().get::<OverTls>().is_some();
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; base-uri 'none'"),
        );
    }
    if over_tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// Refuses a header section above `[limits] max_header_bytes` with 431 `too-large` (hyper's
/// own, larger ceiling answers a bare 431 before a request gets here). Audited on the issuance
/// endpoints (the form and EST), like their other refusals.
pub(super) async fn header_limit(
    State(gateway): State<Arc<Gateway>>,
    request: Request,
    next: Next,
) -> Response {
    let limit = gateway.settings().limits.max_header_bytes;
    if header_section_size(&request) <= limit {
        return next.run(request).await;
    }
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let error = IssuanceError::HeaderTooLarge(limit);
    let path = request.uri().path();
    let remainder = path
        .strip_prefix("/pgwy/ast")
        .filter(|rest| rest.is_empty() || rest.starts_with('/'));
    match (remainder, connection_of(request.extensions())) {
        (Some(rest), Some(connection)) => {
            let rest: String = rest.trim_start_matches('/').chars().take(256).collect();
            let error = gateway
                .refuse_on(&connection, &rest, &request_id, error)
                .await;
            respond(&error, &request_id, ErrorFormat::Html)
        }
        // EST enrolments are issuance requests too: their refusals are audited.
        (None, Some(connection)) if path.starts_with("/.well-known/est/") => {
            let path: String = path.chars().take(256).collect();
            let error = gateway
                .record_refusal(&connection, &path, "est", &request_id, error)
                .await;
            respond(&error, &request_id, ErrorFormat::Json)
        }
        _ => respond(&error, &request_id, ErrorFormat::Json),
    }
}

/// The size of the request line and header fields as sent in HTTP/1.1.
fn header_section_size(request: &Request) -> usize {
    let target = request
        .uri()
        .path_and_query()
        .map_or(1, |target| target.as_str().len());
    let line = request.method().as_str().len() + target + 12;
    request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + line
        + 2
}

pub(super) async fn request_id(mut request: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}
