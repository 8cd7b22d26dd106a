use super::*;
use std::path::Path;
use std::process::Command;

fn openssl() -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join("openssl"))
        .find(|p| p.is_file())
}

fn run(openssl: &Path, dir: &Path, args: &[&str]) {
    let out = Command::new(openssl)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed certificate and key made by openssl, and `sign(name, body)` by openssl cms.
fn identity(openssl: &Path, dir: &Path, name: &str, key: &[&str]) -> Vec<u8> {
    let keyfile = format!("{name}.key");
    let certfile = format!("{name}.pem");
    let mut args = vec!["req", "-x509", "-nodes", "-days", "1", "-subj"];
    let subject = format!("/CN={name}");
    args.push(&subject);
    args.extend_from_slice(key);
    args.extend_from_slice(&["-keyout", &keyfile, "-out", &certfile]);
    run(openssl, dir, &args);
    run(
        openssl,
        dir,
        &[
            "x509",
            "-in",
            &certfile,
            "-outform",
            "DER",
            "-out",
            &format!("{name}.der"),
        ],
    );
    std::fs::read(dir.join(format!("{name}.der"))).unwrap()
}

fn sign(openssl: &Path, dir: &Path, name: &str, body: &[u8], extra: &[&str]) -> String {
    std::fs::write(dir.join("body"), body).unwrap();
    let (cert, key) = (format!("{name}.pem"), format!("{name}.key"));
    let mut args = vec![
        "cms", "-sign", "-binary", "-outform", "DER", "-in", "body", "-signer", &cert, "-inkey",
        &key, "-out", "sig.der",
    ];
    args.extend_from_slice(extra);
    run(openssl, dir, &args);
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(dir.join("sig.der")).unwrap())
}

#[test]
fn openssl_signatures_verify_and_tampering_does_not() {
    let Some(openssl) = openssl() else {
        println!("skipped: openssl_signatures: openssl is not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ec = identity(
        &openssl,
        d,
        "ec",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let ec384 = identity(
        &openssl,
        d,
        "ec384",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
    );
    let rsa = identity(&openssl, d, "rsa", &["-newkey", "rsa:2048"]);
    let body = br#"{"serial":"0a1b","reason":"keyCompromise"}"#;

    for (name, der) in [("ec", &ec), ("ec384", &ec384), ("rsa", &rsa)] {
        let signature = sign(&openssl, d, name, body, &["-noattr"]);
        let signed = verify(&signature, body, der).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(signed.body_sha256, hex::encode(Sha256::digest(body)));
        // One byte changed in the body.
        assert_eq!(
            verify(
                &signature,
                br#"{"serial":"0a1c","reason":"keyCompromise"}"#,
                der
            ),
            Err(SignatureError::Invalid),
            "{name}"
        );
    }
    // SHA-384 digest with a P-256 key; the SKI as signer identifier (-keyid).
    let signature = sign(
        &openssl,
        d,
        "ec",
        body,
        &["-noattr", "-md", "sha384", "-keyid"],
    );
    verify(&signature, body, &ec).unwrap();
    // Signed by someone else than the connection's officer.
    let signature = sign(&openssl, d, "rsa", body, &["-noattr"]);
    assert_eq!(
        verify(&signature, body, &ec),
        Err(SignatureError::WrongSigner)
    );
    // With signed attributes (openssl's default) or embedded content.
    let signature = sign(&openssl, d, "ec", body, &[]);
    assert!(
        matches!(verify(&signature, body, &ec), Err(SignatureError::Malformed(m)) if m.contains("-noattr"))
    );
    let signature = sign(&openssl, d, "ec", body, &["-noattr", "-nodetach"]);
    assert!(
        matches!(verify(&signature, body, &ec), Err(SignatureError::Malformed(m)) if m.contains("detached"))
    );
    // Garbage.
    assert!(matches!(
        verify("%%%", body, &ec),
        Err(SignatureError::Malformed(_))
    ));
    assert!(matches!(
        verify("AAAA", body, &ec),
        Err(SignatureError::Malformed(_))
    ));
    assert!(matches!(
        verify(&"A".repeat(MAX_SIGNATURE_BASE64 + 4), body, &ec),
        Err(SignatureError::Malformed(_))
    ));
}

#[test]
fn signed_at_is_read_from_the_body_and_must_be_near_now() {
    let now = 1_767_225_600; // 2026-01-01T00:00:00Z
    let body = br#"{"serial":"0a","signedAt":"2026-01-01T00:04:00Z","password":"x"}"#;
    assert_eq!(signed_at(body, now).unwrap(), now + 240);
    let at = |text: &str| format!(r#"{{"signedAt":"{text}"}}"#);
    for (body, why) in [
        (at("2026-01-01T00:05:01Z"), "seconds from now"),
        (at("2025-12-31T23:54:59Z"), "seconds from now"),
        (at("yesterday"), "RFC 3339"),
        (r#"{"serial":"0a"}"#.to_string(), "missing"),
        ("[1]".to_string(), "JSON object"),
    ] {
        let e = signed_at(body.as_bytes(), now).unwrap_err();
        assert!(matches!(e, SignatureError::Stale(_)), "{body}");
        let message = e.to_string();
        assert!(
            message.contains(why) && message.contains("signedAt"),
            "{message}"
        );
    }
    // A duplicated field is no time at all.
    let twice = br#"{"signedAt":"2026-01-01T00:00:00Z","signedAt":"2026-01-01T00:00:00Z"}"#;
    assert!(signed_at(twice, now).is_err());
}
