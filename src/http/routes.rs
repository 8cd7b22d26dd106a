//! Routes and their thin handlers.
//!
//! The layers every request passes are in `middleware`; the issued token as a download is in
//! `download`.

mod download;
mod middleware;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use zeroize::Zeroizing;

use super::connection::is_body_timeout;
use super::cross_site;
use super::error::{ErrorFormat, respond};
use super::page;
use super::server::OverTls;
use crate::identity::Connection;
use crate::issuance::{
    Gateway, HandlerChoice, IssuanceError, Preview, SoftTokenRequest, TokenForm,
};
use crate::policy::IdentityHeaders;
use crate::token::Pin;
pub(super) use download::attachment;
use download::download;
use middleware::{header_limit, request_id, security_headers};

/// The request id, set by middleware on every request.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The router over a gateway. Pure: no sockets, so tests can drive it with `oneshot` (add a
/// `MockConnectInfo` layer for the peer address).
pub fn router(gateway: Arc<Gateway>) -> Router {
    let limit = gateway.settings().limits.max_body_bytes;
    Router::new()
        .route("/pgwy/request/{*page}", get(pin_page))
        .route("/pgwy/ast", post(issue))
        .route("/pgwy/ast/{*rest}", post(issue))
        .route("/pgwy/ca/{file}", get(ca_chain))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .merge(super::revocation::routes())
        .merge(super::api::routes())
        .merge(super::est::routes())
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            gateway.clone(),
            header_limit,
        ))
        .layer(axum::middleware::from_fn(request_id))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(gateway)
}

/// The connection the server attached (TCP peer, verified client certificate), or one built
/// from `ConnectInfo` (router tests with `MockConnectInfo`).
fn connection_of(extensions: &axum::http::Extensions) -> Option<Connection> {
    if let Some(connection) = extensions.get::<Connection>() {
        return Some(connection.clone());
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| Connection {
            peer: *peer,
            client_certificate: None,
        })
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
        match connection_of(&parts.extensions) {
            Some(connection) => Ok(Peer(connection)),
            None => Err((StatusCode::INTERNAL_SERVER_ERROR, "no peer address").into_response()),
        }
    }
}

/// Whether the request came over TLS (the HTTPS listener).
pub struct Transport {
    pub over_tls: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for Transport {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Transport {
            over_tls: parts.extensions.get::<OverTls>().is_some(),
        })
    }
}

/// `/pgwy/request/ast.html` and `/pgwy/request/<remainder>/ast.html`: the PIN page of the
/// handler that serves `/pgwy/ast` or `/pgwy/ast/<remainder>`, posting there. The remainder is
/// taken from the path as sent and decoded by the domain (`rules::decode_remainder`), never by
/// the router, so the page and the form endpoint select alike.
async fn pin_page(
    State(gateway): State<Arc<Gateway>>,
    RequestId(request_id): RequestId,
    Peer(connection): Peer,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let page = uri
        .path()
        .strip_prefix("/pgwy/request/")
        .unwrap_or_default();
    let remainder = match page.strip_suffix("ast.html") {
        Some(r) if r.is_empty() || r.ends_with('/') => r.trim_end_matches('/'),
        _ => {
            let error = IssuanceError::NotFound(
                "no page here: PIN pages are /pgwy/request/ast.html and /pgwy/request/<path>/ast.html".into(),
            );
            return respond(&error, &request_id, ErrorFormat::Html);
        }
    };
    let identity = IdentityHeaders::new(headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
    let found = match gateway.pin_page(remainder, &connection, identity).await {
        Ok(found) => found,
        Err(error) => {
            let error = gateway
                .refuse_on(&connection, remainder, &request_id, error)
                .await;
            return respond(&error, &request_id, ErrorFormat::Html);
        }
    };
    let template: Option<&crate::config::PageTemplate> = match found.template() {
        Some(own) => Some(own),
        None => page::bundled(),
    };
    let Some(template) = template else {
        let error = IssuanceError::invariant("the bundled PIN page does not parse");
        return respond(&error, &request_id, ErrorFormat::Html);
    };
    if let Preview::Refused(refusal) = &found.preview {
        tracing::info!(
            request_id,
            code = refusal.code.as_str(),
            message = refusal.message,
            "PIN page: the form would be refused"
        );
    }
    let rules = gateway.rules();
    let html = page::render(
        template,
        Some(&found.handler),
        rules.procedure(&found.handler.token_procedure),
        &page::action_for(&found.remainder),
        Some(&page::Who {
            preview: &found.preview,
            request_id: &request_id,
        }),
    );
    let policy = page::content_security_policy(template);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
            (header::CACHE_CONTROL, "no-cache".to_string()),
            (header::X_FRAME_OPTIONS, "DENY".to_string()),
            (header::CONTENT_SECURITY_POLICY, policy),
        ],
        html,
    )
        .into_response()
}

