//! EST (RFC 7030), the third front door: the same handlers, pipeline, rate limits, database
//! writer and audit as the form and the REST API, for clients that bring a certification
//! request (or ask for a server-generated key) instead of a PIN.
//!
//! This file holds the requests and answers, the refusals EST adds, and the operations that
//! make nothing (`cacerts`, `csrattrs`); `enroll` runs simpleenroll, simplereenroll and
//! serverkeygen; `csr` reads and checks the certification request (proof of possession);
//! `secret` checks HTTP Basic secrets; `attributes` says what a CSR should hold; `explain`
//! serves `config explain` for EST paths; `sealed_key` encrypts a server-generated key to the
//! client and signs it (RFC 7030 §4.4.2).

mod attributes;
mod csr;
mod enroll;
mod explain;
mod sealed_key;
mod secret;

use std::fmt;

use zeroize::Zeroizing;

pub use explain::est_remainder;
pub(crate) use explain::explain_est;
pub use secret::hash_secret;

use super::{Code, Gateway, IssuanceError};
use crate::identity::Connection;
use crate::policy::IdentityHeaders;
use crate::rules::{Handler, Rules};

/// What every EST call carries.
#[derive(Debug, Clone)]
pub struct EstCall {
    pub connection: Connection,
    /// `/.well-known/est/<label>/…`; `None` for `/.well-known/est/…`.
    pub label: Option<String>,
    /// The request came over this service's own TLS listener.
    pub over_tls: bool,
    pub request_id: String,
}

impl EstCall {
    /// The path of `operation` for this call, as audited.
    pub fn path(&self, operation: &str) -> String {
        match &self.label {
            Some(label) => format!("/.well-known/est/{label}/{operation}"),
            None => format!("/.well-known/est/{operation}"),
        }
    }
}

/// The EST operations that issue a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EstOperation {
    /// `simpleenroll`: the client's key, in its CSR.
    Enroll,
    /// `simplereenroll`: a new certificate (same subject) for the holder of one we issued.
    Reenroll,
    /// `serverkeygen`: a key made here per the token procedure, and its certificate.
    ServerKeygen,
}

impl EstOperation {
    /// The operation's path segment.
    pub fn name(self) -> &'static str {
        match self {
            EstOperation::Enroll => "simpleenroll",
            EstOperation::Reenroll => "simplereenroll",
            EstOperation::ServerKeygen => "serverkeygen",
        }
    }
}

/// HTTP Basic credentials as sent. The password is zeroised on drop and never printed.
pub struct BasicCredentials {
    pub user: String,
    pub password: Zeroizing<String>,
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("user", &self.user)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// An enrolment request as the HTTP layer hands it over. A body or header it could not read is
/// handed over as `Err`, so that its refusal is audited like every other.
#[derive(Debug)]
pub struct EstRequest {
    pub call: EstCall,
    pub operation: EstOperation,
    pub headers: IdentityHeaders,
    /// `Authorization: Basic …`, if sent.
    pub basic: Result<Option<BasicCredentials>, IssuanceError>,
    /// The certification request, DER.
    pub csr: Result<Vec<u8>, IssuanceError>,
}

/// A certificate issued through EST (committed to the database before it is returned).
#[derive(Debug)]
pub struct EstIssued {
    /// The new certificate, DER.
    pub certificate: Vec<u8>,
    /// For serverkeygen: the private key as delivered.
    pub private_key: Option<DeliveredKey>,
}

/// A server-generated private key as serverkeygen delivers it.
pub enum DeliveredKey {
    /// PKCS#8 DER (zeroised on drop), protected by TLS only (`application/pkcs8`).
    Pkcs8(Zeroizing<Vec<u8>>),
    /// Encrypted to the client, DER CMS ContentInfo: SignedData (by the issuing CA) over
    /// EnvelopedData over an AsymmetricKeyPackage
    /// (`application/pkcs7-mime; smime-type=server-generated-key`).
    Encrypted(Vec<u8>),
}

impl fmt::Debug for DeliveredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveredKey::Pkcs8(_) => f.write_str("Pkcs8([redacted])"),
            DeliveredKey::Encrypted(der) => write!(f, "Encrypted({} bytes)", der.len()),
        }
    }
}

/// The largest certification request accepted, DER (an RSA-4096 CSR with a few SANs is
/// about 2 KiB).
pub const MAX_CSR_BYTES: usize = 16 * 1024;

