//! REST API handlers (`handler.<n>.*` in api.properties, `default.*` applying to all): which
//! paths under `/pgwy/api/` they serve and which officer roles a call needs. Every API call needs
//! an officer client certificate, so `requiredRoRoles` is mandatory (`none`: any verified client
//! certificate that is not revoked). `astHandlers` names the AST handlers `POST softtokens` may
//! issue through (numbers of ast.properties), so that which JSON fields the API reads never
//! depends on the order of the AST handlers.

use std::path::Path;

use regex::Regex;

use super::handler::{Handler, RequiredRoles, boolean};
use crate::config::{ApiFile, ConfigError, ConfigErrors, Diagnostics, HandlerScope};
use crate::policy::regex_error;

/// The parameters a scope of api.properties may set.
pub const API_PARAMETERS: &[&str] = &["start", "filter", "requiredRoRoles", "astHandlers"];

/// One API handler, with `default.*` applied.
#[derive(Debug, Clone)]
pub struct ApiHandler {
    pub number: u32,
    /// `start = false` turns the handler off (it is still checked).
    pub enabled: bool,
    /// Anchored: matches the whole path after `/pgwy/api/`.
    pub filter: Regex,
    pub filter_source: String,
    pub required_roles: RequiredRoles,
    /// `astHandlers`: the AST handlers (numbers of ast.properties) `POST softtokens` issues
    /// through when this handler authorizes it, the first being the one used when the request
    /// names neither `handler` nor `tokenProcedure`. Empty: not set (every enabled AST handler,
    /// the one of `/pgwy/ast` by default; see `issuance::api`).
    pub ast_handlers: Vec<u32>,
}

/// The API handlers in effect, in ascending number (enabled ones only).
#[derive(Debug, Clone, Default)]
pub struct ApiRules {
    pub handlers: Vec<ApiHandler>,
}

impl ApiRules {
    /// The first handler whose filter matches the whole `path` (after `/pgwy/api/`).
    pub fn select(&self, path: &str) -> Option<&ApiHandler> {
        self.handlers.iter().find(|h| h.filter.is_match(path))
    }
}

/// One handler's parameters, with the file they come from.
pub struct ApiHandlerSource<'a> {
    pub scope: HandlerScope<'a>,
    pub path: &'a Path,
}

impl ApiHandlerSource<'_> {
    fn error(&self, name: &str, message: String) -> ConfigError {
        let (line, key) = self.scope.place(name);
        ConfigError::at(self.path, Some(line), Some(&key), message)
    }
}

impl TryFrom<ApiHandlerSource<'_>> for ApiHandler {
    type Error = ConfigErrors;

    fn try_from(source: ApiHandlerSource<'_>) -> Result<Self, ConfigErrors> {
        let mut diagnostics = Diagnostics::default();
        let number = source.scope.number;
        let enabled = match source.scope.get("start").map(boolean) {
            Some(Err(m)) => {
                diagnostics.push(source.error("start", m));
                true
            }
            Some(Ok(b)) => b,
            None => true,
        };
        let filter_source = match source.scope.get("filter") {
            Some(v) => v.text.trim().to_string(),
            None => {
                diagnostics.push(source.error(
                    "filter",
                    format!(
                        "handler.{number} has no filter; add handler.{number}.filter = a regular expression over the path after /pgwy/api/, e.g. certificates"
                    ),
                ));
                String::new()
            }
        };
        let filter = Regex::new(&format!("^(?:{filter_source})$")).map_err(|e| {
            diagnostics.push(source.error(
                "filter",
                format!(
                    "bad regular expression: {}; write a regex matching the whole path after /pgwy/api/, e.g. certificates/.*",
                    regex_error(&e)
                ),
            ))
        });
        let required_roles = match source.scope.get("requiredRoRoles") {
            None => {
                diagnostics.push(source.error(
                    "requiredRoRoles",
                    format!(
                        "handler.{number} has no requiredRoRoles; every API call is made by an officer: add handler.{number}.requiredRoRoles = the roles needed (e.g. api-read), or none for any officer certificate"
                    ),
                ));
                None
            }
            Some(v) => v
                .text
                .parse::<RequiredRoles>()
                .map_err(|m| diagnostics.push(source.error("requiredRoRoles", m)))
                .ok(),
        };
        let ast_handlers = match source.scope.get("astHandlers") {
            None => Vec::new(),
            Some(v) => ast_handler_numbers(&v.text).unwrap_or_else(|m| {
                diagnostics.push(source.error("astHandlers", m));
                Vec::new()
            }),
        };
        let (Ok(filter), Some(required_roles)) = (filter, required_roles) else {
            return Err(diagnostics.into_errors());
        };
        diagnostics.finish(ApiHandler {
            number,
            enabled,
            filter,
            filter_source,
            required_roles,
            ast_handlers,
        })
    }
}

