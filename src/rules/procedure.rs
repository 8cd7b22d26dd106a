//! Token procedures (`[[token_procedure]]` in gateway.toml): which certificates a token holds,
//! from which CA, with which key and extensions. Built from the raw file structs, every problem
//! reported with its line.

use std::ops::Range;
use std::time::Duration;

use const_oid::ObjectIdentifier;
use x509_cert::ext::pkix::KeyUsage;

use crate::ca::{
    Attribute, CertificatePolicy, parse_cps_uri, parse_extended_key_usage, parse_key_usage,
    parse_oid,
};
use crate::config::{
    CertificateFile, ConfigErrors, Diagnostics, TokenProcedureFile, TomlText, parse_duration,
};
use crate::token::KeyType;

/// One certificate of a token procedure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateTemplate {
    pub purpose: String,
    pub ca: String,
    pub key: KeyType,
    pub validity: Duration,
    pub key_usage: KeyUsage,
    pub extended_key_usage: Vec<ObjectIdentifier>,
    /// `policies` (OIDs alone), then `certificate_policies` (OIDs with an optional CPS URI).
    pub policies: Vec<CertificatePolicy>,
    /// The DN attributes the certificate carries, in RDN order (empty: all, default order).
    pub subject_order: Vec<Attribute>,
    /// What happens when `validity` would outlast the issuing CA's certificate.
    pub leaf_not_after: LeafNotAfter,
}

/// `leaf_not_after`: a certificate whose validity would end after its CA's notAfter is cut
/// to end with the CA (`cap`, the default) or not issued at all (`refuse`, before any key is
/// generated). Modelled on Vault PKI's `leaf_not_after_behavior` (`truncate` / `err`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LeafNotAfter {
    #[default]
    Cap,
    Refuse,
}

impl LeafNotAfter {
    /// The spelling in gateway.toml.
    pub fn name(self) -> &'static str {
        match self {
            LeafNotAfter::Cap => "cap",
            LeafNotAfter::Refuse => "refuse",
        }
    }
}

impl std::str::FromStr for LeafNotAfter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cap" => Ok(LeafNotAfter::Cap),
            "refuse" => Ok(LeafNotAfter::Refuse),
            other => Err(format!(
                "leaf_not_after = \"{other}\": use \"cap\" (end with the CA's certificate) or \"refuse\""
            )),
        }
    }
}

/// How a token's keys are delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Layout {
    /// One PKCS#12 with every key and certificate (the client-authentication key first).
    #[default]
    Combined,
    /// One PKCS#12 per certificate, each with its one key and the chain, all under the same
    /// PIN: for clients that take the first or only key of a file (Java SunX509, pyca,
    /// Go x/crypto/pkcs12).
    PerPurpose,
}

impl Layout {
    /// The name in gateway.toml.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Combined => "combined",
            Layout::PerPurpose => "per-purpose",
        }
    }
}

impl std::str::FromStr for Layout {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "combined" => Ok(Layout::Combined),
            "per-purpose" => Ok(Layout::PerPurpose),
            other => Err(format!(
                "unknown layout `{other}`; expected `combined` (one PKCS#12 with every key) or \
                 `per-purpose` (one PKCS#12 per certificate, same PIN)"
            )),
        }
    }
}

/// A named list of certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenProcedure {
    pub name: String,
    /// One file with every key, or one file per certificate.
    pub layout: Layout,
    pub certificates: Vec<CertificateTemplate>,
}

/// A raw `[[token_procedure]]` with what it is checked against.
pub struct ProcedureSource<'a> {
    pub file: &'a TokenProcedureFile,
    pub toml: &'a TomlText,
    pub ca_names: &'a [&'a str],
    /// The `subject_order` of the CAs that have one (completed), by name.
    pub ca_subject_orders: &'a CaSubjectOrders<'a>,
}

