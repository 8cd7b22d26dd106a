//! The EnvelopedData builders, read back with the `cms` types and opened with aws-lc-rs for each
//! recipient kind (KEK, RSA, EC). That OpenSSL opens them too is tests/e2e/est/encrypted.rs.
#![allow(clippy::unwrap_used, clippy::panic)]

use aws_lc_rs::agreement::{self, ECDH_P256, PrivateKey, UnparsedPublicKey};
use aws_lc_rs::cipher::{AES_256, DecryptionContext, PaddedBlockDecryptingKey, UnboundCipherKey};
use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::key_wrap::{AES_256 as KW_AES_256, AesKek, KeyWrap};
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, PrivateDecryptingKey,
};
use cms::enveloped_data::{
    EnvelopedData, KeyAgreeRecipientIdentifier, OriginatorIdentifierOrKey, RecipientIdentifier,
    RecipientInfo,
};
use der::Decode;
use der::asn1::OctetString;

use super::recipient::{EcCurve, x963_kdf};
use super::*;

/// A stand-in PKCS#8 key (the builders do not read it).
const PKCS8: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x00];

/// The content of `enveloped` decrypted under `cek`.
fn open(enveloped: &EnvelopedData, cek: &[u8]) -> Vec<u8> {
    let info = &enveloped.encrypted_content;
    assert_eq!(info.content_type, ASYMMETRIC_KEY_PACKAGE);
    assert_eq!(info.content_enc_alg.oid, rfc5911::ID_AES_256_CBC);
    let iv: OctetString = info
        .content_enc_alg
        .parameters
        .as_ref()
        .unwrap()
        .decode_as()
        .unwrap();
    let iv: [u8; 16] = iv.as_bytes().try_into().unwrap();
    let mut data = info.encrypted_content.as_ref().unwrap().as_bytes().to_vec();
    let key =
        PaddedBlockDecryptingKey::cbc_pkcs7(UnboundCipherKey::new(&AES_256, cek).unwrap()).unwrap();
    let context = DecryptionContext::Iv128(FixedLength::from(iv));
    key.decrypt(&mut data, context).unwrap().to_vec()
}

fn unwrap_key(kek: &[u8], wrapped: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; wrapped.len()];
    let kek = AesKek::new(&KW_AES_256, kek).unwrap();
    kek.unwrap(wrapped, &mut out).unwrap().to_vec()
}

fn only_recipient(der: &[u8]) -> (EnvelopedData, RecipientInfo) {
    let enveloped = EnvelopedData::from_der(der).unwrap();
    assert_eq!(enveloped.version, CmsVersion::V2);
    let infos: Vec<RecipientInfo> = enveloped.recip_infos.0.iter().cloned().collect();
    assert_eq!(infos.len(), 1);
    let info = infos.into_iter().next().unwrap();
    (enveloped, info)
}

#[test]
fn the_key_package_is_a_sequence_of_the_one_key() {
    let package = key_package(PKCS8).unwrap();
    assert_eq!(
        package.as_slice(),
        &[0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x00]
    );
    let long = vec![0x42u8; 300];
    let package = key_package(&long).unwrap();
    assert_eq!(&package[..4], &[0x30, 0x82, 0x01, 0x2c]);
    assert_eq!(&package[4..], long.as_slice());
}

#[test]
fn a_kek_recipient_unwraps_and_decrypts() {
    let kek = vec![0x11u8; 32];
    let recipient = KeyRecipient::Kek {
        key_id: b"kek-1".to_vec(),
        name: "kek-1".into(),
        key: Zeroizing::new(kek.clone()),
    };
    assert!(!format!("{recipient:?}").contains("17"));
    let (enveloped, info) = only_recipient(&envelop(PKCS8, &recipient).unwrap());
    let RecipientInfo::Kekri(kekri) = info else {
        panic!("not a KEKRecipientInfo");
    };
    assert_eq!(kekri.version, CmsVersion::V4);
    assert_eq!(kekri.kek_id.kek_identifier.as_bytes(), b"kek-1");
    assert_eq!(kekri.key_enc_alg.oid, rfc5911::ID_AES_256_WRAP);
    assert!(kekri.key_enc_alg.parameters.is_none());
    let cek = unwrap_key(&kek, kekri.encrypted_key.as_bytes());
    assert_eq!(
        open(&enveloped, &cek).as_slice(),
        key_package(PKCS8).unwrap().as_slice()
    );
}

