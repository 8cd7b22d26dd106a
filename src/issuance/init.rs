//! A new root: the embedded default configuration files (`config`) and the demo CA hierarchy
//! (or an operator's own, with the names and subjects given) with a TLS server certificate
//! (`ca`), written by `init` and by the first `serve`.

use std::sync::Arc;

use crate::ca::{FileSigner, Hierarchy, write_hierarchy, write_self_signed_tls};
use crate::config::{InitError, InitSettings, Root, write_default_files};
use crate::identity::Caller;
use crate::store::Store;

/// What a new root holds that the database must account for once it exists: the TLS server
/// certificate its root CA signed.
#[derive(Debug, Clone)]
pub struct InitWritten {
    /// The root CA's name and its certificate file.
    pub root_ca: String,
    /// The TLS server certificate (DER) that root signed.
    pub tls_certificate: Vec<u8>,
}

impl InitWritten {
    /// Records the TLS server certificate in `store` (sealed like the service's: see
    /// [`super::audit_seal`]) with its `issued` event, so `certs list` shows it and it can be
    /// revoked. Returns its serial.
    pub async fn record(
        &self,
        root: &Root,
        store: &Store,
        caller: &Caller,
    ) -> Result<String, super::IssuanceError> {
        let settings = crate::config::load_gateway(root)
            .map_err(|e| super::IssuanceError::invariant(e.to_string()))?;
        let config = settings
            .cas
            .iter()
            .find(|c| c.name == self.root_ca)
            .ok_or_else(|| super::IssuanceError::invariant("the new root CA is not configured"))?;
        let certificate = crate::ca::read_certificate_file(&config.certificate)?;
        let signer = Arc::new(FileSigner::from_file(&config.key)?);
        let ca = crate::ca::Ca::new(&config.name, certificate, Vec::new(), signer)?;
        super::record_tls_server_certificate(store, &ca, &self.tls_certificate, caller).await
    }
}

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
    write_default_with(root, settings, &Hierarchy::demo()).map(|_| ())
}

/// As [`write_default_for`], with the CA names and subjects of `hierarchy` (an operator's own
/// hierarchy from the first start: `init --root-name … --root-dn … …`). gateway.toml names
/// them, the token procedures use the issuing CA and the officers CA has `role = "officers"`.
/// The TLS server certificate is issued by that root, so nothing of the demo is written.
pub fn write_default_with(
    root: &Root,
    settings: &InitSettings,
    hierarchy: &Hierarchy,
) -> Result<InitWritten, InitError> {
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
    let names = &hierarchy.names;
    write_hierarchy(&data.join("ca"), Some(public_url), hierarchy)?;
    let tls_certificate = write_self_signed_tls(
        &data.join("ca"),
        &data.join("tls"),
        Some(public_url),
        &names.root,
    )?;
    // The configuration last: gateway.toml marks an initialised root.
    write_default_files(root, settings, names)?;
    Ok(InitWritten {
        root_ca: names.root.clone(),
        tls_certificate,
    })
}
