//! Routes and their thin handlers.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use zeroize::Zeroizing;

use super::error::{ErrorFormat, respond};
use super::page;
use crate::identity::Connection;
use crate::issuance::{
    Gateway, HandlerChoice, IssuanceError, SoftTokenRequest, TokenForm, Unavailable,
};
use crate::policy::IdentityHeaders;
use crate::token::Pin;

/// The request id, set by middleware on every request.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The router over a gateway. Pure: no sockets, so tests can drive it with `oneshot` (add a
/// `MockConnectInfo` layer for the peer address).
pub fn router(gateway: Arc<Gateway>) -> Router {
    let limit = gateway.settings().limits.max_body_bytes;
    Router::new()
        .route("/pgwy/request/ast.html", get(pin_page))
        .route("/pgwy/ast", post(issue))
        .route("/pgwy/ast/{*rest}", post(issue))
        .route("/pgwy/ca/{file}", get(ca_chain))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .merge(super::revocation::routes())
        .merge(super::api::routes())
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn(request_id))
        .with_state(gateway)
}

async fn request_id(mut request: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId(uuid::Uuid::new_v4().to_string())))
    }
}

/// The connection a request came on: TCP peer (and, over TLS, the verified client certificate).
pub struct Peer(pub Connection);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(connection) = parts.extensions.get::<Connection>() {
            return Ok(Peer(connection.clone()));
        }
        match parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            Some(ConnectInfo(peer)) => Ok(Peer(Connection {
                peer: *peer,
                client_certificate: None,
            })),
            None => Err((StatusCode::INTERNAL_SERVER_ERROR, "no peer address").into_response()),
        }
    }
}

async fn pin_page(State(gateway): State<Arc<Gateway>>) -> Response {
    let rules = gateway.rules();
    let html = page::render(rules.select(""));
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'self'; img-src data:",
            ),
        ],
        html,
    )
        .into_response()
}

async fn issue(
    State(gateway): State<Arc<Gateway>>,
    RequestId(request_id): RequestId,
    Peer(connection): Peer,
    rest: Option<Path<String>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = SoftTokenRequest {
        connection,
        handler: HandlerChoice::Path(rest.map(|Path(p)| p).unwrap_or_default()),
        form: parse_form(&headers, body),
        headers: IdentityHeaders::new(headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes()))),
        request_id: request_id.clone(),
    };
    let timeout = gateway.settings().limits.request_timeout;
    let result = tokio::time::timeout(timeout, gateway.issue_soft_token(request))
        .await
        .unwrap_or_else(|_| Err(IssuanceError::Unavailable(Unavailable::TimedOut)));
    match result {
        Ok(token) => {
            let disposition = format!("attachment; filename=\"{}\"", token.filename);
            (
                [
                    (header::CONTENT_TYPE, "application/x-pkcs12".to_string()),
                    (header::CONTENT_DISPOSITION, disposition),
                    (header::CACHE_CONTROL, "no-store".to_string()),
                    (
                        header::SET_COOKIE,
                        "downloaded=true; Path=/; SameSite=Strict".to_string(),
                    ),
                ],
                token.pkcs12,
            )
                .into_response()
        }
        Err(error) => respond(&error, &request_id, ErrorFormat::Html),
    }
}

/// Parses the form body. The body buffer is zeroised after the PIN is taken out.
fn parse_form(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<TokenForm, IssuanceError> {
    let bad = |m: &str| IssuanceError::BadRequest(m.to_string());
    let body = match body {
        Ok(b) => Zeroizing::new(Vec::from(b)),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(IssuanceError::TooLarge);
        }
        Err(rejection) => return Err(IssuanceError::BadRequest(rejection.body_text())),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(bad(
            "Send the form as application/x-www-form-urlencoded with the field `password`.",
        ));
    }
    let mut pin = None;
    let mut profile = None;
    for (key, value) in form_urlencoded::parse(&body) {
        match key.as_ref() {
            "password" => {
                if pin.is_some() {
                    return Err(bad("The field `password` was sent twice."));
                }
                pin = Some(Pin::new(value.into_owned()));
            }
            "profile" => profile = Some(value.into_owned()),
            _ => {}
        }
    }
    let pin = pin.ok_or_else(|| bad("The form field `password` is missing."))?;
    Ok(TokenForm { pin, profile })
}

async fn ca_chain(State(gateway): State<Arc<Gateway>>, Path(file): Path<String>) -> Response {
    let Some(name) = file.strip_suffix(".pem") else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    match gateway.ca(name) {
        Some(ca) => (
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            ca.chain_pem(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, format!("no CA named `{name}`\n")).into_response(),
    }
}

async fn ready(State(gateway): State<Arc<Gateway>>, RequestId(request_id): RequestId) -> Response {
    match gateway.ready().await {
        Ok(()) => "ready\n".into_response(),
        Err(e) => respond(&e, &request_id, ErrorFormat::Json),
    }
}
