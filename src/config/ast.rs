//! `conf/ast.properties`: handlers in the original product's syntax (SPEC §5), and the format
//! files they name (SPEC §6).

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;

use super::properties::{self, Entry};
use super::{ConfigError, ConfigErrors, GatewayConfig, Root};
use crate::policy::{FieldSpec, Origin, did_you_mean, parse_field};
use crate::token::{DEFAULT_PIN_PATTERN, PasswordPolicy, Pkcs12Profile};

/// Officer roles a handler requires (SPEC §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequiredRoles {
    /// `none`: any unrevoked certificate that chains to `client_ca`.
    AnyCertificate,
    /// All of these roles.
    All(Vec<String>),
}

/// One AST handler, with `default.*` already applied.
#[derive(Debug, Clone)]
pub struct Handler {
    pub number: u32,
    /// Anchored: matches the whole path remainder.
    pub filter: Regex,
    pub filter_source: String,
    pub format: String,
    /// Format fields after overrides, ordered by index.
    pub fields: Vec<FieldSpec>,
    pub token_procedure: String,
    pub required_roles: Option<RequiredRoles>,
    pub password_policy: PasswordPolicy,
    pub pkcs12_profile: Pkcs12Profile,
    pub pkcs12_profiles: Vec<Pkcs12Profile>,
}

impl Handler {
    /// The PKCS#12 profile for a request: the user's choice if allowed, else the default.
    pub fn choose_profile(&self, requested: Option<&str>) -> Result<Pkcs12Profile, String> {
        match requested.filter(|s| !s.is_empty()) {
            None => Ok(self.pkcs12_profile),
            Some(name) => {
                let p: Pkcs12Profile = name.parse()?;
                if self.pkcs12_profiles.contains(&p) || p == self.pkcs12_profile {
                    Ok(p)
                } else {
                    Err(format!(
                        "this handler does not offer the PKCS#12 profile `{name}`"
                    ))
                }
            }
        }
    }
}

/// All handlers, in ascending number.
#[derive(Debug, Clone, Default)]
pub struct AstConfig {
    /// `start = false` disables the AST service.
    pub enabled: bool,
    pub handlers: Vec<Handler>,
}

impl AstConfig {
    /// The first handler whose filter matches the whole `remainder` (the path after
    /// `/pgwy/ast/`, empty for `/pgwy/ast`).
    pub fn select(&self, remainder: &str) -> Option<&Handler> {
        self.handlers.iter().find(|h| h.filter.is_match(remainder))
    }
}

const PARAMS: &[&str] = &[
    "start",
    "filter",
    "format",
    "tokenprocedure",
    "requiredRoRoles",
    "formatFields.<N>",
    "password.minLength",
    "password.maxLength",
    "password.pattern",
    "pkcs12.profile",
    "pkcs12.profiles",
];

/// Parameters of one scope (`default` or a handler), with their lines.
#[derive(Default)]
struct Params {
    values: BTreeMap<String, (String, usize)>,
    fields: BTreeMap<u32, (String, usize)>,
}

