//! The JSON of the certificate database operations: a certificate as recorded, its details,
//! pages and their filters, the serial in a path, and the revoke and reinstate requests.

use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::ca::Serial;
use crate::issuance::encode_cursor;
use crate::store::{CertificatePage, CertificateRecord};

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

/// The issuer of a certificate (DER) in the one display style (`crate::ca::display_name`).
fn issuer_of(der: &[u8]) -> Option<String> {
    let certificate = <x509_cert::Certificate as der::Decode>::from_der(der).ok()?;
    Some(crate::ca::display_name(
        certificate.tbs_certificate().issuer(),
    ))
}

impl From<&CertificateRecord> for Certificate {
    fn from(c: &CertificateRecord) -> Self {
        Certificate {
            serial: c.serial.to_string(),
            subject: c.subject.clone(),
            // Rows written before names had one style kept the issuer's RFC 4514 text: the
            // certificate itself says who issued it, in the style of `subject`.
            issuer: issuer_of(&c.der).unwrap_or_else(|| c.issuer.clone()),
            ca: c.ca.clone(),
            sans: c.sans.clone(),
            purpose: c.purpose.clone(),
            status: match c.status {
                crate::store::CertificateStatus::Good => Status::Good,
                crate::store::CertificateStatus::Revoked => Status::Revoked,
            },
            not_before: Timestamp::from_unix(c.not_before).to_string(),
            not_after: Timestamp::from_unix(c.not_after).to_string(),
            token_id: c.token_id.clone(),
            revoked_at: c.revoked_at.map(|t| Timestamp::from_unix(t).to_string()),
            revocation_reason: c.revocation_reason.map(|r| r.to_string()),
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
    /// Pass as `cursor` for the next page; `null` on the last page.
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
    /// Signed writes: when the body was signed (RFC 3339); see `X-Officer-Signature`. The
    /// domain reads it from the signed bytes themselves.
    #[serde(rename = "signedAt")]
    #[allow(dead_code)]
    pub signed_at: Option<String>,
    /// Signed writes: any text that makes an otherwise equal body new.
    #[schema(max_length = 256)]
    #[allow(dead_code)]
    pub nonce: Option<String>,
}

/// `POST certificates/reinstate` (only a certificate on hold).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReinstateBody {
    /// Certificate serial, hex.
    #[schema(pattern = "^[0-9A-Fa-f]{1,128}$")]
    pub serial: String,
    /// Signed writes: when the body was signed (RFC 3339); see `X-Officer-Signature`. The
    /// domain reads it from the signed bytes themselves.
    #[serde(rename = "signedAt")]
    #[allow(dead_code)]
    pub signed_at: Option<String>,
    /// Signed writes: any text that makes an otherwise equal body new.
    #[schema(max_length = 256)]
    #[allow(dead_code)]
    pub nonce: Option<String>,
}

/// Parses a serial from a body or path.
pub fn serial(text: &str, field: &str) -> Result<Serial, crate::issuance::IssuanceError> {
    Serial::parse(text).map_err(|_| {
        crate::issuance::IssuanceError::BadRequest(format!(
            "`{field}` is not a serial number; write it in hex, e.g. 0abc01"
        ))
    })
}
