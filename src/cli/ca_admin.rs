//! `ca create` (new CA key in a file or a PKCS#11 token, certificate signed by a parent) and
//! the `[[ca]]` block it and `ca import` (`ca_admin/import.rs`) append to gateway.toml, once the
//! key is known to match the certificate.
//!
//! `ca create NEW --replaces OLD` is a rollover, planned in `ca_rollover` before any key is
//! made; `create` writes the edited gateway.toml and prints each edit. Replacing the officers
//! CA also makes the HTTPS listener trust both (`ca_client_trust`).

mod import;

pub use import::ImportArgs;
pub(super) use import::import;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use super::ca_rollover::{Rollover, plan_rollover};
use super::output::outln;
use crate::ca::{
    Attribute, Ca, FileSigner, Pkcs11KeyKind, Pkcs11Signer, PublishedUrls, Signer,
    issue_ca_certificate_for, pem_certificate, write_private_key_pem,
};
use crate::config::{Root, parse_duration};
use crate::token::{KeyType, generate_key};

/// `ca create`
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The CA's name in gateway.toml.
    pub name: String,
    /// Where the key goes: a new PKCS#8 file (relative to the root; default
    /// data/ca/NAME.key), or a `pkcs11:` URI (token, object label, module-path, PIN) where the
    /// key pair is generated.
    #[arg(long)]
    pub key: Option<String>,
    /// rsa-2048, rsa-3072, rsa-4096, ec-p256 or ec-p384 (ed25519 for file keys only).
    #[arg(long, default_value = "ec-p256")]
    pub key_type: String,
    /// The CA that signs the new certificate; without it the CA is a self-signed root (with
    /// --replaces: the replaced CA's parent).
    #[arg(long)]
    pub parent: Option<String>,
    /// Rollover: the token procedures that use this CA move to the new one (gateway.toml is
    /// edited in place, comments kept); replacing the officers CA moves its role = "officers"
    /// and adds the new CA to the HTTPS listener's client_ca (data/tls/client-ca.pem). The old
    /// CA stays configured to sign CRLs and answer OCSP (and, as officers CA, to let its
    /// officers in) until its certificates expire. Restart the service afterwards.
    #[arg(long, value_name = "OLD")]
    pub replaces: Option<String>,
    /// Subject common name.
    #[arg(long, required_unless_present = "subject")]
    pub common_name: Option<String>,
    /// Subject organization.
    #[arg(long, conflicts_with = "subject")]
    pub organization: Option<String>,
    /// Subject country (two letters).
    #[arg(long, conflicts_with = "subject")]
    pub country: Option<String>,
    /// Subject organizational unit (repeatable, in order).
    #[arg(long, conflicts_with = "subject")]
    pub organizational_unit: Vec<String>,
    /// The whole subject instead, most significant first: "C=SE, O=Example AB, OU=PKI,
    /// CN=Example Issuing CA" (C, ST, L, O, OU, CN, serialNumber, …; encoded in this order).
    #[arg(long, value_name = "DN", conflicts_with = "common_name")]
    pub subject: Option<String>,
    /// Lifetime (e.g. 10y).
    #[arg(long, default_value = "10y")]
    pub validity: String,
}

pub(super) fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// A `[[ca]]` block to append to gateway.toml.
pub(super) struct CaBlock<'a> {
    pub name: &'a str,
    pub certificate: &'a str,
    pub key: &'a str,
    pub parent: Option<&'a str>,
    pub passphrase_env: Option<&'a str>,
    /// `role = "officers"`.
    pub role: Option<&'a str>,
    /// `subject_order = [...]` (empty: none written).
    pub subject_order: &'a [Attribute],
}

impl CaBlock<'_> {
    fn text(&self) -> String {
        let mut block = format!(
            "\n[[ca]]\nname = {}\ncertificate = {}\nkey = {}\n",
            toml_string(self.name),
            toml_string(self.certificate),
            toml_string(self.key)
        );
        if let Some(p) = self.parent {
            block += &format!("parent = {}\n", toml_string(p));
        }
        if let Some(v) = self.passphrase_env {
            block += &format!("key_passphrase_env = {}\n", toml_string(v));
        }
        if let Some(role) = self.role {
            block += "# It issues the officer client certificates (docs/configuration.md).\n";
            block += &format!("role = {}\n", toml_string(role));
        }
        if !self.subject_order.is_empty() {
            let names: Vec<String> = self
                .subject_order
                .iter()
                .map(|a| toml_string(a.name()))
                .collect();
            block +=
                "# The RDN order of the subjects it signs when a token procedure certificate\n";
            block += "# lists no `subject` (kept from the CA certificate's own subject).\n";
            block += &format!("subject_order = [{}]\n", names.join(", "));
        }
        block
    }
}

