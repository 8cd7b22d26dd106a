//! A new root: the embedded default configuration files (`config`) and the demo CA hierarchy
//! with a TLS server certificate (`ca`), written by `init` and by the first `serve`.

use crate::ca::{write_demo_hierarchy, write_self_signed_tls};
use crate::config::{InitError, Root, write_default_files};

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
    // The configuration last: gateway.toml marks an initialised root.
    write_default_files(root)
}
