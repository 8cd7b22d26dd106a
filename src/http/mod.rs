//! HTTP: routes, extractors, and the one mapping from domain errors to responses.
//!
//! Owns: everything axum/hyper/tower. Must not: contain issuance logic — each handler extracts
//! state, connection and body, makes one call into `issuance`, and converts the result.
//! Invariants: the peer address comes from the TCP connection (never `X-Forwarded-For`);
//! internal error text is logged once and never sent; every response carries `X-Request-Id`.

mod admin;
mod api;
mod archive;
mod connection;
mod cross_site;
mod error;
mod est;
mod page;
mod revocation;
mod routes;
mod server;
mod tls;

pub use admin::{AdminServer, admin_router, prometheus, start_admin};
pub use api::document as openapi_document;
pub use api::{certificate_details_json, certificate_json};
pub use error::ErrorFormat;
pub use routes::router;
pub use server::{Listeners, RunningServer, start};
pub use tls::{TlsError, server_config};