/// The `subject_order` of each `[[ca]]` that has one, completed, by CA name: the RDN order of
/// a certificate that CA signs when the certificate lists no `subject` of its own.
pub type CaSubjectOrders<'a> = std::collections::BTreeMap<&'a str, Vec<Attribute>>;

impl TryFrom<ProcedureSource<'_>> for TokenProcedure {
    type Error = ConfigErrors;

    fn try_from(source: ProcedureSource<'_>) -> Result<Self, ConfigErrors> {
        let ProcedureSource {
            file,
            toml,
            ca_names,
            ca_subject_orders,
        } = source;
        let mut diagnostics = Diagnostics::default();
        let name = file.name.get_ref().clone();
        if file.certificate.is_empty() {
            diagnostics.push(toml.error(
                file.name.span(),
                "token_procedure",
                format!("token procedure `{name}` has no [[token_procedure.certificate]]"),
            ));
        }
        let layout = match &file.layout {
            None => Layout::default(),
            Some(text) => text.get_ref().parse().unwrap_or_else(|message| {
                diagnostics.push(toml.error(
                    text.span(),
                    &format!("token_procedure.{name}.layout"),
                    message,
                ));
                Layout::default()
            }),
        };
        let mut certificates = Vec::with_capacity(file.certificate.len());
        for certificate in &file.certificate {
            let source = CertificateSource {
                procedure: &name,
                file: certificate,
                toml,
                ca_names,
                ca_subject_orders,
            };
            if let Some(template) = diagnostics.take(CertificateTemplate::try_from(source)) {
                certificates.push(template);
            }
        }
        if layout == Layout::PerPurpose {
            // The purpose names the file (`<CN> <purpose>.p12`): two alike would collide, also
            // on case-insensitive file systems.
            for (index, certificate) in file.certificate.iter().enumerate() {
                let purpose = certificate.purpose.get_ref();
                if file.certificate[..index]
                    .iter()
                    .any(|c| c.purpose.get_ref().to_lowercase() == purpose.to_lowercase())
                {
                    diagnostics.push(toml.error(
                        certificate.purpose.span(),
                        &format!("token_procedure.{name}.certificate.{purpose}"),
                        format!(
                            "purpose `{purpose}` is used twice; with layout = \"per-purpose\" it names the file, so every certificate needs its own"
                        ),
                    ));
                }
            }
        }
        diagnostics.finish(TokenProcedure {
            name,
            layout,
            certificates,
        })
    }
}

/// A raw `[[token_procedure.certificate]]` with what it is checked against.
pub struct CertificateSource<'a> {
    pub procedure: &'a str,
    pub file: &'a CertificateFile,
    pub toml: &'a TomlText,
    pub ca_names: &'a [&'a str],
    pub ca_subject_orders: &'a CaSubjectOrders<'a>,
}

