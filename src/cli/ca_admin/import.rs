//! `ca import`: an existing CA certificate with its key (a PKCS#8/PKCS#12 file or a `pkcs11:`
//! URI), checked to match, appended to gateway.toml as a `[[ca]]` block. When the certificate's
//! own subject does not follow the conventional RDN order, the block gets a `subject_order`
//! that follows it, so the subjects the CA signs keep the order its certificates have.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use super::{CaBlock, append_ca, check_new_name, parent_ca};
use crate::ca::{Ca, FileSigner, Pkcs11Signer, Signer, kept_subject_order, read_certificate_file};
use crate::cli::output::outln;
use crate::config::Root;

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

pub(in crate::cli) fn import(root: &Root, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let config = crate::cli::load_config(root)?;
    check_new_name(&config, &args.name)?;
    let der = read_certificate_file(&args.certificate)?;
    let signer = open_signer(root, &args.key, args.key_passphrase_env.as_deref())?;
    let parent = parent_ca(&config, args.parent.as_deref())?;
    let parents: Vec<Vec<u8>> = parent
        .as_ref()
        .map(|p| p.chain().to_vec())
        .unwrap_or_default();
    let subject_order = kept_subject_order(&der).unwrap_or_default();
    Ca::new(&args.name, der, parents, signer)?;
    let certificate = absolute(&args.certificate)?;
    append_ca(
        root,
        &CaBlock {
            name: &args.name,
            certificate: &certificate,
            key: &args.key,
            parent: args.parent.as_deref(),
            passphrase_env: args.key_passphrase_env.as_deref(),
            role: None,
            subject_order: &subject_order,
        },
    )?;
    outln!(
        "imported CA `{}`: the key matches the certificate; added to {}",
        args.name,
        root.gateway_toml().display()
    );
    if !subject_order.is_empty() {
        outln!(
            "its subject lists {} in that order, not the conventional C, O, OU, …, CN: the \
             [[ca]] block got subject_order = [{}], so the certificates it signs keep that order \
             (a token procedure certificate's own `subject` list still wins)",
            crate::ca::certificate_subject_attributes(&read_certificate_file(&args.certificate)?)
                .iter()
                .map(|a| a.label())
                .collect::<Vec<_>>()
                .join(", "),
            subject_order
                .iter()
                .map(|a| a.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn absolute(path: &Path) -> anyhow::Result<String> {
    let p = std::fs::canonicalize(path).with_context(|| format!("reading {}", path.display()))?;
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("{} is not UTF-8", p.display()))
}
