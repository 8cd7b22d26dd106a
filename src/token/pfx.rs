//! The PKCS#12 (RFC 7292) encoder behind [`super::write_pkcs12`], on the RustCrypto ASN.1
//! types (`pkcs12`, `pkcs5`, `cms` through `pkcs12`, `der`, `x509-cert`) that p12-keystore is
//! built on.
//!
//! Why our own encoder and not p12-keystore 0.4.1's writer: that writer repeats every key's
//! chain (a two-key token carried the root and the issuing CA twice), names every certificate
//! bag after its subject DN (so NSS/Firefox showed two identical entries and BouncyCastle
//! listed the signing certificate as an extra certificate-only entry), orders keys by alias (a
//! `BTreeMap`), and encodes friendlyName with `der`'s `BmpString`, which refuses characters
//! outside the Basic Multilingual Plane (`𠮷田 太郎` failed after the keys were made). Its bag
//! encoders are private, so none of this can be set from outside. The layout and the
//! algorithms here are the ones p12-keystore (and OpenSSL 3 by default) write, so readers see
//! the same kind of file as before:
//!
//! * an encrypted SafeContents (CMS EncryptedData) with the certificate bags: each key's
//!   certificate first, in key order, with the key's friendlyName and localKeyId, then every
//!   CA certificate once, without attributes;
//! * a plain SafeContents with one pkcs8ShroudedKeyBag per key (friendlyName, localKeyId);
//! * a MAC over the authenticated safe (PKCS#12 KDF, RFC 7292 Appendix B).
//!
//! Modern: PBES2 / PBKDF2-HMAC-SHA256 / AES-256-CBC (32-byte salt) for both the certificate
//! safe and the keys, HMAC-SHA256 MAC keyed by the PKCS#12 KDF. Legacy:
//! pbeWithSHAAnd3-KeyTripleDES-CBC for both, HMAC-SHA1 MAC (never RC2). PBMAC1: the encryption
//! of modern, and a PBMAC1 MAC (RFC 9579, `pfx/pbmac1.rs`): no PKCS#12 KDF anywhere in the file.
//! Iteration counts are the same for encryption and MAC.

mod pbmac1;

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeEncrypt, KeyIvInit};
use const_oid::db::{rfc2985, rfc5911, rfc5912};
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode, Tag};
use pkcs12::cms::content_info::{CmsVersion, ContentInfo};
use pkcs12::cms::encrypted_data::EncryptedData;
use pkcs12::cms::enveloped_data::EncryptedContentInfo;
use pkcs12::kdf::{Pkcs12KeyType, derive_key};
use pkcs12::pbe_params::{EncryptedPrivateKeyInfo, Pkcs12PbeParams};
use pkcs12::pfx::{Pfx, Version};
use pkcs12::{CertBag, DigestInfo, MacData, SafeBag};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::{Attribute, Attributes};
use zeroize::Zeroizing;

/// Why a PKCS#12 could not be encoded. None of them carries the password or key material.
#[derive(Debug, thiserror::Error)]
pub enum PfxError {
    #[error("DER encoding: {0}")]
    Der(#[from] der::Error),
    #[error("PBES2: {0}")]
    Pbes2(#[from] pkcs5::Error),
    #[error("iteration count too large")]
    IterationsTooLarge,
    #[error("iteration count must be at least 1")]
    NoIterations,
    #[error("no randomness")]
    NoRandomness,
    #[error("3DES key or IV of the wrong length")]
    CipherLength,
}

/// How the file is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Protection {
    /// PBES2 / PBKDF2-HMAC-SHA256 / AES-256-CBC, HMAC-SHA256 MAC (PKCS#12 KDF).
    Modern,
    /// pbeWithSHAAnd3-KeyTripleDES-CBC, HMAC-SHA1 MAC.
    Legacy,
    /// PBES2 / PBKDF2-HMAC-SHA256 / AES-256-CBC, PBMAC1 MAC (PBKDF2-HMAC-SHA256, HMAC-SHA256).
    Pbmac1,
}

/// One private key and its certificate, as they go into the file.
pub(super) struct KeyAndCertificate<'a> {
    /// friendlyName of both bags.
    pub friendly_name: &'a str,
    /// localKeyId of both bags.
    pub local_key_id: &'a [u8],
    /// PKCS#8 PrivateKeyInfo, DER (encrypted before it is written).
    pub pkcs8: &'a [u8],
    /// The certificate, DER.
    pub certificate: &'a [u8],
}

