//! `conf/api.properties` as written: keys sorted into scopes (`default.*`, `handler.<n>.*`) with
//! their lines; duplicates, unknown keys and malformed keys reported with file and line. What
//! the parameters mean (filters, roles) is the `rules` module's (`rules::api`).
//!
//! A root created before the API existed has no api.properties: it is then read from the
//! embedded default (as the original gateway recreates a missing default properties file), and
//! `init` writes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ast::{Params, Value};
use super::properties::{self, Entry};
use super::{ConfigError, DEFAULT_API_PROPERTIES, Diagnostics, Root};
use crate::policy::did_you_mean;

/// api.properties sorted into scopes.
#[derive(Debug)]
pub struct ApiFile {
    pub path: PathBuf,
    pub defaults: Params,
    pub handlers: BTreeMap<u32, Params>,
    /// True when the file does not exist and the embedded default was read instead.
    pub embedded: bool,
}

/// Reads api.properties (or, when it does not exist, the embedded default) into scopes.
/// `parameters` are the names a scope may set; every problem goes to `diagnostics`. `None` when
/// the file exists but cannot be read or parsed.
pub fn read_api(
    root: &Root,
    parameters: &[&str],
    diagnostics: &mut Diagnostics,
) -> Option<ApiFile> {
    let path = root.api_properties();
    let embedded = !path.exists();
    let entries = match read_entries(&path, embedded) {
        Ok(entries) => entries,
        Err(e) => {
            diagnostics.push(e);
            return None;
        }
    };
    let mut defaults = Params::default();
    let mut handlers: BTreeMap<u32, Params> = BTreeMap::new();
    for Entry {
        key: written,
        value,
        line,
    } in entries
    {
        let mut err = |message: String| {
            diagnostics.push(ConfigError::at(&path, Some(line), Some(&written), message))
        };
        let (scope, param) = match scope_and_parameter(&written) {
            Ok(split) => split,
            Err(message) => {
                err(message);
                continue;
            }
        };
        if !parameters.contains(&param) {
            err(format!(
                "unknown parameter `{param}`{}; parameters are {}",
                did_you_mean(param, parameters),
                parameters.join(", ")
            ));
            continue;
        }
        let params = match scope {
            None => &mut defaults,
            Some(n) => handlers.entry(n).or_default(),
        };
        if params.first_line == 0 {
            params.first_line = line;
        }
        match params.values.get(param) {
            Some(first) => err(super::ast::set_twice(first.line)),
            None => {
                params.values.insert(
                    param.to_string(),
                    Value {
                        text: value,
                        line,
                        key: written.clone(),
                    },
                );
            }
        }
    }
    Some(ApiFile {
        path,
        defaults,
        handlers,
        embedded,
    })
}

/// The entries of the file at `path`, or of the embedded default when it is `embedded`.
fn read_entries(path: &Path, embedded: bool) -> Result<Vec<Entry>, ConfigError> {
    if embedded {
        properties::parse(DEFAULT_API_PROPERTIES.as_bytes()).map_err(|(line, message)| {
            ConfigError::at(path, line, None, format!("embedded default: {message}"))
        })
    } else {
        properties::read_file(path)
    }
}

/// A key's scope (`None`: `default.*`, else the handler number) and parameter; the message of
/// the problem when the key is malformed.
fn scope_and_parameter(written: &str) -> Result<(Option<u32>, &str), String> {
    if let Some(rest) = written.strip_prefix("default.") {
        Ok((None, rest))
    } else if let Some(rest) = written.strip_prefix("handler.") {
        let (n, param) = super::ast::handler_key(rest)?;
        Ok((Some(n), param))
    } else {
        let known = ["default.requiredRoRoles", "handler.1.filter"];
        Err(format!(
            "unknown key{}; keys are default.<parameter> or handler.<number>.<parameter>",
            did_you_mean(written, &known)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMETERS: &[&str] = &["start", "filter", "requiredRoRoles"];

    #[test]
    fn missing_file_reads_the_embedded_default() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let mut diagnostics = Diagnostics::default();
        let file = read_api(&root, PARAMETERS, &mut diagnostics).unwrap();
        assert!(diagnostics.is_empty(), "{:?}", diagnostics.into_errors());
        assert!(file.embedded);
        assert_eq!(file.handlers.len(), 3);
        assert_eq!(file.handlers[&2].values["filter"].text, "softtokens");
    }

    #[test]
    fn problems_name_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        std::fs::create_dir_all(root.conf()).unwrap();
        std::fs::write(
            root.api_properties(),
            "handler.1.filter = a\nhandler.1.filtre = b\nhandler.x.filter = c\nhandler.1.filter = d\nfoo = 1\n",
        )
        .unwrap();
        let mut diagnostics = Diagnostics::default();
        let file = read_api(&root, PARAMETERS, &mut diagnostics).unwrap();
        assert!(!file.embedded);
        let text = diagnostics.into_errors().to_string();
        assert!(text.contains("api.properties:2: handler.1.filtre: unknown parameter `filtre` (did you mean `filter`?)"), "{text}");
        assert!(
            text.contains("api.properties:3: handler.x.filter"),
            "{text}"
        );
        assert!(
            text.contains("api.properties:4: handler.1.filter: set twice (also at line 1)"),
            "{text}"
        );
        assert!(
            text.contains("api.properties:5: foo: unknown key"),
            "{text}"
        );
    }
}
