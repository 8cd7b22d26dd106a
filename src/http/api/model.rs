//! The API's JSON: request and response bodies with their OpenAPI schemas (utoipa), and the
//! conversions from domain types. Requests refuse unknown fields; timestamps are RFC 3339
//! (ISO 8601) in UTC.
//!
//! By operation tag: `softtokens`, `certificates` and `configuration` hold their bodies; the
//! error body and the time format shared by all stay here.

mod certificates;
mod configuration;
mod softtokens;

use serde::Serialize;
use utoipa::ToSchema;

pub use certificates::{
    Certificate, CertificateDetails, CertificateList, ListQuery, ReinstateBody, RevokeBody,
    SerialPath, Status, serial,
};
pub use configuration::{HandlerList, HandlerView, Procedure, ProcedureList};
pub use softtokens::{SoftTokenBody, SoftTokenJson};

/// The error object.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// Stable code (also in the X-Ast-Error header), e.g. `missing-role`, `bad-request`.
    pub code: String,
    /// What is wrong and what would be right, for an operator.
    pub message: String,
    /// The request id (also in X-Request-Id), to find the audit record and the log line.
    pub request_id: String,
    /// `already-issued`: the token the Idempotency-Key issued.
    pub token_id: Option<String>,
    /// `already-issued`: the serials of that token's certificates.
    pub serials: Option<Vec<String>>,
}

/// Every refusal: `{"error": {"code", "message", "requestId"}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}