/// Appends `block` to gateway.toml.
fn append_ca(root: &Root, block: &CaBlock<'_>) -> anyhow::Result<()> {
    let path = root.gateway_toml();
    let mut text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    // Append after the existing [[ca]] blocks would need a TOML editor; at the end of the
    // file is equally valid TOML (arrays of tables may be split).
    text += &block.text();
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn check_new_name(config: &crate::rules::Configuration, name: &str) -> anyhow::Result<()> {
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

fn parent_ca(
    config: &crate::rules::Configuration,
    parent: Option<&str>,
) -> anyhow::Result<Option<Arc<Ca>>> {
    let Some(parent) = parent else {
        return Ok(None);
    };
    let cas = crate::issuance::load_cas(&config.settings).map_err(|e| anyhow::anyhow!("{e}"))?;
    cas.get(parent)
        .cloned()
        .map(Some)
        .ok_or_else(|| anyhow::anyhow!("no CA named `{parent}` is configured"))
}

pub(super) fn create(root: &Root, mut args: CreateArgs) -> anyhow::Result<ExitCode> {
    let config = super::load_config(root)?;
    check_new_name(&config, &args.name)?;
    // A rollover is planned (and refused) before any key is made.
    let mut rollover: Option<Rollover> = match &args.replaces {
        Some(old) => Some(plan_rollover(root, &config, old, &args.name)?),
        None => None,
    };
    if args.parent.is_none() {
        args.parent = rollover.as_ref().and_then(|r| r.parent.clone());
    }
    let key_location = args
        .key
        .clone()
        .unwrap_or_else(|| format!("data/ca/{}.key", args.name));
    let key_type: KeyType = args
        .key_type
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    let made = make_ca(root, &config, &args, &key_location, key_type)?;
    // The officers CA replaced: the HTTPS listener trusts the officers of both.
    let trust = match rollover.as_mut().filter(|r| r.officers) {
        Some(r) => Some(super::ca_client_trust::trust_both(
            root,
            &config,
            &r.old,
            &made.der,
            &mut r.text,
        )?),
        None => None,
    };
    let block = CaBlock {
        name: &args.name,
        certificate: &made.cert_rel,
        key: &key_location,
        parent: args.parent.as_deref(),
        passphrase_env: None,
        role: rollover.as_ref().filter(|r| r.officers).map(|_| "officers"),
        subject_order: rollover.as_ref().map_or(&[], |r| &r.subject_order),
    };
    let edited = rollover.as_ref().map(|r| r.text.as_str());
    let toml_path = add_to_gateway_toml(root, &block, edited, &made.cert_path)?;
    outln!(
        "created CA `{}` ({}), certificate {}, added to {}",
        args.name,
        key_type,
        made.cert_path.display(),
        toml_path.display()
    );
    if let Some(r) = rollover {
        r.print(&args.name, &toml_path, trust.as_ref())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A new CA certificate, written to `data/ca/NAME.pem`.
struct MadeCa {
    der: Vec<u8>,
    /// As gateway.toml names it (relative to the root).
    cert_rel: String,
    cert_path: PathBuf,
}

/// Makes the key (file or token) and the certificate of `ca create`, signed by the parent (or
/// self-signed), checks the key matches it as `serve` will, and writes the certificate.
fn make_ca(
    root: &Root,
    config: &crate::rules::Configuration,
    args: &CreateArgs,
    key_location: &str,
    key_type: KeyType,
) -> anyhow::Result<MadeCa> {
    let validity = parse_duration(&args.validity).map_err(|e| anyhow::anyhow!(e))?;
    let subject = super::init::ca_subject(args)?;
    let parent = parent_ca(config, args.parent.as_deref())?;
    if let Some(p) = parent.as_ref().filter(|p| path_len_zero(p)) {
        anyhow::bail!(
            "CA `{}` has pathLenConstraint 0: it may not sign another CA; choose its parent",
            p.name()
        );
    }
    let cert_rel = format!("data/ca/{}.pem", args.name);
    let cert_path = root.resolve(&cert_rel);
    if cert_path.exists() {
        anyhow::bail!("{} exists already", cert_path.display());
    }
    let signer = new_signer(root, key_location, key_type)?;
    // Below a parent, the certificate points at the parent's CRL, certificate and OCSP.
    let published = args.parent.as_ref().map(|p| {
        PublishedUrls::for_parent_ca(
            &config.settings.server.public_url,
            p,
            config.settings.ocsp.enabled,
        )
    });
    let issued = issue_ca_certificate_for(
        parent.as_deref(),
        signer.as_ref(),
        &subject,
        validity,
        published,
    )?;
    // Re-check the way `serve` will: the key must match the certificate.
    let parents: Vec<Vec<u8>> = parent
        .as_ref()
        .map(|p| p.chain().to_vec())
        .unwrap_or_default();
    Ca::new(&args.name, issued.der.clone(), parents, signer)?;
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

/// Writes a rollover's `edited` gateway.toml, if any, and appends the new CA's `[[ca]]` block.
/// Returns the path of gateway.toml.
fn add_to_gateway_toml(
    root: &Root,
    block: &CaBlock<'_>,
    edited: Option<&str>,
    cert_path: &Path,
) -> anyhow::Result<PathBuf> {
    let toml_path = root.gateway_toml();
    let before = std::fs::read_to_string(&toml_path)
        .with_context(|| format!("reading {}", toml_path.display()))?;
    if let Some(text) = edited {
        std::fs::write(&toml_path, text)
            .with_context(|| format!("writing {}", toml_path.display()))?;
    }
    append_ca(root, block)?;
    // The edited file must load as before; otherwise it is put back as it was.
    if let Err(e) = super::load_config(root) {
        std::fs::write(&toml_path, &before)
            .with_context(|| format!("restoring {}", toml_path.display()))?;
        anyhow::bail!(
            "{} was restored: the edited configuration did not load ({e}); CA files written: {}",
            toml_path.display(),
            cert_path.display()
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
