//! `ca create` and `ca import`: the command-line arguments, one call each into
//! `issuance::ca_admin` (which makes or checks the CA and edits gateway.toml), and what the
//! operator reads afterwards — for a rollover (`--replaces`), each edit and the next steps.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::output::outln;
use crate::config::{Root, parse_duration};
use crate::issuance::ca_admin::{self, ClientTrust, ImportCa, NewCa, Rollover, toml_string};
use crate::token::KeyType;

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

pub(super) fn create(root: &Root, args: CreateArgs) -> anyhow::Result<ExitCode> {
    let config = super::load_config(root)?;
    let key_type: KeyType = args
        .key_type
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    let new = NewCa {
        subject: super::init::ca_subject(&args)?,
        validity: parse_duration(&args.validity).map_err(|e| anyhow::anyhow!(e))?,
        name: args.name,
        key: args.key,
        key_type,
        parent: args.parent,
        replaces: args.replaces,
    };
    let name = new.name.clone();
    let created = ca_admin::create(root, &config, new)?;
    outln!(
        "created CA `{name}` ({key_type}), certificate {}, added to {}",
        created.certificate.display(),
        created.gateway_toml.display()
    );
    if let Some(r) = &created.rollover {
        print_rollover(r, &name, &created.gateway_toml, created.trust.as_ref())?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn import(root: &Root, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let config = super::load_config(root)?;
    let imported = ca_admin::import(
        root,
        &config,
        &ImportCa {
            name: args.name.clone(),
            certificate: args.certificate,
            key: args.key,
            parent: args.parent,
            key_passphrase_env: args.key_passphrase_env,
        },
    )?;
    outln!(
        "imported CA `{}`: the key matches the certificate; added to {}",
        args.name,
        imported.gateway_toml.display()
    );
    if !imported.subject_order.is_empty() {
        outln!(
            "its subject lists {} in that order, not the conventional C, O, OU, …, CN: the \
             [[ca]] block got subject_order = [{}], so the certificates it signs keep that order \
             (a token procedure certificate's own `subject` list still wins)",
            imported
                .subject
                .iter()
                .map(|a| a.label())
                .collect::<Vec<_>>()
                .join(", "),
            imported
                .subject_order
                .iter()
                .map(|a| a.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What the rollover changed in gateway.toml, and what the operator does next.
fn print_rollover(
    rollover: &Rollover,
    new: &str,
    toml_path: &std::path::Path,
    trust: Option<&ClientTrust>,
) -> anyhow::Result<()> {
    let old = &rollover.old;
    if !rollover.references.is_empty() {
        outln!(
            "token procedures moved from `{old}` to `{new}` ({}):",
            toml_path.display()
        );
    }
    for r in &rollover.references {
        outln!(
            "  line {}: token procedure `{}`, certificate `{}`: ca = {} -> ca = {}",
            r.line,
            r.procedure,
            r.purpose,
            toml_string(old),
            toml_string(new)
        );
    }
    if rollover.officers {
        let moved = rollover
            .role_line
            .map(|line| format!(" (line {line} of `{old}`'s block is now a comment)"))
            .unwrap_or_default();
        outln!(
            "`{new}` is the officers CA now: its block has role = \"officers\"{moved}; \
                 `ast-gateway officer issue` issues from it. The officers `{old}` issued keep \
                 authenticating until they expire or are revoked (`officer revoke` puts them on \
                 `{old}`'s CRL)."
        );
    }
    if let Some(trust) = trust {
        print_trust(trust)?;
    }
    outln!(
        "`{old}` stays configured: it keeps signing CRLs and answering OCSP for the \
             certificates it issued until the last one expires (`ast-gateway ca list` shows it \
             retiring, then retired; remove its [[ca]] block only then)."
    );
    outln!(
        "Restart the service to load the new CA (a reload does not load new CAs), e.g. \
             `systemctl restart ast-gateway`; new {} then come from `{new}`.",
        if rollover.officers {
            "officer certificates"
        } else {
            "tokens"
        }
    );
    Ok(())
}

/// Where the HTTPS listener's client certificate trust now stands.
fn print_trust(trust: &ClientTrust) -> anyhow::Result<()> {
    let bundle = trust.bundle.display();
    match (trust.edited_line, trust.unset) {
        (Some(line), _) => outln!(
            "line {line}: client_ca = \"data/tls/client-ca.pem\": {bundle} holds the {} \
             certificates officer client certificates may chain to (the previous client_ca's \
             and the new officers CA's)",
            trust.certificates
        ),
        (None, true) => outln!(
            "[server] client_ca is not set, so the HTTPS listener asks for no client \
             certificate; {bundle} holds both officers CA certificates: set client_ca = \
             \"data/tls/client-ca.pem\" when officers are to log in"
        ),
        (None, false) => outln!(
            "{bundle} (client_ca) now also holds the new officers CA certificate ({} in all)",
            trust.certificates
        ),
    }
    outln!(
        "Once the old officers CA is retired, remove its certificate from {bundle} (and from a \
         front's ssl_client_certificate, if one checks officer certificates)."
    );
    Ok(())
}
