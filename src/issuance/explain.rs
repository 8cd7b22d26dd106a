//! `ast-gateway config explain`: what a request would get, without issuing anything.
//!
//! Runs the same handler selection, format evaluation and subject encoding as issuance
//! (`plan_subjects`, `subject_preview`), but no trust decision (there is no connection), no PIN
//! check, no key, no signature, no database.

use std::fmt;

use super::IssuanceError;
use super::recipe::plan_subjects;
use super::soft_token::{procedure_of, select};
use crate::ca::subject_preview;
use crate::policy::{CertificateFacts, IdentityHeaders, evaluate};
use crate::rules::{Handler, Rules};

/// One handler as it was tried, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerTrial {
    pub number: u32,
    pub filter: String,
    pub matched: bool,
}

/// The handler that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedHandler {
    pub number: u32,
    pub format: String,
    pub token_procedure: String,
    /// Who may call it (trusted proxies, officers with roles), in words.
    pub trust: String,
}

/// One certificate that would be issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCertificate {
    /// 0-based, as in `certrequests:<i>`.
    pub index: usize,
    pub purpose: String,
    pub ca: String,
    pub key: String,
    pub validity_days: u64,
    /// The subject in RDN order as encoded (the order `openssl x509 -subject` prints).
    pub subject: String,
    /// The same subject as RFC 4514 text (most significant RDN last).
    pub subject_rfc4514: String,
    /// The subject's first common name, if it has one (the person, on the PIN page).
    pub common_name: Option<String>,
    /// `email:…`, `DNS:…`, `UPN:…`, `URI:…`, in the order they were set.
    pub sans: Vec<String>,
}

/// A refusal: the stable code and the message the client would see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: super::Code,
    pub message: String,
}

impl From<&IssuanceError> for Refusal {
    fn from(e: &IssuanceError) -> Self {
        Refusal {
            code: e.code(),
            message: e.public_message(),
        }
    }
}

/// What `POST /pgwy/ast/<path>` with these headers would get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The path after `/pgwy/ast/`.
    pub path_remainder: String,
    pub trials: Vec<HandlerTrial>,
    pub handler: Option<MatchedHandler>,
    pub outcome: Result<Vec<PlannedCertificate>, Refusal>,
    /// What looks misconfigured although it decodes (a header value that reads as base64url
    /// under another encoding).
    pub hints: Vec<String>,
    /// The request line's path when it is not the form's (EST: `/.well-known/est/…`).
    pub request_path: Option<String>,
}

/// The path remainder for `path`: `/pgwy/ast` → ``, `/pgwy/ast/x/y` → `x/y`; a path without the
/// `/pgwy/ast` prefix is taken as the remainder itself.
pub fn path_remainder(path: &str) -> Option<String> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    if !path.starts_with('/') {
        return Some(path.to_string());
    }
    match path.strip_prefix("/pgwy/ast") {
        Some("") => Some(String::new()),
        Some(rest) => rest.strip_prefix('/').map(str::to_string),
        None => None,
    }
}

/// Explains what a request to `path` with `headers` (and, for `cert:` sources, a caller
/// certificate with `certificate` facts) would get under `rules`.
pub fn explain(
    rules: &Rules,
    path: &str,
    headers: &IdentityHeaders,
    certificate: Option<&CertificateFacts>,
) -> Explanation {
    if let Some(explanation) = super::est::explain_est(rules, path, headers, certificate) {
        return explanation;
    }
    let Some(remainder) = path_remainder(path) else {
        return Explanation {
            path_remainder: path.to_string(),
            trials: Vec::new(),
            handler: None,
            hints: Vec::new(),
            request_path: None,
            outcome: Err(Refusal {
                code: super::Code::NoHandler,
                message: format!(
                    "`{path}` is not under /pgwy/ast; AST requests go to /pgwy/ast or /pgwy/ast/<path>"
                ),
            }),
        };
    };
    // As issuance does: the remainder is decoded once, ambiguous spellings refused.
    let remainder = match super::soft_token::decoded_remainder(&remainder) {
        Ok(decoded) => decoded,
        Err(e) => {
            return Explanation {
                path_remainder: remainder,
                trials: Vec::new(),
                handler: None,
                hints: Vec::new(),
                outcome: Err(Refusal::from(&e)),
                request_path: None,
            };
        }
    };
    // The handlers tried, in order, up to the one issuance would select.
    let mut trials = Vec::new();
    for handler in &rules.handlers {
        let matched = handler.filter.is_match(&remainder);
        trials.push(HandlerTrial {
            number: handler.number,
            filter: handler.filter_source.clone(),
            matched,
        });
        if matched {
            break;
        }
    }
    let mut explanation = Explanation {
        path_remainder: remainder,
        trials,
        handler: None,
        outcome: Ok(Vec::new()),
        hints: Vec::new(),
        request_path: None,
    };
    let handler = match select(rules, &explanation.path_remainder) {
        Ok(handler) => handler,
        Err(e) => {
            explanation.outcome = Err(Refusal::from(&e));
            return explanation;
        }
    };
    explanation.handler = Some(MatchedHandler {
        number: handler.number,
        format: handler.format.clone(),
        token_procedure: handler.token_procedure.clone(),
        trust: handler.trust_description(),
    });
    // Decoded as issuance decodes them: the handler's encoding, suspicious values refused.
    let encoding = rules.header_encoding_for(handler);
    let headers = headers
        .clone()
        .decoded_as(encoding)
        .refusing_suspicious(handler.refuse_suspicious);
    explanation.hints = base64url_hints(handler, &headers);
    explanation.outcome =
        plan(rules, handler, &headers, certificate).map_err(|e| Refusal::from(&e));
    explanation
}