/// `astHandlers`: AST handler numbers, separated by spaces or commas, each once.
fn ast_handler_numbers(text: &str) -> Result<Vec<u32>, String> {
    let mut numbers = Vec::new();
    for word in text.split([' ', ',', '\t']).filter(|w| !w.is_empty()) {
        let n: u32 = word.parse().map_err(|_| {
            format!(
                "`{}` is not a handler number; list the numbers n of ast.properties handler.<n>.*, e.g. astHandlers = 1, 3",
                word.chars().take(32).collect::<String>()
            )
        })?;
        if numbers.contains(&n) {
            return Err(format!("handler {n} is listed twice"));
        }
        numbers.push(n);
    }
    if numbers.is_empty() {
        return Err(
            "no handler listed; list the numbers n of ast.properties handler.<n>.*, or remove the line"
                .into(),
        );
    }
    Ok(numbers)
}

/// Checks each `astHandlers` against the AST handlers in effect: every number is an enabled
/// handler of ast.properties, and no two listed handlers issue the same token procedure (a
/// `tokenProcedure` alone must name exactly one).
fn check_ast_handlers(
    handler: &ApiHandler,
    source: &ApiHandlerSource<'_>,
    ast: &[Handler],
    diagnostics: &mut Diagnostics,
) {
    let mut procedures: Vec<(&str, u32)> = Vec::new();
    for n in &handler.ast_handlers {
        let Some(found) = ast.iter().find(|h| h.number == *n) else {
            diagnostics.push(source.error(
                "astHandlers",
                format!(
                    "handler.{n} is not an enabled handler of ast.properties; handlers are {}",
                    numbers(ast)
                ),
            ));
            continue;
        };
        let procedure = found.token_procedure.as_str();
        if let Some((_, first)) = procedures.iter().find(|(p, _)| *p == procedure) {
            diagnostics.push(source.error(
                "astHandlers",
                format!(
                    "handlers {first} and {n} of ast.properties both issue the token procedure `{procedure}`, so a request naming only tokenProcedure would be ambiguous; list one of them"
                ),
            ));
        }
        procedures.push((procedure, *n));
    }
}

