//! `ca create` (new CA key in a file or a PKCS#11 token, certificate signed by a parent) and
//! `ca import` (bring an existing CA certificate + key file or `pkcs11:` URI). Both check that
//! the key matches the certificate and append a `[[ca]]` block to gateway.toml.
//!
//! `ca create NEW --replaces OLD` is a rollover, planned in `ca_rollover` before any key is
//! made; `create` writes the edited gateway.toml and prints each edit.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use super::ca_rollover::{CaReference, plan_rollover};
use super::output::outln;
use crate::ca::{
    Ca, FileSigner, Pkcs11KeyKind, Pkcs11Signer, PublishedUrls, Signer, issue_ca_certificate_for,
    pem_certificate, read_certificate_file, write_private_key_pem,
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
    /// edited in place, comments kept); the old CA stays configured to sign CRLs and answer
    /// OCSP until its certificates expire. Restart the service afterwards.
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

/// `ca import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The CA's name in gateway.toml.
    pub name: String,
    /// The CA certificate (PEM or DER).
    #[arg(long)]
    pub certificate: PathBuf,
    /// The key: a PKCS#8 file (mode 0600) or a `pkcs11:` URI.
    #[arg(long)]
    pub key: String,
    /// The CA that issued this CA's certificate, if it is configured too.
    #[arg(long)]
    pub parent: Option<String>,
    /// For an encrypted PKCS#8 or PKCS#12 key: the environment variable with its passphrase.
    #[arg(long)]
    pub key_passphrase_env: Option<String>,
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

pub(super) fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn append_ca(
    root: &Root,
    name: &str,
    certificate: &str,
    key: &str,
    parent: Option<&str>,
    passphrase_env: Option<&str>,
) -> anyhow::Result<()> {
    let mut block = format!(
        "\n[[ca]]\nname = {}\ncertificate = {}\nkey = {}\n",
        toml_string(name),
        toml_string(certificate),
        toml_string(key)
    );
    if let Some(p) = parent {
        block += &format!("parent = {}\n", toml_string(p));
    }
    if let Some(v) = passphrase_env {
        block += &format!("key_passphrase_env = {}\n", toml_string(v));
    }
    let path = root.gateway_toml();
    let mut text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    // Append after the existing [[ca]] blocks would need a TOML editor; at the end of the
    // file is equally valid TOML (arrays of tables may be split).
    text += &block;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn check_new_name(config: &crate::rules::Configuration, name: &str) -> anyhow::Result<()> {
    if config.settings.cas.iter().any(|c| c.name == name) {
        anyhow::bail!("a CA named `{name}` is already configured");
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
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
    let rollover = match args.replaces.clone() {
        Some(old) => {
            let (parent, text, references) = plan_rollover(root, &config, &old, &args.name)?;
            if args.parent.is_none() {
                args.parent = parent;
            }
            Some((old, text, references))
        }
        None => None,
    };
    let key_location = args
        .key
        .clone()
        .unwrap_or_else(|| format!("data/ca/{}.key", args.name));
    let key_type: KeyType = args
        .key_type
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    let validity = parse_duration(&args.validity).map_err(|e| anyhow::anyhow!(e))?;
    let subject = super::init::ca_subject(&args)?;
    let parent = parent_ca(&config, args.parent.as_deref())?;
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
    let signer = new_signer(root, &key_location, key_type)?;
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
    let edited = rollover.as_ref().map(|(_, text, _)| text.as_str());
    let toml_path = add_to_gateway_toml(root, &args, &cert_rel, &key_location, edited, &cert_path)?;
    outln!(
        "created CA `{}` ({}), certificate {}, added to {}",
        args.name,
        key_type,
        cert_path.display(),
        toml_path.display()
    );
    if let Some((old, _, references)) = rollover {
        print_rollover(&old, &args.name, &references, &toml_path)?;
    }
    Ok(ExitCode::SUCCESS)
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
    args: &CreateArgs,
    cert_rel: &str,
    key_location: &str,
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
    append_ca(
        root,
        &args.name,
        cert_rel,
        key_location,
        args.parent.as_deref(),
        None,
    )?;
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

/// What a rollover changed in gateway.toml, and what the operator does next.
fn print_rollover(
    old: &str,
    new: &str,
    references: &[CaReference],
    toml_path: &Path,
) -> anyhow::Result<()> {
    outln!(
        "token procedures moved from `{old}` to `{}` ({}):",
        new,
        toml_path.display()
    );
    for r in references {
        outln!(
            "  line {}: token procedure `{}`, certificate `{}`: ca = {} -> ca = {}",
            r.line,
            r.procedure,
            r.purpose,
            toml_string(old),
            toml_string(new)
        );
    }
    outln!(
        "`{old}` stays configured: it keeps signing CRLs and answering OCSP for the \
         certificates it issued until the last one expires (`ast-gateway ca list` shows it \
         retiring, then retired; remove its [[ca]] block only then)."
    );
    outln!(
        "Restart the service to load the new CA (a reload does not load new CAs), e.g. \
         `systemctl restart ast-gateway`; new tokens then come from `{}`.",
        new
    );
    Ok(())
}

pub(super) fn import(root: &Root, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let config = super::load_config(root)?;
    check_new_name(&config, &args.name)?;
    let der = read_certificate_file(&args.certificate)?;
    let signer = open_signer(root, &args.key, args.key_passphrase_env.as_deref())?;
    let parent = parent_ca(&config, args.parent.as_deref())?;
    let parents: Vec<Vec<u8>> = parent
        .as_ref()
        .map(|p| p.chain().to_vec())
        .unwrap_or_default();
    Ca::new(&args.name, der, parents, signer)?;
    let certificate = absolute(&args.certificate)?;
    append_ca(
        root,
        &args.name,
        &certificate,
        &args.key,
        args.parent.as_deref(),
        args.key_passphrase_env.as_deref(),
    )?;
    outln!(
        "imported CA `{}`: the key matches the certificate; added to {}",
        args.name,
        root.gateway_toml().display()
    );
    Ok(ExitCode::SUCCESS)
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

fn absolute(path: &Path) -> anyhow::Result<String> {
    let p = std::fs::canonicalize(path).with_context(|| format!("reading {}", path.display()))?;
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("{} is not UTF-8", p.display()))
}
