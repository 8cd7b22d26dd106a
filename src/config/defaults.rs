//! The embedded default configuration: written by `init` and by the first `serve` on
//! an empty root.

use std::path::Path;

use super::Root;
use crate::ca::{CaError, write_demo_hierarchy, write_self_signed_tls};

/// Default `conf/gateway.toml`.
pub const DEFAULT_GATEWAY_TOML: &str = include_str!("default/gateway.toml");
/// Default `conf/ast.properties`.
pub const DEFAULT_AST_PROPERTIES: &str = include_str!("default/ast.properties");
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
    Ca(#[from] CaError),
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

/// Writes the default configuration, the demo CA hierarchy and a TLS server certificate.
/// Refuses when any of it exists already.
pub fn write_default(root: &Root) -> Result<(), InitError> {
    for existing in [
        root.gateway_toml(),
        root.ast_properties(),
        root.data().join("ca"),
    ] {
        if existing.exists() {
            return Err(InitError::Exists(existing.display().to_string()));
        }
    }
    let data = root.data();
    std::fs::create_dir_all(&data).map_err(|source| InitError::Io {
        path: data.display().to_string(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700));
    }
    write_demo_hierarchy(&data.join("ca"))?;
    write_self_signed_tls(&data.join("ca"), &data.join("tls"))?;
    super::SecretKey::load_or_create(root).map_err(InitError::Secret)?;
    write_new(&root.formats().join("ast-default.format"), DEFAULT_FORMAT)?;
    write_new(&root.ast_properties(), DEFAULT_AST_PROPERTIES)?;
    // gateway.toml last: its presence marks an initialised root.
    write_new(&root.gateway_toml(), DEFAULT_GATEWAY_TOML)?;
    Ok(())
}
