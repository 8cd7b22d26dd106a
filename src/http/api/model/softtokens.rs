//! The JSON of `POST softtokens`: the request with its identity fields, and the issued token.

use crate::timestamp::Timestamp;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::issuance::SoftToken;

/// Most identity fields one request may carry.
pub const MAX_FIELDS: usize = 64;

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
    /// Signed writes: when the body was signed (RFC 3339); see `X-Officer-Signature`.
    pub signed_at: Option<String>,
    /// Signed writes: any text that makes an otherwise equal body new.
    #[schema(max_length = 256)]
    pub nonce: Option<String>,
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
                    serial: c.serial.to_string(),
                    subject: c.subject.clone(),
                    purpose: c.purpose.clone(),
                    not_before: Timestamp::from_unix(c.not_before).to_string(),
                    not_after: Timestamp::from_unix(c.not_after).to_string(),
                })
                .collect(),
        }
    }
}
