//! RSA key generation: aws-lc-rs (always built), or OpenSSL with the cargo feature `openssl-rsa`.
//!
//! Why two: aws-lc-rs is the crypto of the rest of the stack (rustls, sqlx, EC keys, signing),
//! but OpenSSL 3's RSA prime search is faster (`ast-gateway bench --compare-rsa-keygen`, in
//! alternating rounds; bench/RESULTS.md). RSA keygen is the whole cost of an RSA token at
//! saturation, so a deployment that issues RSA tokens at high rates may take the second C
//! library for it. Both produce the same artifacts: an unencrypted PKCS#8 v1 `RSAPrivateKey`
//! (e = 65537) and its X.509 SubjectPublicKeyInfo; the PKCS#8 buffer is moved into a zeroising
//! [`GeneratedKey`](super::GeneratedKey) by the caller, and OpenSSL clears its own big numbers
//! when they are freed.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::KeyPair;
use serde::Serialize;

/// The library that generates RSA keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RsaBackend {
    AwsLc,
    /// Only when built with the cargo feature `openssl-rsa`.
    OpenSsl,
}

impl RsaBackend {
    /// The backend every RSA key comes from: OpenSSL when built with `openssl-rsa`, else
    /// aws-lc-rs.
    pub fn configured() -> RsaBackend {
        if cfg!(feature = "openssl-rsa") {
            RsaBackend::OpenSsl
        } else {
            RsaBackend::AwsLc
        }
    }

    /// The backends this build has.
    pub fn compiled() -> Vec<RsaBackend> {
        if cfg!(feature = "openssl-rsa") {
            vec![RsaBackend::AwsLc, RsaBackend::OpenSsl]
        } else {
            vec![RsaBackend::AwsLc]
        }
    }

    /// Name and library version, for reports.
    pub fn describe(self) -> String {
        match self {
            RsaBackend::AwsLc => "aws-lc-rs".into(),
            RsaBackend::OpenSsl => openssl_version(),
        }
    }
}

/// (PKCS#8 v1 DER, SPKI DER) of a fresh RSA key of `bits` bits.
pub(super) fn generate(bits: u32, backend: RsaBackend) -> Result<(Vec<u8>, Vec<u8>), ()> {
    match backend {
        RsaBackend::AwsLc => aws_lc(bits),
        RsaBackend::OpenSsl => openssl(bits),
    }
}

fn aws_lc(bits: u32) -> Result<(Vec<u8>, Vec<u8>), ()> {
    let size = match bits {
        2048 => KeySize::Rsa2048,
        3072 => KeySize::Rsa3072,
        4096 => KeySize::Rsa4096,
        _ => return Err(()),
    };
    let pair = aws_lc_rs::rsa::KeyPair::generate(size).map_err(drop)?;
    let pkcs8: Pkcs8V1Der = pair.as_der().map_err(drop)?;
    let spki: PublicKeyX509Der = pair.public_key().as_der().map_err(drop)?;
    Ok((pkcs8.as_ref().to_vec(), spki.as_ref().to_vec()))
}

#[cfg(feature = "openssl-rsa")]
fn openssl(bits: u32) -> Result<(Vec<u8>, Vec<u8>), ()> {
    let rsa = openssl::rsa::Rsa::generate(bits).map_err(drop)?;
    let key = openssl::pkey::PKey::from_rsa(rsa).map_err(drop)?;
    // Unencrypted PKCS#8 (version 0, rsaEncryption), as aws-lc-rs writes it.
    let pkcs8 = key.private_key_to_pkcs8().map_err(drop)?;
    let spki = key.public_key_to_der().map_err(drop)?;
    Ok((pkcs8, spki))
}

#[cfg(not(feature = "openssl-rsa"))]
fn openssl(_bits: u32) -> Result<(Vec<u8>, Vec<u8>), ()> {
    Err(())
}

#[cfg(feature = "openssl-rsa")]
fn openssl_version() -> String {
    openssl::version::version().to_string()
}

#[cfg(not(feature = "openssl-rsa"))]
fn openssl_version() -> String {
    "OpenSSL (not built: cargo feature `openssl-rsa`)".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every compiled backend makes a key aws-lc-rs reads back, whose public key is the SPKI.
    #[test]
    fn every_backend_makes_a_pkcs8_key_matching_its_spki() {
        for backend in RsaBackend::compiled() {
            let (pkcs8, spki) = generate(2048, backend).unwrap();
            let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&pkcs8).unwrap();
            let public: PublicKeyX509Der = pair.public_key().as_der().unwrap();
            assert_eq!(public.as_ref(), spki.as_slice(), "{backend:?}");
            assert_eq!(pair.public_modulus_len(), 256, "{backend:?}");
        }
        assert_eq!(
            generate(2048, RsaBackend::OpenSsl).is_ok(),
            cfg!(feature = "openssl-rsa")
        );
        assert!(generate(1024, RsaBackend::AwsLc).is_err());
    }
}