impl TryFrom<CertificateSource<'_>> for CertificateTemplate {
    type Error = ConfigErrors;

    fn try_from(source: CertificateSource<'_>) -> Result<Self, ConfigErrors> {
        let CertificateSource {
            procedure,
            file: c,
            toml,
            ca_names,
            ca_subject_orders,
        } = source;
        let mut diagnostics = Diagnostics::default();
        let key_name = format!(
            "token_procedure.{procedure}.certificate.{}",
            c.purpose.get_ref()
        );
        let mut fail = |span: Range<usize>, message: String| {
            diagnostics.push(toml.error(span, &key_name, message));
        };
        if !ca_names.contains(&c.ca.get_ref().as_str()) {
            fail(
                c.ca.span(),
                format!("CA `{}` is not configured (see [[ca]])", c.ca.get_ref()),
            );
        }
        let key = c
            .key
            .get_ref()
            .parse::<KeyType>()
            .map_err(|m| fail(c.key.span(), m))
            .ok();
        let validity = parse_duration(c.validity.get_ref())
            .map_err(|m| fail(c.validity.span(), m))
            .ok();
        let key_usage = parse_key_usage(c.key_usage.get_ref())
            .map_err(|m| fail(c.key_usage.span(), m))
            .ok();
        let mut extended_key_usage = Vec::new();
        for (name, span) in spanned_list(&c.extended_key_usage) {
            match parse_extended_key_usage(name) {
                Ok(oid) => extended_key_usage.push(oid),
                Err(m) => fail(span, m),
            }
        }
        let policies = policies(c, &mut fail);
        let mut subject_order = Vec::new();
        for (name, span) in spanned_list(&c.subject) {
            match Attribute::from_name(name).filter(|a| !a.is_san()) {
                Some(a) => subject_order.push(a),
                None => fail(span, format!("`{name}` is not a subject DN attribute")),
            }
        }
        if c.subject.is_none()
            && let Some(order) = ca_subject_orders.get(c.ca.get_ref().as_str())
        {
            // The CA's own order (e.g. kept from an imported CA's certificate); it lists
            // every DN attribute, so nothing is filtered out.
            subject_order = order.clone();
        }
        let leaf_not_after = match &c.leaf_not_after {
            None => Some(LeafNotAfter::default()),
            Some(v) => v
                .get_ref()
                .parse::<LeafNotAfter>()
                .map_err(|m| fail(v.span(), m))
                .ok(),
        };
        match (key, validity, key_usage, leaf_not_after) {
            (Some(key), Some(validity), Some(key_usage), Some(leaf_not_after)) => diagnostics
                .finish(CertificateTemplate {
                    purpose: c.purpose.get_ref().clone(),
                    ca: c.ca.get_ref().clone(),
                    key,
                    validity,
                    key_usage,
                    extended_key_usage,
                    policies,
                    subject_order,
                    leaf_not_after,
                }),
            _ => Err(diagnostics.into_errors()),
        }
    }
}

/// `policies` (OIDs alone), then `certificate_policies` (OIDs with an optional CPS URI); a
/// policy listed twice is reported.
fn policies(
    c: &CertificateFile,
    fail: &mut impl FnMut(Range<usize>, String),
) -> Vec<CertificatePolicy> {
    let mut policies: Vec<CertificatePolicy> = Vec::new();
    for (text, span) in spanned_list(&c.policies) {
        match parse_oid(text) {
            Ok(oid) if policies.iter().any(|p| p.oid == oid) => fail(
                span,
                format!("policy `{oid}` is listed twice; RFC 5280 allows each policy once"),
            ),
            Ok(oid) => policies.push(CertificatePolicy::oid(oid)),
            Err(m) => fail(span, m),
        }
    }
    for entry in c.certificate_policies.iter().flatten() {
        let oid = parse_oid(entry.oid.get_ref())
            .map_err(|m| fail(entry.oid.span(), m))
            .ok();
        let cps = match &entry.cps {
            None => Some(None),
            Some(uri) => parse_cps_uri(uri.get_ref())
                .map(Some)
                .map_err(|m| fail(uri.span(), m))
                .ok(),
        };
        if let (Some(oid), Some(cps)) = (oid, cps) {
            // RFC 5280 §4.2.1.4: a policy OID appears at most once.
            if policies.iter().any(|p| p.oid == oid) {
                fail(
                    entry.oid.span(),
                    format!("policy `{oid}` is listed twice; RFC 5280 allows each policy once"),
                );
            }
            policies.push(CertificatePolicy { oid, cps });
        }
    }
    policies
}

/// The entries of an optional list with the list's span (for line numbers).
fn spanned_list(
    list: &Option<toml::Spanned<Vec<String>>>,
) -> impl Iterator<Item = (&str, Range<usize>)> {
    list.iter()
        .flat_map(|l| l.get_ref().iter().map(move |s| (s.as_str(), l.span())))
}

#[cfg(test)]
#[path = "procedure_tests.rs"]
mod tests;
