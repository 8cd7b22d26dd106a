//! `config explain` for EST paths (`/.well-known/est/[<label>/]<operation>`): which handler
//! serves the label, who may enrol, and the subject its format makes of the given headers and
//! a CSR (`--client-cert` takes a CSR too: `cert:` sources read it in EST).

use super::est_select;
use crate::issuance::explain::{Explanation, MatchedHandler, Refusal, plan};
use crate::policy::{CertificateFacts, IdentityHeaders};
use crate::rules::{EST_OPERATIONS, EstAuth, Rules};

/// The label and operation of an EST path (`/.well-known/est/…`, query ignored): `None` when
/// the path is not under `/.well-known/est`. A path with only a label, or with nothing after
/// `/.well-known/est/`, has an empty operation.
pub fn est_remainder(path: &str) -> Option<(Option<String>, String)> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let rest = path.strip_prefix("/.well-known/est")?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    Some(match segments.as_slice() {
        [] => (None, String::new()),
        [op] if EST_OPERATIONS.contains(op) => (None, op.to_string()),
        [label] => (Some(label.to_string()), String::new()),
        [label, op, ..] => (Some(label.to_string()), op.to_string()),
    })
}

/// What an EST enrolment at `path` with these headers and `cert:` facts (those of a CSR)
/// would get; `None` when `path` is not an EST path.
pub(crate) fn explain_est(
    rules: &Rules,
    path: &str,
    headers: &IdentityHeaders,
    certificate: Option<&CertificateFacts>,
) -> Option<Explanation> {
    let (label, _) = est_remainder(path)?;
    let mut explanation = Explanation {
        path_remainder: label.clone().unwrap_or_default(),
        trials: Vec::new(),
        handler: None,
        outcome: Ok(Vec::new()),
        hints: Vec::new(),
        request_path: Some(path.to_string()),
    };
    let handler = match est_select(rules, label.as_deref()) {
        Ok(handler) => handler,
        Err(e) => {
            explanation.outcome = Err(Refusal::from(&e));
            return Some(explanation);
        }
    };
    let est = handler.est.as_ref()?;
    explanation.handler = Some(MatchedHandler {
        number: handler.number,
        format: handler.format.clone(),
        token_procedure: handler.token_procedure.clone(),
        trust: est.describe(handler),
    });
    // A device's headers are not believed: its format reads the CSR alone.
    let none = IdentityHeaders::new(std::iter::empty::<(&str, &[u8])>());
    let headers = match est.auth {
        EstAuth::Basic { .. } => none,
        EstAuth::Officer | EstAuth::Front => headers
            .clone()
            .decoded_as(rules.header_encoding_for(handler))
            .refusing_suspicious(handler.refuse_suspicious),
    };
    explanation.outcome =
        plan(rules, handler, &headers, certificate).map_err(|e| Refusal::from(&e));
    Some(explanation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn est_paths() {
        assert_eq!(est_remainder("/pgwy/ast"), None);
        assert_eq!(est_remainder("/.well-known/estx"), None);
        assert_eq!(
            est_remainder("/.well-known/est"),
            Some((None, String::new()))
        );
        assert_eq!(
            est_remainder("/.well-known/est/simpleenroll"),
            Some((None, "simpleenroll".into()))
        );
        assert_eq!(
            est_remainder("/.well-known/est/devices/serverkeygen?x"),
            Some((Some("devices".into()), "serverkeygen".into()))
        );
        assert_eq!(
            est_remainder("/.well-known/est/devices/"),
            Some((Some("devices".into()), String::new()))
        );
    }
}
