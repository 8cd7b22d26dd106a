//! The API's JSON: request and response bodies with their OpenAPI schemas (utoipa), and the
//! conversions from domain types. Requests refuse unknown fields; timestamps are RFC 3339
//! (ISO 8601) in UTC.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::ca::Serial;
use crate::issuance::{SoftToken, encode_cursor};
use crate::rules::{Handler, RequiredRoles, TokenProcedure};
use crate::store::{CertificatePage, CertificateRecord};

/// Most identity fields one request may carry.
pub const MAX_FIELDS: usize = 64;

/// RFC 3339 in UTC (`2026-12-01T10:00:00Z`).
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

/// Identity fields as a JSON object of strings. Kept as pairs in the order sent, duplicates
/// included, so that the format's header hygiene (a name given twice, `_` twins) applies to
/// them exactly as to identity headers.
#[derive(Debug, Default)]
pub struct Fields(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an object of at most {MAX_FIELDS} string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut fields = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, String>()? {
                    if fields.len() == MAX_FIELDS {
                        return Err(serde::de::Error::custom(format!(
                            "more than {MAX_FIELDS} fields"
                        )));
                    }
                    fields.push((name, value));
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// `POST softtokens`. The fields go through the chosen AST handler's format, modifiers and
/// verifiers exactly as identity headers do.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(example = json!({"tokenProcedure": "default", "password": "Secret-123", "fields": {"commonname": "Alice Andersson", "country": "SE", "email": "alice@example.com"}}))]
pub struct SoftTokenBody {
    /// Token procedure: the first AST handler issuing it is used (GET tokenprocedures).
    #[schema(max_length = 256)]
    pub token_procedure: Option<String>,
    /// AST handler, chosen as the form endpoint's path `/pgwy/ast/<handler>` would choose it
    /// (GET handlers). Neither given: the handler of `/pgwy/ast`.
    #[schema(max_length = 256)]
    pub handler: Option<String>,
    /// The PKCS#12 password (the handler's PIN policy applies). Never logged or stored.
    #[schema(format = Password)]
    pub password: String,
    /// PKCS#12 profile (`modern`, `legacy`, `pbmac1`), if the handler offers a choice.
    pub profile: Option<String>,
    /// Identity fields by name, as the handler's format reads identity headers.
    #[serde(default)]
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub fields: Fields,
}

/// One certificate of an issued token.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedCertificate {
    /// Lower-case hex.
    pub serial: String,
    pub subject: String,
    pub purpose: String,
    #[schema(format = DateTime)]
    pub not_before: String,
    #[schema(format = DateTime)]
    pub not_after: String,
}

/// An issued soft token, with `Accept: application/json`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SoftTokenJson {
    pub token_id: String,
    /// Suggested file name.
    pub filename: String,
    /// PKCS#12 profile it was written with.
    pub profile: String,
    /// The PKCS#12 file, base64 (the combined layout; absent for a per-purpose procedure).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(content_encoding = "base64")]
    pub pkcs12: Option<String>,
    /// Every PKCS#12 file of the token: one for the combined layout, one per certificate (same
    /// password) for a per-purpose procedure.
    pub files: Vec<TokenFileJson>,
    pub certificates: Vec<IssuedCertificate>,
}

/// One PKCS#12 file of a token.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenFileJson {
    /// Suggested file name.
    pub name: String,
    /// The purpose of the file's one certificate; absent for the combined file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The PKCS#12 file, base64.
    #[schema(content_encoding = "base64")]
    pub pkcs12: String,
}

impl From<&SoftToken> for SoftTokenJson {
    fn from(token: &SoftToken) -> Self {
        use base64::Engine;
        SoftTokenJson {
            token_id: token.token_id.clone(),
            filename: token.filename.clone(),
            profile: token.profile.name().to_string(),
            pkcs12: (!token.pkcs12.is_empty())
                .then(|| base64::engine::general_purpose::STANDARD.encode(&token.pkcs12)),
            files: token
                .files
                .iter()
                .map(|f| TokenFileJson {
                    name: f.name.clone(),
                    purpose: f.purpose.clone(),
                    pkcs12: base64::engine::general_purpose::STANDARD.encode(&f.pkcs12),
                })
                .collect(),
            certificates: token
                .certificates
                .iter()
                .map(|c| IssuedCertificate {
                    serial: c.serial.clone(),
                    subject: c.subject.clone(),
                    purpose: c.purpose.clone(),
                    not_before: rfc3339(c.not_before),
                    not_after: rfc3339(c.not_after),
                })
                .collect(),
        }
    }
}

/// Certificate status.
#[derive(Deserialize, Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Good,
    Revoked,
}

/// An issued certificate as the database records it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    /// Lower-case hex.
    pub serial: String,
    pub subject: String,
    pub issuer: String,
    /// The issuing CA's configured name.
    pub ca: String,
    /// Subject alternative names, `email:…`, `DNS:…`, `UPN:…`, `URI:…`.
    pub sans: Vec<String>,
    pub purpose: String,
    pub status: Status,
    #[schema(format = DateTime)]
    pub not_before: String,
    #[schema(format = DateTime)]
    pub not_after: String,
    pub token_id: String,
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
    /// RFC 5280 reason name (`certificateHold` while on hold).
    pub revocation_reason: Option<String>,
}

impl From<&CertificateRecord> for Certificate {
    fn from(c: &CertificateRecord) -> Self {
        Certificate {
            serial: c.serial.clone(),
            subject: c.subject.clone(),
            issuer: c.issuer.clone(),
            ca: c.ca.clone(),
            sans: c.sans.clone(),
            purpose: c.purpose.clone(),
            status: match c.status {
                crate::store::CertificateStatus::Good => Status::Good,
                crate::store::CertificateStatus::Revoked => Status::Revoked,
            },
            not_before: rfc3339(c.not_before),
            not_after: rfc3339(c.not_after),
            token_id: c.token_id.clone(),
            revoked_at: c.revoked_at.map(rfc3339),
            revocation_reason: c.revocation_reason.clone(),
        }
    }
}

