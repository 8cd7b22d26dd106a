//! openssl's side of an encrypted server-generated key (for `encrypted`): CSRs that name the
//! key to encrypt to (as `openssl req` writes the attribute, and as an OCTET STRING), a
//! certificate's key identifier, and opening an answer as docs/est.md does.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use der::asn1::{Any, BitString, OctetString, SetOfVec};
use der::{Decode, Encode};
use x509_cert::attr::Attribute;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, Version};
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::tools::{Tools, decode, parts};
use super::{BC_JARS, key_matches, serial_and_subject};
use crate::kit::{run_ok, tool};

pub(super) const DECRYPT_KEY_ID: &str = "1.2.840.113549.1.9.16.2.37";
pub(super) const ASYMMETRIC_DECRYPT_KEY_ID: &str = "1.2.840.113549.1.9.16.2.54";
const SERVER_GENERATED_KEY: &str = "application/pkcs7-mime; smime-type=server-generated-key";

/// A CSR (`<name>.b64`) for CN=`cn` with one attribute `oid` = `value` written by `openssl req`
/// (a UTF8String, as openssl writes attribute values).
pub(super) fn csr_with_text(t: &Tools, name: &str, cn: &str, oid: &str, value: &str) -> PathBuf {
    let config = t.path(&format!("{name}.cnf"));
    std::fs::write(
        &config,
        format!(
            "[req]\ndistinguished_name = dn\nattributes = attrs\nprompt = no\n[dn]\nCN = {cn}\n\
             [attrs]\n{oid} = {value}\n"
        ),
    )
    .unwrap();
    let der = t.path(&format!("{name}.der"));
    let key = t.path(&format!("{name}.key"));
    run_ok(
        &t.openssl,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            key.to_str().unwrap(),
            "-config",
            config.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            der.to_str().unwrap(),
        ],
    );
    t.base64_file(name, &std::fs::read(&der).unwrap())
}

/// A CSR (`<name>.b64`) for CN=`cn` whose AsymmetricDecryptKeyIdentifier is an OCTET STRING
/// holding `key_id` (RFC 7030 §4.4.1.2), signed with a fresh P-256 key.
pub(super) fn csr_with_octets(t: &Tools, name: &str, cn: &str, key_id: &[u8]) -> PathBuf {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
    let spki: PublicKeyX509Der<'_> = key.public_key().as_der().unwrap();
    let mut values = SetOfVec::new();
    values
        .insert(Any::encode_from(&OctetString::new(key_id).unwrap()).unwrap())
        .unwrap();
    let mut attributes = SetOfVec::new();
    attributes
        .insert(Attribute {
            oid: ASYMMETRIC_DECRYPT_KEY_ID.parse().unwrap(),
            values,
        })
        .unwrap();
    let info = CertReqInfo {
        version: Version::V1,
        subject: Name::from_str(&format!("CN={cn}")).unwrap(),
        public_key: SubjectPublicKeyInfoOwned::from_der(spki.as_ref()).unwrap(),
        attributes,
    };
    let signature = key.sign(&rng, &info.to_der().unwrap()).unwrap();
    let request = CertReq {
        info,
        algorithm: AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_256,
            parameters: None,
        },
        signature: BitString::from_bytes(signature.as_ref()).unwrap(),
    };
    t.base64_file(name, &request.to_der().unwrap())
}

/// The subject key identifier of a PEM certificate, lower-case hex, as openssl prints it.
pub(super) fn key_identifier(openssl: &Path, certificate: &Path) -> Vec<u8> {
    let text = run_ok(
        openssl,
        &[
            "x509",
            "-in",
            certificate.to_str().unwrap(),
            "-noout",
            "-ext",
            "subjectKeyIdentifier",
        ],
    );
    let line = text.lines().nth(1).unwrap().trim().replace(':', "");
    hex::decode(line).unwrap()
}

