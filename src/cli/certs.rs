//! `certs list [--expiring 30d]`, `certs show`, `certs revoke`, `certs reinstate`; `certs
//! import` is in `import`.

use crate::timestamp::Timestamp;
use std::process::ExitCode;

use clap::Subcommand;

use super::output::{errln, out, outln};
use super::store::{Access, open_configured};
use crate::config::Root;
use crate::store::{CertificateFilter, CertificateStatus, Store};

/// `certs …`
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// List issued certificates, newest first.
    List {
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
        /// Only certificates whose subject contains this text.
        #[arg(long)]
        subject: Option<String>,
        /// good or revoked.
        #[arg(long)]
        status: Option<String>,
        /// Only certificates expiring within this time from now (30d, 12h, 1y), soonest
        /// first; only good ones unless --status is given.
        #[arg(long, value_name = "DURATION")]
        expiring: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
    /// Show one certificate (serial in hex, any case, colons and leading zeros allowed).
    Show {
        serial: crate::ca::Serial,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a certificate. `--reason certificateHold` puts it on hold (undo with `reinstate`).
    Revoke {
        serial: crate::ca::Serial,
        /// RFC 5280 reason: unspecified, keyCompromise, cACompromise, affiliationChanged,
        /// superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise.
        #[arg(long)]
        reason: String,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Import the certificates a CA issued before this gateway took it over (files, PEM
    /// bundles, directories, or the `openssl ca` database with its revocations). Each one is
    /// checked against the CA's key first; a re-run changes nothing.
    Import(super::import::CertsImportArgs),
    /// Take a certificate off hold (only from certificateHold).
    Reinstate {
        serial: crate::ca::Serial,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

/// `revoke` / `reinstate` go through the gateway so that they are audited like the API's.
/// They touch only the database, so no CA key is loaded: revoking works while an HSM is down.
async fn change(root: &Root, command: CertsCommand) -> anyhow::Result<ExitCode> {
    let config = super::load_config(root)?;
    let store = open_configured(&config, Access::Write(root)).await?;
    let gateway = crate::issuance::Gateway::from_parts(config, Default::default(), store);
    let request_id = uuid::Uuid::new_v4().to_string();
    let (result, json) = match command {
        CertsCommand::Revoke {
            serial,
            reason,
            json,
        } => {
            let reason: crate::ca::RevocationReason =
                reason.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            (
                gateway
                    .revoke(&serial, reason, &crate::identity::Caller::Cli, &request_id)
                    .await,
                json,
            )
        }
        CertsCommand::Reinstate { serial, json } => (
            gateway
                .reinstate(&serial, &crate::identity::Caller::Cli, &request_id)
                .await,
            json,
        ),
        _ => anyhow::bail!("not a change"),
    };
    match result {
        Ok(record) => {
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&crate::http::certificate_json(&record)?)?
                );
            } else {
                match &record.revocation_reason {
                    Some(reason) => outln!("revoked {} ({reason})", record.serial),
                    None => outln!("reinstated {}", record.serial),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            errln!("{}: {}", e.code(), e.public_message());
            Ok(ExitCode::FAILURE)
        }
    }
}

pub(super) async fn run(root: &Root, command: CertsCommand) -> anyhow::Result<ExitCode> {
    match command {
        CertsCommand::List {
            json,
            subject,
            status,
            expiring,
            limit,
        } => {
            let store = open_store(root).await?;
            let filter = list_filter(subject, status, expiring, limit)?;
            list(&store, &filter, json).await
        }
        CertsCommand::Show { serial, json } => show(&open_store(root).await?, &serial, json).await,
        CertsCommand::Revoke { .. } | CertsCommand::Reinstate { .. } => change(root, command).await,
        CertsCommand::Import(args) => super::import::certs(root, args).await,
    }
}

async fn open_store(root: &Root) -> anyhow::Result<Store> {
    let config = super::load_config(root)?;
    open_configured(&config, Access::Read).await
}

/// The filter of `certs list`: --expiring means good ones only unless --status is given.
fn list_filter(
    subject: Option<String>,
    status: Option<String>,
    expiring: Option<String>,
    limit: i64,
) -> anyhow::Result<CertificateFilter> {
    let status = match status.as_deref() {
        None => None,
        Some("good") => Some(CertificateStatus::Good),
        Some("revoked") => Some(CertificateStatus::Revoked),
        Some(other) => anyhow::bail!("unknown status `{other}`; use good or revoked"),
    };
    let expiring = match expiring.as_deref() {
        None => None,
        Some(window) => {
            let window = crate::config::parse_duration(window)
                .map_err(|e| anyhow::anyhow!("--expiring: {e}"))?;
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            Some((now, now.saturating_add(window.as_secs() as i64)))
        }
    };
    let status = status.or(expiring.map(|_| CertificateStatus::Good));
    Ok(CertificateFilter {
        subject,
        status,
        expiring,
        limit: Some(limit),
        ..Default::default()
    })
}

/// `certs list`: a table, or one JSON array.
async fn list(store: &Store, filter: &CertificateFilter, json: bool) -> anyhow::Result<ExitCode> {
    let list = store.certificates(filter).await?;
    if json {
        let rows = list
            .iter()
            .map(crate::http::certificate_json)
            .collect::<Result<Vec<_>, _>>()?;
        outln!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        outln!(
            "{:<42} {:<8} {:<15} {:<21} SUBJECT",
            "SERIAL",
            "STATUS",
            "PURPOSE",
            "NOT AFTER"
        );
        for c in &list {
            outln!(
                "{:<42} {:<8} {:<15} {:<21} {}",
                c.serial,
                c.status.name(),
                c.purpose,
                Timestamp::from_unix(c.not_after),
                c.subject
            );
        }
        errln!("{} certificate(s)", list.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// `certs show`: the fields and the PEM, or JSON.
async fn show(store: &Store, serial: &crate::ca::Serial, json: bool) -> anyhow::Result<ExitCode> {
    match store.certificate(serial).await? {
        None => {
            errln!("no certificate with serial `{serial}`");
            Ok(ExitCode::FAILURE)
        }
        Some(c) => {
            let v = crate::http::certificate_details_json(&c)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                if let Some(map) = v.as_object() {
                    for (k, val) in map.iter().filter(|(k, _)| *k != "pem") {
                        outln!(
                            "{k:<17} {}",
                            if let Some(s) = val.as_str() {
                                s.to_string()
                            } else {
                                val.to_string()
                            }
                        );
                    }
                }
                out!("{}", crate::ca::pem_certificate(&c.der));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
