//! `conf/ast.properties`: handlers in the original product's syntax, and the format files they
//! name (docs/configuration.md documents both).

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;

use super::properties::{self, Entry};
use zeroize::Zeroizing;

use super::secret::SecretKey;
use super::{ConfigError, ConfigErrors, GatewayConfig, Root};
use crate::policy::{FieldSpec, Origin, did_you_mean, parse_field, regex_error};
use crate::token::{DEFAULT_PIN_PATTERN, PasswordPolicy, Pkcs12Profile};

/// Officer roles a handler requires (`requiredRoRoles`).
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

/// The handler parameters, as written after `default.` or `handler.<n>.`.
pub const PARAMETERS: &[&str] = &[
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

/// One value as written: its text (decrypted for `.encrypted` keys), line and full key.
#[derive(Debug, Clone)]
struct Value {
    text: String,
    line: usize,
    key: String,
}

/// Parameters of one scope (`default` or a handler).
#[derive(Default)]
struct Params {
    values: BTreeMap<String, Value>,
    fields: BTreeMap<u32, Value>,
    /// The first line of the scope, for problems about a parameter that is missing.
    first_line: usize,
}

/// Reads ast.properties and every format it names, reporting every problem at once, sorted by
/// file and line.
pub fn load_ast(root: &Root, gateway: Option<&GatewayConfig>) -> Result<AstConfig, ConfigErrors> {
    let path = root.ast_properties();
    let entries = properties::read_file(&path).map_err(|e| ConfigErrors(vec![e]))?;
    let mut errors = Vec::new();
    let mut defaults = Params::default();
    let mut handlers: BTreeMap<u32, Params> = BTreeMap::new();
    let mut start: Option<Value> = None;
    let mut secret_key: Option<Result<SecretKey, String>> = None;
    // Decrypted values by line, so that no error message repeats one.
    let mut secrets: Vec<(usize, Zeroizing<String>)> = Vec::new();

    for Entry {
        key: written,
        value,
        line,
    } in entries
    {
        let mut err = |message: String| {
            errors.push(ConfigError::at(&path, Some(line), Some(&written), message))
        };
        let (key, value) = match written.strip_suffix(".encrypted") {
            None => (written.clone(), value),
            Some(base) => {
                let decrypted = match secret_key.get_or_insert_with(|| SecretKey::load(root)) {
                    Err(m) => Err(m.clone()),
                    Ok(k) => k.decrypt(&value),
                };
                match decrypted {
                    Ok(plain) => {
                        let text = plain.to_string();
                        secrets.push((line, plain));
                        (base.to_string(), text)
                    }
                    Err(m) => {
                        err(m);
                        continue;
                    }
                }
            }
        };
        let twice = |first: usize| {
            format!(
                "set twice (also at line {first}); keep one line (Java would silently use the last)"
            )
        };
        let value = Value {
            text: value,
            line,
            key: written.clone(),
        };
        if key == "start" {
            match &start {
                Some(first) => err(twice(first.line)),
                None => start = Some(value),
            }
            continue;
        }
        let (scope, param) = if let Some(rest) = key.strip_prefix("default.") {
            (None, rest)
        } else if let Some(rest) = key.strip_prefix("handler.") {
            match rest.split_once('.') {
                Some((n, param)) => match n.parse::<u32>() {
                    Ok(n) => (Some(n), param),
                    Err(_) => {
                        err(format!(
                            "`{n}` is not a handler number; write handler.<number>.<parameter>, e.g. handler.1.filter"
                        ));
                        continue;
                    }
                },
                None => {
                    err(
                        "no parameter; write handler.<number>.<parameter>, e.g. handler.1.filter"
                            .into(),
                    );
                    continue;
                }
            }
        } else {
            let known = ["start", "default.filter", "handler.1.filter"];
            err(format!(
                "unknown key{}; keys are start, default.<parameter> or handler.<number>.<parameter>",
                did_you_mean(&key, &known)
            ));
            continue;
        };
        if scope.is_none() && param == "start" {
            match &start {
                Some(first) => err(twice(first.line)),
                None => start = Some(value),
            }
            continue;
        }
        let params = match scope {
            None => &mut defaults,
            Some(n) => handlers.entry(n).or_default(),
        };
        if params.first_line == 0 {
            params.first_line = line;
        }
        if let Some(n) = param.strip_prefix("formatFields.") {
            match n.parse::<u32>() {
                // Numbers, not spellings, decide duplicates: formatFields.04 is formatFields.4.
                Ok(n) => match params.fields.get(&n) {
                    Some(first) => err(twice(first.line)),
                    None => {
                        params.fields.insert(n, value);
                    }
                },
                Err(_) => err(format!(
                    "`{n}` is not a field number; write formatFields.<number>, e.g. formatFields.11"
                )),
            }
            continue;
        }
        if !PARAMETERS.contains(&param) {
            err(format!(
                "unknown parameter `{param}`{}; parameters are {}",
                did_you_mean(param, PARAMETERS),
                PARAMETERS.join(", ")
            ));
            continue;
        }
        match params.values.get(param) {
            Some(first) => err(twice(first.line)),
            None => {
                params.values.insert(param.to_string(), value);
            }
        }
    }

    let enabled = match &start {
        None => true,
        Some(v) => boolean(v).unwrap_or_else(|m| {
            errors.push(ConfigError::at(&path, Some(v.line), Some(&v.key), m));
            true
        }),
    };

    let origin = |v: &Value| Origin {
        file: path.display().to_string(),
        line: v.line,
        key: v.key.clone(),
    };
    let mut default_fields = BTreeMap::new();
    for (n, v) in &defaults.fields {
        match parse_field(*n, &v.text, origin(v)) {
            Ok(f) => {
                default_fields.insert(*n, f);
            }
            Err(m) => errors.push(ConfigError::at(&path, Some(v.line), Some(&v.key), m)),
        }
    }

    let mut formats: BTreeMap<String, Vec<FieldSpec>> = BTreeMap::new();
    let mut out = Vec::new();
    for (number, params) in &handlers {
        let scope = HandlerScope {
            number: *number,
            params,
            defaults: &defaults,
        };
        let mut err = |name: &str, message: String| {
            let (line, key) = scope.place(name);
            errors.push(ConfigError::at(&path, Some(line), Some(&key), message));
        };

        let handler_enabled = scope
            .get("start")
            .map_or(Ok(true), boolean)
            .unwrap_or_else(|m| {
                err("start", m);
                true
            });

        let filter_source = scope
            .get("filter")
            .map(|v| v.text.trim().to_string())
            .unwrap_or_default();
        let filter = match Regex::new(&format!("^(?:{filter_source})$")) {
            Ok(r) => Some(r),
            Err(e) => {
                err(
                    "filter",
                    format!(
                        "bad regular expression: {}; write a Rust/Java regex matching the whole path after /pgwy/ast/, e.g. `users/.*`",
                        regex_error(&e)
                    ),
                );
                None
            }
        };

        let format = scope.get("format").map_or_else(
            || "ast-default.format".to_string(),
            |v| v.text.trim().to_string(),
        );
        let format_fields =
            if format.is_empty() || format.contains(['/', '\\']) || format.starts_with('.') {
                err(
                    "format",
                    format!(
                        "`{format}` is not a file name; name a file in {}",
                        root.formats().display()
                    ),
                );
                Vec::new()
            } else if let Some(f) = formats.get(&format) {
                f.clone()
            } else if !root.formats().join(&format).is_file() {
                let available = format_files(root);
                let names: Vec<&str> = available.iter().map(String::as_str).collect();
                err(
                    "format",
                    format!(
                        "format file `{format}` not found in {}{}; available: {}",
                        root.formats().display(),
                        did_you_mean(&format, &names),
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    ),
                );
                formats.insert(format.clone(), Vec::new());
                Vec::new()
            } else {
                // Valid fields of a format with problems are kept, so they are checked further too.
                let (loaded, mut problems) = load_format(&root.formats().join(&format));
                errors.append(&mut problems);
                formats.insert(format.clone(), loaded.clone());
                loaded
            };
        let mut err = |name: &str, message: String| {
            let (line, key) = scope.place(name);
            errors.push(ConfigError::at(&path, Some(line), Some(&key), message));
        };

        let mut fields: BTreeMap<u32, FieldSpec> =
            format_fields.into_iter().map(|f| (f.index, f)).collect();
        fields.extend(default_fields.iter().map(|(n, f)| (*n, f.clone())));
        let mut field_errors = Vec::new();
        for (n, v) in &params.fields {
            match parse_field(*n, &v.text, origin(v)) {
                Ok(f) => {
                    fields.insert(*n, f);
                }
                Err(m) => field_errors.push(ConfigError::at(&path, Some(v.line), Some(&v.key), m)),
            }
        }
        let fields: Vec<FieldSpec> = fields.into_values().collect();

        let token_procedure = scope
            .get("tokenprocedure")
            .map(|v| v.text.trim().to_string())
            .unwrap_or_default();
        if let Some(gw) = gateway {
            let names: Vec<&str> = gw.token_procedures.keys().map(String::as_str).collect();
            match gw.token_procedures.get(&token_procedure) {
                None if token_procedure.is_empty() => err(
                    "tokenprocedure",
                    format!(
                        "handler.{number} has no token procedure; add handler.{number}.tokenprocedure = one of: {}",
                        names.join(", ")
                    ),
                ),
                None => err(
                    "tokenprocedure",
                    format!(
                        "token procedure `{token_procedure}` is not defined in gateway.toml{}; defined: {}",
                        did_you_mean(&token_procedure, &names),
                        names.join(", ")
                    ),
                ),
                Some(tp) => {
                    for f in &fields {
                        let crate::policy::Scope::Request(i) = f.target.scope else {
                            continue;
                        };
                        if i >= tp.certificates.len() {
                            field_errors.push(ConfigError::at(
                                Path::new(&f.origin.file),
                                Some(f.origin.line),
                                Some(&f.origin.key),
                                format!(
                                    "certrequests:{i} does not exist for handler.{number}: its token procedure `{}` has {} certificate(s); use an index from 0 to {}",
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

        let required_roles = scope.get("requiredRoRoles").and_then(|v| {
            let roles: Vec<String> = v
                .text
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

        let mut number_param = |name: &str, default: usize| match scope.get(name) {
            None => default,
            Some(v) => v.text.trim().parse().unwrap_or_else(|_| {
                err(
                    name,
                    format!(
                        "`{}` is not a number; write a whole number such as {default}",
                        v.text.trim()
                    ),
                );
                default
            }),
        };
        let min = number_param("password.minLength", 6);
        let max = number_param("password.maxLength", 128);
        if min > max {
            err(
                "password.minLength",
                format!(
                    "minLength {min} is greater than maxLength {max}; make minLength ≤ maxLength"
                ),
            );
        }
        let pattern = scope
            .get("password.pattern")
            .map_or_else(|| DEFAULT_PIN_PATTERN.to_string(), |v| v.text.clone());
        let password_policy = match PasswordPolicy::new(min, max, &pattern) {
            Ok(p) => p,
            Err(e) => {
                err(
                    "password.pattern",
                    format!(
                        "bad regular expression: {}; write a regex for the whole PIN, e.g. [\\\\x20-\\\\x7E]*",
                        regex_error(&e)
                    ),
                );
                PasswordPolicy::default()
            }
        };

        let pkcs12_profile = match scope.get("pkcs12.profile") {
            None => Pkcs12Profile::Modern,
            Some(v) => v.text.trim().parse().unwrap_or_else(|m| {
                err("pkcs12.profile", m);
                Pkcs12Profile::Modern
            }),
        };
        let mut pkcs12_profiles = vec![pkcs12_profile];
        if let Some(v) = scope.get("pkcs12.profiles") {
            pkcs12_profiles.clear();
            for name in v.text.split([' ', ',']).filter(|s| !s.is_empty()) {
                match name.parse::<Pkcs12Profile>() {
                    Ok(p) => pkcs12_profiles.push(p),
                    Err(m) => err("pkcs12.profiles", m),
                }
            }
            if !pkcs12_profiles.contains(&pkcs12_profile) {
                err(
                    "pkcs12.profiles",
                    format!(
                        "the default profile `{pkcs12_profile}` (pkcs12.profile) is not offered; add it to pkcs12.profiles"
                    ),
                );
            }
        }

        errors.append(&mut field_errors);
        if let (Some(filter), true) = (filter, handler_enabled) {
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
    if handlers.is_empty() && enabled {
        errors.push(ConfigError::at(
            &path,
            None,
            None,
            "no handler is defined; add handler.1.filter =, handler.1.format = ast-default.format and handler.1.tokenprocedure = default",
        ));
    }
    if !errors.is_empty() {
        for e in &mut errors {
            for (line, secret) in &secrets {
                if e.line == Some(*line)
                    && !secret.is_empty()
                    && e.file == path.display().to_string()
                {
                    e.message = e.message.replace(secret.as_str(), "[encrypted value]");
                }
            }
        }
        errors.sort_by(|a, b| {
            (&a.file, a.line, &a.key, &a.message).cmp(&(&b.file, b.line, &b.key, &b.message))
        });
        errors.dedup();
        return Err(ConfigErrors(errors));
    }
    Ok(AstConfig {
        enabled,
        handlers: out,
    })
}

/// A handler's view of its parameters: its own, else `default.*`.
struct HandlerScope<'a> {
    number: u32,
    params: &'a Params,
    defaults: &'a Params,
}

impl HandlerScope<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.params
            .values
            .get(name)
            .or_else(|| self.defaults.values.get(name))
    }
    /// Line and key to report a problem with `name`: where it is written, else the handler's
    /// first line.
    fn place(&self, name: &str) -> (usize, String) {
        match self.get(name) {
            Some(v) => (v.line, v.key.clone()),
            None => (
                self.params.first_line,
                format!("handler.{}.{name}", self.number),
            ),
        }
    }
}

fn boolean(v: &Value) -> Result<bool, String> {
    match v.text.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("`{other}` is not a boolean; write true or false")),
    }
}

/// The `*.format` files under conf/formats/, sorted.
fn format_files(root: &Root) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.formats())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".format"))
        .collect();
    names.sort();
    names
}

/// Reads a format file: only `formatFields.<N>` keys. Returns the valid fields and every problem.
fn load_format(path: &Path) -> (Vec<FieldSpec>, Vec<ConfigError>) {
    let entries = match properties::read_file(path) {
        Ok(entries) => entries,
        Err(e) => return (Vec::new(), vec![e]),
    };
    let mut errors = Vec::new();
    let mut fields = BTreeMap::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for Entry { key, value, line } in entries {
        if let Some(first) = seen.insert(key.clone(), line) {
            errors.push(ConfigError::at(
                path,
                Some(line),
                Some(&key),
                format!("set twice (also at line {first}); keep one line (Java would silently use the last)"),
            ));
            continue;
        }
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
                key: key.clone(),
            },
        ) {
            Ok(f) => {
                fields.insert(n, f);
            }
            Err(m) => errors.push(ConfigError::at(path, Some(line), Some(&key), m)),
        }
    }
    (fields.into_values().collect(), errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::Attribute;
    use crate::config::{DEFAULT_FORMAT, DEFAULT_GATEWAY_TOML, load};
    use crate::policy::{IdentityHeaders, Source, evaluate};

    /// A root with the default gateway.toml and format, and `ast` as ast.properties.
    fn root_with(ast: &str) -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        std::fs::create_dir_all(root.formats()).unwrap();
        std::fs::write(root.gateway_toml(), DEFAULT_GATEWAY_TOML).unwrap();
        std::fs::write(root.formats().join("ast-default.format"), DEFAULT_FORMAT).unwrap();
        std::fs::write(root.ast_properties(), ast).unwrap();
        (dir, root)
    }

    const BASE: &str = "handler.1.filter =\nhandler.1.format = ast-default.format\nhandler.1.tokenprocedure = default\n";

    #[test]
    fn documented_example_verbatim() {
        let text = format!(
            "{BASE}handler.1.formatFields.4 = ast.valuetarget.countryname.value =\n\
             handler.1.formatFields.5 = ast.valuetarget.localityname.value = myheader\n"
        );
        let (_d, root) = root_with(&text);
        let config = load(&root).unwrap();
        let h = &config.ast.handlers[0];
        let f4 = h.fields.iter().find(|f| f.index == 4).unwrap();
        assert!(f4.source.is_none());
        let f5 = h.fields.iter().find(|f| f.index == 5).unwrap();
        assert_eq!(f5.source, Some(Source::Header("myheader".into())));
        let headers = IdentityHeaders::new([
            ("commonname", "A"),
            ("country", "SE"),
            ("myheader", "Lund"),
            ("locality", "X"),
        ]);
        let e = evaluate(&h.fields, &headers, None).unwrap();
        assert_eq!(e.common.first(Attribute::CountryName), None);
        assert_eq!(e.common.first(Attribute::LocalityName), Some("Lund"));
        assert_eq!(
            h.fields.len(),
            10,
            "the override replaces, the rest of the format stays"
        );
    }

    #[test]
    fn handler_order_gaps_and_whole_match() {
        let text = "handler.20.filter = .*\nhandler.20.tokenprocedure = default\n\
                    handler.3.filter = users/[a-z]+\nhandler.3.tokenprocedure = default\n\
                    handler.10.filter =\nhandler.10.tokenprocedure = default\n";
        let (_d, root) = root_with(text);
        let ast = load(&root).unwrap().ast;
        assert_eq!(
            ast.handlers.iter().map(|h| h.number).collect::<Vec<_>>(),
            vec![3, 10, 20]
        );
        assert_eq!(ast.select("users/alice").unwrap().number, 3);
        assert_eq!(
            ast.select("users/alice/x").unwrap().number,
            20,
            "a partial match does not count"
        );
        assert_eq!(ast.select("").unwrap().number, 10);
        let (_d, root) =
            root_with("handler.1.filter = users\nhandler.1.tokenprocedure = default\n");
        let ast = load(&root).unwrap().ast;
        assert!(ast.select("users/x").is_none());
        assert!(ast.select("xusers").is_none());
        assert!(ast.select("").is_none());
    }

    #[test]
    fn continuation_and_unicode_escapes_in_a_value() {
        let text = format!(
            "{BASE}handler.1.formatFields.11 = certrequests:1:title.value = \\\n    \"Sign\\u00e9r \\u2713\" \\\n    | upper\n\
             default.password.pattern = [0-9\\\\-]*\n"
        );
        let (_d, root) = root_with(&text);
        let config = load(&root).unwrap();
        let h = &config.ast.handlers[0];
        let f = h.fields.iter().find(|f| f.index == 11).unwrap();
        assert_eq!(f.source, Some(Source::Literal("Signér ✓".into())));
        assert_eq!(f.origin.line, 4);
        let e = evaluate(
            &h.fields,
            &IdentityHeaders::new([("commonname", "A")]),
            None,
        )
        .unwrap();
        assert_eq!(e.subject_for(1).first(Attribute::Title), Some("SIGNÉR ✓"));
        assert!(
            h.password_policy
                .check(&crate::token::Pin::new("12-34-56".into()))
                .is_ok()
        );
    }

    #[test]
    fn every_problem_with_its_line() {
        let text = "default.pasword.minLength = 6\n\
                    handler.1.filter = users/[\n\
                    handler.1.tokenprocedure = defualt\n\
                    handler.1.formatFields.4 = ast.valuetarget.countryname.value = country | lowr\n\
                    handler.1.formatFields.5 = ast.valuetarget.nosuch.value = x\n\
                    handler.2.filter = b\n\
                    handler.2.format = missing.format\n\
                    handler.2.tokenprocedure = default\n\
                    handler.2.formatFields.12 = certrequests:2:title.value = \"T\"\n\
                    handler.2.formatFields.13 = ast.valuetarget.title.value = t | match(\"(\")\n\
                    handler.02.filter = again\n";
        let (_d, root) = root_with(text);
        let errors = load(&root).unwrap_err().0;
        let lines: Vec<(usize, &str)> = errors
            .iter()
            .map(|e| (e.line.unwrap(), e.message.as_str()))
            .collect();
        let expect = [
            (1, "did you mean `password.minLength`"),
            (2, "bad regular expression"),
            (3, "did you mean `default`"),
            (4, "unknown module `lowr`"),
            (5, "unknown attribute `nosuch`"),
            (7, "format file `missing.format` not found"),
            (9, "certrequests:2 does not exist"),
            (10, "bad regular expression in `match`"),
            (11, "set twice (also at line 6)"),
        ];
        assert_eq!(errors.len(), expect.len(), "{errors:#?}");
        for ((line, needle), (got_line, got)) in expect.iter().zip(&lines) {
            assert_eq!(line, got_line, "{got}");
            assert!(got.contains(needle), "line {line}: {got}");
        }
        for e in &errors {
            let shown = e.to_string();
            assert!(!shown.contains('\n'), "one line each: {shown}");
            assert!(
                shown.starts_with(&format!(
                    "{}:{}: ",
                    root.ast_properties().display(),
                    e.line.unwrap()
                )),
                "{shown}"
            );
        }
    }

    #[test]
    fn encrypted_parameters() {
        let (_d, root) = root_with("");
        let key = SecretKey::load_or_create(&root).unwrap();
        let text = format!(
            "{BASE}handler.1.password.pattern.encrypted = {}\nhandler.1.password.minLength.encrypted = {}\n",
            key.encrypt("[0-9]*").unwrap(),
            key.encrypt("8").unwrap()
        );
        std::fs::write(root.ast_properties(), text).unwrap();
        let h = load(&root).unwrap().ast.handlers.remove(0);
        assert_eq!(h.password_policy.min_length, 8);
        assert!(
            h.password_policy
                .check(&crate::token::Pin::new("12345678".into()))
                .is_ok()
        );
        assert!(
            h.password_policy
                .check(&crate::token::Pin::new("1234567a".into()))
                .is_err()
        );

        // A secret that fails validation is not repeated in the message.
        let text = format!(
            "{BASE}handler.1.password.minLength.encrypted = {}\n",
            key.encrypt("zz-secret").unwrap()
        );
        std::fs::write(root.ast_properties(), text).unwrap();
        let errors = load(&root).unwrap_err().to_string();
        assert!(
            errors.contains("not a number") && !errors.contains("zz-secret"),
            "{errors}"
        );
        std::fs::remove_file(root.secret_key()).unwrap();
        let errors = load(&root).unwrap_err().to_string();
        assert!(errors.contains("cannot read the secret key"), "{errors}");
    }

    #[test]
    fn start_false_and_disabled_handler() {
        let (_d, root) = root_with("start = false\n");
        assert!(!load(&root).unwrap().ast.enabled);
        let text = format!(
            "{BASE}handler.2.filter = x\nhandler.2.tokenprocedure = default\nhandler.2.start = false\n"
        );
        let (_d, root) = root_with(&text);
        let ast = load(&root).unwrap().ast;
        assert_eq!(ast.handlers.len(), 1);
        assert!(ast.select("x").is_none());
    }
}

/// Property test: any mix of plausible and broken lines loads or fails with located problems,
/// never panics, and every problem names a line of the file it is in.
#[cfg(test)]
mod property_tests {
    use proptest::prelude::*;

    use super::*;
    use crate::config::{DEFAULT_FORMAT, DEFAULT_GATEWAY_TOML, load};

    fn line() -> impl Strategy<Value = String> {
        let scope = prop_oneof![
            Just("default.".to_string()),
            (0u32..4).prop_map(|n| format!("handler.{n}.")),
            Just("handler.x.".to_string()),
            Just(String::new()),
        ];
        let param = proptest::sample::select(vec![
            "filter",
            "format",
            "tokenprocedure",
            "requiredRoRoles",
            "start",
            "password.minLength",
            "password.maxLength",
            "password.pattern",
            "pkcs12.profile",
            "pkcs12.profiles",
            "formatFields.4",
            "formatFields.11",
            "formatFields.x",
            "filtr",
            "pattern.encrypted",
        ]);
        let value = proptest::sample::select(vec![
            "",
            "users/.*",
            "[",
            "(",
            "ast-default.format",
            "nosuch.format",
            "../x",
            "default",
            "nosuch",
            "none",
            "a, b",
            "true",
            "false",
            "maybe",
            "6",
            "-1",
            "modern",
            "legacy, modern",
            "pbmac1",
            "ast.valuetarget.countryname.value =",
            "ast.valuetarget.localityname.value = myheader | trim",
            "certrequests:9:title.value = \"x\"",
            "ast.valuetarget.nosuch.value = x",
            "ast.valuetarget.title.value = x | lowr",
            "v1:AAAA",
        ]);
        (scope, param, value).prop_map(|(s, p, v)| format!("{s}{p} = {v}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn load_never_panics_and_locates_every_problem(lines in proptest::collection::vec(line(), 0..12)) {
            let dir = tempfile::tempdir().unwrap();
            let root = Root::new(dir.path());
            std::fs::create_dir_all(root.formats()).unwrap();
            std::fs::write(root.gateway_toml(), DEFAULT_GATEWAY_TOML).unwrap();
            std::fs::write(root.formats().join("ast-default.format"), DEFAULT_FORMAT).unwrap();
            let text = lines.join("\n");
            std::fs::write(root.ast_properties(), &text).unwrap();
            if let Err(errors) = load(&root) {
                prop_assert!(!errors.0.is_empty());
                for e in &errors.0 {
                    let shown = e.to_string();
                    prop_assert!(!shown.contains('\n'), "one line: {}", shown);
                    if let Some(line) = e.line {
                        prop_assert!(line >= 1 && line <= lines.len().max(1), "{} in\n{}", shown, text);
                    } else {
                        prop_assert!(shown.contains("no handler is defined") || shown.contains("secret key"), "{}", shown);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod migration_tests {
    use super::*;
    use crate::config::{DEFAULT_FORMAT, DEFAULT_GATEWAY_TOML, load};
    use crate::policy::{IdentityHeaders, evaluate};

    /// A Nexus-style file as operators have them: ISO-8859-1 bytes, `!` and `#` comments (one
    /// with a Windows path), `:` and whitespace separators, gaps in handler numbers, a value
    /// continued over lines, `\u` escapes, and the documented example.
    #[test]
    fn nexus_style_file_loads() {
        let mut text: Vec<u8> = Vec::new();
        text.extend_from_slice(b"! AST configuration, copied from C:\\Nexus\\pgwy\\conf\n");
        text.extend_from_slice(b"# R\xe4ksm\xf6rg\xe5s handler (Latin-1 comment)\n");
        text.extend_from_slice(b"default.tokenprocedure : default\n");
        text.extend_from_slice(b"default.requiredRoRoles  \n");
        text.extend_from_slice(b"handler.0.filter\n");
        text.extend_from_slice(b"handler.10.filter       staff/.*\n");
        text.extend_from_slice(
            b"handler.10.formatFields.4 = ast.valuetarget.countryname.value =\n",
        );
        text.extend_from_slice(
            b"handler.10.formatFields.5 = ast.valuetarget.localityname.value = myheader\n",
        );
        text.extend_from_slice(
            b"handler.10.formatFields.20 = commoncontext:organizationname.value = \\\n",
        );
        text.extend_from_slice(b"        \"V\xe4stra \\u00d6stra AB\"\n");
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        std::fs::create_dir_all(root.formats()).unwrap();
        std::fs::write(root.gateway_toml(), DEFAULT_GATEWAY_TOML).unwrap();
        std::fs::write(root.formats().join("ast-default.format"), DEFAULT_FORMAT).unwrap();
        std::fs::write(root.ast_properties(), &text).unwrap();
        let config = load(&root).unwrap_or_else(|e| panic!("{e}"));
        let ast = &config.ast;
        assert_eq!(
            ast.handlers.iter().map(|h| h.number).collect::<Vec<_>>(),
            vec![0, 10]
        );
        assert_eq!(ast.select("").unwrap().number, 0);
        let h = ast.select("staff/x").unwrap();
        assert_eq!(h.number, 10);
        assert!(
            h.required_roles.is_none(),
            "an empty requiredRoRoles means trusted proxies"
        );
        let headers =
            IdentityHeaders::new([("commonname", "A"), ("country", "SE"), ("myheader", "Lund")]);
        let e = evaluate(&h.fields, &headers, None).unwrap();
        use crate::ca::Attribute;
        assert_eq!(
            e.common.first(Attribute::OrganizationName),
            Some("Västra Östra AB")
        );
        assert_eq!(e.common.first(Attribute::CountryName), None);
        assert_eq!(e.common.first(Attribute::LocalityName), Some("Lund"));
    }
}
