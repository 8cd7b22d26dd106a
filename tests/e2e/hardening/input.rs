//! Issue 12, hostile input: officer identity (issuer + serial, a malleated ECDSA signature, an
//! unregistered certificate), names (NFC, format characters, e-mail addresses, encodings that
//! fail before key generation), identity header encodings, file modes, `/readyz` on a locked
//! database and blank PINs. Each test fails on the code before issue 12.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use ast_gateway::ca::pem_certificate;
use der::{Decode, Encode};
use sha2::Digest;

use crate::kit::{Anchored, TestGateway, error_code, post_raw_headers};
use crate::trust::Env;

/// POSTs the form (PIN `secret-123`) with identity headers given as raw bytes.
async fn post(client: &reqwest::Client, url: &str, headers: &[(&str, &[u8])]) -> reqwest::Response {
    post_pin(client, url, headers, "secret-123").await
}

async fn post_pin(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &[u8])],
    pin: &str,
) -> reqwest::Response {
    post_raw_headers(client, url, headers, pin).await
}

fn code(response: &reqwest::Response) -> String {
    error_code(response)
}

/// The first certificate of a PKCS#12 (PIN `secret-123`), parsed by x509-parser.
fn leaf_of(pkcs12: &[u8]) -> Vec<u8> {
    let store = p12_keystore::KeyStore::from_pkcs12(
        pkcs12,
        "secret-123",
        p12_keystore::Pkcs12ImportPolicy::Relaxed,
    )
    .unwrap();
    let (_, chain) = store.private_key_chain().unwrap();
    chain.certs()[0].as_der().to_vec()
}

/// CN and rfc822Name SANs of a certificate, via x509-parser (an independent parser).
fn cn_and_emails(der: &[u8]) -> (Vec<String>, Vec<String>) {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    let cns = cert
        .subject()
        .iter_common_name()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let emails = cert
        .subject_alternative_name()
        .unwrap()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::RFC822Name(e) => Some(e.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    (cns, emails)
}

// ----------------------------------------------------------------------------------------
// 1. Officers are identified by issuer + serial.

/// The order n of P-256, big-endian.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// A certificate as three opaque parts, to swap the signature without touching the rest.
#[derive(der::Sequence)]
struct RawCertificate {
    tbs: der::asn1::Any,
    algorithm: der::asn1::Any,
    signature: der::asn1::BitString,
}

/// ECDSA-Sig-Value (RFC 3279).
#[derive(der::Sequence)]
struct EcdsaSignature {
    r: der::asn1::Uint,
    s: der::asn1::Uint,
}

/// The same certificate with its ECDSA P-256 signature's `s` replaced by `n − s`: still a valid
/// signature by the same CA over the same TBS (no CA key needed), but other DER bytes and so
/// another fingerprint.
fn malleate(certificate_der: &[u8]) -> Vec<u8> {
    let mut raw = RawCertificate::from_der(certificate_der).unwrap();
    let mut signature = EcdsaSignature::from_der(raw.signature.raw_bytes()).unwrap();
    let s = signature.s.as_bytes();
    let mut padded = [0u8; 32];
    padded[32 - s.len()..].copy_from_slice(s);
    // n − s, big-endian, with borrow.
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = P256_ORDER[i] as i16 - padded[i] as i16 - borrow;
        borrow = 0;
        if d < 0 {
            d += 256;
            borrow = 1;
        }
        out[i] = d as u8;
    }
    assert_eq!(borrow, 0, "s was not below n");
    signature.s = der::asn1::Uint::new(&out).unwrap();
    raw.signature = der::asn1::BitString::from_bytes(&signature.to_der().unwrap()).unwrap();
    raw.to_der().unwrap()
}

/// Replaces the certificate of a PEM identity (certificate + key).
fn with_certificate(identity: &[u8], certificate_der: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(identity.to_vec()).unwrap();
    let key_start = text.find("-----BEGIN PRIVATE KEY-----").unwrap();
    let mut pem = pem_certificate(certificate_der);
    pem.push_str(&text[key_start..]);
    pem.into_bytes()
}

