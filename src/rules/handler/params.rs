//! Parsing a handler's simple parameters: switches (`start`, `defaultFormat`,
//! `refuseSuspicious`), the PIN policy and the PKCS#12 profiles.

use super::HandlerSource;
use crate::config::{Diagnostics, Value};
use crate::policy::regex_error;
use crate::rules::password::{DEFAULT_PIN_PATTERN, PasswordPolicy};
use crate::token::Pkcs12Profile;

/// A switch that is on unless written off: `parse` reads it; a malformed one is reported and
/// taken as on.
pub(super) fn flag(
    source: &HandlerSource<'_>,
    name: &str,
    parse: fn(&Value) -> Result<bool, String>,
    diagnostics: &mut Diagnostics,
) -> bool {
    match source.scope.get(name).map(parse) {
        Some(Err(m)) => {
            diagnostics.push(source.error(name, m));
            true
        }
        Some(Ok(b)) => b,
        None => true,
    }
}

/// `password.minLength`, `password.maxLength`, `password.pattern`,
/// `password.allowEdgeWhitespace`.
pub(super) fn password_policy(
    source: &HandlerSource<'_>,
    diagnostics: &mut Diagnostics,
) -> PasswordPolicy {
    let scope = &source.scope;
    let mut number = |name: &str, default: usize| match scope.get(name) {
        None => default,
        Some(v) => v.text.trim().parse().unwrap_or_else(|_| {
            diagnostics.push(source.error(
                name,
                format!(
                    "`{}` is not a number; write a whole number such as {default}",
                    v.text.trim()
                ),
            ));
            default
        }),
    };
    let min = number("password.minLength", 6);
    let max = number("password.maxLength", 128);
    if min > max {
        diagnostics.push(source.error(
            "password.minLength",
            format!("minLength {min} is greater than maxLength {max}; make minLength ≤ maxLength"),
        ));
    }
    let pattern = scope
        .get("password.pattern")
        .map_or_else(|| DEFAULT_PIN_PATTERN.to_string(), |v| v.text.clone());
    let allow_edge_whitespace = match scope.get("password.allowEdgeWhitespace").map(boolean) {
        None => false,
        Some(Ok(b)) => b,
        Some(Err(m)) => {
            diagnostics.push(source.error("password.allowEdgeWhitespace", m));
            false
        }
    };
    let policy = PasswordPolicy::new(min, max, &pattern).unwrap_or_else(|e| {
        diagnostics.push(source.error(
            "password.pattern",
            format!(
                "bad regular expression: {}; write a regex for the whole PIN, e.g. [\\\\x20-\\\\x7E]*",
                regex_error(&e)
            ),
        ));
        PasswordPolicy::default()
    });
    policy.allowing_edge_whitespace(allow_edge_whitespace)
}

/// `pkcs12.profile` (the default) and `pkcs12.profiles` (those a user may choose).
pub(super) fn profiles(
    source: &HandlerSource<'_>,
    diagnostics: &mut Diagnostics,
) -> (Pkcs12Profile, Vec<Pkcs12Profile>) {
    let scope = &source.scope;
    let default = match scope.get("pkcs12.profile") {
        None => Pkcs12Profile::Modern,
        Some(v) => v.text.trim().parse().unwrap_or_else(|m| {
            diagnostics.push(source.error("pkcs12.profile", m));
            Pkcs12Profile::Modern
        }),
    };
    let Some(v) = scope.get("pkcs12.profiles") else {
        return (default, vec![default]);
    };
    let mut offered = Vec::new();
    for name in v.text.split([' ', ',']).filter(|s| !s.is_empty()) {
        match name.parse::<Pkcs12Profile>() {
            Ok(p) => offered.push(p),
            Err(m) => diagnostics.push(source.error("pkcs12.profiles", m)),
        }
    }
    if !offered.contains(&default) {
        diagnostics.push(source.error(
            "pkcs12.profiles",
            format!(
                "the default profile `{default}` (pkcs12.profile) is not offered; add it to pkcs12.profiles"
            ),
        ));
    }
    (default, offered)
}

/// `on`/`true` or `off`/`false`, any case.
pub(super) fn switch(v: &Value) -> Result<bool, String> {
    match v.text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        other => Err(format!("`{other}` is neither on nor off; write on or off")),
    }
}

/// `true` or `false`, any case.
pub(in crate::rules) fn boolean(v: &Value) -> Result<bool, String> {
    match v.text.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("`{other}` is not a boolean; write true or false")),
    }
}