#[test]
fn an_rsa_recipient_decrypts_with_oaep() {
    let private = PrivateDecryptingKey::generate(KeySize::Rsa2048).unwrap();
    let spki: PublicKeyX509Der<'_> = private.public_key().as_der().unwrap();
    let recipient = KeyRecipient::Rsa {
        key_id: vec![1, 2, 3],
        spki_der: spki.as_ref().to_vec(),
    };
    let (enveloped, info) = only_recipient(&envelop(PKCS8, &recipient).unwrap());
    let RecipientInfo::Ktri(ktri) = info else {
        panic!("not a KeyTransRecipientInfo");
    };
    assert_eq!(ktri.version, CmsVersion::V2);
    let RecipientIdentifier::SubjectKeyIdentifier(ski) = &ktri.rid else {
        panic!("not named by key identifier");
    };
    assert_eq!(ski.0.as_bytes(), &[1, 2, 3]);
    assert_eq!(ktri.key_enc_alg.oid, const_oid::db::rfc5912::ID_RSAES_OAEP);
    let oaep = OaepPrivateDecryptingKey::new(private).unwrap();
    let mut cek = vec![0u8; oaep.min_output_size()];
    let cek = oaep
        .decrypt(
            &OAEP_SHA256_MGF1SHA256,
            ktri.enc_key.as_bytes(),
            &mut cek,
            None,
        )
        .unwrap()
        .to_vec();
    assert_eq!(cek.len(), 32);
    assert_eq!(
        open(&enveloped, &cek).as_slice(),
        key_package(PKCS8).unwrap().as_slice()
    );
}

#[test]
fn an_ec_recipient_agrees_derives_and_unwraps() {
    let private = PrivateKey::generate(&ECDH_P256).unwrap();
    let point = private.compute_public_key().unwrap().as_ref().to_vec();
    let recipient = KeyRecipient::Ec {
        key_id: vec![9; 20],
        curve: EcCurve::P256,
        point,
    };
    let (enveloped, info) = only_recipient(&envelop(PKCS8, &recipient).unwrap());
    let RecipientInfo::Kari(kari) = info else {
        panic!("not a KeyAgreeRecipientInfo");
    };
    assert_eq!(kari.version, CmsVersion::V3);
    assert_eq!(
        kari.key_enc_alg.oid,
        const_oid::db::rfc5753::DH_SINGLE_PASS_STD_DH_SHA_256_KDF_SCHEME
    );
    let OriginatorIdentifierOrKey::OriginatorKey(originator) = &kari.originator else {
        panic!("no originator key");
    };
    let [encrypted] = kari.recipient_enc_keys.as_slice() else {
        panic!("not one recipient key");
    };
    let KeyAgreeRecipientIdentifier::RKeyId(rid) = &encrypted.rid else {
        panic!("not named by key identifier");
    };
    assert_eq!(rid.subject_key_identifier.0.as_bytes(), &[9; 20]);
    // ECC-CMS-SharedInfo for AES-256 key wrap and a 256-bit KEK, as the recipient builds it.
    let shared_info = [
        0x30, 0x15, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2d,
        0xa2, 0x06, 0x04, 0x04, 0x00, 0x00, 0x01, 0x00,
    ];
    let ephemeral = UnparsedPublicKey::new(&ECDH_P256, originator.public_key.raw_bytes());
    let kek = agreement::agree(&private, ephemeral, (), |z| {
        Ok(x963_kdf(&digest::SHA256, z, &shared_info, 32))
    })
    .unwrap();
    let cek = unwrap_key(&kek, encrypted.enc_key.as_bytes());
    assert_eq!(
        open(&enveloped, &cek).as_slice(),
        key_package(PKCS8).unwrap().as_slice()
    );
}

