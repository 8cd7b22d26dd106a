//! Configuration files: `conf/gateway.toml` (TOML, with spans for line numbers),
//! `conf/ast.properties` and `conf/formats/*.format` (Java properties with line numbers), the
//! embedded default files, the root's secret key for `<param>.encrypted` values, and the EST
//! key-encryption key files (`est_kek`).
//!
//! Owns: file syntax, and the service *settings* (listeners, TLS, trust, database, limits, CAs,
//! CRL, OCSP). Must not: give meaning to handlers, formats or token procedures (that is the
//! `rules` module, built from the raw structs here); open listeners, databases or CA keys.
//! Invariants: every problem is reported at once, with file, line (when it has one) and key,
//! through one `Diagnostics` collector; there is no global configuration.

mod api_file;
mod ast;
mod defaults;
mod est_kek;
mod page;
pub mod properties;
mod public_url;
mod secret;
mod settings;
mod toml_file;

use std::fmt;
use std::path::{Path, PathBuf};

pub use api_file::{ApiFile, read_api};
pub use ast::{AstFile, HandlerScope, Params, Value, format_files, read_ast, read_format};
pub use defaults::{
    DEFAULT_API_PROPERTIES, DEFAULT_AST_PROPERTIES, DEFAULT_FORMAT, DEFAULT_GATEWAY_TOML,
    InitError, InitSettings, write_default_files,
};
pub use est_kek::{KeyEncryptionKey, add_kek, is_kek_id, read_kek_file};
pub use page::{
    MAX_PAGE_TEMPLATE_BYTES, PAGE_PLACEHOLDERS, PAGE_SECTIONS, PagePiece, PageTemplate,
    PageTemplates, csp_hash, load_page_templates,
};
pub use public_url::{check_public_url, public_url_from_listener, public_url_warnings};
pub use secret::SecretKey;
pub use settings::{
    ApiSettings, AuditSettings, CaConfig, CaRole, CrlConfig, GatewayConfig, Limits, LogFormat,
    MAX_KEY_POOL_SIZE, MAX_WRITE_BATCH, OFFICERS_CA_NAME, OcspConfig, RateLimits, ServerConfig,
    SignedWrites, UnknownSerials, default_key_pool_size, load_gateway, parse_duration,
    peek_log_format, resolve_settings,
};
pub use toml_file::{
    CertificateFile, GatewayFile, TokenProcedureFile, TomlText, read_gateway_file,
};

/// The root directory and the well-known paths below it (`conf/`, `data/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    /// A root at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Root { dir: dir.into() }
    }
    /// The root directory itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// `conf/`.
    pub fn conf(&self) -> PathBuf {
        self.dir.join("conf")
    }
    /// `data/`.
    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }
    /// `conf/gateway.toml`.
    pub fn gateway_toml(&self) -> PathBuf {
        self.conf().join("gateway.toml")
    }
    /// `conf/ast.properties`.
    pub fn ast_properties(&self) -> PathBuf {
        self.conf().join("ast.properties")
    }
    /// `conf/api.properties` (REST API handlers).
    pub fn api_properties(&self) -> PathBuf {
        self.conf().join("api.properties")
    }
    /// `conf/formats/`.
    pub fn formats(&self) -> PathBuf {
        self.conf().join("formats")
    }
    /// `conf/pages/`: PIN page templates.
    pub fn pages(&self) -> PathBuf {
        self.conf().join("pages")
    }
    /// A configured path: absolute as given, relative to the root otherwise.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }
    /// True when the root has a configuration.
    pub fn is_initialised(&self) -> bool {
        self.gateway_toml().exists()
    }
}

/// One configuration problem: where, which key, what is wrong and what would be right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl ConfigError {
    /// A problem in `file` at `line`, with `key`.
    pub fn at(
        file: &Path,
        line: Option<usize>,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            file: file.display().to_string(),
            line,
            key: key.map(str::to_string),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects every problem of a load, so that all are reported at once.
#[derive(Debug, Default)]
pub struct Diagnostics {
    errors: Vec<ConfigError>,
}

impl Diagnostics {
    /// Records one problem.
    pub fn push(&mut self, error: ConfigError) {
        self.errors.push(error);
    }
    /// Records several problems.
    pub fn extend(&mut self, errors: ConfigErrors) {
        self.errors.extend(errors.0);
    }
    /// The value of a step, recording its problems; `None` when it failed.
    pub fn take<T>(&mut self, result: Result<T, ConfigErrors>) -> Option<T> {
        result.map_err(|e| self.extend(e)).ok()
    }
    /// True when no problem was recorded.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
    /// `value` when nothing was recorded, else every problem, sorted by file and line.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(self.into_errors())
        }
    }
    /// Every problem recorded, sorted by file and line, duplicates removed.
    pub fn into_errors(mut self) -> ConfigErrors {
        self.errors.sort_by(|a, b| {
            (&a.file, a.line, &a.key, &a.message).cmp(&(&b.file, b.line, &b.key, &b.message))
        });
        self.errors.dedup();
        ConfigErrors(self.errors)
    }
    /// The problems recorded so far, to edit them in place.
    pub fn errors_mut(&mut self) -> &mut [ConfigError] {
        &mut self.errors
    }
}
