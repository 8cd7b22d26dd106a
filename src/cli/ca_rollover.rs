//! `ca create NEW --replaces OLD`, the rollover plan: the new CA gets OLD's parent, and every
//! `ca = "OLD"` of a token procedure certificate in gateway.toml becomes `ca = "NEW"` — edited
//! in place at the spans the TOML parser reports, so comments and layout stay, and each edit is
//! printed. OLD stays configured: it keeps signing CRLs and answering OCSP for what it issued
//! (`ca list` shows it retiring, then retired). Nothing is written here: `ca_admin::create`
//! writes the planned text once the new CA exists.
//!
//! Replacing the officers CA moves its role: NEW gets `role = "officers"` (OLD's own `role`
//! line, if it has one, is commented out), and the HTTPS listener's `client_ca` must trust the
//! officer certificates of both (`officers_clients`).

use anyhow::Context;

use super::ca_admin::toml_string;
use super::ca_client_trust::ClientTrust;
use super::output::outln;
use crate::ca::Attribute;
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

/// What a rollover writes, planned before any key is made.
#[derive(Debug)]
pub(super) struct Rollover {
    pub(super) old: String,
    /// The replaced CA's parent (the new CA's, unless `--parent` says otherwise).
    pub(super) parent: Option<String>,
    /// gateway.toml with the procedures moved (and the officers role taken from OLD).
    pub(super) text: String,
    pub(super) references: Vec<CaReference>,
    /// OLD is the officers CA: NEW gets `role = "officers"`.
    pub(super) officers: bool,
    /// The line of OLD's `role = "officers"` that was commented out, if it had one.
    pub(super) role_line: Option<usize>,
    /// OLD's `subject_order`, which NEW keeps (the subjects it signs stay as they were).
    pub(super) subject_order: Vec<Attribute>,
}

/// The text of gateway.toml as read, with its parsed form.
struct GatewayText {
    file: crate::config::GatewayFile,
    toml: crate::config::TomlText,
    text: String,
}

fn read(root: &Root) -> anyhow::Result<GatewayText> {
    let (file, toml) =
        crate::config::read_gateway_file(root).map_err(|e| anyhow::anyhow!("{e}"))?;
    let path = toml.path().to_path_buf();
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(GatewayText { file, toml, text })
}

/// Every token procedure certificate of `old`, to move to `new`.
fn references(gateway: &GatewayText, old: &str, new: &str) -> anyhow::Result<Vec<CaReference>> {
    let GatewayText { file, toml, text } = gateway;
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
                    toml.path().display(),
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
    Ok(references)
}

/// The whole `role = …` line of CA `old`'s block (its byte range and number) and the comment
/// that replaces it; `None` when the block has no `role`.
fn role_edit(
    gateway: &GatewayText,
    old: &str,
    new: &str,
) -> Option<(std::ops::Range<usize>, String, usize)> {
    let GatewayText { file, toml, text } = gateway;
    let role = file
        .cas
        .iter()
        .find(|c| c.name.get_ref() == old)
        .and_then(|c| c.role.as_ref())?;
    let span = role.span();
    let start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
    let end = text[span.end..]
        .find('\n')
        .map_or(text.len(), |i| span.end + i);
    let comment = format!(
        "# {}  (moved to `{new}` by `ca create {new} --replaces {old}`)",
        &text[start..end]
    );
    Some((start..end, comment, toml.line(&span)))
}

/// gateway.toml with every token procedure certificate of `old` moved to `new`, and the edits.
/// Only the quoted values change; every other byte (comments, layout) stays.
#[cfg(test)]
fn move_procedures(
    root: &Root,
    old: &str,
    new: &str,
) -> anyhow::Result<(String, Vec<CaReference>)> {
    let gateway = read(root)?;
    let references = references(&gateway, old, new)?;
    let edits = references
        .iter()
        .map(|r| (r.span.clone(), toml_string(new)))
        .collect();
    Ok((apply(gateway.text, edits), references))
}

/// `text` with each range replaced (the ranges do not overlap).
fn apply(mut text: String, mut edits: Vec<(std::ops::Range<usize>, String)>) -> String {
    edits.sort_by_key(|(span, _)| std::cmp::Reverse(span.start));
    for (span, replacement) in edits {
        text.replace_range(span, &replacement);
    }
    text
}

/// What a rollover needs: the replaced CA's parent, and gateway.toml with the procedures moved
/// (and, for the officers CA, its role).
pub(super) fn plan_rollover(
    root: &Root,
    config: &crate::rules::Configuration,
    old: &str,
    new: &str,
) -> anyhow::Result<Rollover> {
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
    let officers = config.settings.officers_ca() == Some(old);
    let gateway = read(root)?;
    let references = references(&gateway, old, new)?;
    if references.is_empty() && !officers {
        anyhow::bail!(
            "--replaces {old}: no token procedure uses CA `{old}` and it is not the officers CA, \
             so nothing would move; create the CA without --replaces"
        );
    }
    let mut edits: Vec<_> = references
        .iter()
        .map(|r| (r.span.clone(), toml_string(new)))
        .collect();
    let role = if officers {
        role_edit(&gateway, old, new)
    } else {
        None
    };
    let role_line = role.map(|(span, comment, line)| {
        edits.push((span, comment));
        line
    });
    Ok(Rollover {
        old: old.to_string(),
        parent: replaced.parent.clone(),
        text: apply(gateway.text, edits),
        references,
        officers,
        role_line,
        subject_order: replaced.subject_order.clone(),
    })
}

impl Rollover {
    /// What the rollover changed in gateway.toml, and what the operator does next.
    pub(super) fn print(
        &self,
        new: &str,
        toml_path: &std::path::Path,
        trust: Option<&ClientTrust>,
    ) -> anyhow::Result<()> {
        let old = &self.old;
        if !self.references.is_empty() {
            outln!(
                "token procedures moved from `{old}` to `{new}` ({}):",
                toml_path.display()
            );
        }
        for r in &self.references {
            outln!(
                "  line {}: token procedure `{}`, certificate `{}`: ca = {} -> ca = {}",
                r.line,
                r.procedure,
                r.purpose,
                toml_string(old),
                toml_string(new)
            );
        }
        if self.officers {
            let moved = self
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
            if self.officers {
                "officer certificates"
            } else {
                "tokens"
            }
        );
        Ok(())
    }
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

#[cfg(test)]
#[path = "ca_rollover_tests.rs"]
mod tests;
