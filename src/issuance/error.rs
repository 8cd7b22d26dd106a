//! The one refusal type: every way a request can end other than success, with its stable
//! [`Code`]. The HTTP status of a code is chosen in `http::error::status` by an exhaustive
//! `match` (a new code does not compile until it has one); `http` presents it as an HTML page
//! or as JSON. Internal detail (SQL, file paths, task failures) is kept in typed sources for the
//! log and never reaches a client.

use std::fmt;
use std::time::Duration;

use super::signed_write::SignatureError;
use crate::ca::CaError;
use crate::identity::TrustError;
use crate::policy::PolicyError;
use crate::rules::PinError;
use crate::store::StoreError;
use crate::token::TokenError;

/// Every refusal code the outside world can see (`X-Ast-Error`, JSON `code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    UntrustedCaller,
    MissingRole,
    NoHandler,
    FieldMissing,
    FieldInvalid,
    PasswordPolicy,
    DuplicateHeader,
    BadHeader,
    /// An identity value decodes but is wrong: `(null)`, or UTF-8 read as Latin-1.
    FieldSuspicious,
    BadRequest,
    TooLarge,
    /// The request header section is too large (431; same spelling as `TooLarge`).
    HeaderTooLarge,
    /// The request body did not arrive in time (408).
    Timeout,
    /// A browser sent the form from another site (403).
    CrossSite,
    NotFound,
    Conflict,
    /// A certificate would outlive its CA (`leaf_not_after = "refuse"`) or the CA has expired:
    /// the operator must roll the CA over (503).
    CaExpiring,
    /// The issuing CA's own certificate was revoked by its parent: it issues nothing (503).
    CaRevoked,
    Unavailable,
    /// `[database] require_synchronous_replication` is set and the database commits without a
    /// synchronous standby: nothing is issued until it has one again (503).
    ReplicationRequired,
    RateLimited,
    Internal,
    /// The REST API was called without a client certificate.
    Unauthenticated,
    /// An `Idempotency-Key` was used before: the token it issued is not issued again.
    AlreadyIssued,
    MethodNotAllowed,
    UnsupportedMediaType,
    /// `[api] signed_writes = "required"` and the write carries no signature.
    SignatureRequired,
    /// The write's signature is malformed, not the officer's, or not over this body.
    BadSignature,
    /// The signed body was accepted before (403).
    ReplayedSignature,
}

impl Code {
    /// The stable spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::UntrustedCaller => "untrusted-caller",
            Code::MissingRole => "missing-role",
            Code::NoHandler => "no-handler",
            Code::FieldMissing => "field-missing",
            Code::FieldInvalid => "field-invalid",
            Code::PasswordPolicy => "password-policy",
            Code::DuplicateHeader => "duplicate-header",
            Code::BadHeader => "bad-header",
            Code::FieldSuspicious => "field-suspicious",
            Code::BadRequest => "bad-request",
            Code::TooLarge | Code::HeaderTooLarge => "too-large",
            Code::Timeout => "timeout",
            Code::CrossSite => "cross-site",
            Code::NotFound => "not-found",
            Code::Conflict => "conflict",
            Code::CaExpiring => "ca-expiring",
            Code::CaRevoked => "ca-revoked",
            Code::Unavailable => "unavailable",
            Code::ReplicationRequired => "replication-required",
            Code::RateLimited => "rate-limited",
            Code::Internal => "internal",
            Code::Unauthenticated => "unauthenticated",
            Code::AlreadyIssued => "already-issued",
            Code::MethodNotAllowed => "method-not-allowed",
            Code::UnsupportedMediaType => "unsupported-media-type",
            Code::SignatureRequired => "signature-required",
            Code::BadSignature => "bad-signature",
            Code::ReplayedSignature => "replayed-signature",
        }
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `Retry-After` of a refusal because the database failed (away, failing over, a commit
/// whose outcome is unknown): about the time a failover takes to promote a standby.
pub const STORE_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Why a dependency (database, CA key, worker pool) could not serve the request. The text is
/// for the log only.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("CA: {0}")]
    Ca(CaError),
    #[error("CA `{0}` is not loaded by the running service")]
    CaNotLoaded(String),
    #[error("the service is shutting down")]
    ShuttingDown,
    #[error("the request took longer than [limits] request_timeout_secs")]
    TimedOut,
    /// A bounded queue in front of issuance is full: shed at once instead of piling up.
    #[error("overloaded: the {queue} queue is full")]
    Overloaded { queue: Queue, retry_after: Duration },
}

/// The bounded queues in front of issuance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Queue {
    /// Requests waiting for a CPU slot (keys, signatures, PKCS#12): `[limits] issuance_queue`.
    Cpu,
    /// Made tokens waiting for the database writer: `[limits] write_queue`.
    Write,
}

impl Queue {
    /// Metric label and log word.
    pub fn as_str(self) -> &'static str {
        match self {
            Queue::Cpu => "cpu",
            Queue::Write => "write",
        }
    }
}

