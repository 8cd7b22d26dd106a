//! AST handlers (`handler.<n>.*` in ast.properties, `default.*` applying to all): which path they
//! serve, which format and token procedure they use, who may call them, the PIN policy and the
//! PKCS#12 profiles. A new ast.properties parameter is added here: in `PARAMETERS` and in
//! `Handler::try_from`.

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;

mod params;

pub(super) use params::boolean;
use params::{flag, password_policy, profiles, switch};

use super::formats::Formats;
use super::password::PasswordPolicy;
use super::procedure::TokenProcedure;
use crate::config::{ConfigError, ConfigErrors, Diagnostics, HandlerScope, Root};
use crate::policy::{FieldSpec, HeaderEncoding, Scope, regex_error};
use crate::token::Pkcs12Profile;

/// The parameters a scope (`default.` or `handler.<n>.`) may set, besides `formatFields.<N>`.
pub const PARAMETERS: &[&str] = &[
    "start",
    "filter",
    "format",
    "defaultFormat",
    "tokenprocedure",
    "requiredRoRoles",
    "headerEncoding",
    "refuseSuspicious",
    "formatFields.<N>",
    "password.minLength",
    "password.maxLength",
    "password.pattern",
    "password.allowEdgeWhitespace",
    "pkcs12.profile",
    "pkcs12.profiles",
    "est.label",
    "est.default",
    "est.user",
    "est.secret",
    "est.keks",
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
    /// `defaultFormat = off`: the format file's fields are left out; only the
    /// `formatFields.<N>` written in ast.properties apply, so the handler reads only the
    /// headers they name.
    pub default_format: bool,
    pub token_procedure: String,
    pub required_roles: Option<RequiredRoles>,
    /// `headerEncoding`: how this handler's identity headers are decoded (`None`: the
    /// `[trust] header_encoding` of gateway.toml).
    pub header_encoding: Option<HeaderEncoding>,
    /// `refuseSuspicious` (default true): refuse identity values that decode but are wrong —
    /// the literal `(null)` and UTF-8 read as Latin-1 (`field-suspicious`).
    pub refuse_suspicious: bool,
    pub password_policy: PasswordPolicy,
    pub pkcs12_profile: Pkcs12Profile,
    pub pkcs12_profiles: Vec<Pkcs12Profile>,
    /// EST (`est.*`): where this handler is served under `/.well-known/est/` and who may enrol.
    pub est: Option<super::est::EstService>,
    /// Whether it serves the form at `/pgwy/ast` (its `filter`): false for an EST handler
    /// written without a filter.
    pub form: bool,
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

    /// The request headers this handler reads: every `Source::Header` of its fields (format
    /// file and ast.properties), lower-case, sorted, once each. A front must set or remove each
    /// of them (`config front-headers`).
    pub fn headers_read(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .fields
            .iter()
            .filter_map(|f| match &f.source {
                Some(crate::policy::Source::Header(name)) => Some(name.to_ascii_lowercase()),
                _ => None,
            })
            .collect();
        names.sort();
        names.dedup();
        names
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
    /// The root, against which files the handler names (`est.keks`) are read.
    pub root: &'a Root,
    /// ast.properties.
    pub path: &'a Path,
    pub formats: &'a Formats,
    /// `default.formatFields.<N>`, parsed.
    pub default_fields: &'a BTreeMap<u32, FieldSpec>,
    /// The token procedures, when gateway.toml could be read.
    pub procedures: Option<&'a BTreeMap<String, TokenProcedure>>,
}

impl HandlerSource<'_> {
    pub(super) fn error(&self, name: &str, message: String) -> ConfigError {
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
        let enabled = flag(&source, "start", boolean, &mut diagnostics);
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
        let default_format = flag(&source, "defaultFormat", switch, &mut diagnostics);
        let fields = fields(&source, &format, default_format, &mut diagnostics);
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
        let refuse_suspicious = flag(&source, "refuseSuspicious", boolean, &mut diagnostics);
        let password_policy = password_policy(&source, &mut diagnostics);
        let (pkcs12_profile, pkcs12_profiles) = profiles(&source, &mut diagnostics);
        let est = super::est::est_service(&source, required_roles.as_ref(), &mut diagnostics);
        let form = est.is_none() || scope.get("filter").is_some();
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
            default_format,
            token_procedure,
            required_roles,
            header_encoding,
            refuse_suspicious,
            password_policy,
            pkcs12_profile,
            pkcs12_profiles,
            est,
            form,
        })
    }
}

/// The format's fields (unless `defaultFormat = off`), overridden by `default.formatFields.<N>`,
/// then by the handler's own, ordered by index.
fn fields(
    source: &HandlerSource<'_>,
    format: &str,
    default_format: bool,
    diagnostics: &mut Diagnostics,
) -> Vec<FieldSpec> {
    let format_fields = source
        .formats
        .fields(format)
        .map_err(|m| diagnostics.push(source.error("format", m)))
        .unwrap_or_default();
    let format_fields: &[FieldSpec] = if default_format { format_fields } else { &[] };
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