/// Reads ast.properties and every format it names.
pub fn load_ast(root: &Root, gateway: Option<&GatewayConfig>) -> Result<AstConfig, ConfigErrors> {
    let path = root.ast_properties();
    let entries = properties::read_file(&path).map_err(|e| ConfigErrors(vec![e]))?;
    let mut errors = Vec::new();
    let mut defaults = Params::default();
    let mut handlers: BTreeMap<u32, Params> = BTreeMap::new();
    let mut start = true;

    for Entry { key, value, line } in entries {
        let mut err =
            |message: String| errors.push(ConfigError::at(&path, Some(line), Some(&key), message));
        if key.ends_with(".encrypted") {
            err("encrypted parameters are not supported yet; write the value in clear text in a file readable only by the service".into());
            continue;
        }
        if key == "start" || key == "default.start" {
            match value.trim() {
                "true" => start = true,
                "false" => start = false,
                other => err(format!("`{other}` is not a boolean; write true or false")),
            }
            continue;
        }
        let (scope, param) = if let Some(rest) = key.strip_prefix("default.") {
            (None, rest.to_string())
        } else if let Some(rest) = key.strip_prefix("handler.") {
            match rest.split_once('.') {
                Some((n, param)) => match n.parse::<u32>() {
                    Ok(n) => (Some(n), param.to_string()),
                    Err(_) => {
                        err(format!(
                            "`{n}` is not a handler number; write handler.<number>.<parameter>"
                        ));
                        continue;
                    }
                },
                None => {
                    err("write handler.<number>.<parameter>".into());
                    continue;
                }
            }
        } else {
            err(format!(
                "unknown key{}; keys are default.<parameter>, handler.<number>.<parameter> or start",
                did_you_mean(&key, &["start"])
            ));
            continue;
        };
        let params = match scope {
            None => &mut defaults,
            Some(n) => handlers.entry(n).or_default(),
        };
        if let Some(n) = param.strip_prefix("formatFields.") {
            match n.parse::<u32>() {
                Ok(n) => {
                    params.fields.insert(n, (value, line));
                }
                Err(_) => err(format!(
                    "`{n}` is not a field number; write formatFields.<number>"
                )),
            }
            continue;
        }
        if !PARAMS.contains(&param.as_str()) {
            err(format!(
                "unknown parameter `{param}`{}; parameters are {}",
                did_you_mean(&param, PARAMS),
                PARAMS.join(", ")
            ));
            continue;
        }
        params.values.insert(param, (value, line));
    }

    let mut formats: BTreeMap<String, Option<Vec<FieldSpec>>> = BTreeMap::new();
    let mut out = Vec::new();
    for (number, params) in &handlers {
        let mut late: Vec<ConfigError> = Vec::new();
        let get = |name: &str| {
            params
                .values
                .get(name)
                .or_else(|| defaults.values.get(name))
        };
        let mut err = |name: &str, line: usize, message: String| {
            errors.push(ConfigError::at(
                &path,
                Some(line),
                Some(&format!("handler.{number}.{name}")),
                message,
            ))
        };
        let filter_source = get("filter")
            .map(|(v, _)| v.trim().to_string())
            .unwrap_or_default();
        let filter = match Regex::new(&format!("^(?:{filter_source})$")) {
            Ok(r) => Some(r),
            Err(e) => {
                err(
                    "filter",
                    get("filter").map_or(0, |(_, l)| *l),
                    format!("bad regular expression: {e}"),
                );
                None
            }
        };
        let format = get("format")
            .map(|(v, _)| v.trim().to_string())
            .unwrap_or_else(|| "ast-default.format".into());
        let format_line = get("format").map_or(0, |(_, l)| *l);
        let format_fields = formats
            .entry(format.clone())
            .or_insert_with(|| match load_format(&root.formats().join(&format)) {
                Ok(f) => Some(f),
                Err(mut e) => {
                    errors.append(&mut e);
                    None
                }
            })
            .clone();
        let mut err = |name: &str, line: usize, message: String| {
            errors.push(ConfigError::at(
                &path,
                Some(line),
                Some(&format!("handler.{number}.{name}")),
                message,
            ))
        };
        if format_fields.is_none() && !root.formats().join(&format).exists() {
            err(
                "format",
                format_line,
                format!(
                    "format file `{format}` not found in {}",
                    root.formats().display()
                ),
            );
        }
        let mut fields: BTreeMap<u32, FieldSpec> = format_fields
            .unwrap_or_default()
            .into_iter()
            .map(|f| (f.index, f))
            .collect();
        for (n, (value, line)) in defaults.fields.iter().chain(params.fields.iter()) {
            match parse_field(
                *n,
                value,
                Origin {
                    file: path.display().to_string(),
                    line: *line,
                },
            ) {
                Ok(f) => {
                    fields.insert(*n, f);
                }
                Err(m) => err(&format!("formatFields.{n}"), *line, m),
            }
        }
        let fields: Vec<FieldSpec> = fields.into_values().collect();

        let token_procedure = match get("tokenprocedure") {
            Some((v, _)) => v.trim().to_string(),
            None => {
                err(
                    "tokenprocedure",
                    0,
                    "missing; name a [[token_procedure]] of gateway.toml".into(),
                );
                String::new()
            }
        };
        if let (Some(gw), Some((_, line))) = (gateway, get("tokenprocedure")) {
            match gw.token_procedures.get(&token_procedure) {
                None => {
                    let names: Vec<&str> = gw.token_procedures.keys().map(String::as_str).collect();
                    err(
                        "tokenprocedure",
                        *line,
                        format!(
                            "token procedure `{token_procedure}` is not defined in gateway.toml{}; defined: {}",
                            did_you_mean(&token_procedure, &names),
                            names.join(", ")
                        ),
                    );
                }
                Some(tp) => {
                    for f in &fields {
                        if let crate::policy::Scope::Request(i) = f.target.scope
                            && i >= tp.certificates.len()
                        {
                            {
                                late.push(ConfigError::at(
                                    Path::new(&f.origin.file),
                                    Some(f.origin.line),
                                    Some(&format!("formatFields.{}", f.index)),
                                    format!(
                                        "certrequests:{i} does not exist: token procedure `{}` has {} certificate(s) (0 to {})",
                                        tp.name,
                                        tp.certificates.len(),
                                        tp.certificates.len().saturating_sub(1)
                                    ),
                                ));
                            }
                        }
                    }
                }
            }
        }

        let required_roles = get("requiredRoRoles").and_then(|(v, _)| {
            let roles: Vec<String> = v
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            match roles.as_slice() {
                [] => None,
                [one] if one.eq_ignore_ascii_case("none") => Some(RequiredRoles::AnyCertificate),
                _ => Some(RequiredRoles::All(roles)),
            }
        });

        let number_param = |name: &str,
                            default: usize,
                            err: &mut dyn FnMut(&str, usize, String)| {
            match get(name) {
                None => default,
                Some((v, line)) => v.trim().parse().unwrap_or_else(|_| {
                    err(name, *line, format!("`{v}` is not a number"));
                    default
                }),
            }
        };
        let min = number_param("password.minLength", 6, &mut err);
        let max = number_param("password.maxLength", 128, &mut err);
        let pattern = get("password.pattern")
            .map(|(v, _)| v.clone())
            .unwrap_or_else(|| DEFAULT_PIN_PATTERN.into());
        if min > max {
            err(
                "password.minLength",
                0,
                format!("minLength {min} is greater than maxLength {max}"),
            );
        }
        let password_policy = match PasswordPolicy::new(min, max, &pattern) {
            Ok(p) => p,
            Err(e) => {
                err(
                    "password.pattern",
                    get("password.pattern").map_or(0, |(_, l)| *l),
                    format!("bad regular expression: {e}"),
                );
                PasswordPolicy::default()
            }
        };

        let pkcs12_profile = match get("pkcs12.profile") {
            None => Pkcs12Profile::Modern,
            Some((v, line)) => v.trim().parse().unwrap_or_else(|m| {
                err("pkcs12.profile", *line, m);
                Pkcs12Profile::Modern
            }),
        };
        let mut pkcs12_profiles = vec![pkcs12_profile];
        if let Some((v, line)) = get("pkcs12.profiles") {
            pkcs12_profiles.clear();
            for name in v.split([' ', ',']).filter(|s| !s.is_empty()) {
                match name.parse::<Pkcs12Profile>() {
                    Ok(p) => pkcs12_profiles.push(p),
                    Err(m) => err("pkcs12.profiles", *line, m),
                }
            }
            if !pkcs12_profiles.contains(&pkcs12_profile) {
                err(
                    "pkcs12.profiles",
                    *line,
                    format!(
                        "the default profile `{pkcs12_profile}` (pkcs12.profile) must be one of the offered profiles"
                    ),
                );
            }
        }

        errors.append(&mut late);
        if let Some(filter) = filter {
            out.push(Handler {
                number: *number,
                filter,
                filter_source,
                format,
                fields,
                token_procedure,
                required_roles,
                password_policy,
                pkcs12_profile,
                pkcs12_profiles,
            });
        }
    }
    if handlers.is_empty() && start {
        errors.push(ConfigError::at(
            &path,
            None,
            None,
            "no handler is defined; add handler.1.filter =, handler.1.format and handler.1.tokenprocedure",
        ));
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    Ok(AstConfig {
        enabled: start,
        handlers: out,
    })
}

/// Reads a format file: only `formatFields.<N>` keys.
fn load_format(path: &Path) -> Result<Vec<FieldSpec>, Vec<ConfigError>> {
    let entries = properties::read_file(path).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut fields = BTreeMap::new();
    for Entry { key, value, line } in entries {
        let Some(n) = key
            .strip_prefix("formatFields.")
            .and_then(|n| n.parse::<u32>().ok())
        else {
            errors.push(ConfigError::at(
                path,
                Some(line),
                Some(&key),
                format!("unknown key{}; a format file holds only formatFields.<number> = <target> = <source>", did_you_mean(&key, &["formatFields.1"])),
            ));
            continue;
        };
        match parse_field(
            n,
            &value,
            Origin {
                file: path.display().to_string(),
                line,
            },
        ) {
            Ok(f) => {
                fields.insert(n, f);
            }
            Err(m) => errors.push(ConfigError::at(path, Some(line), Some(&key), m)),
        }
    }
    if errors.is_empty() {
        Ok(fields.into_values().collect())
    } else {
        Err(errors)
    }
}