/// A header value that reads as base64url of a name while the handler decodes another
/// encoding: the front probably sends base64url (mod_auth_openidc `OIDCPassClaimsAs …
/// base64url`) and the name would go into the certificate as base64 text.
fn base64url_hints(handler: &Handler, headers: &IdentityHeaders) -> Vec<String> {
    let encoding = headers.encoding();
    handler
        .headers_read()
        .into_iter()
        .filter_map(|name| {
            let value = headers.get(&name).ok().flatten()?;
            let text = crate::policy::base64url_text(&value, encoding)?;
            Some(format!(
                "the `{name}` value looks like base64url (it decodes to \"{text}\") but handler.{} \
                 reads {encoding}: if the front sends base64url (mod_auth_openidc OIDCPassClaimsAs \
                 … base64url), set [trust] header_encoding = \"base64url\" or \
                 handler.{}.headerEncoding = base64url",
                handler.number, handler.number
            ))
        })
        .collect()
}

/// The same planning as issuance (format evaluation, subjects, their encoding), no CA; also
/// the PIN page's preview.
pub(super) fn plan(
    rules: &Rules,
    handler: &Handler,
    headers: &IdentityHeaders,
    certificate: Option<&CertificateFacts>,
) -> Result<Vec<PlannedCertificate>, IssuanceError> {
    let procedure = procedure_of(rules, handler)?;
    let fields = evaluate(&handler.fields, headers, certificate)?;
    plan_subjects(procedure, &fields)?
        .into_iter()
        .enumerate()
        .map(|(index, (template, subject))| {
            let subject_rfc4514 = subject_preview(&subject, &template.subject_order)?;
            Ok(PlannedCertificate {
                index,
                purpose: template.purpose.clone(),
                ca: template.ca.clone(),
                key: template.key.to_string(),
                validity_days: template.validity.as_secs() / 86_400,
                subject: subject.display_dn(&template.subject_order),
                subject_rfc4514,
                common_name: subject
                    .first(crate::ca::Attribute::CommonName)
                    .map(str::to_string),
                sans: subject
                    .san_values()
                    .map(|(a, v)| format!("{}:{v}", a.label()))
                    .collect(),
            })
        })
        .collect()
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = if self.path_remainder.is_empty() {
            "/pgwy/ast".to_string()
        } else {
            format!("/pgwy/ast/{}", self.path_remainder)
        };
        match &self.request_path {
            Some(path) => writeln!(f, "request: POST {path}")?,
            None => writeln!(
                f,
                "request: POST {shown} (path remainder \"{}\")",
                self.path_remainder
            )?,
        }
        for t in &self.trials {
            writeln!(
                f,
                "  handler.{:<4} filter \"{}\": {}",
                t.number,
                t.filter,
                if t.matched {
                    "matches the whole remainder"
                } else {
                    "no match"
                }
            )?;
        }
        if let Some(h) = &self.handler {
            writeln!(
                f,
                "handler.{}: format {}, token procedure {}",
                h.number, h.format, h.token_procedure
            )?;
            writeln!(f, "  accepted from: {}", h.trust)?;
        }
        for hint in &self.hints {
            writeln!(f, "hint: {hint}")?;
        }
        match &self.outcome {
            Err(r) => write!(f, "refused: {}: {}", r.code, r.message),
            Ok(certificates) => {
                write!(
                    f,
                    "would issue {} certificate(s) (nothing was issued):",
                    certificates.len()
                )?;
                for c in certificates {
                    write!(
                        f,
                        "\n  certrequests:{} {} (CA {}, {}, {} days)\n    subject: {}\n    subject (RFC 4514): {}",
                        c.index,
                        c.purpose,
                        c.ca,
                        c.key,
                        c.validity_days,
                        c.subject,
                        c.subject_rfc4514
                    )?;
                    if c.sans.is_empty() {
                        write!(f, "\n    SANs: none")?;
                    } else {
                        write!(f, "\n    SANs: {}", c.sans.join(", "))?;
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_headers() {
        assert_eq!(path_remainder("/pgwy/ast").as_deref(), Some(""));
        assert_eq!(path_remainder("/pgwy/ast/").as_deref(), Some(""));
        assert_eq!(
            path_remainder("/pgwy/ast/users/a?x=1").as_deref(),
            Some("users/a")
        );
        assert_eq!(path_remainder("users/a").as_deref(), Some("users/a"));
        assert_eq!(path_remainder("/pgwy/astro"), None);
        assert_eq!(path_remainder("/other"), None);
    }
}
