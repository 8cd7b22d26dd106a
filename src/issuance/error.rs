//! The one domain error type, with its stable codes (the `X-Ast-Error` header).

use crate::identity::TrustError;
use crate::policy::PolicyError;
use crate::token::PinError;

/// Everything a soft-token request can end in, apart from success.
#[derive(Debug, thiserror::Error)]
pub enum IssuanceError {
    #[error("no handler matches this path")]
    NoHandler,
    #[error("the AST service is disabled (start = false)")]
    Disabled,
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Password(#[from] PinError),
    #[error("{0}")]
    BadRequest(String),
    #[error("the request body is too large")]
    TooLarge,
    /// The value of a field cannot be encoded (e.g. a serialNumber outside PrintableString).
    #[error("field `{attribute}`: {message}")]
    FieldEncoding {
        attribute: &'static str,
        message: String,
    },
    /// The certificate or CA named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the current state (e.g. reinstating a certificate not on hold).
    #[error("{0}")]
    Conflict(String),
    /// Database or CA unavailable; the text is for the log only.
    #[error("the service is temporarily unavailable")]
    Unavailable(String),
    /// A bug or an impossible state; the text is for the log only.
    #[error("internal error")]
    Internal(String),
}

impl IssuanceError {
    /// The stable error code (X-Ast-Error header, JSON `code`).
    pub fn code(&self) -> &'static str {
        match self {
            IssuanceError::NoHandler => "no-handler",
            IssuanceError::Disabled => "no-handler",
            IssuanceError::Trust(TrustError::MissingRole(_)) => "missing-role",
            IssuanceError::Trust(_) => "untrusted-caller",
            IssuanceError::Policy(PolicyError::FieldMissing { .. }) => "field-missing",
            IssuanceError::Policy(PolicyError::FieldInvalid { .. }) => "field-invalid",
            IssuanceError::Policy(PolicyError::DuplicateHeader(_)) => "duplicate-header",
            IssuanceError::Policy(PolicyError::BadHeader { .. }) => "bad-header",
            IssuanceError::FieldEncoding { .. } => "field-invalid",
            IssuanceError::Password(_) => "password-policy",
            IssuanceError::BadRequest(_) => "bad-request",
            IssuanceError::NotFound(_) => "not-found",
            IssuanceError::Conflict(_) => "conflict",
            IssuanceError::TooLarge => "too-large",
            IssuanceError::Unavailable(_) => "unavailable",
            IssuanceError::Internal(_) => "internal",
        }
    }

    /// The message for the client: says what is wrong, never internal details or values.
    pub fn public_message(&self) -> String {
        match self {
            IssuanceError::Trust(TrustError::UntrustedPeer(_)) => {
                "This request did not come through a trusted authenticating proxy.".into()
            }
            other => other.to_string(),
        }
    }
}
