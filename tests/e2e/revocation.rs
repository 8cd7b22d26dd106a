//! Revocation across the chain: a revoked issuing CA issues nothing, and relying parties
//! that check the whole chain (nginx `ssl_ocsp on`, Java PKIX) refuse its tokens.
pub(crate) mod ca_revoked;
pub(crate) mod whole_chain;
