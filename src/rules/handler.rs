//! AST handlers (`handler.<n>.*` in ast.properties, `default.*` applying to all): which path they
//! serve, which format and token procedure they use, who may call them, the PIN policy and the
//! PKCS#12 profiles. A new ast.properties parameter is added here: in `PARAMETERS` and in
//! `Handler::try_from`.

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;

use super::formats::Formats;
use super::password::{DEFAULT_PIN_PATTERN, PasswordPolicy};
use super::procedure::TokenProcedure;
use crate::config::{ConfigError, ConfigErrors, Diagnostics, HandlerScope, Value};
use crate::policy::{FieldSpec, HeaderEncoding, Scope, regex_error};
use crate::token::Pkcs12Profile;

/// The parameters a scope (`default.` or `handler.<n>.`) may set, besides `formatFields.<N>`.
pub const PARAMETERS: &[&str] = &[
    "start",
    "filter",
    "format",
    "tokenprocedure",
    "requiredRoRoles",
    "headerEncoding",
    "formatFields.<N>",
    "password.minLength",
    "password.maxLength",
    "password.pattern",
    "password.allowEdgeWhitespace",
    "pkcs12.profile",
    "pkcs12.profiles",
];

/// Officer roles a handler requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequiredRoles {
    /// `none`: any registered, unrevoked officer, whatever its roles (a certificate that
    /// merely chains to `client_ca` is not enough).
    AnyCertificate,
    /// All of these roles.
    All(Vec<String>),
}

/// `requiredRoRoles` of ast.properties and api.properties, one grammar: roles separated by
/// spaces or commas (letters, digits, `.`, `_`, `-`); `none` alone means any registered officer.
impl std::str::FromStr for RequiredRoles {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let roles: Vec<String> = text
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if let [one] = roles.as_slice()
            && one.eq_ignore_ascii_case("none")
        {
            return Ok(RequiredRoles::AnyCertificate);
        }
        if roles.is_empty() {
            return Err(
                "no role given; write the roles needed (e.g. api-read), or none for any officer certificate"
                    .into(),
            );
        }
        if let Some(bad) = roles.iter().find(|r| {
            r.eq_ignore_ascii_case("none")
                || !r
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        }) {
            return Err(format!(
                "`{bad}` is not a role; roles are letters, digits, `.`, `_` and `-`, and `none` stands alone (it can never be combined with roles)"
            ));
        }
        Ok(RequiredRoles::All(roles))
    }
}

/// A PKCS#12 profile the handler does not offer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("{0}")]
    Unknown(String),
    #[error("this handler does not offer the PKCS#12 profile `{0}`")]
    NotOffered(String),
}

/// One AST handler, with `default.*` already applied.
#[derive(Debug, Clone)]
pub struct Handler {
    pub number: u32,
    /// `start = false` turns the handler off (it is still checked).
    pub enabled: bool,
    /// Anchored: matches the whole path remainder.
    pub filter: Regex,
    pub filter_source: String,
    pub format: String,
    /// Format fields after overrides, ordered by index.
    pub fields: Vec<FieldSpec>,
    pub token_procedure: String,
    pub required_roles: Option<RequiredRoles>,
    /// `headerEncoding`: how this handler's identity headers are decoded (`None`: the
    /// `[trust] header_encoding` of gateway.toml).
    pub header_encoding: Option<HeaderEncoding>,
    pub password_policy: PasswordPolicy,
    pub pkcs12_profile: Pkcs12Profile,
    pub pkcs12_profiles: Vec<Pkcs12Profile>,
}

impl Handler {
    /// The PKCS#12 profile for a request: the user's choice if allowed, else the default.
    pub fn choose_profile(&self, requested: Option<&str>) -> Result<Pkcs12Profile, ProfileError> {
        match requested.filter(|s| !s.is_empty()) {
            None => Ok(self.pkcs12_profile),
            Some(name) => {
                let p: Pkcs12Profile = name.parse().map_err(ProfileError::Unknown)?;
                if self.pkcs12_profiles.contains(&p) || p == self.pkcs12_profile {
                    Ok(p)
                } else {
                    Err(ProfileError::NotOffered(name.to_string()))
                }
            }
        }
    }

    /// Who may call, in words (`config check`, `config explain`, `GET handlers`).
    pub fn trust_description(&self) -> String {
        match &self.required_roles {
            None => {
                "a peer inside [trust] proxies (identity headers from the authenticating proxy)"
                    .into()
            }
            Some(RequiredRoles::AnyCertificate) => {
                "any officer client certificate that is registered, whatever its roles (requiredRoRoles = none)".into()
            }
            Some(RequiredRoles::All(roles)) => format!(
                "an officer client certificate with the roles {}",
                roles.join(", ")
            ),
        }
    }
}

/// One handler's parameters with what they are checked against.
pub struct HandlerSource<'a> {
    pub scope: HandlerScope<'a>,
    /// ast.properties.
    pub path: &'a Path,
    pub formats: &'a Formats,
    /// `default.formatFields.<N>`, parsed.
    pub default_fields: &'a BTreeMap<u32, FieldSpec>,
    /// The token procedures, when gateway.toml could be read.
    pub procedures: Option<&'a BTreeMap<String, TokenProcedure>>,
}

impl HandlerSource<'_> {
    fn error(&self, name: &str, message: String) -> ConfigError {
        let (line, key) = self.scope.place(name);
        ConfigError::at(self.path, Some(line), Some(&key), message)
    }
}

