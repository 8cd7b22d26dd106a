//! The server-generated key encrypted to the client (serverkeygen with `DecryptKeyIdentifier` or
//! `AsymmetricDecryptKeyIdentifier` in the CSR): the PKCS#8 key in an AsymmetricKeyPackage
//! (RFC 5958), encrypted with AES-256-CBC under a fresh content-encryption key in a CMS
//! EnvelopedData whose one recipient is the client's key or a pre-shared key-encryption key
//! (`recipient`), and that EnvelopedData signed by the issuing CA in a CMS SignedData
//! (`signed`), as RFC 7030 delivers an encrypted server-generated key
//! (`application/pkcs7-mime; smime-type=server-generated-key`).
//!
//! The ASN.1 structures are the `cms` crate's types, the cryptography (AES-CBC, AES key wrap,
//! RSA-OAEP, ECDH, digests, the CA's signature) is aws-lc-rs. The `cms` crate's own builders
//! (its `builder` feature) would bring a second cryptographic stack (RustCrypto RSA, EC, AES)
//! beside aws-lc-rs and cannot sign with a PKCS#11 CA key; so the little they would do here —
//! the ANSI X9.63 KDF of RFC 5753, the ECC-CMS-SharedInfo, the RSAES-OAEP parameters and the
//! signed attributes — is written here on those types.
//!
//! CBC rather than GCM: `openssl cms -decrypt` (OpenSSL 3.0) and most CMS readers decrypt
//! AES-CBC EnvelopedData, while AES-GCM needs AuthEnvelopedData, which fewer clients read. The
//! content-encryption key and every plaintext copy of the key package are zeroised.

mod recipient;
mod signed;

use aws_lc_rs::cipher::{AES_256, PaddedBlockEncryptingKey, UnboundCipherKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use cms::content_info::CmsVersion;
use cms::enveloped_data::{EncryptedContentInfo, EnvelopedData, RecipientInfos};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5911;
use der::asn1::{Any, OctetString, SetOfVec};
use der::{Encode, Header, Length, Tag};
use spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

pub(super) use recipient::{KeyRecipient, Unusable};

use crate::ca::Ca;
use crate::issuance::IssuanceError;

/// id-ct-KP-aKeyPackage (RFC 5958 §3): the content type of an AsymmetricKeyPackage.
pub(super) const ASYMMETRIC_KEY_PACKAGE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.2.1.2.78.5");

/// A failure to build the answer: a bug or a failing library, never the client's doing.
fn failed(what: &str) -> IssuanceError {
    IssuanceError::invariant(format!("encrypting the server-generated key: {what}"))
}

/// The answer's key part, DER `ContentInfo` (SignedData over EnvelopedData over the
/// AsymmetricKeyPackage holding `pkcs8`), for `recipient`, signed by `ca`. CPU-bound.
pub(super) fn seal(
    pkcs8: &[u8],
    recipient: &KeyRecipient,
    ca: &Ca,
) -> Result<Vec<u8>, IssuanceError> {
    let enveloped = envelop(pkcs8, recipient)?;
    signed::sign(&enveloped, ca)
}

/// EnvelopedData (DER, not wrapped in a ContentInfo: it is the SignedData's content).
pub(super) fn envelop(pkcs8: &[u8], recipient: &KeyRecipient) -> Result<Vec<u8>, IssuanceError> {
    let rng = SystemRandom::new();
    let mut cek = Zeroizing::new([0u8; 32]);
    rng.fill(cek.as_mut_slice())
        .map_err(|_| failed("no random content-encryption key"))?;
    let (iv, ciphertext) = encrypt_package(pkcs8, cek.as_slice())?;
    let info = recipient.recipient_info(cek.as_slice())?;
    let mut infos = SetOfVec::new();
    infos
        .insert(info)
        .map_err(|e| failed(&format!("recipient: {e}")))?;
    let enveloped = EnvelopedData {
        // RFC 5652 §6.1: no originatorInfo, no pwri/ori, a recipient of version 2, 3 or 4.
        version: CmsVersion::V2,
        originator_info: None,
        recip_infos: RecipientInfos(infos),
        encrypted_content: EncryptedContentInfo {
            content_type: ASYMMETRIC_KEY_PACKAGE,
            content_enc_alg: AlgorithmIdentifierOwned {
                oid: rfc5911::ID_AES_256_CBC,
                parameters: Some(
                    Any::encode_from(&OctetString::new(iv.to_vec()).map_err(der_failed)?)
                        .map_err(der_failed)?,
                ),
            },
            encrypted_content: Some(OctetString::new(ciphertext).map_err(der_failed)?),
        },
        unprotected_attrs: None,
    };
    enveloped.to_der().map_err(der_failed)
}

fn der_failed(e: der::Error) -> IssuanceError {
    failed(&format!("DER: {e}"))
}

/// The AsymmetricKeyPackage (`SEQUENCE SIZE (1..MAX) OF OneAsymmetricKey`, RFC 5958 §2)
/// holding the one PKCS#8 key, DER, in a zeroised buffer with room for the CBC padding, so
/// that encrypting in place never leaves a plaintext copy behind.
pub(super) fn key_package(pkcs8: &[u8]) -> Result<Zeroizing<Vec<u8>>, IssuanceError> {
    let length = Length::try_from(pkcs8.len()).map_err(der_failed)?;
    let header = Header::new(Tag::Sequence, length);
    let header_len = header.encoded_len().map_err(der_failed)?;
    let total = usize::try_from(header_len).map_err(der_failed)? + pkcs8.len();
    let mut package = Zeroizing::new(Vec::with_capacity(total + 16));
    header.encode_to_vec(&mut package).map_err(der_failed)?;
    package.extend_from_slice(pkcs8);
    Ok(package)
}

/// The key package encrypted with AES-256-CBC (PKCS#7 padding, random IV) under `cek`:
/// (IV, ciphertext).
fn encrypt_package(pkcs8: &[u8], cek: &[u8]) -> Result<([u8; 16], Vec<u8>), IssuanceError> {
    let mut buffer = key_package(pkcs8)?;
    let key = UnboundCipherKey::new(&AES_256, cek).map_err(|_| failed("AES key"))?;
    let key = PaddedBlockEncryptingKey::cbc_pkcs7(key).map_err(|_| failed("AES-CBC key"))?;
    let context = key
        .encrypt(&mut *buffer)
        .map_err(|_| failed("AES-CBC encryption"))?;
    let iv: &[u8] = (&context)
        .try_into()
        .map_err(|_| failed("AES-CBC without an IV"))?;
    let iv: [u8; 16] = iv.try_into().map_err(|_| failed("an IV not of 16 bytes"))?;
    // The buffer now holds only ciphertext; it is zeroised all the same when dropped.
    Ok((iv, buffer.to_vec()))
}

#[cfg(test)]
#[path = "sealed_key_tests.rs"]
mod tests;