impl fmt::Display for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose rate limit a request exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateScope {
    Peer,
    Identity,
    Officer,
}

impl RateScope {
    /// Metric label and the word in the message.
    pub fn as_str(self) -> &'static str {
        match self {
            RateScope::Peer => "peer",
            RateScope::Identity => "identity",
            RateScope::Officer => "officer",
        }
    }
}

/// A bug or an impossible state. The text is for the log only.
#[derive(Debug, thiserror::Error)]
pub enum Internal {
    #[error("token: {0}")]
    Token(#[from] TokenError),
    #[error("CA: {0}")]
    Ca(CaError),
    #[error("a worker task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Invariant(String),
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigErrors),
}

/// Everything a request can end in, apart from success.
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
    /// The request itself is malformed; the text says what would be right.
    #[error("{0}")]
    BadRequest(String),
    #[error("the request body is too large")]
    TooLarge,
    /// The request header section is larger than `[limits] max_header_bytes`.
    #[error("the request header section is larger than {0} bytes")]
    HeaderTooLarge(usize),
    /// The request body did not arrive within `[limits] body_timeout_secs`.
    #[error("the request body did not arrive within {0} seconds")]
    BodyTimeout(u64),
    /// A browser sent the request from a page of another site (cross-site request forgery).
    #[error("{0}")]
    CrossSite(&'static str),
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
    /// No handler of api.properties serves this path (after `/pgwy/api/`).
    #[error("no handler in api.properties serves /pgwy/api/{0}")]
    NoApiHandler(String),
    /// The REST API needs a client certificate and none was presented.
    #[error("the REST API needs an officer client certificate over HTTPS, and none was presented")]
    Unauthenticated,
    /// The caller already used this `Idempotency-Key`; its token's certificates.
    #[error(
        "this Idempotency-Key was already used: token {token_id} was issued with the certificates {}; it is not issued again (the PKCS#12 is not kept)",
        serials.join(", ")
    )]
    AlreadyIssued {
        token_id: String,
        serials: Vec<String>,
    },
    #[error("the method {method} is not allowed here; the Allow header lists the methods that are")]
    MethodNotAllowed { method: String },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// A refusal only EST has (credentials, the certificate being renewed, the CSR).
    #[error(transparent)]
    Est(#[from] super::est::EstRefusal),
    /// The CA cannot sign a certificate of this validity: it expires first (and the template
    /// says `leaf_not_after = "refuse"`), or it has expired. Nothing was generated.
    #[error(
        "certificate `{purpose}` would be valid for {validity_days} days, but CA `{ca}` {ends}; \
         the operator must roll the CA over (ast-gateway ca create --replaces {ca})"
    )]
    CaLifetime {
        purpose: String,
        ca: String,
        validity_days: u64,
        /// `expires on <date> (leaf_not_after = "refuse")` or `expired on <date>`.
        ends: String,
    },
    /// The CA's own certificate is revoked (`certs revoke` of its serial): nothing was made.
    #[error(
        "CA `{ca}` cannot issue: its certificate (serial {serial}) was revoked ({reason}); \
         configure another CA for this token procedure (ast-gateway ca create --replaces {ca})"
    )]
    CaRevoked {
        ca: String,
        serial: String,
        reason: String,
    },
    #[error("the service is temporarily unavailable")]
    Unavailable(#[from] Unavailable),
    /// The caller asked for more tokens than `[limits] <scope>_per_minute` allows.
    #[error("too many requests for this {}; try again in {} s", scope.as_str(), retry_after.as_secs().max(1))]
    RateLimited {
        scope: RateScope,
        retry_after: Duration,
    },
    #[error("internal error")]
    Internal(#[from] Internal),
}

impl From<StoreError> for IssuanceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::QueueFull { retry_after } => {
                IssuanceError::Unavailable(Unavailable::Overloaded {
                    queue: Queue::Write,
                    retry_after,
                })
            }
            e => IssuanceError::Unavailable(Unavailable::Store(e)),
        }
    }
}

impl From<crate::config::ConfigErrors> for IssuanceError {
    fn from(e: crate::config::ConfigErrors) -> Self {
        IssuanceError::Internal(Internal::Config(e))
    }
}

impl From<TokenError> for IssuanceError {
    fn from(e: TokenError) -> Self {
        IssuanceError::Internal(Internal::Token(e))
    }
}

impl From<tokio::task::JoinError> for IssuanceError {
    fn from(e: tokio::task::JoinError) -> Self {
        IssuanceError::Internal(Internal::Task(e))
    }
}

/// A CA error is the request's fault when a value cannot be encoded, the CA's (unavailable)
/// when signing fails (an HSM down), and a bug otherwise.
impl From<CaError> for IssuanceError {
    fn from(e: CaError) -> Self {
        match e {
            CaError::Value { attribute, message } => {
                IssuanceError::FieldEncoding { attribute, message }
            }
            CaError::Signing(_) | CaError::UnknownCa(_) | CaError::File { .. } => {
                IssuanceError::Unavailable(Unavailable::Ca(e))
            }
            other => IssuanceError::Internal(Internal::Ca(other)),
        }
    }
}

