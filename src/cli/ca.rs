//! `ca list` (each configured CA with its state: active, retiring, retired or unused) and `ca
//! export` (a CA's chain as PEM); `ca create` and `ca import` are in `ca_admin`.

use crate::timestamp::Timestamp;
use std::process::ExitCode;

use super::output::{errln, out, outln};
use super::store::{Access, open_configured};
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
        let store = open_configured(config, Access::Read).await?;
        let usage = store.ca_usage(now).await;
        store.close().await;
        anyhow::Ok(usage?)
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

/// The next CRL number of every CA (one above the last handed out or imported) and the reason
/// its certificate was revoked, if it was, when the database can be read.
async fn next_crl_numbers(
    config: &crate::rules::Configuration,
    cas: &Cas,
) -> std::collections::BTreeMap<String, (i64, Option<String>)> {
    let mut numbers = std::collections::BTreeMap::new();
    let Ok(store) = open_configured(config, Access::Read).await else {
        return numbers;
    };
    for (name, ca) in cas {
        if let Ok(state) = store.crl_state(name).await {
            numbers.insert(name.clone(), (state.crl_number + 1, None));
        }
        // A CA whose certificate its configured parent revoked (`certs revoke`).
        let parent = config
            .settings
            .cas
            .iter()
            .find(|c| &c.name == name)
            .and_then(|c| c.parent.clone());
        let serial = crate::ca::Serial::from_bytes(
            ca.certificate()
                .tbs_certificate()
                .serial_number()
                .as_bytes(),
        );
        if let Some(parent) = parent
            && let Ok(Some(status)) = store.imported_status(&parent, serial.hex()).await
            && let Some(revocation) = status.revocation
            && let Some(entry) = numbers.get_mut(name)
        {
            entry.1 = Some(revocation.reason.unwrap_or_else(|| "unspecified".into()));
        }
    }
    store.close().await;
    numbers
}

/// `ca …`: `create` and `import` go to `ca_admin`; `list` and `export` read the configured CAs.
pub(super) async fn run(root: &Root, command: CaCommand) -> anyhow::Result<ExitCode> {
    match command {
        CaCommand::Create(args) => ca_admin::create(root, args),
        CaCommand::Import(args) => ca_admin::import(root, args),
        CaCommand::ImportCrl(args) => super::import::crls(root, args).await,
        CaCommand::List { json } => {
            let (config, cas) = load(root)?;
            list(&config, &cas, json).await
        }
        CaCommand::Export { name } => export(&load(root)?.1, &name),
    }
}

type Cas = std::collections::BTreeMap<String, std::sync::Arc<crate::ca::Ca>>;

/// The configuration and the CAs it names, loaded like `serve` does.
fn load(root: &Root) -> anyhow::Result<(crate::rules::Configuration, Cas)> {
    let config = load_config(root)?;
    let cas = crate::issuance::load_cas(&config.settings).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((config, cas))
}

/// `ca list`: one row per configured CA, with its state when the database can be read.
async fn list(
    config: &crate::rules::Configuration,
    cas: &Cas,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let states = ca_states(config).await;
    let crl_numbers = next_crl_numbers(config, cas).await;
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
                "nextCrlNumber": crl_numbers.get(ca.name()).map(|n| n.0),
                "revoked": crl_numbers.get(ca.name()).and_then(|n| n.1.clone()),
            });
            if let Some(reason) = row["revoked"].as_str() {
                row["stateDetail"] = format!("REVOKED ({reason}): issues nothing").into();
            }
            if let Some(crate::issuance::CaState::Retiring {
                certificates,
                until,
            }) = state
            {
                row["unexpiredCertificates"] = (*certificates).into();
                row["lastNotAfter"] = Timestamp::from_unix(*until).rfc3339().into();
            }
            row
        })
        .collect();
    if json {
        outln!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_table(&rows)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `ca list` as a table: columns as wide as their longest cell, two spaces apart, the subject
/// (the longest) last, so long CA names or states do not shift the columns.
fn print_table(rows: &[serde_json::Value]) -> anyhow::Result<()> {
    let text = |r: &serde_json::Value, key: &str| match &r[key] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    let columns = ["name", "notAfter", "nextCrlNumber", "stateDetail"];
    let headers = ["NAME", "NOT AFTER", "NEXT CRL", "STATE"];
    let widths: Vec<usize> = columns
        .iter()
        .zip(headers)
        .map(|(key, header)| {
            rows.iter()
                .map(|r| text(r, key).chars().count())
                .chain([header.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>, subject: &str| {
        let mut out = String::new();
        for (cell, width) in cells.iter().zip(&widths) {
            out.push_str(&format!("{cell:<width$}  "));
        }
        out.push_str(subject);
        out
    };
    outln!(
        "{}",
        line(headers.iter().map(|h| h.to_string()).collect(), "SUBJECT")
    );
    for r in rows {
        let cells = columns.iter().map(|key| text(r, key)).collect();
        outln!("{}", line(cells, &text(r, "subject")));
    }
    Ok(())
}

/// `ca export NAME`: the CA's chain as PEM.
fn export(cas: &Cas, name: &str) -> anyhow::Result<ExitCode> {
    match cas.get(name) {
        Some(ca) => {
            out!("{}", ca.chain_pem());
            Ok(ExitCode::SUCCESS)
        }
        None => anyhow::bail!(
            "no CA named `{name}`; configured: {}",
            cas.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    }
}