/// Checks an encrypted serverkeygen answer as a client would with openssl: the signature
/// against the `cacerts` chain, then decryption (`decrypt`: the recipient options), then the
/// key inside against the certificate in the answer. Returns the certificate's serial.
pub(super) fn open_answer(
    t: &Tools,
    name: &str,
    body: &crate::api::Answer,
    decrypt: &[&str],
) -> String {
    let parts = parts(body);
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert_eq!(parts[0].0, SERVER_GENERATED_KEY);
    let signed = t.path(&format!("{name}.signed.der"));
    std::fs::write(&signed, decode(&parts[0].1)).unwrap();
    let enveloped = t.path(&format!("{name}.enveloped.der"));
    let verified = run_ok(
        &t.openssl,
        &[
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            signed.to_str().unwrap(),
            "-CAfile",
            t.path("cacerts.pem").to_str().unwrap(),
            "-out",
            enveloped.to_str().unwrap(),
        ],
    );
    assert!(verified.contains("Verification successful"), "{verified}");
    // The signed content is the EnvelopedData itself; openssl cms -decrypt reads a ContentInfo,
    // so it is wrapped as docs/est.md shows.
    let p7 = t.path(&format!("{name}.enveloped.p7"));
    let perl = tool("perl").unwrap();
    let wrapped = std::process::Command::new(perl)
        .args([
            "-0777",
            "-ne",
            r#"print "\x30\x82", pack("n", length($_) + 15), "\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03\xa0\x82", pack("n", length($_)), $_"#,
            enveloped.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(wrapped.status.success());
    std::fs::write(&p7, wrapped.stdout).unwrap();
    let package = t.path(&format!("{name}.package.der"));
    let mut args = vec![
        "cms",
        "-decrypt",
        "-inform",
        "DER",
        "-in",
        p7.to_str().unwrap(),
        "-out",
        package.to_str().unwrap(),
    ];
    args.extend_from_slice(decrypt);
    run_ok(&t.openssl, &args);
    // The AsymmetricKeyPackage: one OneAsymmetricKey (PKCS#8) at depth 1.
    let parsed = run_ok(
        &t.openssl,
        &[
            "asn1parse",
            "-inform",
            "DER",
            "-in",
            package.to_str().unwrap(),
        ],
    );
    let offset = parsed
        .lines()
        .find(|l| l.contains("d=1"))
        .and_then(|l| l.split(':').next())
        .unwrap()
        .trim()
        .to_string();
    let pkcs8 = t.path(&format!("{name}.key.der"));
    run_ok(
        &t.openssl,
        &[
            "asn1parse",
            "-inform",
            "DER",
            "-in",
            package.to_str().unwrap(),
            "-offset",
            &offset,
            "-noout",
            "-out",
            pkcs8.to_str().unwrap(),
        ],
    );
    let key = t.path(&format!("{name}.key.pem"));
    der_key_to_pem(&t.openssl, &pkcs8, &key);
    assert!(parts[1].0.starts_with("application/pkcs7-mime"));
    let (certificate, _) = t.certs_only(&format!("{name}.cert"), &parts[1].1);
    key_matches(&t.openssl, &certificate, &key);
    serial_and_subject(&t.openssl, &certificate).0
}

/// A DER private key (PKCS#8) written as PEM by openssl, which must be able to read it.
fn der_key_to_pem(openssl: &Path, der: &Path, pem: &Path) {
    run_ok(
        openssl,
        &[
            "pkey",
            "-inform",
            "DER",
            "-in",
            der.to_str().unwrap(),
            "-out",
            pem.to_str().unwrap(),
        ],
    );
}

/// Whether java and the BouncyCastle jars are here for [`bouncycastle_opens`].
pub(super) fn bouncycastle() -> bool {
    tool("java").is_some() && BC_JARS.iter().all(|j| Path::new(j).is_file())
}

/// BouncyCastle's CMS (`EstDecrypt.java`) opens the answer `open_answer` saved as `name`:
/// the signature against `cacerts`, decryption for `recipient` (`cert <pem> <key>` or
/// `kek <hex key> <hex id>`), and the key inside is the certificate's.
pub(super) fn bouncycastle_opens(t: &Tools, name: &str, recipient: &[&str]) {
    let java = tool("java").unwrap();
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/est/EstDecrypt.java");
    let (jars, signed, cacerts) = (
        BC_JARS.join(":"),
        t.path(&format!("{name}.signed.der")),
        t.path("cacerts.pem"),
    );
    let out = t.path(&format!("{name}.bc.der"));
    let mut args = vec![
        "-cp",
        &jars,
        program.to_str().unwrap(),
        signed.to_str().unwrap(),
        cacerts.to_str().unwrap(),
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(recipient);
    let text = run_ok(&java, &args);
    // Signed content id-envelopedData; the key is in the answer's certificate.
    assert!(text.contains("verified 1.2.840.113549.1.7.3"), "{text}");
    assert!(text.contains("content 2.16.840.1.101.3.4.1.42"), "{text}");
    let key = t.path(&format!("{name}.bc.pem"));
    der_key_to_pem(&t.openssl, &out, &key);
    key_matches(&t.openssl, &t.path(&format!("{name}.cert.pem")), &key);
}

/// Runs the curl + openssl walk of docs/est.md ("With curl and openssl") as written, with bash
/// in a directory of its own: `$EST` the `devices` label, `ca.pem` the root, `dev-1.pem` /
/// `dev-1.key` a client certificate and key, `device-secret.txt` the Basic secret. The key it
/// ends with must be the certificate's it got.
pub(super) fn docs_walk(t: &Tools, est: &str, root: &Path, secret: &str, cert: &Path, key: &Path) {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/est.md")).unwrap();
    let section = docs.split("### With curl and openssl").nth(1).unwrap();
    let script = section
        .split("```sh\n")
        .nth(1)
        .and_then(|s| s.split("\n```").next())
        .unwrap();
    let dir = t.path("docs-walk");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(root, dir.join("ca.pem")).unwrap();
    std::fs::copy(cert, dir.join("dev-1.pem")).unwrap();
    std::fs::copy(key, dir.join("dev-1.key")).unwrap();
    std::fs::write(dir.join("device-secret.txt"), secret).unwrap();
    let bash = tool("bash").unwrap();
    let out = std::process::Command::new(bash)
        .current_dir(&dir)
        .env("EST", est)
        .args(["-euo", "pipefail", "-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docs/est.md walk failed:\n{script}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    key_matches(&t.openssl, &dir.join("dev-3.pem"), &dir.join("dev-3.key"));
}
