//! `ca import`: an existing CA certificate with its key (a PKCS#8/PKCS#12 file or a `pkcs11:`
//! URI), checked to match, added to gateway.toml as a `[[ca]]` block. When the certificate's
//! own subject does not follow the conventional RDN order, the block gets a `subject_order`
//! that follows it, so the subjects the CA signs keep the order its certificates have.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use super::{CaBlock, check_new_name, gateway_toml, parent_ca, read_gateway_toml};
use crate::ca::{
    Attribute, Ca, FileSigner, Pkcs11Signer, Signer, kept_subject_order, read_certificate_file,
};
use crate::config::Root;
use crate::rules::Configuration;

/// What `ca import` asks for.
#[derive(Debug)]
pub struct ImportCa {
    /// The CA's name in gateway.toml.
    pub name: String,
    /// The CA certificate (PEM or DER).
    pub certificate: PathBuf,
    /// A PKCS#8/PKCS#12 file (relative to the root) or a `pkcs11:` URI.
    pub key: String,
    /// The CA that issued this CA's certificate, if it is configured too.
    pub parent: Option<String>,
    /// For an encrypted key: the environment variable with its passphrase.
    pub key_passphrase_env: Option<String>,
}

/// What `import` did.
#[derive(Debug)]
pub struct ImportedCa {
    /// gateway.toml.
    pub gateway_toml: PathBuf,
    /// The certificate's own subject attributes, in its order.
    pub subject: Vec<Attribute>,
    /// The `subject_order` written (empty: the conventional order, none written).
    pub subject_order: Vec<Attribute>,
}

fn open_signer(
    root: &Root,
    key: &str,
    passphrase_env: Option<&str>,
) -> anyhow::Result<Arc<dyn Signer>> {
    if key.starts_with("pkcs11:") {
        return Ok(Arc::new(Pkcs11Signer::open(key)?));
    }
    let passphrase = match passphrase_env {
        Some(var) => Some(zeroize::Zeroizing::new(std::env::var(var).map_err(
            |_| anyhow::anyhow!("the environment variable {var} is not set"),
        )?)),
        None => None,
    };
    Ok(Arc::new(FileSigner::from_file_with_passphrase(
        &root.resolve(key),
        passphrase.as_deref().map(String::as_str),
    )?))
}

/// `ca import`: the key must match the certificate (and chain to `parent`) before anything is
/// written.
pub fn import(root: &Root, config: &Configuration, ca: &ImportCa) -> anyhow::Result<ImportedCa> {
    check_new_name(config, &ca.name)?;
    let der = read_certificate_file(&ca.certificate)?;
    let signer = open_signer(root, &ca.key, ca.key_passphrase_env.as_deref())?;
    let parent = parent_ca(config, ca.parent.as_deref())?;
    let parents: Vec<Vec<u8>> = parent
        .as_ref()
        .map(|p| p.chain().to_vec())
        .unwrap_or_default();
    let subject_order = kept_subject_order(&der).unwrap_or_default();
    let subject = crate::ca::certificate_subject_attributes(&der);
    Ca::new(&ca.name, der, parents, signer)?;
    let certificate = absolute(&ca.certificate)?;
    let mut document = gateway_toml::parse(&read_gateway_toml(root)?)?;
    gateway_toml::append_ca(
        &mut document,
        &CaBlock {
            name: &ca.name,
            certificate: &certificate,
            key: &ca.key,
            parent: ca.parent.as_deref(),
            passphrase_env: ca.key_passphrase_env.as_deref(),
            role: None,
            subject_order: &subject_order,
        },
    )?;
    let path = root.gateway_toml();
    std::fs::write(&path, document.to_string())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(ImportedCa {
        gateway_toml: path,
        subject,
        subject_order,
    })
}

fn absolute(path: &Path) -> anyhow::Result<String> {
    let p = std::fs::canonicalize(path).with_context(|| format!("reading {}", path.display()))?;
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("{} is not UTF-8", p.display()))
}
