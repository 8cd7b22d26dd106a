//! The object identifiers we use that `const_oid::db` does not name. Every other OID comes
//! from `const_oid::db` (`rfc5280`, `rfc5912`, `rfc6960`, …) or from the crate that defines
//! the structure it belongs to.

use const_oid::ObjectIdentifier;

/// Microsoft's User Principal Name otherName in a subject alternative name (used for
/// smart-card logon; Microsoft, "Certificate requirements for smart card logon").
pub const UPN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.20.2.3");

/// Microsoft's smart-card logon extended key usage (same source as [`UPN`]).
pub const SMARTCARD_LOGON: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.20.2.2");

/// id-kp-documentSigning, the extended key usage for signing documents (RFC 9336).
pub const DOCUMENT_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.36");