#[test]
fn the_x963_kdf_counts_from_one_and_cuts() {
    let z = [0xabu8; 32];
    let one = x963_kdf(&digest::SHA256, &z, b"info", 32);
    let mut first = digest::Context::new(&digest::SHA256);
    first.update(&z);
    first.update(&[0, 0, 0, 1]);
    first.update(b"info");
    assert_eq!(one.as_slice(), first.finish().as_ref());
    let longer = x963_kdf(&digest::SHA256, &z, b"info", 40);
    assert_eq!(&longer[..32], one.as_slice());
    assert_eq!(longer.len(), 40);
}

/// `openssl req -x509 -newkey ed25519`: a key that cannot receive an encrypted key.
const ED25519_CERTIFICATE: &str = "MIIBLjCB4aADAgECAhQ5LefYWr26GgOO/I49/zqg5i/ZgDAFBgMrZXAwDTELMAkGA1UEAwwCZWQwHhcNMjYxMjA3MDY0NTE3WhcNMjYxMjA4MDY0NTE3WjANMQswCQYDVQQDDAJlZDAqMAUGAytlcAMhAB/S9AXzo0wFW7e3L2ttL/NFbLiCZQeabZ05yCH3psNRo1MwUTAdBgNVHQ4EFgQURidHwds5MhzM7J8EaGFK4q2RF88wHwYDVR0jBBgwFoAURidHwds5MhzM7J8EaGFK4q2RF88wDwYDVR0TAQH/BAUwAwEB/zAFBgMrZXADQQCSu03C9fgPC1rMlYmHVAHxyMTyocgBX6nkgXw3BxhVq0GsR+VFQ6Vvkc+/CS/3yQQcgDiVgRT7HeHMw7WF2JAM";
/// `openssl x509 -req` (version 1, no extensions) for an EC P-256 key: its key identifier is
/// the SHA-1 of the key (RFC 5280 method 1), as `sha1sum` of the point printed it.
const EC_V1_CERTIFICATE: &str = "MIIBGTCBwQIUYZaHkHdsNOABo8IOgr3NLChPVXQwCgYIKoZIzj0EAwIwEDEOMAwGA1UEAwwFbm9za2kwHhcNMjYxMjA3MDY0NTE3WhcNMjYxMjA4MDY0NTE3WjAQMQ4wDAYDVQQDDAVub3NraTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABLz1spn/7cI5c/CfBltwvymnkQKGL0mOC+CcKVLdwTALGL/mPVzVJNMjeHc3LcxISEahJS/mA9W+z7tZgQ674fQwCgYIKoZIzj0EAwIDRwAwRAIgdfzk5zq2mGrHO3wdqgY5T4bMbHlitp36766WDS3+2ScCIBNEx9BPbf3f8NfInBMlgDHqm/VeEKaPbGooP7o8qGGq";

#[test]
fn client_certificates_name_their_key_and_type() {
    use base64::Engine;
    let der = |b64: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
    };
    match KeyRecipient::of_certificate(&der(ED25519_CERTIFICATE)) {
        Err(Unusable::KeyType(what)) => assert!(what.contains("Ed25519"), "{what}"),
        other => panic!("{other:?}"),
    }
    let recipient = KeyRecipient::of_certificate(&der(EC_V1_CERTIFICATE)).unwrap();
    assert!(matches!(
        recipient,
        KeyRecipient::Ec {
            curve: EcCurve::P256,
            ..
        }
    ));
    assert_eq!(
        hex::encode(recipient.key_id()),
        "2d465c8d1b78ab8f6487de7f54117a0284f19b15"
    );
    assert_eq!(recipient.form(), "asymmetric");
    assert_eq!(
        KeyRecipient::of_certificate(b"not a certificate").unwrap_err(),
        Unusable::Malformed
    );
}
