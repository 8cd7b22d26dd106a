//! The `pbmac1` PKCS#12 profile (RFC 9579) as independent readers see it: pyca/cryptography
//! (its bundled OpenSSL, 3.4 or later) opens the token with the PIN, gets the authentication key
//! and certificate and the chain, and refuses a wrong PIN; the system's OpenSSL 3.0 (Debian's)
//! refuses the file with the message the profile table of docs/ca-lifecycle.md quotes, and so do
//! the other readers of Debian 12 the table lists (Java 17's keytool, NSS's pk12util, GnuTLS's
//! certtool): a reader that learns PBMAC1 fails this test, so that the table is updated.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use crate::kit::{ALICE, Anchored, TestGateway, python_venv, run, skipped, tool};

const PIN: &str = "Str0ng-Pass!";

/// id-PBMAC1 (1.2.840.113549.1.5.14) as DER.
const PBMAC1_OID: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0e,
];

/// Opens the file with pyca/cryptography: the key must match the certificate; prints the
/// certificate's subject, its friendlyName and how many other certificates came with it, then
/// what a wrong PIN gives.
const OPEN: &str = r#"
import sys
from cryptography.hazmat.primitives.serialization import pkcs12, Encoding, PublicFormat
data = open(sys.argv[1], "rb").read()
p = pkcs12.load_pkcs12(data, sys.argv[2].encode())
spki = lambda k: k.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) if hasattr(k, "public_key") else k.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
assert spki(p.key) == spki(p.cert.certificate), "the key is not the certificate's"
print(p.cert.certificate.subject.rfc4514_string())
print(p.cert.friendly_name.decode())
print(len(p.additional_certs))
try:
    pkcs12.load_pkcs12(data, b"Wrong-Pass!")
    print("wrong PIN accepted")
except ValueError as e:
    print("wrong PIN:", e)
"#;

async fn gateway() -> TestGateway {
    TestGateway::start_with(|root| {
        let path = root.ast_properties();
        let text = std::fs::read_to_string(&path).unwrap().replacing(
            "default.pkcs12.profiles = modern, legacy",
            "default.pkcs12.profiles = modern, legacy, pbmac1",
        );
        std::fs::write(path, text).unwrap();
    })
    .await
}

async fn issue(gw: &TestGateway, profile: &str) -> Vec<u8> {
    let response = gw
        .post("", ALICE, &[("password", PIN), ("profile", profile)])
        .await;
    let code = response.headers().get("x-ast-error").cloned();
    assert_eq!(response.status(), 200, "{profile}: {code:?}");
    response.bytes().await.unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn pbmac1_opens_in_pyca_and_is_refused_by_openssl_3_0() {
    let gw = gateway().await;
    let token = issue(&gw, "pbmac1").await;
    let modern = issue(&gw, "modern").await;
    assert!(token.windows(PBMAC1_OID.len()).any(|w| w == PBMAC1_OID));
    assert!(!modern.windows(PBMAC1_OID.len()).any(|w| w == PBMAC1_OID));
    let file = gw.file("alice-pbmac1.p12", &token);

    if let Some(venv) = python_venv("pbmac1 (pyca/cryptography)") {
        let python = venv.join("bin/python");
        let out = run(&python, &["-c", OPEN, file.to_str().unwrap(), PIN]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("CN=Alice Andersson"), "{text}");
        assert_eq!(lines[1], "Alice Andersson authentication", "{text}");
        // The signing certificate, the issuing CA and the root.
        assert_eq!(lines[2], "3", "{text}");
        assert!(lines[3].starts_with("wrong PIN: "), "{text}");
    }

    let Some(openssl) = tool("openssl") else {
        return skipped("pbmac1 (openssl)", "openssl is not installed");
    };
    let version = String::from_utf8_lossy(&run(&openssl, &["version"]).stdout).to_string();
    let passin = format!("pass:{PIN}");
    let args = [
        "pkcs12",
        "-in",
        file.to_str().unwrap(),
        "-passin",
        &passin,
        "-nokeys",
        "-noout",
    ];
    let out = run(&openssl, &args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let minor: u32 = version
        .strip_prefix("OpenSSL 3.")
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or(u32::MAX);
    if minor < 4 {
        // OpenSSL 3.0-3.3 do not know PBMAC1: the MAC cannot be computed, the file is refused.
        assert!(!out.status.success(), "{version}: opened");
        assert!(stderr.contains("Mac verify error"), "{version}: {stderr}");
        assert!(
            stderr.contains("Algorithm (PBMAC1 : 0)"),
            "{version}: {stderr}"
        );
        assert!(
            stderr.contains("pkcs12_gen_mac:unknown digest algorithm"),
            "{version}: {stderr}"
        );
    } else {
        assert!(out.status.success(), "{version}: {stderr}");
    }
    // The modern token opens in the same OpenSSL.
    let modern = gw.file("alice-modern.p12", &modern);
    let out = run(
        &openssl,
        &[
            "pkcs12",
            "-in",
            modern.to_str().unwrap(),
            "-passin",
            &passin,
            "-nokeys",
            "-noout",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn readers_without_pbmac1_refuse_it_as_the_profile_table_says() {
    let gw = gateway().await;
    let file = gw.file("alice-pbmac1.p12", &issue(&gw, "pbmac1").await);
    let file = file.to_str().unwrap();
    let refusals: [(&str, Vec<&str>, &str); 3] = [
        (
            "keytool",
            vec![
                "-list",
                "-keystore",
                file,
                "-storetype",
                "PKCS12",
                "-storepass",
                PIN,
            ],
            "Algorithm HmacPBE1.2.840.113549.1.5.14 not available",
        ),
        (
            "certtool",
            vec!["--p12-info", "--inder", "--infile", file, "--password", PIN],
            "verify_mac: The hash algorithm is unknown.",
        ),
        ("pk12util", vec![], "SEC_ERROR_BAD_PASSWORD"),
    ];
    for (name, args, message) in refusals {
        let Some(program) = tool(name) else {
            skipped("pbmac1 refusals", &format!("{name} is not installed"));
            continue;
        };
        let out = if name == "pk12util" {
            pk12util_import(&program, gw.root.path(), file)
        } else {
            run(&program, &args)
        };
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{name} opened a PBMAC1 file: {text}");
        assert!(text.contains(message), "{name}: {text}");
    }
}

/// `pk12util -i` into a new empty NSS database.
fn pk12util_import(pk12util: &Path, dir: &Path, file: &str) -> std::process::Output {
    let db = dir.join("nss");
    std::fs::create_dir_all(&db).unwrap();
    let db = format!("sql:{}", db.display());
    if let Some(certutil) = tool("certutil") {
        run(&certutil, &["-N", "-d", &db, "--empty-password"]);
    }
    run(pk12util, &["-i", file, "-d", &db, "-W", PIN, "-K", ""])
}
