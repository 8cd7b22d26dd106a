//! Domain error → HTTP response, in two presentations (HTML for the form, JSON for the API).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::issuance::{Code, IssuanceError};

/// How the error is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFormat {
    Html,
    Json,
}

/// The HTTP status of a refusal code. Exhaustive on purpose: a new code does not compile until
/// its status is chosen here.
pub fn status(code: Code) -> StatusCode {
    match code {
        Code::UntrustedCaller
        | Code::MissingRole
        | Code::CrossSite
        | Code::SignatureRequired
        | Code::BadSignature
        | Code::ReplayedSignature => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::AlreadyIssued => StatusCode::CONFLICT,
        Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Code::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Code::NoHandler | Code::NotFound => StatusCode::NOT_FOUND,
        Code::Conflict => StatusCode::CONFLICT,
        Code::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Code::HeaderTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        Code::Timeout => StatusCode::REQUEST_TIMEOUT,
        Code::Unavailable | Code::ReplicationRequired | Code::CaExpiring | Code::CaRevoked => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Code::FieldMissing
        | Code::FieldInvalid
        | Code::PasswordPolicy
        | Code::DuplicateHeader
        | Code::BadHeader
        | Code::FieldSuspicious
        | Code::BadRequest => StatusCode::BAD_REQUEST,
    }
}

/// What the PIN page tells the user about a refusal that only the operator can fix: the
/// identity the front sent could not be used (a missing, malformed or suspicious header). The
/// operator's message, which names headers and rules, goes to the log and the audit row; the
/// user gets this and the request id. `None`: the refusal's own message is for the user.
pub fn user_message(code: Code) -> Option<&'static str> {
    match code {
        Code::FieldMissing
        | Code::FieldInvalid
        | Code::BadHeader
        | Code::DuplicateHeader
        | Code::FieldSuspicious => Some(
            "Your details from the sign-in service could not be used for a certificate. This \
             is a configuration problem that the service's administrators must fix: please \
             contact your support desk and give them the request id below.",
        ),
        _ => None,
    }
}

/// Builds the response; logs the internal detail once for 5xx.
pub fn respond(error: &IssuanceError, request_id: &str, format: ErrorFormat) -> Response {
    let code = error.code();
    let status = status(code);
    let message = error.public_message();
    let message = message.as_str();
    let code = code.as_str();
    match error.log_detail() {
        Some(detail) => {
            tracing::error!(request_id, code, detail = %detail, "request failed");
        }
        None => tracing::info!(
            request_id,
            code,
            status = status.as_u16(),
            message,
            "request refused"
        ),
    }
    let mut response = match format {
        ErrorFormat::Json => {
            let mut body = serde_json::json!({"error": {"code": code, "message": message, "requestId": request_id}});
            // A retried Idempotency-Key answers with the serials of the token it issued.
            if let IssuanceError::AlreadyIssued { token_id, serials } = error {
                body["error"]["tokenId"] = token_id.as_str().into();
                body["error"]["serials"] = serials.clone().into();
            }
            (
                status,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        ErrorFormat::Html => {
            let message = user_message(error.code()).unwrap_or(message);
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
    if let Some(wait) = error.retry_after() {
        // Whole seconds, at least one (RFC 9110 §10.2.3: delay-seconds).
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::issuance::{Queue, RateScope, Unavailable};

    fn header(response: &Response, name: &str) -> Option<String> {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("?").to_string())
    }

    #[test]
    fn load_refusals_carry_retry_after_in_whole_seconds() {
        let limited = IssuanceError::RateLimited {
            scope: RateScope::Peer,
            retry_after: Duration::from_millis(29_200),
        };
        let response = respond(&limited, "r1", ErrorFormat::Json);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            header(&response, "x-ast-error").as_deref(),
            Some("rate-limited")
        );
        assert_eq!(header(&response, "retry-after").as_deref(), Some("30"));

        let shed = IssuanceError::Unavailable(Unavailable::Overloaded {
            queue: Queue::Write,
            retry_after: Duration::from_secs(2),
        });
        let response = respond(&shed, "r2", ErrorFormat::Html);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            header(&response, "x-ast-error").as_deref(),
            Some("unavailable")
        );
        assert_eq!(header(&response, "retry-after").as_deref(), Some("2"));

        // A rate limit that has almost recovered still says at least one second.
        let soon = IssuanceError::RateLimited {
            scope: RateScope::Identity,
            retry_after: Duration::from_millis(3),
        };
        let response = respond(&soon, "r3", ErrorFormat::Json);
        assert_eq!(header(&response, "retry-after").as_deref(), Some("1"));

        // Other refusals do not invite a retry.
        let response = respond(&IssuanceError::NoHandler, "r4", ErrorFormat::Json);
        assert_eq!(header(&response, "retry-after"), None);
    }
}
