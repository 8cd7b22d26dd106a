//! The API operations: extract, one call into `issuance`, convert. Their `#[utoipa::path]`
//! attributes are the OpenAPI document, so it cannot drift from the code.
//!
//! By tag, as the document groups them: `softtokens`, `certificates`, `configuration`. Each
//! submodule's handlers, with the path items utoipa generates next to them, are re-exported
//! here; the JSON answer, the refusal and the answers for paths and methods that are no
//! operation are shared from here.

mod certificates;
mod configuration;
mod softtokens;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub use certificates::*;
pub use configuration::*;
pub use softtokens::*;

use super::extract::Call;
use crate::http::error::{ErrorFormat, respond};
use crate::issuance::{Gateway, IssuanceError};

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