fn numbers(ast: &[Handler]) -> String {
    let list: Vec<String> = ast.iter().map(|h| h.number.to_string()).collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

/// Builds the API handlers of api.properties, every problem collected. `ast`: the enabled AST
/// handlers `astHandlers` may name (`None` when ast.properties could not be built; they are then
/// not cross-checked).
pub fn build_api(file: &ApiFile, ast: Option<&[Handler]>) -> Result<ApiRules, ConfigErrors> {
    let mut diagnostics = Diagnostics::default();
    let mut handlers = Vec::new();
    for (number, params) in &file.handlers {
        let source = ApiHandlerSource {
            scope: HandlerScope {
                number: *number,
                params,
                defaults: &file.defaults,
            },
            path: &file.path,
        };
        let Some(handler) = diagnostics.take(ApiHandler::try_from(ApiHandlerSource {
            scope: HandlerScope { ..source.scope },
            path: source.path,
        })) else {
            continue;
        };
        if let Some(ast) = ast {
            check_ast_handlers(&handler, &source, ast, &mut diagnostics);
        }
        handlers.extend(handler.enabled.then_some(handler));
    }
    diagnostics.finish(ApiRules { handlers })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Diagnostics, Root, read_api};

    fn load(text: &str) -> Result<ApiRules, ConfigErrors> {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        std::fs::create_dir_all(root.conf()).unwrap();
        std::fs::write(root.api_properties(), text).unwrap();
        let mut diagnostics = Diagnostics::default();
        let file = read_api(&root, API_PARAMETERS, &mut diagnostics).unwrap();
        assert!(diagnostics.is_empty());
        build_api(&file, None)
    }

    #[test]
    fn embedded_default_groups_operations_by_role() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let mut diagnostics = Diagnostics::default();
        let rules = build_api(
            &read_api(&root, API_PARAMETERS, &mut diagnostics).unwrap(),
            None,
        )
        .unwrap();
        let roles = |path: &str| match &rules.select(path).unwrap().required_roles {
            RequiredRoles::All(r) => r.join(","),
            RequiredRoles::AnyCertificate => "none".into(),
        };
        assert_eq!(roles("certificates"), "api-read");
        assert_eq!(roles("certificates/0abc/details"), "api-read");
        assert_eq!(roles("certificates/0abc/download"), "api-read");
        assert_eq!(roles("tokenprocedures"), "api-read");
        assert_eq!(roles("handlers"), "api-read");
        assert_eq!(roles("softtokens"), "api-issue");
        assert_eq!(roles("certificates/revoke"), "api-revoke");
        assert_eq!(roles("certificates/reinstate"), "api-revoke");
        assert!(rules.select("certificates/a/b/details").is_none());
        assert!(rules.select("softtokens/x").is_none());
    }

    #[test]
    fn defaults_start_and_none() {
        let rules = load(
            "default.requiredRoRoles = reader\nhandler.5.filter = .*\nhandler.1.filter = handlers\nhandler.1.requiredRoRoles = none\nhandler.2.filter = x\nhandler.2.start = false\n",
        )
        .unwrap();
        assert_eq!(
            rules.handlers.iter().map(|h| h.number).collect::<Vec<_>>(),
            vec![1, 5]
        );
        assert_eq!(
            rules.select("handlers").unwrap().required_roles,
            RequiredRoles::AnyCertificate
        );
        assert_eq!(
            rules.select("certificates").unwrap().required_roles,
            RequiredRoles::All(vec!["reader".into()])
        );
    }

    /// A root whose ast.properties has two handlers issuing `default` (a proxy's first) and
    /// whose api.properties names `astHandlers` for softtokens.
    fn load_with(ast_handlers: &str) -> Result<crate::rules::Configuration, ConfigErrors> {
        use crate::config::{DEFAULT_FORMAT, DEFAULT_GATEWAY_TOML};
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        std::fs::create_dir_all(root.formats()).unwrap();
        std::fs::write(root.gateway_toml(), DEFAULT_GATEWAY_TOML).unwrap();
        std::fs::write(root.formats().join("ast-default.format"), DEFAULT_FORMAT).unwrap();
        std::fs::write(
            root.ast_properties(),
            "handler.1.filter = sso/.*\nhandler.1.format = ast-default.format\nhandler.1.tokenprocedure = default\n\
             handler.2.filter =\nhandler.2.format = ast-default.format\nhandler.2.tokenprocedure = default\n\
             handler.3.filter = off\nhandler.3.format = ast-default.format\nhandler.3.tokenprocedure = default\nhandler.3.start = false\n",
        )
        .unwrap();
        std::fs::write(
            root.api_properties(),
            format!("handler.1.filter = softtokens\nhandler.1.requiredRoRoles = api-issue\n{ast_handlers}"),
        )
        .unwrap();
        crate::rules::load(&root)
    }

    #[test]
    fn ast_handlers_name_enabled_handlers_each_procedure_once() {
        let rules = load_with("").unwrap().rules;
        assert!(rules.api.handlers[0].ast_handlers.is_empty());
        let rules = load_with("handler.1.astHandlers = 2\n").unwrap().rules;
        assert_eq!(rules.api.handlers[0].ast_handlers, vec![2]);
        let rules = load_with("default.astHandlers = 1\n").unwrap().rules;
        assert_eq!(rules.api.handlers[0].ast_handlers, vec![1]);
        let e = load_with("handler.1.astHandlers = 2, 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("api.properties:3: handler.1.astHandlers: handlers 2 and 1 of ast.properties both issue the token procedure `default`"),
            "{e}"
        );
        for (value, expected) in [
            (
                "3",
                "handler.3 is not an enabled handler of ast.properties; handlers are 1, 2",
            ),
            ("9", "handler.9 is not an enabled handler"),
            ("x", "`x` is not a handler number"),
            ("2 2", "handler 2 is listed twice"),
            (",", "no handler listed"),
        ] {
            let e = load_with(&format!("handler.1.astHandlers = {value}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("handler.1.astHandlers: {expected}")),
                "{value}: {e}"
            );
        }
    }

    #[test]
    fn every_problem_with_line_and_key() {
        let e = load("handler.1.filter = (\nhandler.1.requiredRoRoles = a\nhandler.2.filter = x\nhandler.3.requiredRoRoles = none, b\nhandler.3.filter = y\nhandler.4.filter = z\nhandler.4.requiredRoRoles = r\nhandler.4.start = maybe\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("api.properties:1: handler.1.filter: bad regular expression"),
            "{e}"
        );
        assert!(
            e.contains(
                "api.properties:3: handler.2.requiredRoRoles: handler.2 has no requiredRoRoles"
            ),
            "{e}"
        );
        assert!(
            e.contains("api.properties:4: handler.3.requiredRoRoles: `none` is not a role"),
            "{e}"
        );
        assert!(
            e.contains("api.properties:8: handler.4.start: `maybe` is not a boolean"),
            "{e}"
        );
    }
}
