//! `[[ca]]` (the configured CAs, their keys and delegated OCSP responders), and the validity of
//! what they publish: `[crl]` and `[ocsp]`.

use std::time::Duration;

use super::super::toml_file::{CaFile, GatewayFile, TomlText};
use super::super::{ConfigErrors, Diagnostics, Root};
use super::{CaConfig, CrlConfig, GatewayConfig, OcspConfig, UnknownSerials, parse_duration};

/// The name that means the officers CA when no `[[ca]]` carries `role = "officers"` (roots
/// written before the role existed).
pub const OFFICERS_CA_NAME: &str = "officers";

/// What a `[[ca]]` is besides a CA: `role = "officers"` makes it the one that issues officer
/// client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaRole {
    Officers,
}

impl CaRole {
    /// Parses the configured name.
    pub fn parse(text: &str) -> Result<CaRole, String> {
        match text {
            "officers" => Ok(CaRole::Officers),
            other => Err(format!(
                "role `{other}`: the only role is \"officers\" (the CA that issues officer \
                 client certificates)"
            )),
        }
    }
}

impl GatewayConfig {
    /// The CA that issues officer certificates: the `[[ca]]` with `role = "officers"`, else
    /// the one named `officers`; `None` when neither is configured.
    pub fn officers_ca(&self) -> Option<&str> {
        self.cas
            .iter()
            .find(|c| c.role == Some(CaRole::Officers))
            .or_else(|| self.cas.iter().find(|c| c.name == OFFICERS_CA_NAME))
            .map(|c| c.name.as_str())
    }
}

/// `[[ca]]`: names unique, parents configured, OCSP delegate complete.
pub(super) fn cas(
    root: &Root,
    files: &[CaFile],
    toml: &TomlText,
) -> Result<Vec<CaConfig>, ConfigErrors> {
    let mut diagnostics = Diagnostics::default();
    let mut cas: Vec<CaConfig> = Vec::new();
    for ca in files {
        let name = ca.name.get_ref();
        if cas.iter().any(|c| &c.name == name) {
            diagnostics.push(toml.error(
                ca.name.span(),
                "ca.name",
                format!("CA `{name}` is defined twice"),
            ));
        }
        let ocsp_delegate = match (&ca.ocsp_certificate, &ca.ocsp_key) {
            (Some(c), Some(k)) => Some((root.resolve(c.get_ref()), root.resolve(k))),
            (None, None) => None,
            _ => {
                diagnostics.push(toml.error(
                    ca.ocsp_certificate.as_ref().map_or(ca.name.span(), |c| c.span()),
                    &format!("ca.{name}.ocsp_certificate"),
                    "ocsp_certificate and ocsp_key go together (a delegated OCSP responder needs both)",
                ));
                None
            }
        };
        let unknown_serials = match &ca.unknown_serials {
            None => UnknownSerials::default(),
            Some(value) => UnknownSerials::parse(value.get_ref()).unwrap_or_else(|m| {
                diagnostics.push(toml.error(
                    value.span(),
                    &format!("ca.{name}.unknown_serials"),
                    m,
                ));
                UnknownSerials::default()
            }),
        };
        let role = ca.role.as_ref().and_then(|value| {
            CaRole::parse(value.get_ref())
                .map_err(|m| {
                    diagnostics.push(toml.error(value.span(), &format!("ca.{name}.role"), m))
                })
                .ok()
        });
        let subject_order = match &ca.subject_order {
            None => Vec::new(),
            Some(list) => crate::ca::parse_subject_order(list.get_ref()).unwrap_or_else(|m| {
                diagnostics.push(toml.error(list.span(), &format!("ca.{name}.subject_order"), m));
                Vec::new()
            }),
        };
        cas.push(CaConfig {
            name: name.clone(),
            certificate: root.resolve(&ca.certificate),
            key: root.resolve(&ca.key),
            pkcs11: ca.key.starts_with("pkcs11:").then(|| ca.key.clone()),
            parent: ca.parent.as_ref().map(|p| p.get_ref().clone()),
            key_passphrase_env: ca.key_passphrase_env.clone(),
            key_passphrase_encrypted: ca.key_passphrase_encrypted.clone(),
            ocsp_delegate,
            unknown_serials,
            role,
            subject_order,
        });
    }
    let officers: Vec<&CaFile> = files
        .iter()
        .filter(|c| c.role.as_ref().is_some_and(|r| r.get_ref() == "officers"))
        .collect();
    if let [_, second, ..] = officers.as_slice()
        && let Some(role) = &second.role
    {
        diagnostics.push(toml.error(
            role.span(),
            "ca.role",
            format!(
                "only one CA may have role = \"officers\" (it issues new officer certificates); \
                 `{}` and `{}` both do. A replaced officers CA keeps revoking its officers \
                 without the role",
                officers[0].name.get_ref(),
                second.name.get_ref()
            ),
        ));
    }
    for ca in files {
        if let Some(parent) = &ca.parent
            && !cas.iter().any(|c| &c.name == parent.get_ref())
        {
            diagnostics.push(toml.error(
                parent.span(),
                "ca.parent",
                format!(
                    "CA `{}` names parent `{}`, which is not configured",
                    ca.name.get_ref(),
                    parent.get_ref()
                ),
            ));
        }
    }
    diagnostics.finish(cas)
}

/// `[crl]`: the validity (default 7 days), at least 10 minutes.
pub(super) fn crl(file: &GatewayFile, toml: &TomlText, diagnostics: &mut Diagnostics) -> CrlConfig {
    let crl_validity = validity(&file.crl.validity, "crl.validity", toml, diagnostics);
    if crl_validity.is_some_and(|v| v < Duration::from_secs(600)) {
        diagnostics.push(toml.error(
            file.crl.validity.span(),
            "crl.validity",
            "a CRL validity below 10 minutes leaves relying parties no time; use e.g. 1d or 7d",
        ));
    }
    CrlConfig {
        validity: crl_validity.unwrap_or(Duration::from_secs(7 * 86_400)),
    }
}

/// `[ocsp]`: on or off, and the validity of responses (default 1 hour).
pub(super) fn ocsp(
    file: &GatewayFile,
    toml: &TomlText,
    diagnostics: &mut Diagnostics,
) -> OcspConfig {
    let ocsp_validity = validity(&file.ocsp.validity, "ocsp.validity", toml, diagnostics);
    OcspConfig {
        enabled: file.ocsp.enabled,
        validity: ocsp_validity.unwrap_or(Duration::from_secs(3_600)),
    }
}

/// A duration under `key`; `None` (reported) when it does not parse.
fn validity(
    value: &toml::Spanned<String>,
    key: &str,
    toml: &TomlText,
    diagnostics: &mut Diagnostics,
) -> Option<Duration> {
    parse_duration(value.get_ref())
        .map_err(|m| diagnostics.push(toml.error(value.span(), key, m)))
        .ok()
}
