//! `[key_pool]`: how many keys of each type are generated ahead of requests, and the default
//! sizes for types a token procedure uses and `[key_pool]` leaves out.

use std::collections::BTreeMap;

use super::super::toml_file::{KeyPoolFile, TomlText};
use super::super::{ConfigErrors, Diagnostics};
use crate::token::KeyType;

/// Default pool size for a key type a token procedure uses and `[key_pool]` does not mention.
/// Only RSA is pooled by default: EC and Ed25519 keys take microseconds to make.
pub fn default_key_pool_size(key_type: KeyType) -> usize {
    match key_type {
        KeyType::Rsa2048 => 32,
        KeyType::Rsa3072 => 16,
        KeyType::Rsa4096 => 8,
        KeyType::EcP256 | KeyType::EcP384 | KeyType::Ed25519 => 0,
    }
}

/// Largest accepted pool size per key type.
pub const MAX_KEY_POOL_SIZE: usize = 4096;

/// `[key_pool]` as written: explicit sizes only, each at most `MAX_KEY_POOL_SIZE`.
pub(super) fn key_pool(
    file: Option<&KeyPoolFile>,
    toml: &TomlText,
) -> Result<BTreeMap<KeyType, usize>, ConfigErrors> {
    let mut diagnostics = Diagnostics::default();
    let mut sizes = BTreeMap::new();
    let Some(file) = file else {
        return Ok(sizes);
    };
    for key_type in KeyType::ALL {
        let written = match key_type {
            KeyType::Rsa2048 => &file.rsa_2048,
            KeyType::Rsa3072 => &file.rsa_3072,
            KeyType::Rsa4096 => &file.rsa_4096,
            KeyType::EcP256 => &file.ec_p256,
            KeyType::EcP384 => &file.ec_p384,
            KeyType::Ed25519 => &file.ed25519,
        };
        let Some(size) = written else { continue };
        if *size.get_ref() > MAX_KEY_POOL_SIZE {
            diagnostics.push(toml.error(
                size.span(),
                &format!("key_pool.{key_type}"),
                format!(
                    "{} keys is too many; use 0 to {MAX_KEY_POOL_SIZE}",
                    size.get_ref()
                ),
            ));
        } else {
            sizes.insert(key_type, *size.get_ref());
        }
    }
    diagnostics.finish(sizes)
}
