//! The embedded default configuration files: written by `init` and by the first `serve` on an
//! empty root (the demo CA keys beside them are made by `ca`, composed in `issuance::init`).

use std::path::Path;

use super::Root;

/// Default `conf/gateway.toml`.
pub const DEFAULT_GATEWAY_TOML: &str = include_str!("default/gateway.toml");
/// Default `conf/ast.properties`.
pub const DEFAULT_AST_PROPERTIES: &str = include_str!("default/ast.properties");
/// Default `conf/api.properties`.
pub const DEFAULT_API_PROPERTIES: &str = include_str!("default/api.properties");
/// Default `conf/formats/ast-default.format`.
pub const DEFAULT_FORMAT: &str = include_str!("default/ast-default.format");

/// Why the default could not be written.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} already exists; refusing to overwrite an existing configuration")]
    Exists(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ca(#[from] crate::ca::CaError),
    #[error("{0}")]
    Secret(String),
}

fn write_new(path: &Path, text: &str) -> Result<(), InitError> {
    let io = |source| InitError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        .map_err(io)
}

/// Writes the default configuration files and the root's secret key. Refuses when a
/// configuration exists already. gateway.toml is written last: its presence marks an
/// initialised root.
pub fn write_default_files(root: &Root) -> Result<(), InitError> {
    for existing in [
        root.gateway_toml(),
        root.ast_properties(),
        root.api_properties(),
    ] {
        if existing.exists() {
            return Err(InitError::Exists(existing.display().to_string()));
        }
    }
    super::SecretKey::load_or_create(root).map_err(InitError::Secret)?;
    write_new(&root.formats().join("ast-default.format"), DEFAULT_FORMAT)?;
    write_new(&root.ast_properties(), DEFAULT_AST_PROPERTIES)?;
    write_new(&root.api_properties(), DEFAULT_API_PROPERTIES)?;
    write_new(&root.gateway_toml(), DEFAULT_GATEWAY_TOML)?;
    Ok(())
}
