//! CA administration, as `ca create`, `ca import` and the API may use it: a new CA (key in a
//! file or a PKCS#11 token, certificate signed by a parent or self-signed), an existing one
//! imported (`import`), and a rollover (`rollover`, `client_trust`) — each checked the way
//! `serve` will load it, then added to gateway.toml through the format-preserving editor
//! (`gateway_toml`). If the edited configuration does not load, gateway.toml is put back.

mod client_trust;
mod gateway_toml;
mod import;
mod rollover;

pub use client_trust::ClientTrust;
pub use gateway_toml::{CaBlock, toml_string};
pub use import::{ImportCa, ImportedCa, import};
pub use rollover::{CaReference, Rollover, plan_rollover};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use toml_edit::DocumentMut;

use crate::ca::{
    Ca, CaSubject, FileSigner, Pkcs11KeyKind, Pkcs11Signer, PublishedUrls, Signer,
    issue_ca_certificate_for, pem_certificate, write_private_key_pem,
};
use crate::config::Root;
use crate::rules::Configuration;
use crate::token::{KeyType, generate_key};

/// What `ca create` asks for.
#[derive(Debug)]
pub struct NewCa {
    /// The CA's name in gateway.toml.
    pub name: String,
    /// A key file relative to the root, or a `pkcs11:` URI; default data/ca/NAME.key.
    pub key: Option<String>,
    pub key_type: KeyType,
    /// The signing CA; `None`: self-signed (with `replaces`: the replaced CA's parent).
    pub parent: Option<String>,
    /// Rollover: the CA whose token procedures (and officers role) move to the new one.
    pub replaces: Option<String>,
    pub subject: CaSubject,
    pub validity: Duration,
}

/// What `create` did.
#[derive(Debug)]
pub struct CreatedCa {
    /// The new certificate file.
    pub certificate: PathBuf,
    /// gateway.toml.
    pub gateway_toml: PathBuf,
    pub rollover: Option<Rollover>,
    /// The officers CA was replaced: the HTTPS listener trusts the officers of both.
    pub trust: Option<ClientTrust>,
}

/// gateway.toml as written.
fn read_gateway_toml(root: &Root) -> anyhow::Result<String> {
    let path = root.gateway_toml();
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

fn check_new_name(config: &Configuration, name: &str) -> anyhow::Result<()> {
    if config.settings.cas.iter().any(|c| c.name == name) {
        anyhow::bail!("a CA named `{name}` is already configured");
    }
    if !crate::ca::is_ca_name(name) {
        anyhow::bail!(
            "a CA name may contain only letters, digits, `-` and `_` (it is part of the CRL URL)"
        );
    }
    Ok(())
}

fn parent_ca(config: &Configuration, parent: Option<&str>) -> anyhow::Result<Option<Arc<Ca>>> {
    let Some(parent) = parent else {
        return Ok(None);
    };
    let cas = super::load_cas(&config.settings).map_err(|e| anyhow::anyhow!("{e}"))?;
    cas.get(parent)
        .cloned()
        .map(Some)
        .ok_or_else(|| anyhow::anyhow!("no CA named `{parent}` is configured"))
}

/// `ca create`: plans the rollover (refused before any key is made), makes the key and the
/// certificate, and writes gateway.toml.
pub fn create(root: &Root, config: &Configuration, mut new: NewCa) -> anyhow::Result<CreatedCa> {
    check_new_name(config, &new.name)?;
    let mut rollover: Option<Rollover> = match &new.replaces {
        Some(old) => Some(plan_rollover(root, config, old, &new.name)?),
        None => None,
    };
    if new.parent.is_none() {
        new.parent = rollover.as_ref().and_then(|r| r.parent.clone());
    }
    let key_location = new
        .key
        .clone()
        .unwrap_or_else(|| format!("data/ca/{}.key", new.name));
    let made = make_ca(root, config, &new, &key_location)?;
    let text = read_gateway_toml(root)?;
    let mut document = match &rollover {
        Some(r) => r.document.clone(),
        None => gateway_toml::parse(&text)?,
    };
    let trust = match rollover.as_mut().filter(|r| r.officers) {
        Some(r) => Some(client_trust::trust_both(
            root,
            config,
            &r.old,
            &made.der,
            &mut document,
            &text,
        )?),
        None => None,
    };
    let block = CaBlock {
        name: &new.name,
        certificate: &made.cert_rel,
        key: &key_location,
        parent: new.parent.as_deref(),
        passphrase_env: None,
        role: rollover.as_ref().filter(|r| r.officers).map(|_| "officers"),
        subject_order: rollover.as_ref().map_or(&[], |r| &r.subject_order),
    };
    let gateway_toml = write_with_block(root, document, &text, &block, &made.cert_path)?;
    Ok(CreatedCa {
        certificate: made.cert_path,
        gateway_toml,
        rollover,
        trust,
    })
}

/// A new CA certificate, written to `data/ca/NAME.pem`.
struct MadeCa {
    der: Vec<u8>,
    /// As gateway.toml names it (relative to the root).
    cert_rel: String,
    cert_path: PathBuf,
}

/// Makes the key (file or token) and the certificate, signed by the parent (or self-signed),
/// checks the key matches it as `serve` will, and writes the certificate.
fn make_ca(
    root: &Root,
    config: &Configuration,
    new: &NewCa,
    key_location: &str,
) -> anyhow::Result<MadeCa> {
    let parent = parent_ca(config, new.parent.as_deref())?;
    if let Some(p) = parent.as_ref().filter(|p| path_len_zero(p)) {
        anyhow::bail!(
            "CA `{}` has pathLenConstraint 0: it may not sign another CA; choose its parent",
            p.name()
        );
    }
    let cert_rel = format!("data/ca/{}.pem", new.name);
    let cert_path = root.resolve(&cert_rel);
    if cert_path.exists() {
        anyhow::bail!("{} exists already", cert_path.display());
    }
    let signer = new_signer(root, key_location, new.key_type)?;
    // Below a parent, the certificate points at the parent's CRL, certificate and OCSP.
    let published = new.parent.as_ref().map(|p| {
        PublishedUrls::for_parent_ca(
            &config.settings.server.public_url,
            p,
            config.settings.ocsp.enabled,
        )
    });
    let issued = issue_ca_certificate_for(
        parent.as_deref(),
        signer.as_ref(),
        &new.subject,
        new.validity,
        published,
    )?;
    // Re-check the way `serve` will: the key must match the certificate.
    let parents: Vec<Vec<u8>> = parent
        .as_ref()
        .map(|p| p.chain().to_vec())
        .unwrap_or_default();
    Ca::new(&new.name, issued.der.clone(), parents, signer)?;
    if let Some(dir) = cert_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&cert_path, pem_certificate(&issued.der))
        .with_context(|| format!("writing {}", cert_path.display()))?;
    Ok(MadeCa {
        der: issued.der,
        cert_rel,
        cert_path,
    })
}

