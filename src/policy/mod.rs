//! Format fields: from identity headers (or the caller's certificate) to certificate fields,
//! with modifiers and verifiers.
//!
//! Owns: the field expression language (`<target> = <source> | module | …`), its evaluation and
//! the header hygiene of the headers it reads. Must not: know HTTP types, sign, or store.
//! Invariants: a header is read only through `IdentityHeaders`, which decodes it in the
//! configured `HeaderEncoding` and refuses duplicates, `_` spellings, undecodable values and
//! control characters; refusal messages name the field and the rule, never the value.

mod certificate;
mod evaluate;
mod expression;
mod headers;
mod identity;
mod lexer;
mod script;
mod text;
mod words;

pub use evaluate::{CertificateFacts, EvaluatedFields, evaluate};
pub use expression::{
    FieldSpec, Module, Origin, Scope, Source, Target, parse_expression, parse_field, parse_target,
};
pub use headers::{HeaderEncoding, IdentityHeaders};
pub use identity::asserted_identity;
pub use words::{did_you_mean, regex_error};

/// Why a request's fields were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("required field `{field}` is missing (format field {index}, source {source_name})")]
    FieldMissing {
        field: String,
        index: u32,
        source_name: String,
    },
    #[error("field `{field}` (format field {index}) fails the rule {rule}")]
    FieldInvalid {
        field: String,
        index: u32,
        rule: String,
    },
    #[error("the identity header `{0}` appears more than once")]
    DuplicateHeader(String),
    #[error("the identity header `{name}` is not acceptable: {reason}")]
    BadHeader { name: String, reason: String },
}