fn certificate_of(identity: &[u8]) -> Vec<u8> {
    let (_, der) = der::pem::decode_vec(
        String::from_utf8(identity.to_vec())
            .unwrap()
            .split_inclusive("-----END CERTIFICATE-----\n")
            .next()
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    der
}

/// openssl agrees that the malleated certificate is still signed by the officers CA.
fn openssl_verifies(env: &Env, certificate_der: &[u8]) {
    let Some(openssl) = crate::kit::tool("openssl") else {
        crate::kit::skipped("malleated certificate", "openssl not installed");
        return;
    };
    let dir = env.dir();
    let ca = dir.join("officers-chain.pem");
    let mut chain = std::fs::read_to_string(env.root.data().join("ca/root.pem")).unwrap();
    chain.push_str(&std::fs::read_to_string(env.root.data().join("ca/officers.pem")).unwrap());
    std::fs::write(&ca, chain).unwrap();
    let leaf = dir.join("malleated.pem");
    std::fs::write(&leaf, pem_certificate(certificate_der)).unwrap();
    let text = crate::kit::run_ok(
        &openssl,
        &[
            "verify",
            "-purpose",
            "sslclient",
            "-CAfile",
            ca.to_str().unwrap(),
            leaf.to_str().unwrap(),
        ],
    );
    assert!(text.contains(": OK"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malleated_certificate_of_a_revoked_officer_is_refused() {
    let env = Env::start("[\"127.0.0.1/32\"]").await;
    let alice: &[(&str, &[u8])] = &[("commonname", b"Alice Andersson")];
    let (serial, identity) = env.officer("Mallory Malleable", &["ast-requester"]).await;
    let original = certificate_of(&identity);
    let twin = malleate(&original);
    assert_ne!(
        sha2::Sha256::digest(&original),
        sha2::Sha256::digest(&twin),
        "the malleated certificate must have another fingerprint"
    );
    openssl_verifies(&env, &twin);
    let twin_identity = with_certificate(&identity, &twin);

    // Before revocation the twin is the same officer: issuance is audited under its serial.
    let r = post(
        &env.client(Some(&twin_identity)),
        &env.https_url("/pgwy/ast/anycert"),
        alice,
    )
    .await;
    assert_eq!(r.status(), 200, "{}", code(&r));
    let rows = env.audit_rows().await;
    assert!(
        rows.iter()
            .any(|(e, a, _)| e == "issued" && *a == format!("officer:{serial}")),
        "{rows:?}"
    );

    // Revoked by the CLI (another process): this node learns it from the registry on the
    // next request (by serial, whatever the encoding) ...
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ast-gateway"))
        .arg("--root")
        .arg(env.root.dir())
        .args(["officer", "revoke", &serial])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = env.gateway.store().count_certificates().await.unwrap();
    let mut answered = 0;
    for handler in ["anycert", "officer"] {
        let result = env
            .client(Some(&twin_identity))
            .post(env.https_url(&format!("/pgwy/ast/{handler}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("commonname", "Alice")
            .body("password=secret-123")
            .send()
            .await;
        // The periodic refresh may already have closed the handshake; an answer that comes
        // must be a refusal.
        if let Ok(r) = result {
            answered += 1;
            assert_eq!(
                (r.status().as_u16(), code(&r)),
                (403, "untrusted-caller".into()),
                "{handler}"
            );
        }
    }
    // ... and from then on refuses both encodings in the TLS handshake.
    for certificate in [&twin, &original] {
        let result = env
            .client(Some(&with_certificate(&identity, certificate)))
            .post(env.https_url("/pgwy/ast/anycert"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("commonname", "Alice")
            .body("password=secret-123")
            .send()
            .await;
        assert!(
            result.is_err(),
            "a revoked officer certificate completed a TLS handshake: {:?}",
            result.map(|r| r.status())
        );
    }
    assert_eq!(
        env.gateway.store().count_certificates().await.unwrap(),
        before,
        "a revoked officer got a certificate"
    );
    if answered > 0 {
        let rows = env.audit_rows().await;
        assert!(
            rows.iter()
                .any(|(e, _, d)| e == "refused" && d["rule"] == "officer revoked"),
            "{rows:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_in_process_closes_the_handshake_at_once() {
    let env = Env::start("[\"127.0.0.1/32\"]").await;
    let (serial, identity) = env.officer("Rita Revoked", &["ast-requester"]).await;
    let twin_identity = with_certificate(&identity, &malleate(&certificate_of(&identity)));
    env.gateway
        .revoke_officer(
            &ast_gateway::identity::Caller::Cli,
            &serial.parse().unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(env.gateway.revoked_officers().len(), 1);
    let result = env
        .client(Some(&twin_identity))
        .get(env.https_url("/healthz"))
        .send()
        .await;
    assert!(
        result.is_err(),
        "the revoked officer's malleated certificate completed a TLS handshake"
    );
    // A gateway that starts later reads the revoked set from the database.
    env.gateway.revoked_officers().replace(Default::default());
    assert_eq!(env.gateway.refresh_revoked_officers().await.unwrap(), 1);
}

/// A client certificate signed by the real officers CA (clientAuth, valid) but never
/// registered as an officer.
fn unregistered_identity(env: &Env) -> Vec<u8> {
    crate::trust::client_identity(env.gateway.ca("officers").unwrap(), "Ursula Unregistered")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistered_certificate_is_refused_even_for_none() {
    let env = Env::start("[\"127.0.0.1/32\"]").await;
    let identity = unregistered_identity(&env);
    for handler in ["anycert", "fromcert", "officer"] {
        let r = post(
            &env.client(Some(&identity)),
            &env.https_url(&format!("/pgwy/ast/{handler}")),
            &[("commonname", b"Alice")],
        )
        .await;
        assert_eq!(
            (r.status().as_u16(), code(&r)),
            (403, "untrusted-caller".into()),
            "{handler}"
        );
    }
    assert_eq!(env.gateway.store().count_certificates().await.unwrap(), 0);
    let rows = env.audit_rows().await;
    let refusals: Vec<_> = rows
        .iter()
        .filter(|(e, _, d)| e == "refused" && d["rule"] == "requiredRoRoles: registered officer")
        .collect();
    assert_eq!(refusals.len(), 3, "{rows:?}");
    // The message says what is wrong and what to do, for the operator.
    let reason = refusals[0].2["reason"].as_str().unwrap();
    assert!(
        reason.contains("not a registered officer") && reason.contains("officer issue"),
        "{reason}"
    );
}

// ----------------------------------------------------------------------------------------
// Helpers for the proxy-header tests: a gateway on the embedded default with fast EC keys.

/// The embedded default with EC keys (no RSA pool), 1000 PKCS#12 iterations, `toml` applied
/// to gateway.toml and `properties` appended to ast.properties.
pub(crate) async fn gateway(toml: impl FnOnce(String) -> String, properties: &str) -> TestGateway {
    let properties = properties.to_string();
    TestGateway::start_with(move |root| {
        let text = std::fs::read_to_string(root.gateway_toml()).unwrap();
        let text = text
            .replacing("iterations = 10000", "iterations = 1000")
            .replacing("key = \"rsa-2048\"", "key = \"ec-p256\"")
            .replacing("rsa-2048 = 32", "rsa-2048 = 0");
        std::fs::write(root.gateway_toml(), toml(text)).unwrap();
        let mut ast = std::fs::read_to_string(root.ast_properties()).unwrap();
        ast.push_str(&properties);
        std::fs::write(root.ast_properties(), ast).unwrap();
    })
    .await
}

fn url(g: &TestGateway, suffix: &str) -> String {
    format!("{}/pgwy/ast{suffix}", g.base)
}

/// Issues with `headers` on `suffix`; returns (status, code, leaf certificate DER if issued).
async fn issue(
    g: &TestGateway,
    suffix: &str,
    headers: &[(&str, &[u8])],
) -> (u16, String, Option<Vec<u8>>) {
    let r = post(&crate::kit::client(), &url(g, suffix), headers).await;
    let status = r.status().as_u16();
    let code = code(&r);
    let leaf = if status == 200 {
        Some(leaf_of(&r.bytes().await.unwrap()))
    } else {
        None
    };
    (status, code, leaf)
}

// ----------------------------------------------------------------------------------------
// 3. Header encodings.

const ENCODED_HANDLERS: &str = "
handler.2.filter = b64
handler.2.format = ast-default.format
handler.2.tokenprocedure = default
handler.2.headerEncoding = base64url

handler.3.filter = pct
handler.3.format = ast-default.format
handler.3.tokenprocedure = default
handler.3.headerEncoding = percent

handler.4.filter = strict
handler.4.format = ast-default.format
handler.4.tokenprocedure = default
handler.4.headerEncoding = utf-8
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latin1_and_encoded_identity_headers() {
    let g = gateway(|t| t, ENCODED_HANDLERS).await;
    let strom = "Hanna Ström".to_string();
    // Chromium and Java servlet fronts send ISO-8859-1 bytes (ö = 0xF6): the default
    // utf-8-or-latin-1 reads them, and UTF-8 bytes as well.
    for raw in [b"Hanna Str\xf6m".as_slice(), "Hanna Ström".as_bytes()] {
        let (status, code, leaf) = issue(&g, "", &[("commonname", raw)]).await;
        assert_eq!(status, 200, "{code}");
        assert_eq!(cn_and_emails(&leaf.unwrap()).0, vec![strom.clone()]);
    }
    // mod_auth_openidc `OIDCPassClaimsAs headers base64url`.
    let (status, code, leaf) = issue(&g, "/b64", &[("commonname", b"SGFubmEgU3Ryw7Zt")]).await;
    assert_eq!(status, 200, "{code}");
    assert_eq!(cn_and_emails(&leaf.unwrap()).0, vec![strom.clone()]);
    // Padded or not ("Åsa").
    for value in [b"w4VzYQ==".as_slice(), b"w4VzYQ"] {
        let (status, code, leaf) = issue(&g, "/b64", &[("commonname", value)]).await;
        assert_eq!(status, 200, "{code}");
        assert_eq!(cn_and_emails(&leaf.unwrap()).0, vec!["Åsa".to_string()]);
    }
    let (status, code, leaf) = issue(
        &g,
        "/b64",
        &[
            ("commonname", b"SGFubmEgU3Ryw7Zt"),
            ("email", b"aGFubmFAZXhhbXBsZS5jb20="),
        ],
    )
    .await;
    assert_eq!(status, 200, "{code}");
    assert_eq!(
        cn_and_emails(&leaf.unwrap()).1,
        vec!["hanna@example.com".to_string()]
    );
    // Not base64url (a `+`, a `!`), or base64url of bytes that are not UTF-8: bad-header.
    for bad in [b"SGFubmE+".as_slice(), b"Hanna!", b"_w"] {
        let (status, code, _) = issue(&g, "/b64", &[("commonname", bad)]).await;
        assert_eq!((status, code.as_str()), (400, "bad-header"), "{bad:?}");
    }
    // Percent-encoded UTF-8.
    let (status, code, leaf) = issue(&g, "/pct", &[("commonname", b"Hanna%20Str%C3%B6m")]).await;
    assert_eq!(status, 200, "{code}");
    assert_eq!(cn_and_emails(&leaf.unwrap()).0, vec![strom.clone()]);
    let (status, code, _) = issue(&g, "/pct", &[("commonname", b"Hanna%2")]).await;
    assert_eq!((status, code.as_str()), (400, "bad-header"));
    // A handler that insists on UTF-8 refuses Latin-1 bytes.
    let (status, code, _) = issue(&g, "/strict", &[("commonname", b"Hanna Str\xf6m")]).await;
    assert_eq!((status, code.as_str()), (400, "bad-header"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_encoding_from_gateway_toml() {
    let g = gateway(
        |t| {
            t.replacing(
                "header_encoding = \"utf-8-or-latin-1\"",
                "header_encoding = \"base64url\"",
            )
        },
        "",
    )
    .await;
    assert_eq!(
        g.gateway.settings().header_encoding.name(),
        "base64url",
        "the default gateway.toml changed"
    );
    let (status, code, leaf) = issue(&g, "", &[("commonname", b"SGFubmEgU3Ryw7Zt")]).await;
    assert_eq!(status, 200, "{code}");
    assert_eq!(
        cn_and_emails(&leaf.unwrap()).0,
        vec!["Hanna Ström".to_string()]
    );
    let (status, code, _) = issue(&g, "", &[("commonname", b"Hanna Str\xf6m")]).await;
    assert_eq!((status, code.as_str()), (400, "bad-header"));
}

// ----------------------------------------------------------------------------------------
// 2. Names.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_nfc_visible_and_assigned() {
    let g = gateway(
        |t| t,
        "
handler.2.filter = persian
handler.2.format = ast-default.format
handler.2.tokenprocedure = default
handler.2.formatFields.1 = ast.valuetarget.commonname.value = commonname | trim | required | maxlen(64) | allowformat
",
    )
    .await;
    // Decomposed input (o + U+0308) is issued composed (NFC).
    let (status, code, leaf) =
        issue(&g, "", &[("commonname", "Hanna Stro\u{308}m".as_bytes())]).await;
    assert_eq!(status, 200, "{code}");
    assert_eq!(
        cn_and_emails(&leaf.unwrap()).0,
        vec!["Hanna Ström".to_string()]
    );
    // Right-to-left override, zero-width space, an unassigned code point, a Kelvin sign.
    for bad in [
        "Alice \u{202E}nosrednA",
        "Ali\u{200B}ce",
        "Alice \u{0378}",
        "\u{212A}arl",
    ] {
        let (status, code, _) = issue(&g, "", &[("commonname", bad.as_bytes())]).await;
        assert_eq!((status, code.as_str()), (400, "field-invalid"), "{bad:?}");
    }
    // `allowformat` on this handler's CN admits the zero-width non-joiner, never RLO.
    let persian = "مهر\u{200C}آرا";
    let (status, code, leaf) = issue(&g, "/persian", &[("commonname", persian.as_bytes())]).await;
    assert_eq!(status, 200, "{code}");
    assert_eq!(cn_and_emails(&leaf.unwrap()).0, vec![persian.to_string()]);
    let (status, code, _) = issue(
        &g,
        "/persian",
        &[("commonname", "Alice\u{202E}".as_bytes())],
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "field-invalid"));
    assert_eq!(g.gateway.store().count_tokens().await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_are_rfc5321_mailboxes_with_idna_domains() {
    let g = gateway(|t| t, "").await;
    let with_email = |email: &'static str| -> Vec<(&'static str, &'static [u8])> {
        vec![("commonname", b"Alice"), ("email", email.as_bytes())]
    };
    let (status, code, leaf) = issue(&g, "", &with_email("Alice@Bücher.Example")).await;
    assert_eq!(status, 200, "{code}");
    assert_eq!(
        cn_and_emails(&leaf.unwrap()).1,
        vec!["alice@xn--bcher-kva.example".to_string()]
    );
    for bad in [
        "alice(comment)@example.com",
        "alice@[127.0.0.1]",
        "alice@127.0.0.1",
        "alice@ex_ample.com",
        "alice@\u{212A}.example.com",
        "\"alice bob\"@example.com",
        "Alice <alice@example.com>",
    ] {
        let (status, code, _) = issue(&g, "", &with_email(bad)).await;
        assert_eq!((status, code.as_str()), (400, "field-invalid"), "{bad}");
    }
    assert_eq!(g.gateway.store().count_tokens().await.unwrap(), 1);
}

// ----------------------------------------------------------------------------------------
// 2. Validation before key generation.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoding_failures_are_refused_before_any_key_is_taken() {
    // Two pooled RSA-3072 keys, one per certificate of the default token procedure: a key
    // taken from the pool cannot be replaced by the refill thread (at the lowest priority) in
    // the few milliseconds until we look.
    let g = TestGateway::start_with(|root| {
        let text = std::fs::read_to_string(root.gateway_toml()).unwrap();
        let text = text
            .replacing("iterations = 10000", "iterations = 1000")
            .replacing("key = \"rsa-2048\"", "key = \"rsa-3072\"")
            .replacing("rsa-2048 = 32", "rsa-3072 = 2");
        std::fs::write(root.gateway_toml(), text).unwrap();
    })
    .await;
    let pool = g.gateway.key_pool().clone();
    assert!(
        pool.wait_full(Duration::from_secs(300)),
        "the pool did not fill"
    );
    let pooled = || pool.fill().iter().map(|f| f.keys).sum::<usize>();
    assert_eq!(pooled(), 2);
    // serialNumber is a PrintableString: `_` cannot be encoded. Before issue 12 this failed
    // while signing, after the key was taken.
    let (status, code, _) = issue(
        &g,
        "",
        &[("commonname", b"Alice"), ("serialnumber", b"ABC_123")],
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "field-invalid"));
    assert_eq!(
        pooled(),
        2,
        "a key was taken for a request that was refused"
    );
    // Names outside the Basic Multilingual Plane are issued (the PKCS#12 friendlyName is
    // written as UTF-16 with surrogate pairs; before issue 12: a 500 after the key was used).
    for name in ["𠮷田 太郎", "A😀"] {
        let (status, code, leaf) = issue(&g, "", &[("commonname", name.as_bytes())]).await;
        assert_eq!(status, 200, "{name}: {code}");
        let leaf = leaf.unwrap_or_else(|| panic!("{name}: no certificate"));
        assert_eq!(cn_and_emails(&leaf).0, vec![name.to_string()]);
        assert!(pool.wait_full(Duration::from_secs(300)));
    }
    // The control: an issued token does take the pooled keys.
    let (status, code, _) = issue(&g, "", &[("commonname", b"Alice")]).await;
    assert_eq!(status, 200, "{code}");
    assert!(
        pooled() < 2,
        "the pool counter did not see the keys being taken"
    );
}

// ----------------------------------------------------------------------------------------
// 4. Files, readiness and PINs.

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_directory_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let g = gateway(|t| t, "").await;
    let data = g.root().data();
    // A fresh root: 0700 directory, 0600 database (SQLite alone would create it 0644).
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("ast-gateway.db")), 0o600);
    // Loosened by hand, both are private again when a gateway opens the root.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(
        data.join("ast-gateway.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let config = ast_gateway::rules::load(&g.root()).unwrap();
    let second = ast_gateway::issuance::Gateway::open(config).await.unwrap();
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("ast-gateway.db")), 0o600);
    drop(second);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_key_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = ast_gateway::config::Root::new(dir.path());
    ast_gateway::issuance::write_default(&root).unwrap();
    let toml = std::fs::read_to_string(root.gateway_toml())
        .unwrap()
        .replacing("http = \"127.0.0.1:8080\"", "http = \"127.0.0.1:0\"")
        .replacing("# https = \"127.0.0.1:8443\"", "https = \"127.0.0.1:0\"")
        .replacing("# tls_cert", "tls_cert")
        .replacing("# tls_key", "tls_key")
        .replacing("rsa-2048 = 32", "rsa-2048 = 0");
    std::fs::write(root.gateway_toml(), toml).unwrap();
    let key = root.data().join("tls/server.key");
    assert_eq!(mode(&key), 0o600, "the demo TLS key is written private");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = ast_gateway::rules::load(&root).unwrap();
    let gateway = ast_gateway::issuance::Gateway::open(config).await.unwrap();
    let error = match ast_gateway::http::start(gateway.clone(), Default::default()).await {
        Ok(_) => panic!("an HTTPS listener started with a TLS key readable by others"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("server.key") && error.contains("mode 644") && error.contains("chmod 600"),
        "{error}"
    );
    // Private again: it starts.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let server = ast_gateway::http::start(gateway, Default::default())
        .await
        .unwrap();
    let _ = server.shutdown_handle().send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_while_the_database_cannot_be_written() {
    use sqlx::Connection;
    let g = gateway(|t| t, "").await;
    assert_eq!(g.get("/readyz").await.status(), 200);
    // Another process (here: another connection) holds the SQLite write lock.
    let url = format!(
        "sqlite://{}",
        g.root().data().join("ast-gateway.db").display()
    );
    let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    let r = g.get("/readyz").await;
    assert_eq!((r.status().as_u16(), code(&r)), (503, "unavailable".into()));
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    assert_eq!(g.get("/readyz").await.status(), 200);
    holder.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blank_and_edge_whitespace_pins() {
    let g = gateway(
        |t| t,
        "
handler.2.filter = spaces
handler.2.format = ast-default.format
handler.2.tokenprocedure = default
handler.2.password.allowEdgeWhitespace = true
",
    )
    .await;
    let alice: &[(&str, &[u8])] = &[("commonname", b"Alice")];
    for pin in ["      ", " secret-123", "secret-123 "] {
        let r = post_pin(&crate::kit::client(), &url(&g, ""), alice, pin).await;
        assert_eq!(
            (r.status().as_u16(), code(&r)),
            (400, "password-policy".into()),
            "{pin:?}"
        );
    }
    let r = post_pin(
        &crate::kit::client(),
        &url(&g, "/spaces"),
        alice,
        " secret-123 ",
    )
    .await;
    assert_eq!(r.status(), 200, "{}", code(&r));
    // The PIN really is the one with the spaces.
    let p12 = r.bytes().await.unwrap();
    assert!(
        p12_keystore::KeyStore::from_pkcs12(
            &p12,
            " secret-123 ",
            p12_keystore::Pkcs12ImportPolicy::Relaxed
        )
        .is_ok()
    );
    assert_eq!(g.gateway.store().count_tokens().await.unwrap(), 1);
}