/// Encodes a PKCS#12: the keys in the given order, their certificates, then `ca_certificates`
/// (each written once, as given). CPU-bound (PBKDF2).
pub(super) fn encode(
    keys: &[KeyAndCertificate<'_>],
    ca_certificates: &[&[u8]],
    password: &str,
    protection: Protection,
    iterations: u32,
) -> Result<Vec<u8>, PfxError> {
    let iterations_i32 = i32::try_from(iterations).map_err(|_| PfxError::IterationsTooLarge)?;
    let mut cert_bags = Vec::with_capacity(keys.len() + ca_certificates.len());
    for key in keys {
        cert_bags.push(certificate_bag(
            key.certificate,
            Some(attributes(key.friendly_name, key.local_key_id)?),
        )?);
    }
    for ca in ca_certificates {
        cert_bags.push(certificate_bag(ca, None)?);
    }
    let (algorithm, encrypted) = encrypt(&cert_bags.to_der()?, password, protection, iterations)?;
    let certificates = EncryptedData {
        version: CmsVersion::V0,
        enc_content_info: EncryptedContentInfo {
            content_type: rfc5911::ID_DATA,
            content_enc_alg: algorithm,
            encrypted_content: Some(OctetString::new(encrypted)?),
        },
        unprotected_attrs: None,
    };
    let certificates = ContentInfo {
        content_type: rfc5911::ID_ENCRYPTED_DATA,
        content: Any::from_der(&certificates.to_der()?)?,
    };

    let mut key_bags = Vec::with_capacity(keys.len());
    for key in keys {
        let (algorithm, encrypted) = encrypt(key.pkcs8, password, protection, iterations)?;
        let shrouded = EncryptedPrivateKeyInfo {
            encryption_algorithm: algorithm,
            encrypted_data: OctetString::new(encrypted)?,
        };
        key_bags.push(SafeBag {
            bag_id: pkcs12::PKCS_12_PKCS8_KEY_BAG_OID,
            bag_value: shrouded.to_der()?,
            bag_attributes: Some(attributes(key.friendly_name, key.local_key_id)?),
        });
    }
    let keys = data(&key_bags.to_der()?)?;

    let authenticated_safe = vec![certificates, keys].to_der()?;
    let mac_data = match protection {
        Protection::Pbmac1 => pbmac1::mac_data(&authenticated_safe, password, iterations)?,
        Protection::Modern | Protection::Legacy => {
            mac(&authenticated_safe, password, protection, iterations_i32)?
        }
    };
    let pfx = Pfx {
        version: Version::V3,
        auth_safe: data(&authenticated_safe)?,
        mac_data: Some(mac_data),
    };
    Ok(pfx.to_der()?)
}

/// A ContentInfo of type id-data around `bytes`.
fn data(bytes: &[u8]) -> Result<ContentInfo, PfxError> {
    Ok(ContentInfo {
        content_type: rfc5911::ID_DATA,
        content: Any::from_der(&OctetString::new(bytes)?.to_der()?)?,
    })
}

fn certificate_bag(der: &[u8], attributes: Option<Attributes>) -> Result<SafeBag, PfxError> {
    let bag = CertBag {
        cert_id: pkcs12::PKCS_12_X509_CERT_OID,
        cert_value: OctetString::new(der)?,
    };
    Ok(SafeBag {
        bag_id: pkcs12::PKCS_12_CERT_BAG_OID,
        bag_value: bag.to_der()?,
        bag_attributes: attributes,
    })
}

/// friendlyName (BMPString) and localKeyId (OCTET STRING).
fn attributes(friendly_name: &str, local_key_id: &[u8]) -> Result<Attributes, PfxError> {
    let name = Attribute {
        oid: rfc2985::PKCS_9_AT_FRIENDLY_NAME,
        values: SetOfVec::from_iter([bmp_string(friendly_name)?])?,
    };
    let id = Attribute {
        oid: rfc2985::PKCS_9_AT_LOCAL_KEY_ID,
        values: SetOfVec::from_iter([Any::from_der(&OctetString::new(local_key_id)?.to_der()?)?])?,
    };
    Ok(SetOfVec::from_iter([name, id])?)
}

/// A BMPString holding any Unicode text: UTF-16 big-endian, characters outside the Basic
/// Multilingual Plane as surrogate pairs. That is what OpenSSL, NSS, Windows and Java write
/// and read for friendlyName (`der::asn1::BmpString` refuses such characters as non-UCS-2).
pub(super) fn bmp_string(text: &str) -> Result<Any, PfxError> {
    Ok(Any::new(Tag::BmpString, utf16_be(text))?)
}

fn utf16_be(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// The password as the PKCS#12 KDF takes it: UTF-16 big-endian (surrogate pairs outside the
/// BMP, as OpenSSL encodes them) with two terminating zero bytes.
fn kdf_password(password: &str) -> Zeroizing<Vec<u8>> {
    let mut bytes = Zeroizing::new(utf16_be(password));
    bytes.extend([0, 0]);
    bytes
}

fn random<const N: usize>() -> Result<[u8; N], PfxError> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| PfxError::NoRandomness)?;
    Ok(bytes)
}

