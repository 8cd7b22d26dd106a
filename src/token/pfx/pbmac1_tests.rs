use der::Decode;
use pkcs5::pbes2::Pbkdf2Prf;
use pkcs12::pfx::Pfx;

use super::super::{KeyAndCertificate, Protection, encode};
use super::*;

#[test]
fn the_tag_is_pbkdf2_then_hmac_as_an_independent_implementation_computes_it() {
    // Computed by CPython's hashlib (OpenSSL), not by this crate:
    //   k = hashlib.pbkdf2_hmac('sha256', 'Pässwörd€1'.encode(), bytes(range(32)), 2048, 32)
    //   hmac.new(k, b'The authenticated safe.', hashlib.sha256).hexdigest()
    let expected = "308b0d39e2345d0e07aa917fa40bb46a9c0543edef2c5cd9633fe21eceb2ff24";
    let salt: Vec<u8> = (0u8..32).collect();
    let computed = tag(
        "Pässwörd€1".as_bytes(),
        &salt,
        2048,
        b"The authenticated safe.",
    )
    .unwrap();
    assert_eq!(hex::encode(computed), expected);
    assert!(tag(b"x", &salt, 0, b"").is_err());
}

/// A PKCS#12 with one key bag and two certificates, `pbmac1` profile.
fn encoded(password: &str) -> Vec<u8> {
    let key = KeyAndCertificate {
        friendly_name: "Alice authentication",
        local_key_id: &[1, 2, 3],
        pkcs8: b"not really PKCS#8, encrypted all the same",
        certificate: b"leaf",
    };
    encode(&[key], &[b"issuing CA"], password, Protection::Pbmac1, 2048).unwrap()
}

#[test]
fn mac_data_is_pbmac1_with_pbkdf2_sha256_and_the_mac_data_fields_unused() {
    let pin = "Pässwörd€1";
    let der = encoded(pin);
    let pfx = Pfx::from_der(&der).unwrap();
    let mac = pfx.mac_data.unwrap();
    assert_eq!(mac.mac.algorithm.oid, PBMAC1_OID);
    // RFC 9579 §4: macSalt and iterations are not the MAC's; written as the RFC's examples.
    assert_eq!(mac.mac_salt.as_bytes(), MAC_SALT_NOT_USED);
    assert_eq!(mac.iterations, 1);
    // DER omits the DEFAULT 1: the MacData ends with the macSalt.
    assert!(der.ends_with(&[0x04, 0x08, b'N', b'O', b'T', b' ', b'U', b'S', b'E', b'D']));
    let params = mac.mac.algorithm.parameters.unwrap();
    let params = Pbmac1Params::from_der(&params.to_der().unwrap()).unwrap();
    assert_eq!(params.message_auth_scheme.oid, HMAC_WITH_SHA256_OID);
    let pbkdf2 = params.key_derivation_func.pbkdf2().unwrap();
    assert_eq!(pbkdf2.prf, Pbkdf2Prf::HmacWithSha256);
    assert_eq!(pbkdf2.key_length, Some(32));
    assert_eq!(pbkdf2.iteration_count, 2048);
    assert_eq!(pbkdf2.salt.as_bytes().len(), 32);
    // The MAC covers the AuthenticatedSafe (the content octets of the id-data ContentInfo),
    // keyed by PBKDF2 over the PIN's UTF-8 bytes.
    let safe = OctetString::from_der(&pfx.auth_safe.content.to_der().unwrap()).unwrap();
    let recomputed = tag(
        pin.as_bytes(),
        pbkdf2.salt.as_bytes(),
        pbkdf2.iteration_count,
        safe.as_bytes(),
    )
    .unwrap();
    assert_eq!(mac.mac.digest.as_bytes(), recomputed);
    // A wrong PIN gives another MAC.
    let wrong = tag(
        b"P\xc3\xa4sswo\xcc\x88rd\xe2\x82\xac1",
        pbkdf2.salt.as_bytes(),
        pbkdf2.iteration_count,
        safe.as_bytes(),
    )
    .unwrap();
    assert_ne!(mac.mac.digest.as_bytes(), wrong);
    // Each file gets its own salt.
    assert_ne!(encoded(pin), der);
}
