//! `POST softtokens`: the soft-token pipeline with an officer authorized by api.properties as
//! the caller and the request's fields as identity headers; an `Idempotency-Key` makes a retry
//! get the first answer's serials (or a conflict for a different request under the same key).

use crate::identity::{Caller, Connection};
use crate::issuance::signed_write::SignedWrite;
use crate::issuance::soft_token::{HandlerChoice, SoftToken, SoftTokenRequest, TokenForm};
use crate::issuance::{Gateway, IssuanceError};
use crate::policy::IdentityHeaders;
use crate::rules::{Handler, Rules};
use crate::store::{IdempotencyKey as StoredKey, IdempotentToken};

use super::{ApiCall, ApiTokenRequest, IdempotencyKey, SignedBody, request_hash};

/// The API's part of a soft-token request, before authorization.
#[derive(Debug)]
pub struct ApiIssue {
    pub path: String,
    handler: Option<String>,
    token_procedure: Option<String>,
    body: SignedBody,
    idempotency_key: Result<Option<IdempotencyKey>, IssuanceError>,
    request_hash: String,
}

/// The API's part of a soft-token request, once admitted.
#[derive(Debug)]
pub(crate) struct ApiIssued {
    handler: Option<String>,
    /// api.properties `astHandlers` of the API handler that authorized the call.
    ast_handlers: Vec<u32>,
    token_procedure: Option<String>,
    key: Option<IdempotencyKey>,
    request_hash: String,
    signed: Option<SignedWrite>,
}

impl ApiIssued {
    /// The AST handler whose format, verifiers and token procedure the request uses. Never the
    /// order of the AST handlers: `handler` names one by path; `tokenProcedure` alone must be
    /// issued by exactly one of the handlers the API issues through (api.properties
    /// `astHandlers`, else every enabled handler); neither: the first of `astHandlers`, else the
    /// handler of `/pgwy/ast`.
    pub(crate) fn select<'r>(&self, rules: &'r Rules) -> Result<&'r Handler, IssuanceError> {
        let shown = |s: &str| s.chars().take(64).collect::<String>();
        let listed = !self.ast_handlers.is_empty();
        let allowed = |h: &Handler| !listed || self.ast_handlers.contains(&h.number);
        let handler = match (&self.handler, &self.token_procedure) {
            (Some(path), _) => {
                let handler = rules.select(path).ok_or_else(|| {
                    IssuanceError::BadRequest(format!(
                        "`handler`: no AST handler's filter matches \"{}\"; GET /pgwy/api/handlers lists them",
                        shown(path)
                    ))
                })?;
                if !allowed(handler) {
                    return Err(IssuanceError::BadRequest(format!(
                        "`handler`: \"{}\" is handler.{} of ast.properties, which the API does not issue through; api.properties astHandlers lists {}",
                        shown(path),
                        handler.number,
                        list(&self.ast_handlers)
                    )));
                }
                handler
            }
            (None, Some(procedure)) => by_procedure(rules, procedure, &self.ast_handlers)?,
            (None, None) if listed => rules
                .handlers
                .iter()
                .find(|h| Some(&h.number) == self.ast_handlers.first())
                .ok_or_else(|| IssuanceError::invariant("astHandlers names a missing handler"))?,
            (None, None) => rules.select("").ok_or_else(|| {
                IssuanceError::BadRequest(
                    "no AST handler serves the empty path; name one in `handler` or `tokenProcedure`, or set astHandlers in api.properties"
                        .into(),
                )
            })?,
        };
        if let Some(procedure) = &self.token_procedure
            && handler.token_procedure != *procedure
        {
            return Err(IssuanceError::BadRequest(format!(
                "`tokenProcedure`: handler.{} issues the token procedure \"{}\", not \"{}\"",
                handler.number,
                handler.token_procedure,
                shown(procedure)
            )));
        }
        Ok(handler)
    }

    /// Adds the API's facts to the `issued` audit detail.
    pub(crate) fn add_audit_fields(&self, detail: &mut serde_json::Value) {
        detail["api"] = true.into();
        if let Some(key) = &self.key {
            detail["idempotencyKey"] = key.as_str().into();
        }
        if let Some(signed) = &self.signed {
            signed.add_to_audit(detail);
        }
    }

    /// The key as the store records it for `scope` (the caller).
    pub(crate) fn idempotency_key<'a>(&'a self, scope: &'a str) -> Option<StoredKey<'a>> {
        self.key.as_ref().map(|key| StoredKey {
            scope,
            key: key.as_str(),
            request_hash: &self.request_hash,
        })
    }
}