impl TryFrom<HandlerSource<'_>> for Handler {
    type Error = ConfigErrors;

    fn try_from(source: HandlerSource<'_>) -> Result<Self, ConfigErrors> {
        let mut diagnostics = Diagnostics::default();
        let scope = &source.scope;
        let number = scope.number;
        let enabled = match scope.get("start").map(boolean) {
            Some(Err(m)) => {
                diagnostics.push(source.error("start", m));
                true
            }
            Some(Ok(b)) => b,
            None => true,
        };
        let filter_source = scope
            .get("filter")
            .map(|v| v.text.trim().to_string())
            .unwrap_or_default();
        let filter = Regex::new(&format!("^(?:{filter_source})$")).map_err(|e| {
            diagnostics.push(source.error(
                "filter",
                format!(
                    "bad regular expression: {}; write a Rust/Java regex matching the whole path after /pgwy/ast/, e.g. `users/.*`",
                    regex_error(&e)
                ),
            ))
        });
        let format = scope.get("format").map_or_else(
            || "ast-default.format".to_string(),
            |v| v.text.trim().to_string(),
        );
        let fields = fields(&source, &format, &mut diagnostics);
        let token_procedure = scope
            .get("tokenprocedure")
            .map(|v| v.text.trim().to_string())
            .unwrap_or_default();
        if let Some(procedures) = source.procedures {
            check_procedure(
                &source,
                &token_procedure,
                procedures,
                &fields,
                &mut diagnostics,
            );
        }
        let header_encoding = scope.get("headerEncoding").and_then(|v| {
            v.text
                .parse()
                .map_err(|m| diagnostics.push(source.error("headerEncoding", m)))
                .ok()
        });
        // An empty value: no officer required (identity headers from a trusted proxy).
        let required_roles = scope
            .get("requiredRoRoles")
            .filter(|v| !v.text.trim().is_empty())
            .and_then(|v| {
                v.text
                    .parse()
                    .map_err(|m| diagnostics.push(source.error("requiredRoRoles", m)))
                    .ok()
            });
        let password_policy = password_policy(&source, &mut diagnostics);
        let (pkcs12_profile, pkcs12_profiles) = profiles(&source, &mut diagnostics);
        let Ok(filter) = filter else {
            return Err(diagnostics.into_errors());
        };
        diagnostics.finish(Handler {
            number,
            enabled,
            filter,
            filter_source,
            format,
            fields,
            token_procedure,
            required_roles,
            header_encoding,
            password_policy,
            pkcs12_profile,
            pkcs12_profiles,
        })
    }
}

/// The format's fields, overridden by `default.formatFields.<N>`, then by the handler's own,
/// ordered by index.
fn fields(
    source: &HandlerSource<'_>,
    format: &str,
    diagnostics: &mut Diagnostics,
) -> Vec<FieldSpec> {
    let format_fields = source
        .formats
        .fields(format)
        .map_err(|m| diagnostics.push(source.error("format", m)))
        .unwrap_or_default();
    let mut fields: BTreeMap<u32, FieldSpec> =
        format_fields.iter().map(|f| (f.index, f.clone())).collect();
    fields.extend(source.default_fields.iter().map(|(n, f)| (*n, f.clone())));
    fields.extend(super::formats::parse_fields(
        source.path,
        &source.scope.params.fields,
        diagnostics,
    ));
    fields.into_values().collect()
}

/// The token procedure exists, and every `certrequests:<i>` field names one of its certificates.
fn check_procedure(
    source: &HandlerSource<'_>,
    name: &str,
    procedures: &BTreeMap<String, TokenProcedure>,
    fields: &[FieldSpec],
    diagnostics: &mut Diagnostics,
) {
    let number = source.scope.number;
    let names: Vec<&str> = procedures.keys().map(String::as_str).collect();
    let Some(procedure) = procedures.get(name) else {
        let message = if name.is_empty() {
            format!(
                "handler.{number} has no token procedure; add handler.{number}.tokenprocedure = one of: {}",
                names.join(", ")
            )
        } else {
            format!(
                "token procedure `{name}` is not defined in gateway.toml{}; defined: {}",
                crate::policy::did_you_mean(name, &names),
                names.join(", ")
            )
        };
        diagnostics.push(source.error("tokenprocedure", message));
        return;
    };
    let count = procedure.certificates.len();
    for field in fields {
        let Scope::Request(i) = field.target.scope else {
            continue;
        };
        if i >= count {
            diagnostics.push(ConfigError::at(
                Path::new(&field.origin.file),
                Some(field.origin.line),
                Some(&field.origin.key),
                format!(
                    "certrequests:{i} does not exist for handler.{number}: its token procedure `{}` has {count} certificate(s); use an index from 0 to {}",
                    procedure.name,
                    count.saturating_sub(1)
                ),
            ));
        }
    }
}

/// `password.minLength`, `password.maxLength`, `password.pattern`,
/// `password.allowEdgeWhitespace`.
fn password_policy(source: &HandlerSource<'_>, diagnostics: &mut Diagnostics) -> PasswordPolicy {
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
fn profiles(
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

/// `true` or `false`, any case.
pub(super) fn boolean(v: &Value) -> Result<bool, String> {
    match v.text.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("`{other}` is not a boolean; write true or false")),
    }
}
