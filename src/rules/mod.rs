//! The rules of issuance: AST handlers (ast.properties), their formats, token procedures and
//! certificate templates (gateway.toml), PIN policies — what the configuration *means*.
//!
//! Owns: building those domain types from the raw file structs of `config` (`TryFrom`, every
//! problem collected with file, line and key), handler selection, key-pool sizing from the
//! procedures. Must not: read files itself beyond asking `config`, open sockets, databases or
//! keys. Invariants: a `Rules` value is complete and consistent (every handler names an existing
//! token procedure; every `certrequests:<i>` exists); a reload swaps the whole value.

mod api;
mod est;
mod formats;
mod handler;
mod password;
mod path;
mod procedure;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use api::{API_PARAMETERS, ApiHandler, ApiHandlerSource, ApiRules, build_api};
pub use est::{EST_OPERATIONS, EstAuth, EstService, SecretHash};
pub use formats::Formats;
pub use handler::{Handler, HandlerSource, PARAMETERS, ProfileError, RequiredRoles};
pub use password::{DEFAULT_PIN_PATTERN, PasswordPolicy, PinError};
pub use path::{PathRefusal, decode_remainder};
pub use procedure::{
    CertificateSource, CertificateTemplate, Layout, LeafNotAfter, ProcedureSource, TokenProcedure,
};

use crate::config::{
    AstFile, ConfigError, ConfigErrors, Diagnostics, GatewayConfig, GatewayFile, HandlerScope,
    Root, TomlText, default_key_pool_size, read_api, read_ast, read_gateway_file, resolve_settings,
};
use crate::policy::HeaderEncoding;
use crate::token::KeyType;

/// Handlers and token procedures in effect.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// `start = false` disables the AST service.
    pub enabled: bool,
    /// Enabled handlers, in ascending number.
    pub handlers: Vec<Handler>,
    pub procedures: BTreeMap<String, TokenProcedure>,
    /// REST API handlers (api.properties).
    pub api: ApiRules,
    /// `[trust] header_encoding`: how identity headers are decoded for a handler without its
    /// own `headerEncoding`. Here rather than in the fixed settings so that a reload applies it.
    pub header_encoding: HeaderEncoding,
}

impl Rules {
    /// The first handler whose filter matches the whole `remainder` (the path after
    /// `/pgwy/ast/`, empty for `/pgwy/ast`, decoded by `decode_remainder`).
    pub fn select(&self, remainder: &str) -> Option<&Handler> {
        self.handlers
            .iter()
            .find(|h| h.form && h.filter.is_match(remainder))
    }

    /// The handler serving EST at `/.well-known/est/<label>/` (`None`: `/.well-known/est/`).
    pub fn est_handler(&self, label: Option<&str>) -> Option<&Handler> {
        self.handlers.iter().find(|h| {
            h.est.as_ref().is_some_and(|est| match label {
                Some(label) => est.label.as_deref() == Some(label),
                None => est.default,
            })
        })
    }

    /// How `handler`'s identity headers are decoded: its `headerEncoding`, else `[trust]
    /// header_encoding`.
    pub fn header_encoding_for(&self, handler: &Handler) -> HeaderEncoding {
        handler.header_encoding.unwrap_or(self.header_encoding)
    }

