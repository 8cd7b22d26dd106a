//! The configuration operations: token procedures and AST handlers in effect.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use super::super::extract::Call;
use super::super::model::{ErrorBody, HandlerList, HandlerView, Procedure, ProcedureList};
use super::{ok_json, refused};
use crate::issuance::Gateway;

/// List token procedures.
#[utoipa::path(
    get,
    path = "/tokenprocedures",
    operation_id = "listTokenProcedures",
    tag = "configuration",
    responses(
        (status = 200, description = "The token procedures", body = ProcedureList),
        (status = 401, description = "No client certificate (`unauthenticated`)", body = ErrorBody),
        (status = 403, description = "Missing role or revoked officer (`missing-role`, `untrusted-caller`)", body = ErrorBody),
        (status = 404, description = "No handler of api.properties serves this path (`no-handler`)", body = ErrorBody),
        (status = 503, description = "Database unavailable (`unavailable`)", body = ErrorBody),
    ),
    security(("officerCertificate" = []))
)]
pub async fn list_token_procedures(
    State(gateway): State<Arc<Gateway>>,
    Call(call): Call,
) -> Response {
    match gateway.api_rules(&call).await {
        Ok(rules) => ok_json(
            &ProcedureList {
                token_procedures: rules.procedures.values().map(Procedure::from).collect(),
            },
            &call.request_id,
        ),
        Err(e) => refused(&e, &call.request_id),
    }
}

/// List AST handlers and what each maps.
///
/// What `ast-gateway config explain` shows: per handler its filter, format, token procedure,
/// trust rule, PIN policy, PKCS#12 profiles and every format field (source → target, modules).
#[utoipa::path(
    get,
    path = "/handlers",
    operation_id = "listHandlers",
    tag = "configuration",
    responses(
        (status = 200, description = "The AST handlers", body = HandlerList),
        (status = 401, description = "No client certificate (`unauthenticated`)", body = ErrorBody),
        (status = 403, description = "Missing role or revoked officer (`missing-role`, `untrusted-caller`)", body = ErrorBody),
        (status = 404, description = "No handler of api.properties serves this path (`no-handler`)", body = ErrorBody),
        (status = 503, description = "Database unavailable (`unavailable`)", body = ErrorBody),
    ),
    security(("officerCertificate" = []))
)]
pub async fn list_handlers(State(gateway): State<Arc<Gateway>>, Call(call): Call) -> Response {
    match gateway.api_rules(&call).await {
        Ok(rules) => ok_json(
            &HandlerList {
                handlers: rules.handlers.iter().map(HandlerView::from).collect(),
            },
            &call.request_id,
        ),
        Err(e) => refused(&e, &call.request_id),
    }
}
