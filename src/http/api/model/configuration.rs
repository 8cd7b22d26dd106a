//! The JSON of the configuration operations: token procedures and AST handlers in effect.

use serde::Serialize;
use utoipa::ToSchema;

use crate::rules::{Handler, RequiredRoles, TokenProcedure};

/// One certificate of a token procedure.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcedureCertificate {
    pub purpose: String,
    /// Issuing CA.
    pub ca: String,
    /// Key type (`rsa-2048`, `ec-p256`, …).
    pub key: String,
    pub validity_days: u64,
    /// Extended key usages (OIDs).
    pub extended_key_usage: Vec<String>,
}

/// A token procedure: the certificates a token holds.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Procedure {
    pub name: String,
    pub certificates: Vec<ProcedureCertificate>,
}

/// `GET tokenprocedures`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcedureList {
    pub token_procedures: Vec<Procedure>,
}

impl From<&TokenProcedure> for Procedure {
    fn from(p: &TokenProcedure) -> Self {
        Procedure {
            name: p.name.clone(),
            certificates: p
                .certificates
                .iter()
                .map(|c| ProcedureCertificate {
                    purpose: c.purpose.clone(),
                    ca: c.ca.clone(),
                    key: c.key.to_string(),
                    validity_days: c.validity.as_secs() / 86_400,
                    extended_key_usage: c
                        .extended_key_usage
                        .iter()
                        .map(|o| o.to_string())
                        .collect(),
                })
                .collect(),
        }
    }
}

/// One format field of a handler: where a value comes from and where it lands.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldMapping {
    /// `formatFields.<index>`.
    pub index: u32,
    /// e.g. `ast.valuetarget.commonname.value`.
    pub target: String,
    /// The source as written (a field/header name, a "literal", `cert:…`); absent when the
    /// field is disabled.
    pub source: Option<String>,
    /// Modifiers and verifiers, in order.
    pub modules: Vec<String>,
    /// Where it is defined (`file:line`).
    pub defined_at: String,
}

/// The PIN policy of a handler.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PinPolicy {
    pub min_length: usize,
    pub max_length: usize,
}

/// An AST handler: what it maps, as `config explain` shows.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HandlerView {
    pub number: u32,
    /// Regular expression over the path after /pgwy/ast/ (also `handler` of POST softtokens).
    pub filter: String,
    pub format: String,
    pub token_procedure: String,
    /// Who may call it through the form endpoint, in words.
    pub trust: String,
    /// Officer roles of the form endpoint (`none`: any officer), absent for proxy handlers.
    pub required_ro_roles: Option<String>,
    pub password_policy: PinPolicy,
    pub pkcs12_profile: String,
    pub pkcs12_profiles: Vec<String>,
    pub fields: Vec<FieldMapping>,
}

/// `GET handlers`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HandlerList {
    pub handlers: Vec<HandlerView>,
}

impl From<&Handler> for HandlerView {
    fn from(h: &Handler) -> Self {
        HandlerView {
            number: h.number,
            filter: h.filter_source.clone(),
            format: h.format.clone(),
            token_procedure: h.token_procedure.clone(),
            trust: h.trust_description(),
            required_ro_roles: h.required_roles.as_ref().map(|r| match r {
                RequiredRoles::AnyCertificate => "none".to_string(),
                RequiredRoles::All(roles) => roles.join(","),
            }),
            password_policy: PinPolicy {
                min_length: h.password_policy.min_length,
                max_length: h.password_policy.max_length,
            },
            pkcs12_profile: h.pkcs12_profile.name().to_string(),
            pkcs12_profiles: h
                .pkcs12_profiles
                .iter()
                .map(|p| p.name().to_string())
                .collect(),
            fields: h
                .fields
                .iter()
                .map(|f| FieldMapping {
                    index: f.index,
                    target: f.target.to_string(),
                    source: f.source.as_ref().map(|s| s.syntax()),
                    modules: f.modules.iter().map(|m| m.describe()).collect(),
                    // The file name only: paths of the host never reach a response.
                    defined_at: format!(
                        "{}:{}",
                        std::path::Path::new(&f.origin.file)
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        f.origin.line
                    ),
                })
                .collect(),
        }
    }
}