    /// Every header an enabled handler reads, lower-case, sorted, once each: what a front must
    /// set or remove (`config front-headers`).
    pub fn headers_read(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .handlers
            .iter()
            .flat_map(Handler::headers_read)
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// A token procedure by name.
    pub fn procedure(&self, name: &str) -> Option<&TokenProcedure> {
        self.procedures.get(name)
    }

    /// Pool size per key type: `[key_pool]` as written, and the default size for types a
    /// procedure uses and `[key_pool]` leaves out. Types with size 0 are left out.
    pub fn key_pool_sizes(&self, written: &BTreeMap<KeyType, usize>) -> BTreeMap<KeyType, usize> {
        KeyType::ALL
            .into_iter()
            .filter_map(|key_type| {
                let used = self
                    .procedures
                    .values()
                    .any(|p| p.certificates.iter().any(|c| c.key == key_type));
                let default = if used {
                    default_key_pool_size(key_type)
                } else {
                    0
                };
                let size = written.get(&key_type).copied().unwrap_or(default);
                (size > 0).then_some((key_type, size))
            })
            .collect()
    }
}

/// A root's whole configuration: the service settings and the rules.
#[derive(Debug, Clone)]
pub struct Configuration {
    pub settings: GatewayConfig,
    pub rules: Rules,
}

impl Configuration {
    /// The root directory.
    pub fn root(&self) -> &Root {
        &self.settings.root
    }
}

/// Loads and cross-checks gateway.toml, ast.properties, the formats it names and
/// api.properties, reporting every problem at once, sorted by file and line.
pub fn load(root: &Root) -> Result<Configuration, ConfigErrors> {
    let mut diagnostics = Diagnostics::default();
    let gateway = diagnostics.take(read_gateway_file(root));
    let settings = gateway
        .as_ref()
        .and_then(|(file, toml)| diagnostics.take(resolve_settings(root, file, toml)));
    let procedures = gateway
        .as_ref()
        .and_then(|(file, toml)| diagnostics.take(procedures(file, toml)));
    let rules = read_ast(root, PARAMETERS, &mut diagnostics)
        .and_then(|ast| build_rules(root, &ast, procedures, &mut diagnostics));
    let ast = rules.as_ref().map(|r| r.handlers.as_slice());
    let api = read_api(root, API_PARAMETERS, &mut diagnostics)
        .and_then(|file| diagnostics.take(build_api(&file, ast)));
    match (settings, rules, api) {
        (Some(settings), Some(rules), Some(api)) if diagnostics.is_empty() => Ok(Configuration {
            rules: Rules {
                api,
                header_encoding: settings.header_encoding,
                ..rules
            },
            settings,
        }),
        _ => Err(diagnostics.into_errors()),
    }
}

/// Every `[[token_procedure]]`, by name, checked against the configured CAs.
fn procedures(
    file: &GatewayFile,
    toml: &TomlText,
) -> Result<BTreeMap<String, TokenProcedure>, ConfigErrors> {
    let mut diagnostics = Diagnostics::default();
    let ca_names: Vec<&str> = file.cas.iter().map(|c| c.name.get_ref().as_str()).collect();
    // A CA's `subject_order` that does not parse is reported with the settings.
    let ca_subject_orders: procedure::CaSubjectOrders<'_> = file
        .cas
        .iter()
        .filter_map(|c| {
            let names = c.subject_order.as_ref()?.get_ref();
            let order = crate::ca::parse_subject_order(names).ok()?;
            Some((c.name.get_ref().as_str(), order))
        })
        .collect();
    let mut procedures = BTreeMap::new();
    for procedure in &file.token_procedures {
        let source = ProcedureSource {
            file: procedure,
            toml,
            ca_names: &ca_names,
            ca_subject_orders: &ca_subject_orders,
        };
        let Some(built) = diagnostics.take(TokenProcedure::try_from(source)) else {
            continue;
        };
        if procedures.contains_key(&built.name) {
            diagnostics.push(toml.error(
                procedure.name.span(),
                "token_procedure.name",
                format!("token procedure `{}` is defined twice", built.name),
            ));
        }
        procedures.insert(built.name.clone(), built);
    }
    diagnostics.finish(procedures)
}

/// The handlers of ast.properties with their formats. `procedures` is `None` when gateway.toml
/// could not be read (handlers are then checked without it).
fn build_rules(
    root: &Root,
    ast: &AstFile,
    procedures: Option<BTreeMap<String, TokenProcedure>>,
    diagnostics: &mut Diagnostics,
) -> Option<Rules> {
    let mut problems = Diagnostics::default();
    let enabled = match ast.start.as_ref().map(handler::boolean) {
        Some(Err(m)) => {
            let v = ast.start.as_ref()?;
            problems.push(ConfigError::at(&ast.path, Some(v.line), Some(&v.key), m));
            true
        }
        Some(Ok(b)) => b,
        None => true,
    };
    let default_fields = formats::parse_fields(&ast.path, &ast.defaults.fields, &mut problems);
    let scopes: Vec<HandlerScope<'_>> = ast
        .handlers
        .iter()
        .map(|(number, params)| HandlerScope {
            number: *number,
            params,
            defaults: &ast.defaults,
        })
        .collect();
    let names: Vec<String> = scopes
        .iter()
        .map(|s| {
            s.get("format")
                .map_or("ast-default.format".into(), |v| v.text.trim().to_string())
        })
        .collect();
    let formats = Formats::load(root, names.iter().map(String::as_str), &mut problems);
    let mut handlers = Vec::new();
    for scope in scopes {
        let source = HandlerSource {
            scope,
            root,
            path: &ast.path,
            formats: &formats,
            default_fields: &default_fields,
            procedures: procedures.as_ref(),
        };
        if let Some(handler) = problems.take(Handler::try_from(source)) {
            handlers.extend(handler.enabled.then_some(handler));
        }
    }
    if ast.handlers.is_empty() && enabled {
        problems.push(ConfigError::at(
            &ast.path,
            None,
            None,
            "no handler is defined; add handler.1.filter =, handler.1.format = ast-default.format and handler.1.tokenprocedure = default",
        ));
    }
    if let Some(procedures) = &procedures {
        est::check_services(&ast.path, &handlers, procedures, &mut problems);
    }
    ast.redact(problems.errors_mut());
    let rules = Rules {
        enabled,
        handlers,
        procedures: procedures.unwrap_or_default(),
        api: ApiRules::default(),
        header_encoding: HeaderEncoding::default(),
    };
    match problems.finish(rules) {
        Ok(rules) => Some(rules),
        Err(errors) => {
            diagnostics.extend(errors);
            None
        }
    }
}
