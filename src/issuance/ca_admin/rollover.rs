//! `ca create NEW --replaces OLD`, the rollover plan: the new CA gets OLD's parent, and every
//! `ca = "OLD"` of a token procedure certificate in gateway.toml becomes `ca = "NEW"` — edited
//! with the format-preserving editor (`gateway_toml`), so comments and layout stay. OLD stays
//! configured: it keeps signing CRLs and answering OCSP for what it issued. Nothing is written
//! here: `create` writes the planned document once the new CA exists.
//!
//! Replacing the officers CA moves its role: NEW gets `role = "officers"` (OLD's own `role`
//! line, if it has one, is commented out), and the HTTPS listener's `client_ca` must trust the
//! officer certificates of both (`client_trust`).

use toml_edit::DocumentMut;

use super::gateway_toml;
use crate::ca::Attribute;
use crate::config::Root;

/// One `ca = "OLD"` of a token procedure certificate, to become `ca = "NEW"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaReference {
    pub procedure: String,
    pub purpose: String,
    /// Its line in gateway.toml.
    pub line: usize,
}

/// What a rollover writes, planned before any key is made.
#[derive(Debug)]
pub struct Rollover {
    pub old: String,
    /// The replaced CA's parent (the new CA's, unless `--parent` says otherwise).
    pub parent: Option<String>,
    /// gateway.toml with the procedures moved (and the officers role taken from OLD).
    pub(super) document: DocumentMut,
    pub references: Vec<CaReference>,
    /// OLD is the officers CA: NEW gets `role = "officers"`.
    pub officers: bool,
    /// The line of OLD's `role = "officers"` that was commented out, if it had one.
    pub role_line: Option<usize>,
    /// OLD's `subject_order`, which NEW keeps (the subjects it signs stay as they were).
    pub subject_order: Vec<Attribute>,
}

impl Rollover {
    /// gateway.toml as the rollover will write it (before the new `[[ca]]` block).
    pub fn text(&self) -> String {
        self.document.to_string()
    }
}

/// Every token procedure certificate of `old` (with its line), and OLD's `role` line.
fn references(
    file: &crate::config::GatewayFile,
    toml: &crate::config::TomlText,
    old: &str,
) -> (Vec<CaReference>, Option<(usize, std::ops::Range<usize>)>) {
    let mut references = Vec::new();
    for procedure in &file.token_procedures {
        for certificate in &procedure.certificate {
            if certificate.ca.get_ref() == old {
                references.push(CaReference {
                    procedure: procedure.name.get_ref().clone(),
                    purpose: certificate.purpose.get_ref().clone(),
                    line: toml.line(&certificate.ca.span()),
                });
            }
        }
    }
    let role = file
        .cas
        .iter()
        .find(|c| c.name.get_ref() == old)
        .and_then(|c| c.role.as_ref())
        .map(|role| (toml.line(&role.span()), role.span()));
    (references, role)
}

/// The comment that takes the place of OLD's `role` line (its text as written).
fn role_comment(text: &str, span: std::ops::Range<usize>, old: &str, new: &str) -> String {
    let start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
    let end = text[span.end..]
        .find('\n')
        .map_or(text.len(), |i| span.end + i);
    format!(
        "# {}  (moved to `{new}` by `ca create {new} --replaces {old}`)",
        text[start..end].trim_start()
    )
}

/// What a rollover needs: the replaced CA's parent, and gateway.toml with the procedures moved
/// (and, for the officers CA, its role).
pub fn plan_rollover(
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
    let (file, toml) =
        crate::config::read_gateway_file(root).map_err(|e| anyhow::anyhow!("{e}"))?;
    let text = super::read_gateway_toml(root)?;
    let (references, role) = references(&file, &toml, old);
    if references.is_empty() && !officers {
        anyhow::bail!(
            "--replaces {old}: no token procedure uses CA `{old}` and it is not the officers CA, \
             so nothing would move; create the CA without --replaces"
        );
    }
    let mut document = gateway_toml::parse(&text)?;
    gateway_toml::move_certificates(&mut document, old, new);
    let role_line = match role.filter(|_| officers) {
        Some((line, span)) => {
            let comment = role_comment(&text, span, old, new);
            gateway_toml::comment_out_role(&mut document, old, &comment).then_some(line)
        }
        None => None,
    };
    Ok(Rollover {
        old: old.to_string(),
        parent: replaced.parent.clone(),
        document,
        references,
        officers,
        role_line,
        subject_order: replaced.subject_order.clone(),
    })
}

#[cfg(test)]
#[path = "rollover_tests.rs"]
mod tests;
