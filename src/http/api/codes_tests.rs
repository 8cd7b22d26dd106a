//! The refusal codes docs/api.md and the OpenAPI document name are the server's (`Code`), each
//! under the status the server answers it with, and every code the API can answer is in the
//! table of docs/api.md: the documentation cannot drift from the code.

use std::collections::BTreeSet;

use crate::http::error::status;
use crate::issuance::Code;

/// Every code. `exhaustive` below does not compile when a code is added and not listed here.
const ALL: &[Code] = &[
    Code::UntrustedCaller,
    Code::MissingRole,
    Code::NoHandler,
    Code::FieldMissing,
    Code::FieldInvalid,
    Code::PasswordPolicy,
    Code::DuplicateHeader,
    Code::BadHeader,
    Code::FieldSuspicious,
    Code::BadRequest,
    Code::TooLarge,
    Code::HeaderTooLarge,
    Code::Timeout,
    Code::CrossSite,
    Code::NotFound,
    Code::Conflict,
    Code::CaExpiring,
    Code::CaRevoked,
    Code::Unavailable,
    Code::ReplicationRequired,
    Code::RateLimited,
    Code::Internal,
    Code::Unauthenticated,
    Code::AlreadyIssued,
    Code::MethodNotAllowed,
    Code::UnsupportedMediaType,
    Code::SignatureRequired,
    Code::BadSignature,
    Code::ReplayedSignature,
];

/// Codes only the form endpoint answers: a browser's cross-site post, a form body that does not
/// arrive in time (an API body that does not is `bad-request`).
const FORM_ONLY: &[Code] = &[Code::CrossSite, Code::Timeout];

#[allow(dead_code)]
fn exhaustive(code: Code) {
    match code {
        Code::UntrustedCaller
        | Code::MissingRole
        | Code::NoHandler
        | Code::FieldMissing
        | Code::FieldInvalid
        | Code::PasswordPolicy
        | Code::DuplicateHeader
        | Code::BadHeader
        | Code::FieldSuspicious
        | Code::BadRequest
        | Code::TooLarge
        | Code::HeaderTooLarge
        | Code::Timeout
        | Code::CrossSite
        | Code::NotFound
        | Code::Conflict
        | Code::CaExpiring
        | Code::CaRevoked
        | Code::Unavailable
        | Code::ReplicationRequired
        | Code::RateLimited
        | Code::Internal
        | Code::Unauthenticated
        | Code::AlreadyIssued
        | Code::MethodNotAllowed
        | Code::UnsupportedMediaType
        | Code::SignatureRequired
        | Code::BadSignature
        | Code::ReplayedSignature => {}
    }
}

/// The backticked words of `text` that look like codes (lower-case words joined by `-`); other
/// backticked text (`Retry-After`, `[limits] max_body_bytes`) is not a code.
fn named_codes(text: &str) -> Vec<&str> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| {
            !w.is_empty()
                && w.split('-')
                    .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase()))
        })
        .collect()
}

/// The statuses a code may be answered with (`too-large` is 413 for a body, 431 for headers).
fn statuses_of(name: &str) -> BTreeSet<u16> {
    ALL.iter()
        .filter(|c| c.as_str() == name)
        .map(|c| status(*c).as_u16())
        .collect()
}

/// The (status, code) pairs of the table under `## Errors` in docs/api.md.
fn documented() -> Vec<(u16, String)> {
    let doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md"));
    let errors = doc
        .split("\n## Errors")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap();
    let mut pairs = Vec::new();
    for row in errors.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let Ok(status) = cells[1].parse::<u16>() else {
            continue;
        };
        for code in named_codes(cells[2]) {
            pairs.push((status, code.to_string()));
        }
    }
    pairs
}

#[test]
fn docs_api_md_names_the_servers_codes_with_their_statuses() {
    let documented = documented();
    assert!(documented.len() > 20, "{documented:?}");
    for (status, code) in &documented {
        let statuses = statuses_of(code);
        assert!(
            !statuses.is_empty(),
            "docs/api.md names `{code}`, which the server does not have"
        );
        assert!(
            statuses.contains(status),
            "docs/api.md lists `{code}` under {status}; the server answers it with {statuses:?}"
        );
    }
    for code in ALL.iter().filter(|c| !FORM_ONLY.contains(c)) {
        let pair = (status(*code).as_u16(), code.as_str().to_string());
        assert!(
            documented.contains(&pair),
            "the API can answer `{}` with {}; docs/api.md's table of errors does not say so",
            pair.1,
            pair.0
        );
    }
}

#[test]
fn the_openapi_document_names_the_servers_codes_with_their_statuses() {
    let doc: serde_json::Value = serde_json::from_str(super::openapi::document()).unwrap();
    let mut seen = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                let status: u16 = status.parse().unwrap();
                let description = response["description"].as_str().unwrap();
                for code in named_codes(description) {
                    seen += 1;
                    assert!(
                        statuses_of(code).contains(&status),
                        "{method} {path} {status} names `{code}`, answered with {:?}",
                        statuses_of(code)
                    );
                }
            }
        }
    }
    assert!(seen > 40, "{seen}");
}

#[test]
fn code_names_are_recognised() {
    assert_eq!(
        named_codes("`no-handler` (`Retry-After`, `[limits] x`, `internal`, `a--b`)"),
        ["no-handler", "internal"]
    );
}
