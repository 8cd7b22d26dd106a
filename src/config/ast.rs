//! `conf/ast.properties` and `conf/formats/*.format` as written: keys sorted into scopes
//! (`start`, `default.*`, `handler.<n>.*`) with their lines, `.encrypted` values decrypted,
//! duplicates and unknown keys reported. What the parameters mean is the `rules` module's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::properties::{self, Entry};
use super::secret::SecretKey;
use super::{ConfigError, Diagnostics, Root};
use crate::policy::did_you_mean;

/// One value as written: its text (decrypted for `.encrypted` keys), line and full key.
#[derive(Debug, Clone)]
pub struct Value {
    pub text: String,
    pub line: usize,
    pub key: String,
}

/// Parameters of one scope (`default` or a handler).
#[derive(Debug, Default)]
pub struct Params {
    pub values: BTreeMap<String, Value>,
    /// `formatFields.<N>` by number.
    pub fields: BTreeMap<u32, Value>,
    /// The first line of the scope, for problems about a parameter that is missing.
    pub first_line: usize,
}

/// ast.properties sorted into scopes.
#[derive(Debug)]
pub struct AstFile {
    pub path: PathBuf,
    pub start: Option<Value>,
    pub defaults: Params,
    pub handlers: BTreeMap<u32, Params>,
    /// Decrypted values by line, so that no error message repeats one.
    secrets: Vec<(usize, Zeroizing<String>)>,
}

impl AstFile {
    /// Replaces decrypted values quoted in messages about this file by `[encrypted value]`.
    pub fn redact(&self, errors: &mut [ConfigError]) {
        let file = self.path.display().to_string();
        for e in errors {
            for (line, secret) in &self.secrets {
                if e.line == Some(*line) && !secret.is_empty() && e.file == file {
                    e.message = e.message.replace(secret.as_str(), "[encrypted value]");
                }
            }
        }
    }
}

/// A handler's view of its parameters: its own, else `default.*`.
pub struct HandlerScope<'a> {
    pub number: u32,
    pub params: &'a Params,
    pub defaults: &'a Params,
}

impl HandlerScope<'_> {
    /// The value of `name`: the handler's own, else the default.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.params
            .values
            .get(name)
            .or_else(|| self.defaults.values.get(name))
    }
    /// Line and key to report a problem with `name`: where it is written, else the handler's
    /// first line.
    pub fn place(&self, name: &str) -> (usize, String) {
        match self.get(name) {
            Some(v) => (v.line, v.key.clone()),
            None => (
                self.params.first_line,
                format!("handler.{}.{name}", self.number),
            ),
        }
    }
}

/// Reads ast.properties into scopes. `parameters` are the names a scope may set (besides
/// `formatFields.<N>`); every problem goes to `diagnostics`. `None` when the file cannot be read.
pub fn read_ast(
    root: &Root,
    parameters: &[&str],
    diagnostics: &mut Diagnostics,
) -> Option<AstFile> {
    let path = root.ast_properties();
    let entries = match properties::read_file(&path) {
        Ok(entries) => entries,
        Err(e) => {
            diagnostics.push(e);
            return None;
        }
    };
    let mut defaults = Params::default();
    let mut handlers: BTreeMap<u32, Params> = BTreeMap::new();
    let mut start: Option<Value> = None;
    let mut secret_key: Option<Result<SecretKey, String>> = None;
    let mut secrets: Vec<(usize, Zeroizing<String>)> = Vec::new();

    for Entry {
        key: written,
        value,
        line,
    } in entries
    {
        let mut err = |message: String| {
            diagnostics.push(ConfigError::at(&path, Some(line), Some(&written), message))
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
        if !parameters.contains(&param) {
            err(format!(
                "unknown parameter `{param}`{}; parameters are {}",
                did_you_mean(param, parameters),
                parameters.join(", ")
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

    Some(AstFile {
        path,
        start,
        defaults,
        handlers,
        secrets,
    })
}

/// The `*.format` files under conf/formats/, sorted.
pub fn format_files(root: &Root) -> Vec<String> {
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

/// Reads a format file: only `formatFields.<N>` keys, each once. Returns the fields by number
/// and reports every problem.
pub fn read_format(path: &Path, diagnostics: &mut Diagnostics) -> BTreeMap<u32, Value> {
    let entries = match properties::read_file(path) {
        Ok(entries) => entries,
        Err(e) => {
            diagnostics.push(e);
            return BTreeMap::new();
        }
    };
    let mut fields = BTreeMap::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for Entry { key, value, line } in entries {
        if let Some(first) = seen.insert(key.clone(), line) {
            diagnostics.push(ConfigError::at(
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
            diagnostics.push(ConfigError::at(
                path,
                Some(line),
                Some(&key),
                format!("unknown key{}; a format file holds only formatFields.<number> = <target> = <source>", did_you_mean(&key, &["formatFields.1"])),
            ));
            continue;
        };
        fields.insert(
            n,
            Value {
                text: value,
                line,
                key,
            },
        );
    }
    fields
}
