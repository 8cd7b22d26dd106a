//! The REST API under `/pgwy/api` (officers over mTLS): routes, extractors, JSON bodies and the
//! OpenAPI 3.1 document generated from the operations (`GET /pgwy/api/openapi.json`).
//!
//! Every operation is a thin handler: extract the call and the request, make one call into
//! `issuance` (which authorizes by api.properties, audits refusals and runs the use case), and
//! convert. Errors are JSON `{"error": {"code", "message", "requestId"}}` with the form
//! endpoint's codes.

mod extract;
mod model;
mod openapi;
mod operations;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get, post};

use crate::issuance::Gateway;

pub use openapi::document;

/// The JSON view of a certificate, exactly as the API lists it (`GET …/certificates`): the
/// command line's `certs list --json` writes the same objects.
pub fn certificate_json(
    record: &crate::store::CertificateRecord,
) -> serde_json::Result<serde_json::Value> {
    serde_json::to_value(model::Certificate::from(record))
}

/// The JSON view of one certificate with its fingerprint and PEM, as the API answers
/// `GET …/certificates/{serial}` (and `certs show --json` writes).
pub fn certificate_details_json(
    record: &crate::store::CertificateRecord,
) -> serde_json::Result<serde_json::Value> {
    serde_json::to_value(model::CertificateDetails::from(record))
}

/// The API routes, merged into the main router (which adds the request id and body limit).
pub fn routes() -> Router<Arc<Gateway>> {
    use operations as op;
    let not_allowed = op::method_not_allowed;
    Router::new()
        .route(
            "/pgwy/api/openapi.json",
            get(op::openapi_json).fallback(not_allowed),
        )
        .route(
            "/pgwy/api/softtokens",
            post(op::create_soft_token).fallback(not_allowed),
        )
        .route(
            "/pgwy/api/certificates",
            get(op::list_certificates).fallback(not_allowed),
        )
        .route(
            "/pgwy/api/certificates/revoke",
            post(op::revoke_certificate).fallback(not_allowed),
        )
        .route(
            "/pgwy/api/certificates/reinstate",
            post(op::reinstate_certificate).fallback(not_allowed),
        )
        .route(
            "/pgwy/api/certificates/{serial}/details",
            get(op::certificate_details).fallback(not_allowed),
        )
        .route(
            "/pgwy/api/certificates/{serial}/download",
            get(op::download_certificate).fallback(not_allowed),
        )
        .route(
            "/pgwy/api/tokenprocedures",
            get(op::list_token_procedures).fallback(not_allowed),
        )
        .route(
            "/pgwy/api/handlers",
            get(op::list_handlers).fallback(not_allowed),
        )
        .route("/pgwy/api", any(op::no_operation))
        .route("/pgwy/api/", any(op::no_operation))
        .route("/pgwy/api/{*rest}", any(op::no_operation))
}