/// Refusals only EST has. Messages name the rule, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum EstRefusal {
    #[error(
        "this EST service needs HTTP Basic credentials (its user name and secret); none were sent"
    )]
    NoCredentials,
    #[error("the HTTP Basic user name or secret is wrong")]
    BadCredentials,
    #[error("the Authorization header is not HTTP Basic credentials (base64 of user:secret)")]
    MalformedCredentials,
    #[error(
        "HTTP Basic credentials are accepted over HTTPS only (this listener's, or a trusted front's that terminates TLS)"
    )]
    PlainHttp,
    #[error(
        "simplereenroll is authenticated by the certificate being renewed: present it as the TLS client certificate"
    )]
    NoCertificate,
    #[error("the certificate being renewed (serial {0}) was not issued by this service")]
    UnknownCertificate(String),
    #[error("the certificate being renewed (serial {0}) is revoked; enrol anew")]
    Revoked(String),
    #[error("the certificate being renewed (serial {serial}) expired on {date}; enrol anew")]
    Expired { serial: String, date: String },
    #[error(
        "the certificate being renewed (serial {serial}) was issued by CA `{ca}`, not by this EST service's CA `{expected}`"
    )]
    OtherCa {
        serial: String,
        ca: String,
        expected: String,
    },
    #[error(
        "the CSR's subject and subjectAltName must be those of the certificate being renewed (RFC 7030 §4.2.2)"
    )]
    SubjectChanged,
    #[error("the certification request: {0}")]
    Csr(String),
    #[error("the CSR's key is {found}; this EST service certifies {expected} keys")]
    KeyType { found: String, expected: String },
    #[error(
        "the CSR asks for the server-generated key encrypted to the key with identifier {id} (AsymmetricDecryptKeyIdentifier), but no TLS client certificate was presented; present the certificate of that key (mTLS), or leave the attribute out"
    )]
    NoRecipientCertificate { id: String },
    #[error(
        "the CSR asks for the server-generated key encrypted to the key with identifier {id} (AsymmetricDecryptKeyIdentifier), but the TLS client certificate's key identifier is {presented}; present the certificate of that key"
    )]
    RecipientMismatch { id: String, presented: String },
    #[error(
        "the server-generated key cannot be encrypted to the TLS client certificate's key ({0}); use a certificate with an RSA or EC P-256/P-384 key"
    )]
    RecipientKeyType(String),
    #[error(
        "the CSR asks for the server-generated key encrypted under the key-encryption key `{0}` (DecryptKeyIdentifier), which this EST service does not have (est.keks)"
    )]
    UnknownKek(String),
    #[error(
        "the encrypted key would be signed by CA `{0}`, whose certificate's key usage lacks digitalSignature; ask for the key without encryption (protected by TLS)"
    )]
    SignerKeyUsage(String),
}

impl EstRefusal {
    /// The stable code of the refusal.
    pub fn code(&self) -> Code {
        match self {
            EstRefusal::NoCredentials
            | EstRefusal::BadCredentials
            | EstRefusal::MalformedCredentials
            | EstRefusal::NoCertificate => Code::Unauthenticated,
            EstRefusal::PlainHttp
            | EstRefusal::UnknownCertificate(_)
            | EstRefusal::Revoked(_)
            | EstRefusal::Expired { .. }
            | EstRefusal::OtherCa { .. } => Code::UntrustedCaller,
            EstRefusal::SubjectChanged
            | EstRefusal::Csr(_)
            | EstRefusal::KeyType { .. }
            | EstRefusal::NoRecipientCertificate { .. }
            | EstRefusal::RecipientMismatch { .. }
            | EstRefusal::RecipientKeyType(_)
            | EstRefusal::UnknownKek(_)
            | EstRefusal::SignerKeyUsage(_) => Code::BadRequest,
        }
    }

    /// Whether the answer should invite HTTP Basic credentials (`WWW-Authenticate: Basic`).
    pub fn asks_for_basic(error: &IssuanceError) -> bool {
        matches!(
            error,
            IssuanceError::Est(
                EstRefusal::NoCredentials
                    | EstRefusal::BadCredentials
                    | EstRefusal::MalformedCredentials
            )
        )
    }
}

/// The handler serving EST for `label`, or why there is none.
pub(crate) fn est_select<'r>(
    rules: &'r Rules,
    label: Option<&str>,
) -> Result<&'r Handler, IssuanceError> {
    if !rules.enabled {
        return Err(IssuanceError::Disabled);
    }
    rules.est_handler(label).ok_or_else(|| {
        IssuanceError::NotFound(match label {
            Some(label) => format!("no handler serves the EST label `{label}` (est.label)"),
            None => "no handler serves /.well-known/est/ (est.default = true)".into(),
        })
    })
}

impl Gateway {
    /// `cacerts`: the certificates of the CA that signs this EST service's certificates, that
    /// CA first, up to its root. Anyone may ask (RFC 7030 §4.1.1).
    pub async fn est_cacerts(&self, call: &EstCall) -> Result<Vec<Vec<u8>>, IssuanceError> {
        let result = (|| {
            let rules = self.rules();
            let handler = est_select(&rules, call.label.as_deref())?;
            let template = enroll::template_of(&rules, handler)?;
            let ca = self
                .cas
                .get(&template.ca)
                .ok_or_else(|| super::Unavailable::CaNotLoaded(template.ca.clone()))?;
            Ok(ca.chain().to_vec())
        })();
        match result {
            Ok(chain) => Ok(chain),
            Err(e) => Err(self.refuse_est(call, "cacerts", e).await),
        }
    }

    /// `csrattrs`: what a CSR for this service should hold (DER `CsrAttrs`).
    pub async fn est_csrattrs(&self, call: &EstCall) -> Result<Vec<u8>, IssuanceError> {
        let result = (|| {
            let rules = self.rules();
            let handler = est_select(&rules, call.label.as_deref())?;
            let template = enroll::template_of(&rules, handler)?;
            attributes::csr_attributes(handler, template)
        })();
        match result {
            Ok(der) => Ok(der),
            Err(e) => Err(self.refuse_est(call, "csrattrs", e).await),
        }
    }

    /// Audits a refusal of an EST call (also those the HTTP layer decides: an unknown
    /// operation, a wrong method) and returns it.
    pub async fn refuse_est(
        &self,
        call: &EstCall,
        operation: &str,
        error: IssuanceError,
    ) -> IssuanceError {
        let rules = self.rules();
        let label = rules
            .est_handler(call.label.as_deref())
            .map_or("est".to_string(), |h| format!("handler.{}", h.number));
        let path: String = call.path(operation).chars().take(256).collect();
        self.record_refusal(&call.connection, &path, &label, &call.request_id, error)
            .await
    }
}
