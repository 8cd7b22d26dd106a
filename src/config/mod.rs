//! Configuration: `conf/gateway.toml` (the service), `conf/ast.properties` (handlers, in the
//! original product's syntax) and `conf/formats/*.format`.
//!
//! Owns: reading and validating every configuration file, the embedded default, the root's
//! secret key for `<param>.encrypted` values (`secret`). Must not: open listeners, databases
//! or CA keys. Invariants: all problems are reported at once, each with file,
//! line (when it has one) and key; the resolved types are what the rest of the code uses (no
//! raw file structs escape); there is no global configuration.

mod ast;
mod defaults;
mod gateway;
pub mod properties;
mod secret;

use std::fmt;
use std::path::{Path, PathBuf};

pub use ast::{AstConfig, Handler, PARAMETERS, RequiredRoles, load_ast};
pub use defaults::{
    DEFAULT_AST_PROPERTIES, DEFAULT_FORMAT, DEFAULT_GATEWAY_TOML, InitError, InitSettings,
    write_default, write_default_for,
};
pub use gateway::{
    CaConfig, CertificateTemplate, GatewayConfig, Limits, ServerConfig, TokenProcedure,
    check_public_url, load_gateway, parse_duration, public_url_from_listener, public_url_warnings,
};
pub use secret::SecretKey;

/// The root directory and the well-known paths below it (SPEC §2).
#[derive(Debug, Clone)]
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
    /// `conf/formats/`.
    pub fn formats(&self) -> PathBuf {
        self.conf().join("formats")
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

/// The whole configuration of a root.
#[derive(Debug, Clone)]
pub struct Config {
    pub root: Root,
    pub gateway: GatewayConfig,
    pub ast: AstConfig,
}

/// Loads and cross-checks gateway.toml, ast.properties and the formats it names, reporting
/// every problem at once.
pub fn load(root: &Root) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let gateway = match load_gateway(root) {
        Ok(g) => Some(g),
        Err(mut e) => {
            errors.append(&mut e.0);
            None
        }
    };
    let ast = match load_ast(root, gateway.as_ref()) {
        Ok(a) => Some(a),
        Err(mut e) => {
            errors.append(&mut e.0);
            None
        }
    };
    match (gateway, ast) {
        (Some(gateway), Some(ast)) if errors.is_empty() => Ok(Config {
            root: root.clone(),
            gateway,
            ast,
        }),
        _ => Err(ConfigErrors(errors)),
    }
}
