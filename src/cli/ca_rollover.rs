//! `ca create NEW --replaces OLD`, the rollover plan: the new CA gets OLD's parent, and every
//! `ca = "OLD"` of a token procedure certificate in gateway.toml becomes `ca = "NEW"` — edited
//! in place at the spans the TOML parser reports, so comments and layout stay, and each edit is
//! printed. OLD stays configured: it keeps signing CRLs and answering OCSP for what it issued
//! (`ca list` shows it retiring, then retired). Nothing is written here: `ca_admin::create`
//! writes the planned text once the new CA exists.

use anyhow::Context;

use super::ca_admin::toml_string;
use crate::config::Root;

/// One `ca = "OLD"` of a token procedure certificate, to become `ca = "NEW"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CaReference {
    pub(super) procedure: String,
    pub(super) purpose: String,
    /// The byte range of the quoted value in gateway.toml.
    span: std::ops::Range<usize>,
    pub(super) line: usize,
}

/// gateway.toml with every token procedure certificate of `old` moved to `new`, and the edits.
/// Only the quoted values change; every other byte (comments, layout) stays.
fn move_procedures(
    root: &Root,
    old: &str,
    new: &str,
) -> anyhow::Result<(String, Vec<CaReference>)> {
    let (file, toml) =
        crate::config::read_gateway_file(root).map_err(|e| anyhow::anyhow!("{e}"))?;
    let path = toml.path().to_path_buf();
    let mut text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut references = Vec::new();
    for procedure in &file.token_procedures {
        for certificate in &procedure.certificate {
            if certificate.ca.get_ref() != old {
                continue;
            }
            let span = certificate.ca.span();
            // The span is the value as written: a basic or literal string. Anything else
            // (escapes, a multi-line string) is left to the operator.
            let written = text.get(span.clone()).unwrap_or_default();
            if written != toml_string(old) && written != format!("'{old}'") {
                anyhow::bail!(
                    "{}:{}: cannot rewrite `ca = {written}` safely; change it to ca = {} by hand \
                     and run `ca create` without --replaces",
                    path.display(),
                    toml.line(&span),
                    toml_string(new)
                );
            }
            references.push(CaReference {
                procedure: procedure.name.get_ref().clone(),
                purpose: certificate.purpose.get_ref().clone(),
                line: toml.line(&span),
                span,
            });
        }
    }
    let mut by_position = references.clone();
    by_position.sort_by_key(|r| std::cmp::Reverse(r.span.start));
    for r in &by_position {
        text.replace_range(r.span.clone(), &toml_string(new));
    }
    Ok((text, references))
}

/// What a rollover needs: the replaced CA's parent, and gateway.toml with the procedures moved.
pub(super) fn plan_rollover(
    root: &Root,
    config: &crate::rules::Configuration,
    old: &str,
    new: &str,
) -> anyhow::Result<(Option<String>, String, Vec<CaReference>)> {
    let Some(replaced) = config.settings.cas.iter().find(|c| c.name == old) else {
        anyhow::bail!(
            "--replaces {old}: no CA named `{old}` is configured; configured: {}",
            config
                .settings
                .cas
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    if old == crate::issuance::OFFICERS_CA {
        anyhow::bail!(
            "--replaces {old}: the officers CA is found by its name (officer certificates, \
             client_ca); it cannot be replaced by another name"
        );
    }
    let (text, references) = move_procedures(root, old, new)?;
    if references.is_empty() {
        anyhow::bail!(
            "--replaces {old}: no token procedure uses CA `{old}`, so nothing would move; \
             create the CA without --replaces"
        );
    }
    Ok((replaced.parent.clone(), text, references))
}

#[cfg(test)]
#[path = "ca_rollover_tests.rs"]
mod tests;