/// The new CA's key pair: generated in the PKCS#11 token of a `pkcs11:` location, else written
/// to a new key file.
fn new_signer(
    root: &Root,
    key_location: &str,
    key_type: KeyType,
) -> anyhow::Result<Arc<dyn Signer>> {
    let signer: Arc<dyn Signer> = if key_location.starts_with("pkcs11:") {
        let kind = match key_type {
            KeyType::Rsa2048 => Pkcs11KeyKind::Rsa(2048),
            KeyType::Rsa3072 => Pkcs11KeyKind::Rsa(3072),
            KeyType::Rsa4096 => Pkcs11KeyKind::Rsa(4096),
            KeyType::EcP256 => Pkcs11KeyKind::EcP256,
            KeyType::EcP384 => Pkcs11KeyKind::EcP384,
            KeyType::Ed25519 => {
                anyhow::bail!("ed25519 CA keys in PKCS#11 tokens are not supported; use ec-p256")
            }
        };
        Arc::new(Pkcs11Signer::generate(key_location, kind)?)
    } else {
        let key_path = root.resolve(key_location);
        let key = generate_key(key_type)?;
        write_private_key_pem(&key_path, key.pkcs8_der())
            .with_context(|| format!("writing {}", key_path.display()))?;
        Arc::new(FileSigner::from_file(&key_path)?)
    };
    Ok(signer)
}

/// Writes `document` with `block` added as the last `[[ca]]`. The edited file must load as
/// before; otherwise `before` is put back. Returns the path of gateway.toml.
fn write_with_block(
    root: &Root,
    mut document: DocumentMut,
    before: &str,
    block: &CaBlock<'_>,
    written: &Path,
) -> anyhow::Result<PathBuf> {
    let toml_path = root.gateway_toml();
    gateway_toml::append_ca(&mut document, block)?;
    std::fs::write(&toml_path, document.to_string())
        .with_context(|| format!("writing {}", toml_path.display()))?;
    if let Err(e) = crate::rules::load(root) {
        std::fs::write(&toml_path, before)
            .with_context(|| format!("restoring {}", toml_path.display()))?;
        anyhow::bail!(
            "{} was restored: the edited configuration did not load (the configuration has \
             problems:\n{e}); CA files written: {}",
            toml_path.display(),
            written.display()
        );
    }
    Ok(toml_path)
}

/// True when the CA certificate's basicConstraints forbid CAs below it.
fn path_len_zero(ca: &Ca) -> bool {
    use der::Decode;
    ca.certificate()
        .tbs_certificate()
        .extensions()
        .into_iter()
        .flatten()
        .filter(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS)
        .filter_map(|e| {
            x509_cert::ext::pkix::BasicConstraints::from_der(e.extn_value.as_bytes()).ok()
        })
        .any(|bc| bc.path_len_constraint == Some(0))
}