impl IssuanceError {
    /// An impossible state, described for the log.
    pub fn invariant(message: impl Into<String>) -> Self {
        IssuanceError::Internal(Internal::Invariant(message.into()))
    }

    /// The stable error code (X-Ast-Error header, JSON `code`).
    pub fn code(&self) -> Code {
        match self {
            IssuanceError::NoHandler | IssuanceError::Disabled | IssuanceError::NoApiHandler(_) => {
                Code::NoHandler
            }
            IssuanceError::Unauthenticated => Code::Unauthenticated,
            IssuanceError::AlreadyIssued { .. } => Code::AlreadyIssued,
            IssuanceError::MethodNotAllowed { .. } => Code::MethodNotAllowed,
            IssuanceError::UnsupportedMediaType(_) => Code::UnsupportedMediaType,
            IssuanceError::Signature(SignatureError::Missing) => Code::SignatureRequired,
            IssuanceError::Signature(SignatureError::Replayed) => Code::ReplayedSignature,
            IssuanceError::Signature(SignatureError::Duplicate) => Code::DuplicateHeader,
            IssuanceError::Signature(_) => Code::BadSignature,
            IssuanceError::Est(refusal) => refusal.code(),
            IssuanceError::Trust(TrustError::MissingRole(_)) => Code::MissingRole,
            IssuanceError::Trust(_) => Code::UntrustedCaller,
            IssuanceError::Policy(PolicyError::FieldMissing { .. }) => Code::FieldMissing,
            IssuanceError::Policy(PolicyError::FieldInvalid { .. }) => Code::FieldInvalid,
            IssuanceError::Policy(PolicyError::DuplicateHeader(_)) => Code::DuplicateHeader,
            IssuanceError::Policy(PolicyError::BadHeader { .. }) => Code::BadHeader,
            IssuanceError::Policy(PolicyError::Suspicious { .. }) => Code::FieldSuspicious,
            IssuanceError::FieldEncoding { .. } => Code::FieldInvalid,
            IssuanceError::Password(_) => Code::PasswordPolicy,
            IssuanceError::BadRequest(_) => Code::BadRequest,
            IssuanceError::NotFound(_) => Code::NotFound,
            IssuanceError::Conflict(_) => Code::Conflict,
            IssuanceError::CaRevoked { .. } => Code::CaRevoked,
            IssuanceError::CaLifetime { .. } => Code::CaExpiring,
            IssuanceError::TooLarge => Code::TooLarge,
            IssuanceError::HeaderTooLarge(_) => Code::HeaderTooLarge,
            IssuanceError::BodyTimeout(_) => Code::Timeout,
            IssuanceError::CrossSite(_) => Code::CrossSite,
            IssuanceError::Unavailable(Unavailable::Store(e)) if e.is_not_replicated() => {
                Code::ReplicationRequired
            }
            IssuanceError::Unavailable(_) => Code::Unavailable,
            IssuanceError::RateLimited { .. } => Code::RateLimited,
            IssuanceError::Internal(_) => Code::Internal,
        }
    }

    /// When the client may try again (`Retry-After`), for refusals that are about load.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            IssuanceError::RateLimited { retry_after, .. }
            | IssuanceError::Unavailable(Unavailable::Overloaded { retry_after, .. }) => {
                Some(*retry_after)
            }
            IssuanceError::Unavailable(Unavailable::TimedOut) => Some(Duration::from_secs(1)),
            // The database is away, failing over, or refused the commit: nothing was delivered
            // and the request may be sent again (with the same Idempotency-Key, for the API).
            IssuanceError::Unavailable(Unavailable::Store(e)) if e.is_not_replicated() => {
                Some(Duration::from_secs(30))
            }
            IssuanceError::Unavailable(Unavailable::Store(_)) => Some(STORE_RETRY_AFTER),
            _ => None,
        }
    }

    /// The message for the client: says what is wrong, never internal details or values.
    pub fn public_message(&self) -> String {
        match self {
            IssuanceError::Trust(TrustError::UntrustedPeer(_)) => {
                "This request did not come through a trusted authenticating proxy.".into()
            }
            IssuanceError::Unavailable(Unavailable::Store(e)) if e.is_not_replicated() => {
                "No soft token is issued now: the service requires synchronous replication of                  its database ([database] require_synchronous_replication) and the database has                  no synchronous standby. Nothing was issued; try again later."
                    .into()
            }
            other => other.to_string(),
        }
    }

    /// The internal detail for the log, when there is one (5xx).
    pub fn log_detail(&self) -> Option<String> {
        match self {
            IssuanceError::Unavailable(e) => Some(e.to_string()),
            IssuanceError::Internal(e) => Some(e.to_string()),
            IssuanceError::CaLifetime { .. } => Some(self.to_string()),
            _ => None,
        }
    }
}
