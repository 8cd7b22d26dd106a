//! Key generation, PINs and PKCS#12 soft tokens.
//!
//! Owns: private keys from their birth until they are sealed in a PKCS#12, the PIN from the form
//! until the PKCS#12 is written. Must not: sign certificates (that is `ca`), know about HTTP or
//! the database. Invariants: private keys and PINs are zeroised on drop and print as
//! `[redacted]`; Ed25519 keys enter a PKCS#12 as PKCS#8 v1 (OpenSSL 3.0 and GnuTLS cannot read
//! v2).

mod key;
mod pfx;
mod pin;
mod pkcs12;
mod pool;
mod rsa;

pub use key::{GeneratedKey, KeyType, RsaBackend, generate_key, generate_key_with};
pub use pin::Pin;
pub use pkcs12::{Pkcs12Profile, TokenEntry, client_auth_rank, write_pkcs12};
pub use pool::{KeyPool, KeySource, PoolFill};

/// Errors of this module. None of them carries key material or a PIN.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("key generation failed for {0}")]
    KeyGeneration(KeyType),
    #[error("PKCS#12 encoding failed: {0}")]
    Pkcs12(#[from] pfx::PfxError),
}