impl Gateway {
    /// The API part of a soft-token request: authorization, signature, idempotency key.
    pub(crate) async fn admit_api_issue(
        &self,
        rules: &Rules,
        connection: &Connection,
        issue: ApiIssue,
    ) -> Result<(Caller, ApiIssued), IssuanceError> {
        let caller = self.authorize_api(rules, &issue.path, connection).await?;
        let signed = self
            .check_signature(&issue.body, connection, &caller)
            .await?;
        let key = issue.idempotency_key?;
        let ast_handlers = rules
            .api
            .select(&issue.path)
            .map(|h| h.ast_handlers.clone())
            .unwrap_or_default();
        Ok((
            caller,
            ApiIssued {
                handler: issue.handler,
                ast_handlers,
                token_procedure: issue.token_procedure,
                key,
                request_hash: issue.request_hash,
                signed,
            },
        ))
    }

    /// Refuses a request whose idempotency key the caller used before.
    pub(crate) async fn check_idempotency(
        &self,
        caller: &Caller,
        api: &ApiIssued,
    ) -> Result<(), IssuanceError> {
        let Some(key) = &api.key else {
            return Ok(());
        };
        match self
            .store
            .idempotent_token(&caller.to_string(), key.as_str())
            .await?
        {
            Some(token) => Err(judge(token, api)),
            None => Ok(()),
        }
    }

    /// The refusal for a key that a concurrent request committed first.
    pub(crate) async fn already_issued(&self, caller: &Caller, api: &ApiIssued) -> IssuanceError {
        let Some(key) = &api.key else {
            return IssuanceError::invariant("idempotency conflict without a key");
        };
        match self
            .store
            .idempotent_token(&caller.to_string(), key.as_str())
            .await
        {
            Ok(Some(token)) => judge(token, api),
            Ok(None) => IssuanceError::invariant("idempotency key vanished"),
            Err(e) => e.into(),
        }
    }

    /// `POST softtokens`: the soft-token pipeline with the fields as identity headers.
    pub async fn api_issue(
        &self,
        call: ApiCall,
        body: SignedBody,
        request: Result<ApiTokenRequest, IssuanceError>,
        idempotency_key: Result<Option<IdempotencyKey>, IssuanceError>,
    ) -> Result<SoftToken, IssuanceError> {
        let (issue, form, fields) = match request {
            Ok(request) => {
                let hash = request_hash(&request);
                let ApiTokenRequest {
                    handler,
                    token_procedure,
                    password,
                    profile,
                    fields,
                } = request;
                let issue = ApiIssue {
                    path: call.path,
                    handler,
                    token_procedure,
                    body,
                    idempotency_key,
                    request_hash: hash,
                };
                (
                    issue,
                    Ok(TokenForm {
                        pin: password,
                        profile,
                    }),
                    fields,
                )
            }
            Err(e) => {
                let issue = ApiIssue {
                    path: call.path,
                    handler: None,
                    token_procedure: None,
                    body,
                    idempotency_key,
                    request_hash: String::new(),
                };
                (issue, Err(e), Vec::new())
            }
        };
        self.issue_soft_token(SoftTokenRequest {
            connection: call.connection,
            handler: HandlerChoice::Api(Box::new(issue)),
            headers: IdentityHeaders::new(fields),
            form,
            request_id: call.request_id,
        })
        .await
    }
}

/// The one handler issuing `procedure` among those the API issues through (`listed`, or every
/// enabled handler when empty); several are refused, not chosen by their order.
fn by_procedure<'r>(
    rules: &'r Rules,
    procedure: &str,
    listed: &[u32],
) -> Result<&'r Handler, IssuanceError> {
    let shown: String = procedure.chars().take(64).collect();
    let candidates: Vec<&Handler> = rules
        .handlers
        .iter()
        .filter(|h| h.token_procedure == procedure)
        .filter(|h| listed.is_empty() || listed.contains(&h.number))
        .collect();
    match candidates.as_slice() {
        [one] => Ok(one),
        [] => Err(IssuanceError::BadRequest(format!(
            "`tokenProcedure`: no AST handler the API issues through issues the token procedure \"{shown}\"; GET /pgwy/api/tokenprocedures and handlers list them"
        ))),
        several => Err(IssuanceError::BadRequest(format!(
            "`tokenProcedure`: handlers {} of ast.properties all issue \"{shown}\", each with its own fields; name one in `handler`, or list the API's in api.properties astHandlers",
            list(&several.iter().map(|h| h.number).collect::<Vec<_>>())
        ))),
    }
}

fn list(numbers: &[u32]) -> String {
    let words: Vec<String> = numbers.iter().map(u32::to_string).collect();
    words.join(", ")
}

/// The answer to a reused key: the same request gets its token's serials, another one a conflict.
fn judge(token: IdempotentToken, api: &ApiIssued) -> IssuanceError {
    if token.request_hash == api.request_hash {
        IssuanceError::AlreadyIssued {
            token_id: token.token_id,
            serials: token.serials,
        }
    } else {
        IssuanceError::Conflict(format!(
            "this Idempotency-Key was used for a different request (token {}); send a new key for a new request",
            token.token_id
        ))
    }
}
