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

/// Where a key belongs.
enum Place<'k> {
    Start,
    /// `default.<param>` (`None`) or `handler.<n>.<param>`.
    Scope(Option<u32>, &'k str),
}

/// Sorts a key into its place, or says how to write it.
fn place(key: &str) -> Result<Place<'_>, String> {
    if key == "start" || key == "default.start" {
        return Ok(Place::Start);
    }
    if let Some(param) = key.strip_prefix("default.") {
        return Ok(Place::Scope(None, param));
    }
    let Some(rest) = key.strip_prefix("handler.") else {
        let known = ["start", "default.filter", "handler.1.filter"];
        return Err(format!(
            "unknown key{}; keys are start, default.<parameter> or handler.<number>.<parameter>",
            did_you_mean(key, &known)
        ));
    };
    let (n, param) = handler_key(rest)?;
    Ok(Place::Scope(Some(n), param))
}

/// `<number>.<parameter>` after `handler.` (in ast.properties and api.properties).
pub(super) fn handler_key(rest: &str) -> Result<(u32, &str), String> {
    let Some((n, param)) = rest.split_once('.') else {
        return Err(
            "no parameter; write handler.<number>.<parameter>, e.g. handler.1.filter".into(),
        );
    };
    match n.parse::<u32>() {
        Ok(n) => Ok((n, param)),
        Err(_) => Err(format!(
            "`{n}` is not a handler number; write handler.<number>.<parameter>, e.g. handler.1.filter"
        )),
    }
}

/// A key written twice in a properties file (Java keeps the last one without a word).
pub(super) fn set_twice(first: usize) -> String {
    format!("set twice (also at line {first}); keep one line (Java would silently use the last)")
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
    let mut file = AstFile {
        path,
        start: None,
        defaults: Params::default(),
        handlers: BTreeMap::new(),
        secrets: Vec::new(),
    };
    let mut secret_key = None;
    for entry in entries {
        let line = entry.line;
        let written = entry.key.clone();
        if let Err(message) = file.add(root, &mut secret_key, entry, parameters) {
            diagnostics.push(ConfigError::at(
                &file.path,
                Some(line),
                Some(&written),
                message,
            ));
        }
    }
    Some(file)
}

impl AstFile {
    /// Files one entry under its scope, decrypting `.encrypted` values.
    fn add(
        &mut self,
        root: &Root,
        secret_key: &mut Option<Result<SecretKey, String>>,
        entry: Entry,
        parameters: &[&str],
    ) -> Result<(), String> {
        let Entry { key, value, line } = entry;
        let (name, text) = match key.strip_suffix(".encrypted") {
            None => (key.clone(), value),
            Some(base) => {
                let plain = match secret_key.get_or_insert_with(|| SecretKey::load(root)) {
                    Err(m) => Err(m.clone()),
                    Ok(k) => k.decrypt(&value),
                }?;
                let text = plain.to_string();
                self.secrets.push((line, plain));
                (base.to_string(), text)
            }
        };
        let value = Value { text, line, key };
        match place(&name)? {
            Place::Start => match &self.start {
                Some(first) => Err(set_twice(first.line)),
                None => {
                    self.start = Some(value);
                    Ok(())
                }
            },
            Place::Scope(scope, param) => {
                let params = match scope {
                    None => &mut self.defaults,
                    Some(n) => self.handlers.entry(n).or_default(),
                };
                if params.first_line == 0 {
                    params.first_line = line;
                }
                params.set(param, value, parameters)
            }
        }
    }
}

impl Params {
    /// Sets `param` (a known parameter or `formatFields.<N>`) once.
    fn set(&mut self, param: &str, value: Value, parameters: &[&str]) -> Result<(), String> {
        if let Some(n) = param.strip_prefix("formatFields.") {
            // Numbers, not spellings, decide duplicates: formatFields.04 is formatFields.4.
            let n = n.parse::<u32>().map_err(|_| {
                format!(
                    "`{n}` is not a field number; write formatFields.<number>, e.g. formatFields.11"
                )
            })?;
            if let Some(first) = self.fields.get(&n) {
                return Err(set_twice(first.line));
            }
            self.fields.insert(n, value);
            return Ok(());
        }
        if !parameters.contains(&param) {
            return Err(format!(
                "unknown parameter `{param}`{}; parameters are {}",
                did_you_mean(param, parameters),
                parameters.join(", ")
            ));
        }
        if let Some(first) = self.values.get(param) {
            return Err(set_twice(first.line));
        }
        self.values.insert(param.to_string(), value);
        Ok(())
    }
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
                set_twice(first),
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
