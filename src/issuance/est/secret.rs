//! HTTP Basic secrets of EST handlers: hashed at rest with PBKDF2-HMAC-SHA256 (aws-lc-rs, the
//! crate already doing the service's cryptography; a FIPS-approved KDF), checked on a blocking
//! thread inside the issuance CPU slots, so that guessing costs the guesser's requests and
//! cannot starve the reactor.

use std::num::NonZeroU32;

use aws_lc_rs::pbkdf2;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::rules::SecretHash;

/// Iterations of a new hash (OWASP's 2023 figure for PBKDF2-HMAC-SHA256).
pub const NEW_SECRET_ITERATIONS: u32 = 600_000;

/// The shortest secret `hash_secret` accepts.
pub const MIN_SECRET_CHARS: usize = 12;

/// A new `$pbkdf2-sha256$…` hash of `secret` for `est.secret`, with a random 16-byte salt.
pub fn hash_secret(secret: &str) -> Result<String, String> {
    if secret.chars().count() < MIN_SECRET_CHARS {
        return Err(format!(
            "the secret is shorter than {MIN_SECRET_CHARS} characters; devices keep it, so make it long and random"
        ));
    }
    if secret.contains(['\r', '\n']) || secret.chars().any(char::is_control) {
        return Err("the secret holds a control character".into());
    }
    let mut salt = vec![0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| "the random number generator failed".to_string())?;
    let mut hash = vec![0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations(NEW_SECRET_ITERATIONS),
        &salt,
        secret.as_bytes(),
        &mut hash,
    );
    Ok(SecretHash {
        iterations: NEW_SECRET_ITERATIONS,
        salt,
        hash,
    }
    .to_string())
}

fn iterations(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// Whether `secret` is the one `hash` was made from (constant time in the secret's bytes).
/// CPU-bound: call from a blocking thread.
pub(super) fn verify_secret(hash: &SecretHash, secret: &[u8]) -> bool {
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations(hash.iterations),
        &hash.salt,
        secret,
        &hash.hash,
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_hash_verifies_its_secret_only() {
        let text = hash_secret("correct horse battery").unwrap();
        assert!(text.starts_with("$pbkdf2-sha256$i=600000$"));
        let hash: SecretHash = text.parse().unwrap();
        assert!(verify_secret(&hash, b"correct horse battery"));
        assert!(!verify_secret(&hash, b"correct horse batterz"));
        assert!(!verify_secret(&hash, b""));
        // A fresh salt each time.
        assert_ne!(text, hash_secret("correct horse battery").unwrap());
    }

    #[test]
    fn short_or_control_secrets_are_refused() {
        assert!(hash_secret("short").is_err());
        assert!(hash_secret("long enough\nbut two lines").is_err());
    }
}
