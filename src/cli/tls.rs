//! `tls issue`: the HTTPS listener's server certificate from one of the configured CAs (your
//! own hierarchy instead of the demo `localhost` certificate `init` wrote). The certificate is
//! recorded in the database (audited, listed by `certs list`, revocable) before its files are
//! written; the files replaced are kept beside the new ones as `<file>.previous`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::output::outln;
use crate::ca::{TlsServerNames, pem_certificate, write_private_key_pem};
use crate::config::{Root, parse_duration};
use crate::identity::Caller;
use crate::issuance::Gateway;

/// `tls …`
#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Issue the HTTPS listener's server certificate (and a new key) from a configured CA,
    /// recorded in the database (`certs list`, `certs revoke`), written to [server] tls_cert /
    /// tls_key (default data/tls/server.pem, server.key) with the CA chain; the files replaced
    /// are kept as `.previous`. Restart to serve it.
    Issue(IssueArgs),
}

/// `tls issue`
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// A DNS name clients use (repeatable; the first is the CN).
    #[arg(long, value_name = "NAME")]
    pub dns: Vec<String>,
    /// An IP address clients use (repeatable).
    #[arg(long, value_name = "ADDRESS")]
    pub ip: Vec<IpAddr>,
    /// The configured CA that signs it (`ast-gateway ca list`).
    #[arg(long)]
    pub ca: String,
    /// Lifetime (browsers accept at most 398 days).
    #[arg(long, default_value = "397d")]
    pub validity: String,
}

pub(super) async fn run(root: &Root, command: TlsCommand) -> anyhow::Result<ExitCode> {
    match command {
        TlsCommand::Issue(args) => issue(root, args).await,
    }
}

async fn issue(root: &Root, args: IssueArgs) -> anyhow::Result<ExitCode> {
    if args.dns.is_empty() && args.ip.is_empty() {
        anyhow::bail!("give at least one --dns NAME or --ip ADDRESS");
    }
    for name in &args.dns {
        if name.is_empty() || !name.is_ascii() || name.contains(|c: char| c.is_whitespace()) {
            anyhow::bail!("--dns `{name}`: an ASCII host name (A-labels for IDNs)");
        }
    }
    let validity = parse_duration(&args.validity).map_err(|e| anyhow::anyhow!(e))?;
    let config = super::load_config(root)?;
    let gateway = Gateway::open(config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the gateway:\n{e}"))?;
    let settings = gateway.settings();
    let Some(ca) = gateway.ca(&args.ca).cloned() else {
        anyhow::bail!(
            "no CA named `{}` is configured ({})",
            args.ca,
            gateway.cas().keys().cloned().collect::<Vec<_>>().join(", ")
        );
    };
    let names = TlsServerNames {
        dns: args.dns.clone(),
        ips: args.ip.clone(),
    };
    // Committed (certificate row and audit event) before any file is written.
    let made = gateway
        .issue_tls_server_certificate(&Caller::Cli, &args.ca, &names, validity)
        .await?;
    let cert_path = settings
        .server
        .tls_cert
        .clone()
        .unwrap_or_else(|| root.data().join("tls/server.pem"));
    let key_path = settings
        .server
        .tls_key
        .clone()
        .unwrap_or_else(|| root.data().join("tls/server.key"));
    if let Some(dir) = cert_path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    keep_previous(&cert_path)?;
    keep_previous(&key_path)?;
    write_private_key_pem(&key_path, &made.pkcs8_der)
        .with_context(|| format!("writing {}", key_path.display()))?;
    let chain = format!("{}{}", pem_certificate(&made.issued.der), ca.chain_pem());
    std::fs::write(&cert_path, chain)
        .with_context(|| format!("writing {}", cert_path.display()))?;
    outln!(
        "issued a TLS server certificate from CA `{}` for {} (serial {}, valid {}, recorded in the database): {} and {}; restart the service to serve it",
        args.ca,
        args.dns
            .iter()
            .cloned()
            .chain(args.ip.iter().map(ToString::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        crate::ca::Serial::from_bytes(&made.issued.serial),
        args.validity,
        cert_path.display(),
        key_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Renames an existing `path` to `<path>.previous` (replacing an older one).
fn keep_previous(path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        let mut previous: PathBuf = path.to_path_buf().into_os_string().into();
        previous.as_mut_os_string().push(".previous");
        std::fs::rename(path, &previous)
            .with_context(|| format!("keeping {} as {}", path.display(), previous.display()))?;
    }
    Ok(())
}