/// `POST /pgwy/ast` and `/pgwy/ast/<remainder>`; the remainder goes to the domain as sent.
async fn issue(
    State(gateway): State<Arc<Gateway>>,
    RequestId(request_id): RequestId,
    Peer(connection): Peer,
    Transport { over_tls }: Transport,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let settings = gateway.settings();
    let public_https = settings.server.public_url.starts_with("https://");
    let form = cross_site::check(&headers, &uri, &settings.server.allowed_origins)
        .and_then(|()| parse_form(&headers, body, settings.limits.body_timeout));
    let request = SoftTokenRequest {
        connection,
        handler: HandlerChoice::Path(
            uri.path()
                .strip_prefix("/pgwy/ast/")
                .unwrap_or_default()
                .to_string(),
        ),
        form,
        headers: IdentityHeaders::new(headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes()))),
        request_id: request_id.clone(),
    };
    // The domain bounds the request by [limits] request_timeout_secs and audits a timeout.
    match gateway.issue_soft_token(request).await {
        // `Secure` over TLS, and behind a TLS-terminating front (an https public URL).
        Ok(token) => download(token, over_tls || public_https, &request_id),
        Err(error) => respond(&error, &request_id, ErrorFormat::Html),
    }
}

/// Parses the form body. The body buffer is zeroised after the PIN is taken out.
fn parse_form(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    body_timeout: Duration,
) -> Result<TokenForm, IssuanceError> {
    let bad = |m: &str| IssuanceError::BadRequest(m.to_string());
    let body = match body {
        Ok(b) => Zeroizing::new(Vec::from(b)),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(IssuanceError::TooLarge);
        }
        Err(rejection) if is_body_timeout(&rejection) => {
            return Err(IssuanceError::BodyTimeout(body_timeout.as_secs()));
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

/// `/pgwy/ca/<ca>.pem`: the chain as PEM, the CA first. `/pgwy/ca/<ca>.cer`: the CA
/// certificate alone as DER, what AIA caIssuers in certificates points at (RFC 5280 §4.2.2.1).
async fn ca_chain(State(gateway): State<Arc<Gateway>>, Path(file): Path<String>) -> Response {
    let (name, der) = match (file.strip_suffix(".pem"), file.strip_suffix(".cer")) {
        (Some(name), _) => (name, false),
        (None, Some(name)) => (name, true),
        (None, None) => return (StatusCode::NOT_FOUND, "not found\n").into_response(),
    };
    match gateway.ca(name) {
        Some(ca) if der => (
            [
                (header::CONTENT_TYPE, "application/pkix-cert"),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            ca.certificate_der().to_vec(),
        )
            .into_response(),
        Some(ca) => (
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            ca.chain_pem(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such CA\n").into_response(),
    }
}

async fn ready(State(gateway): State<Arc<Gateway>>, RequestId(request_id): RequestId) -> Response {
    match gateway.ready().await {
        Ok(()) => "ready\n".into_response(),
        Err(e) => respond(&e, &request_id, ErrorFormat::Json),
    }
}
