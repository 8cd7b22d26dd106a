//! Domain error → HTTP response, in two presentations (HTML for the form, JSON for the API).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::issuance::IssuanceError;

/// How the error is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFormat {
    Html,
    Json,
}

/// The HTTP status of a domain error.
pub fn status(error: &IssuanceError) -> StatusCode {
    match error.code() {
        "untrusted-caller" | "missing-role" => StatusCode::FORBIDDEN,
        "no-handler" | "not-found" => StatusCode::NOT_FOUND,
        "conflict" => StatusCode::CONFLICT,
        "too-large" => StatusCode::PAYLOAD_TOO_LARGE,
        "rate-limited" => StatusCode::TOO_MANY_REQUESTS,
        "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        "internal" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Builds the response; logs the internal detail once for 5xx.
pub fn respond(error: &IssuanceError, request_id: &str, format: ErrorFormat) -> Response {
    respond_with(
        status(error),
        error.code(),
        &error.public_message(),
        request_id,
        format,
        Some(error),
    )
}

/// Builds an error response from parts (for errors that happen before the domain call).
pub fn respond_with(
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: &str,
    format: ErrorFormat,
    source: Option<&IssuanceError>,
) -> Response {
    match source {
        Some(IssuanceError::Unavailable(detail)) | Some(IssuanceError::Internal(detail)) => {
            tracing::error!(request_id, code, detail = %detail, "request failed");
        }
        _ => tracing::info!(
            request_id,
            code,
            status = status.as_u16(),
            message,
            "request refused"
        ),
    }
    let mut response = match format {
        ErrorFormat::Json => {
            let body = serde_json::json!({"error": {"code": code, "message": message, "requestId": request_id}});
            (
                status,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        ErrorFormat::Html => {
            let body = format!(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Error {status}</title></head>\
                 <body><h1>Soft token not issued</h1><p id=\"message\" role=\"alert\">{}</p>\
                 <p>Error code: <code id=\"code\">{}</code><br>Request id: <code id=\"request-id\">{}</code></p></body></html>",
                escape(message),
                escape(code),
                escape(request_id)
            );
            (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                body,
            )
                .into_response()
        }
    };
    if let Ok(v) = HeaderValue::from_str(code) {
        response.headers_mut().insert("x-ast-error", v);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// HTML-escapes text.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
