//! CRL and OCSP endpoints. Anyone may fetch them: they are public by design.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;

use super::error::{ErrorFormat, respond};
use super::routes::RequestId;
use crate::issuance::{Gateway, OcspAnswer};

/// Largest OCSP request accepted (a request for a few certificates is a few hundred bytes).
const MAX_OCSP_REQUEST: usize = 8 * 1024;

/// The revocation routes, merged into the main router.
pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/pgwy/crl/{file}", get(crl))
        .route("/pgwy/ocsp", post(ocsp_post))
        .route("/pgwy/ocsp/{*request}", get(ocsp_get))
}

async fn crl(
    State(gateway): State<Arc<Gateway>>,
    RequestId(request_id): RequestId,
    Path(file): Path<String>,
) -> Response {
    let Some(name) = file.strip_suffix(".crl") else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    match gateway.crl(name).await {
        // Short max-age: a revocation must reach fetchers within seconds (issue #5).
        Ok(der) => (
            [
                (header::CONTENT_TYPE, "application/pkix-crl"),
                (header::CACHE_CONTROL, "public, max-age=5"),
            ],
            der,
        )
            .into_response(),
        Err(e) => respond(&e, &request_id, ErrorFormat::Json),
    }
}

async fn ocsp_post(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !gateway.settings().ocsp.enabled {
        return (StatusCode::NOT_FOUND, "OCSP is disabled\n").into_response();
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.eq_ignore_ascii_case("application/ocsp-request")
        || body.len() > MAX_OCSP_REQUEST
    {
        return ocsp_malformed();
    }
    ocsp_response(gateway.ocsp(&body).await)
}

/// RFC 6960 Appendix A.1: GET {url}/{url-encoding of base-64 encoding of the DER OCSPRequest}.
/// axum has already percent-decoded the path.
async fn ocsp_get(State(gateway): State<Arc<Gateway>>, Path(request): Path<String>) -> Response {
    if !gateway.settings().ocsp.enabled {
        return (StatusCode::NOT_FOUND, "OCSP is disabled\n").into_response();
    }
    if request.len() > MAX_OCSP_REQUEST * 2 {
        return ocsp_malformed();
    }
    let compact: String = request.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(compact.as_bytes()));
    match der {
        Ok(der) => ocsp_response(gateway.ocsp(&der).await),
        Err(_) => ocsp_malformed(),
    }
}

fn ocsp_malformed() -> Response {
    ocsp_response(OcspAnswer {
        der: crate::ca::ocsp::failure_response(crate::ca::ocsp::OcspFailure::MalformedRequest),
        max_age: None,
        this_update: None,
    })
}

/// RFC 6960 answers errors inside a 200 OCSPResponse. Caching per RFC 5019 §6.2.
fn ocsp_response(answer: OcspAnswer) -> Response {
    let cache = match answer.max_age {
        Some(age) => format!("max-age={age}, public, no-transform, must-revalidate"),
        None => "no-store".to_string(),
    };
    let mut response = (
        [
            (
                header::CONTENT_TYPE,
                "application/ocsp-response".to_string(),
            ),
            (header::CACHE_CONTROL, cache),
        ],
        answer.der,
    )
        .into_response();
    if let Some(this_update) = answer.this_update {
        if let Ok(v) = httpdate(this_update).parse() {
            response.headers_mut().insert(header::LAST_MODIFIED, v);
        }
        if let Some(age) = answer.max_age {
            let expires = this_update + std::time::Duration::from_secs(age);
            if let Ok(v) = httpdate(expires).parse() {
                response.headers_mut().insert(header::EXPIRES, v);
            }
        }
    }
    response
}

/// An IMF-fixdate (RFC 9110 §5.6.7).
fn httpdate(t: std::time::SystemTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::OffsetDateTime::from(t)
        .format(&format)
        .unwrap_or_default()
}
