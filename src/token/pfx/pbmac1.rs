//! The PBMAC1 MAC of a PKCS#12 (RFC 9579, profile `pbmac1`): the MAC key comes from PBKDF2
//! instead of the PKCS#12 KDF of RFC 7292 Appendix B, which FIPS 140 modules do not offer.
//!
//! ```text
//! MacData ::= SEQUENCE {
//!   mac         DigestInfo { id-PBMAC1 PBMAC1-params, the HMAC },
//!   macSalt     OCTET STRING "NOT USED",
//!   iterations  INTEGER DEFAULT 1 (omitted) }
//! PBMAC1-params ::= SEQUENCE {
//!   keyDerivationFunc  { id-PBKDF2 { salt (32 random bytes), iterationCount, keyLength 32,
//!                                    prf hmacWithSHA256 } },
//!   messageAuthScheme  { hmacWithSHA256 } }
//! ```
//!
//! RFC 9579 §4: with PBMAC1 the salt and iteration count are those of the PBKDF2 parameters;
//! readers ignore `macSalt` and `iterations` of MacData. We write them as the RFC's own
//! examples do (`NOT USED`, 1), so no reader can take them for the MAC's. The password enters
//! PBKDF2 as its UTF-8 bytes, as in PBES2 (not the BMPString of the PKCS#12 KDF).
//! No crate writes PBMAC1 (the RustCrypto `pkcs5` has the PBKDF2 parameters, not PBMAC1), so
//! the structure is ours; PBKDF2 and HMAC are aws-lc-rs.

use std::num::NonZeroU32;

use aws_lc_rs::{hmac, pbkdf2};
use const_oid::ObjectIdentifier;
use der::asn1::OctetString;
use der::{Any, Decode, Encode, Sequence};
use pkcs5::pbes2::{HMAC_WITH_SHA256_OID, Kdf, Pbkdf2Params};
use pkcs12::{DigestInfo, MacData};
use spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

use super::{PfxError, random};

/// id-PBMAC1 (RFC 8018 Appendix A.5).
pub(crate) const PBMAC1_OID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.14");

/// The HMAC-SHA256 key length, written as PBKDF2's `keyLength` (RFC 9579 requires it).
const KEY_LENGTH: u16 = 32;

/// What MacData's `macSalt` holds (readers ignore it).
pub(crate) const MAC_SALT_NOT_USED: &[u8] = b"NOT USED";

/// PBMAC1-params (RFC 8018 Appendix A.5).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct Pbmac1Params {
    pub key_derivation_func: Kdf,
    pub message_auth_scheme: AlgorithmIdentifierOwned,
}

/// The MacData of the `pbmac1` profile over `authenticated_safe` (the DER of the
/// AuthenticatedSafe, as the MAC of RFC 7292 §5.1 covers it).
pub(super) fn mac_data(
    authenticated_safe: &[u8],
    password: &str,
    iterations: u32,
) -> Result<MacData, PfxError> {
    let salt: [u8; 32] = random()?;
    let tag = tag(password.as_bytes(), &salt, iterations, authenticated_safe)?;
    let mut pbkdf2 = Pbkdf2Params::hmac_sha256(iterations, &salt)?;
    pbkdf2.key_length = Some(KEY_LENGTH);
    let params = Pbmac1Params {
        key_derivation_func: Kdf::Pbkdf2(pbkdf2),
        message_auth_scheme: AlgorithmIdentifierOwned {
            oid: HMAC_WITH_SHA256_OID,
            parameters: Some(Any::null()),
        },
    };
    Ok(MacData {
        mac: DigestInfo {
            algorithm: AlgorithmIdentifierOwned {
                oid: PBMAC1_OID,
                parameters: Some(Any::from_der(&params.to_der()?)?),
            },
            digest: OctetString::new(tag.to_vec())?,
        },
        mac_salt: OctetString::new(MAC_SALT_NOT_USED)?,
        iterations: 1,
    })
}

/// HMAC-SHA256 of `data` under the key PBKDF2-HMAC-SHA256(`password`, `salt`, `iterations`, 32).
pub(crate) fn tag(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    data: &[u8],
) -> Result<[u8; 32], PfxError> {
    let rounds = NonZeroU32::new(iterations).ok_or(PfxError::NoIterations)?;
    let mut key = Zeroizing::new([0u8; KEY_LENGTH as usize]);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        salt,
        password,
        &mut *key,
    );
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &*key), data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    Ok(out)
}

#[cfg(test)]
#[path = "pbmac1_tests.rs"]
mod tests;
