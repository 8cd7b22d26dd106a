//! A new root: the embedded default configuration files (`config`) and the demo CA hierarchy
//! with a TLS server certificate (`ca`), written by `init` and by the first `serve`.

use crate::ca::{Hierarchy, write_hierarchy, write_self_signed_tls};
use crate::config::{InitError, InitSettings, Root, write_default_files};

/// Writes the default configuration (listener 127.0.0.1:8080, public URL
/// http://127.0.0.1:8080), the demo CA hierarchy and a TLS server certificate. Refuses when any
/// of it exists already.
pub fn write_default(root: &Root) -> Result<(), InitError> {
    write_default_for(root, &InitSettings::embedded())
}

/// Writes the default configuration with `settings` as `[server] http` and `public_url`, the
/// demo CA hierarchy (published under that URL) and a TLS server certificate. Refuses when any
/// of it exists already.
pub fn write_default_for(root: &Root, settings: &InitSettings) -> Result<(), InitError> {
    write_default_with(root, settings, &Hierarchy::demo())
}

/// As [`write_default_for`], with the CA subjects of `names` (an operator's own hierarchy from
/// the first start: `init --root-dn … --issuing-dn … --officers-dn …`). The TLS server
/// certificate is then issued by that root, so nothing of the demo is written.
pub fn write_default_with(
    root: &Root,
    settings: &InitSettings,
    names: &Hierarchy,
) -> Result<(), InitError> {
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
    let _ = crate::private_files::set_private(&data);
    let public_url = settings.public_url.trim_end_matches('/');
    write_hierarchy(&data.join("ca"), Some(public_url), names)?;
    write_self_signed_tls(&data.join("ca"), &data.join("tls"), Some(public_url))?;
    // The configuration last: gateway.toml marks an initialised root.
    write_default_files(root, settings)
}
