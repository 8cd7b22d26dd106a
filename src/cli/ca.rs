//! `ca list` (each configured CA with its state: active, retiring, retired or unused) and `ca
//! export` (a CA's chain as PEM); `ca create` and `ca import` are in `ca_admin`.

use std::process::ExitCode;

use super::output::{errln, out, outln};
use super::{CaCommand, ca_admin, load_config};
use crate::config::Root;

/// The state of every configured CA (active / retiring / retired / unused), counting the
/// certificates in the database; `None` (with a message on standard error) when the database
/// cannot be read.
async fn ca_states(
    config: &crate::rules::Configuration,
) -> Option<std::collections::BTreeMap<String, crate::issuance::CaState>> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let usage = async {
        let store = crate::store::Store::open(&config.settings.database_url, 1).await?;
        let usage = store.ca_usage(now).await;
        store.close().await;
        usage
    }
    .await;
    match usage {
        Ok(usage) => Some(crate::issuance::ca_states(
            &config.settings,
            &config.rules,
            &usage,
        )),
        Err(e) => {
            errln!("warning: the database cannot be read, CA states are left out: {e}");
            None
        }
    }
}

/// `ca …`: `create` and `import` go to `ca_admin`; `list` and `export` read the configured CAs.
pub(super) async fn run(root: &Root, command: CaCommand) -> anyhow::Result<ExitCode> {
    let command = match command {
        CaCommand::Create(args) => return ca_admin::create(root, args),
        CaCommand::Import(args) => return ca_admin::import(root, args),
        other => other,
    };
    let config = load_config(root)?;
    let cas = crate::issuance::load_cas(&config.settings).map_err(|e| anyhow::anyhow!("{e}"))?;
    match command {
        CaCommand::List { json } => {
            let states = ca_states(&config).await;
            let rows: Vec<serde_json::Value> = cas
                .values()
                .map(|ca| {
                    let tbs = ca.certificate().tbs_certificate();
                    let state = states.as_ref().and_then(|s| s.get(ca.name()));
                    let mut row = serde_json::json!({
                        "name": ca.name(),
                        "subject": tbs.subject().to_string(),
                        "issuer": tbs.issuer().to_string(),
                        "notAfter": tbs.validity().not_after.to_string(),
                        "chainLength": ca.chain().len(),
                        "state": state.map(|s| s.name()),
                        "stateDetail": state.map(|s| s.to_string()),
                    });
                    if let Some(crate::issuance::CaState::Retiring {
                        certificates,
                        until,
                    }) = state
                    {
                        row["unexpiredCertificates"] = (*certificates).into();
                        row["lastNotAfter"] = time::OffsetDateTime::from_unix_timestamp(*until)
                            .ok()
                            .and_then(|t| {
                                t.format(&time::format_description::well_known::Rfc3339)
                                    .ok()
                            })
                            .into();
                    }
                    row
                })
                .collect();
            if json {
                outln!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for r in rows {
                    outln!(
                        "{:<12} {}  (until {})  {}",
                        r["name"].as_str().unwrap_or(""),
                        r["subject"].as_str().unwrap_or(""),
                        r["notAfter"].as_str().unwrap_or(""),
                        r["stateDetail"].as_str().unwrap_or("")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        CaCommand::Export { name } => match cas.get(&name) {
            Some(ca) => {
                out!("{}", ca.chain_pem());
                Ok(ExitCode::SUCCESS)
            }
            None => anyhow::bail!(
                "no CA named `{name}`; configured: {}",
                cas.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        },
        CaCommand::Create(_) | CaCommand::Import(_) => Ok(ExitCode::FAILURE),
    }
}