/// One certificate with its fingerprint and PEM.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateDetails {
    #[serde(flatten)]
    pub certificate: Certificate,
    /// SHA-256 of the DER, lower-case hex.
    pub sha256_fingerprint: String,
    /// The certificate, PEM.
    pub pem: String,
}

impl From<&CertificateRecord> for CertificateDetails {
    fn from(c: &CertificateRecord) -> Self {
        use sha2::Digest;
        CertificateDetails {
            certificate: c.into(),
            sha256_fingerprint: hex::encode(sha2::Sha256::digest(&c.der)),
            pem: crate::ca::pem_certificate(&c.der),
        }
    }
}

/// A page of certificates, newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateList {
    pub certificates: Vec<Certificate>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl From<&CertificatePage> for CertificateList {
    fn from(page: &CertificatePage) -> Self {
        CertificateList {
            certificates: page.certificates.iter().map(Certificate::from).collect(),
            next_cursor: page.next.as_ref().map(encode_cursor),
        }
    }
}

/// `GET certificates` filters. Bounds are inclusive.
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Case-insensitive substring of the subject DN.
    #[param(max_length = 256)]
    pub subject: Option<String>,
    /// Exact serial, hex (colons and leading zeros allowed).
    #[param(pattern = "^[0-9A-Fa-f]{1,128}$")]
    pub serial: Option<String>,
    pub status: Option<Status>,
    /// Exact purpose (e.g. `authentication`, `signing`).
    #[param(max_length = 256)]
    pub purpose: Option<String>,
    /// notBefore at or after (RFC 3339).
    #[param(format = DateTime)]
    pub issued_after: Option<String>,
    /// notBefore at or before (RFC 3339).
    #[param(format = DateTime)]
    pub issued_before: Option<String>,
    /// notAfter at or after (RFC 3339).
    #[param(format = DateTime)]
    pub expiring_after: Option<String>,
    /// notAfter at or before (RFC 3339).
    #[param(format = DateTime)]
    pub expiring_before: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    #[param(max_length = 256)]
    pub cursor: Option<String>,
}

/// The serial in a certificate path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SerialPath {
    /// Certificate serial, hex (colons and leading zeros allowed).
    #[param(pattern = "^[0-9A-Fa-f]{1,128}$")]
    pub serial: String,
}

/// RFC 5280 revocation reasons (`certificateHold` puts a certificate on hold).
#[derive(Deserialize, ToSchema, Clone, Copy)]
pub enum Reason {
    #[serde(rename = "unspecified")]
    Unspecified,
    #[serde(rename = "keyCompromise")]
    KeyCompromise,
    #[serde(rename = "cACompromise")]
    CaCompromise,
    #[serde(rename = "affiliationChanged")]
    AffiliationChanged,
    #[serde(rename = "superseded")]
    Superseded,
    #[serde(rename = "cessationOfOperation")]
    CessationOfOperation,
    #[serde(rename = "certificateHold")]
    CertificateHold,
    #[serde(rename = "privilegeWithdrawn")]
    PrivilegeWithdrawn,
    #[serde(rename = "aACompromise")]
    AaCompromise,
}

impl From<Reason> for crate::ca::RevocationReason {
    fn from(r: Reason) -> Self {
        use crate::ca::RevocationReason as R;
        match r {
            Reason::Unspecified => R::Unspecified,
            Reason::KeyCompromise => R::KeyCompromise,
            Reason::CaCompromise => R::CaCompromise,
            Reason::AffiliationChanged => R::AffiliationChanged,
            Reason::Superseded => R::Superseded,
            Reason::CessationOfOperation => R::CessationOfOperation,
            Reason::CertificateHold => R::CertificateHold,
            Reason::PrivilegeWithdrawn => R::PrivilegeWithdrawn,
            Reason::AaCompromise => R::AaCompromise,
        }
    }
}

/// `POST certificates/revoke`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"serial": "3f0c9a", "reason": "keyCompromise"}))]
pub struct RevokeBody {
    /// Certificate serial, hex.
    #[schema(pattern = "^[0-9A-Fa-f]{1,128}$")]
    pub serial: String,
    pub reason: Reason,
}

/// `POST certificates/reinstate` (only a certificate on hold).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReinstateBody {
    /// Certificate serial, hex.
    #[schema(pattern = "^[0-9A-Fa-f]{1,128}$")]
    pub serial: String,
}

/// Parses a serial from a body or path.
pub fn serial(text: &str, field: &str) -> Result<Serial, crate::issuance::IssuanceError> {
    Serial::parse(text).map_err(|_| {
        crate::issuance::IssuanceError::BadRequest(format!(
            "`{field}` is not a serial number; write it in hex, e.g. 0abc01"
        ))
    })
}

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

/// The error object.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// Stable code (also in the X-Ast-Error header), e.g. `missing-role`, `bad-request`.
    pub code: String,
    /// What is wrong and what would be right, for an operator.
    pub message: String,
    /// The request id (also in X-Request-Id), to find the audit record and the log line.
    pub request_id: String,
    /// `already-issued`: the token the Idempotency-Key issued.
    pub token_id: Option<String>,
    /// `already-issued`: the serials of that token's certificates.
    pub serials: Option<Vec<String>>,
}

/// Every refusal: `{"error": {"code", "message", "requestId"}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}
