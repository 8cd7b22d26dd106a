//! Format files (`conf/formats/*.format`): each read once, its fields parsed with the format
//! field language of `policy`, shared by every handler that names it.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::{ConfigError, Diagnostics, Root, Value, format_files, read_format};
use crate::policy::{FieldSpec, Origin, did_you_mean, parse_field};

/// The format files the handlers name, by file name.
pub struct Formats {
    root: Root,
    /// `Ok`: the valid fields (a format with problems keeps its valid fields, so they are
    /// checked further too); `Err`: the file is missing.
    loaded: BTreeMap<String, Result<Vec<FieldSpec>, ()>>,
}

impl Formats {
    /// Reads every format in `names` once; problems inside a format file are reported at their
    /// own lines.
    pub fn load<'a>(
        root: &Root,
        names: impl IntoIterator<Item = &'a str>,
        diagnostics: &mut Diagnostics,
    ) -> Formats {
        let mut loaded = BTreeMap::new();
        for name in names {
            if loaded.contains_key(name) || !is_file_name(name) {
                continue;
            }
            let path = root.formats().join(name);
            let fields = if path.is_file() {
                let raw = read_format(&path, diagnostics);
                Ok(parse_fields(&path, &raw, diagnostics)
                    .into_values()
                    .collect())
            } else {
                Err(())
            };
            loaded.insert(name.to_string(), fields);
        }
        Formats {
            root: root.clone(),
            loaded,
        }
    }

    /// The fields of format `name`, or what is wrong with the name (for the handler's line).
    pub fn fields(&self, name: &str) -> Result<&[FieldSpec], String> {
        let formats = self.root.formats();
        if !is_file_name(name) {
            return Err(format!(
                "`{name}` is not a file name; name a file in {}",
                formats.display()
            ));
        }
        match self.loaded.get(name) {
            Some(Ok(fields)) => Ok(fields),
            _ => {
                let available = format_files(&self.root);
                let names: Vec<&str> = available.iter().map(String::as_str).collect();
                Err(format!(
                    "format file `{name}` not found in {}{}; available: {}",
                    formats.display(),
                    did_you_mean(name, &names),
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ))
            }
        }
    }
}

/// A plain file name: no directories, not hidden, not empty.
fn is_file_name(name: &str) -> bool {
    !(name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.'))
}

/// Parses raw `formatFields.<N>` values (of a format file, `default.*` or a handler), reporting
/// each problem at its line.
pub fn parse_fields(
    path: &Path,
    raw: &BTreeMap<u32, Value>,
    diagnostics: &mut Diagnostics,
) -> BTreeMap<u32, FieldSpec> {
    let mut fields = BTreeMap::new();
    for (n, v) in raw {
        let origin = Origin {
            file: path.display().to_string(),
            line: v.line,
            key: v.key.clone(),
        };
        match parse_field(*n, &v.text, origin) {
            Ok(f) => {
                fields.insert(*n, f);
            }
            Err(m) => diagnostics.push(ConfigError::at(path, Some(v.line), Some(&v.key), m)),
        }
    }
    fields
}
