//! `crl [--ca NAME] [--out FILE]`: issue a CRL now.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::output::{errln, out};
use crate::config::Root;
use crate::issuance::Gateway;

pub(super) async fn run(
    root: &Root,
    ca: Option<String>,
    out: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let config = super::load_config(root)?;
    let gateway = Gateway::open(config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the gateway:\n{e}"))?;
    let names: Vec<String> = match ca {
        Some(name) => vec![name],
        None => gateway.cas().keys().cloned().collect(),
    };
    if out.is_some() && names.len() != 1 {
        anyhow::bail!(
            "--out writes one CRL; name the CA with --ca ({})",
            names.join(", ")
        );
    }
    for name in &names {
        let der = match gateway
            .issue_crl_now(name, &crate::identity::Caller::Cli)
            .await
        {
            Ok(der) => der,
            Err(e) => {
                errln!("{}: {}", e.code(), e.public_message());
                return Ok(ExitCode::FAILURE);
            }
        };
        match &out {
            Some(path) => {
                std::fs::write(path, &der)
                    .with_context(|| format!("writing {}", path.display()))?;
                errln!(
                    "wrote the CRL of `{name}` to {} ({} bytes)",
                    path.display(),
                    der.len()
                );
            }
            None => out!(
                "{}",
                der::pem::encode_string("X509 CRL", der::pem::LineEnding::LF, &der)?
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}