/// Encrypts `plaintext` under the password: PBES2 (modern, PBMAC1) or PKCS#12 PBE 3DES (legacy).
fn encrypt(
    plaintext: &[u8],
    password: &str,
    protection: Protection,
    iterations: u32,
) -> Result<(AlgorithmIdentifierOwned, Vec<u8>), PfxError> {
    match protection {
        Protection::Modern | Protection::Pbmac1 => {
            let salt: [u8; 32] = random()?;
            let iv: [u8; 16] = random()?;
            let parameters =
                pkcs5::pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(iterations, &salt, iv)?;
            let encrypted = parameters.encrypt(password.as_bytes(), plaintext)?;
            let algorithm = AlgorithmIdentifierOwned {
                oid: pkcs5::pbes2::PBES2_OID,
                parameters: Some(Any::from_der(&parameters.to_der()?)?),
            };
            Ok((algorithm, encrypted))
        }
        Protection::Legacy => {
            let salt: [u8; 20] = random()?;
            let rounds = i32::try_from(iterations).map_err(|_| PfxError::IterationsTooLarge)?;
            let password = kdf_password(password);
            let key = Zeroizing::new(derive_key::<sha1::Sha1>(
                &password,
                &salt,
                Pkcs12KeyType::EncryptionKey,
                rounds,
                24,
            ));
            let iv = Zeroizing::new(derive_key::<sha1::Sha1>(
                &password,
                &salt,
                Pkcs12KeyType::Iv,
                rounds,
                8,
            ));
            let cipher = cbc::Encryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
                .map_err(|_| PfxError::CipherLength)?;
            let encrypted = cipher.encrypt_padded_vec::<Pkcs7>(plaintext);
            let parameters = Pkcs12PbeParams {
                salt: OctetString::new(salt.to_vec())?,
                iterations: rounds,
            };
            let algorithm = AlgorithmIdentifierOwned {
                oid: pkcs12::PKCS_12_PBE_WITH_SHAAND3_KEY_TRIPLE_DES_CBC,
                parameters: Some(Any::from_der(&parameters.to_der()?)?),
            };
            Ok((algorithm, encrypted))
        }
    }
}

/// The MAC over the authenticated safe (RFC 7292 §5.1, key from Appendix B); PBMAC1 is in
/// `pbmac1.rs`.
fn mac(
    authenticated_safe: &[u8],
    password: &str,
    protection: Protection,
    iterations: i32,
) -> Result<MacData, PfxError> {
    use aws_lc_rs::hmac;
    let salt: [u8; 8] = random()?;
    let password = kdf_password(password);
    let (oid, algorithm, key) = match protection {
        Protection::Modern | Protection::Pbmac1 => (
            rfc5912::ID_SHA_256,
            hmac::HMAC_SHA256,
            derive_key::<sha2::Sha256>(&password, &salt, Pkcs12KeyType::Mac, iterations, 32),
        ),
        Protection::Legacy => (
            rfc5912::ID_SHA_1,
            hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            derive_key::<sha1::Sha1>(&password, &salt, Pkcs12KeyType::Mac, iterations, 20),
        ),
    };
    let key = Zeroizing::new(key);
    let tag = hmac::sign(&hmac::Key::new(algorithm, &key), authenticated_safe);
    Ok(MacData {
        mac: DigestInfo {
            algorithm: AlgorithmIdentifierOwned {
                oid,
                parameters: None,
            },
            digest: OctetString::new(tag.as_ref())?,
        },
        mac_salt: OctetString::new(salt.to_vec())?,
        iterations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn friendly_names_outside_the_bmp_use_surrogate_pairs() {
        use der::Tagged;
        let any = bmp_string("A😀").unwrap();
        assert_eq!(any.tag(), Tag::BmpString);
        // U+1F600 = D83D DE00.
        assert_eq!(any.value(), [0x00, 0x41, 0xD8, 0x3D, 0xDE, 0x00]);
        let any = bmp_string("𠮷田").unwrap();
        assert_eq!(any.value(), [0xD8, 0x42, 0xDF, 0xB7, 0x75, 0x30]);
    }

    #[test]
    fn kdf_password_is_utf16_with_a_terminator() {
        assert_eq!(*kdf_password("ab"), vec![0, 0x61, 0, 0x62, 0, 0]);
        assert_eq!(kdf_password("😀").len(), 6);
    }
}
