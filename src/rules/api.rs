//! REST API handlers (`handler.<n>.*` in api.properties, `default.*` applying to all): which
//! paths under `/pgwy/api/` they serve and which officer roles a call needs. Every API call needs
//! an officer client certificate, so `requiredRoRoles` is mandatory (`none`: any verified client
//! certificate that is not revoked).

use std::path::Path;

use regex::Regex;

use super::handler::{RequiredRoles, boolean};
use crate::config::{ApiFile, ConfigError, ConfigErrors, Diagnostics, HandlerScope};
use crate::policy::regex_error;

/// The parameters a scope of api.properties may set.
pub const API_PARAMETERS: &[&str] = &["start", "filter", "requiredRoRoles"];

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
        let (Ok(filter), Some(required_roles)) = (filter, required_roles) else {
            return Err(diagnostics.into_errors());
        };
        diagnostics.finish(ApiHandler {
            number,
            enabled,
            filter,
            filter_source,
            required_roles,
        })
    }
}

/// Builds the API handlers of api.properties, every problem collected.
pub fn build_api(file: &ApiFile) -> Result<ApiRules, ConfigErrors> {
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
        if let Some(handler) = diagnostics.take(ApiHandler::try_from(source)) {
            handlers.extend(handler.enabled.then_some(handler));
        }
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
        build_api(&file)
    }

    #[test]
    fn embedded_default_groups_operations_by_role() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let mut diagnostics = Diagnostics::default();
        let rules = build_api(&read_api(&root, API_PARAMETERS, &mut diagnostics).unwrap()).unwrap();
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
