//! The SSO front as operators configure it (issue 26): the headers each handler reads,
//! `defaultFormat = off`, `[trust] header_encoding` on SIGHUP, `(null)` and mojibake, and what
//! the PIN page's refusal says. Behind a real Apache httpd: `sso_apache`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use crate::form::config::{PIN, init_root, post};
use crate::kit::TestGateway;
use crate::kit::{Anchored, BIN, Serve};

/// The leaf certificate of a PKCS#12 (PIN [`PIN`]): its DER and its subject (RFC 4514), read by
/// p12-keystore and x509-parser.
pub(crate) fn leaf(p12: &[u8]) -> (Vec<u8>, String) {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let store =
        p12_keystore::KeyStore::from_pkcs12(p12, PIN, p12_keystore::Pkcs12ImportPolicy::Relaxed)
            .unwrap();
    let (_, chain) = store.private_key_chain().unwrap();
    let der = chain.certs()[0].as_der().to_vec();
    let subject = X509Certificate::from_der(&der)
        .unwrap()
        .1
        .subject()
        .to_string();
    (der, subject)
}

pub(crate) fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The `#message` text of the HTML refusal page.
fn page_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let start = text.find("id=\"message\"").expect("a #message element");
    let rest = &text[start..];
    rest[rest.find('>').unwrap() + 1..rest.find("</p>").unwrap()].to_string()
}

const CLAIMS_MAPPED: &str = "handler.1.defaultFormat = off\n\
    handler.1.formatFields.1 = ast.valuetarget.commonname.value = commonname | trim | required | maxlen(64)\n\
    handler.1.formatFields.9 = ast.valuetarget.rfc822name.value = email | trim | lower | email\n";

/// With `defaultFormat = off`, a browser-sent `organization` or `upn` header does not reach the
/// certificate; `config check` and `config front-headers` list only the mapped headers. The
/// default handler, for contrast, takes both.
#[tokio::test]
async fn claims_mapped_handler_reads_only_its_own_headers() {
    let (_dir, root) = init_root();
    let forged = [
        ("commonname", "Zoë Berg"),
        ("email", "zoe@example.org"),
        ("organization", "Evil Corp"),
        ("upn", "admin@corp.example"),
    ];
    // The default format takes them (this is what the switch is for).
    let server = Serve::start(&root);
    let (status, code, body) = post(&server.url("/pgwy/ast"), &forged).await;
    assert_eq!(status, 200, "{code:?}");
    let (der, subject) = leaf(&body);
    assert!(subject.contains("O=Evil Corp"), "{subject}");
    assert!(contains(&der, "admin@corp.example"));
    drop(server);

    let ast = root.join("conf/ast.properties");
    let mut text = std::fs::read_to_string(&ast).unwrap();
    text.push_str(CLAIMS_MAPPED);
    std::fs::write(&ast, text).unwrap();
    let check = Command::new(BIN)
        .arg("--root")
        .arg(&root)
        .args(["config", "check"])
        .output()
        .unwrap();
    let check = String::from_utf8(check.stdout).unwrap();
    assert!(
        check.contains("reads headers: commonname, email (defaultFormat = off"),
        "{check}"
    );
    let strip = Command::new(BIN)
        .arg("--root")
        .arg(&root)
        .args(["config", "front-headers", "--front", "nginx"])
        .output()
        .unwrap();
    let strip = String::from_utf8(strip.stdout).unwrap();
    let lines: Vec<&str> = strip.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines,
        [
            "proxy_set_header commonname \"\";",
            "proxy_set_header email \"\";"
        ]
    );

    let server = Serve::start(&root);
    let (status, code, body) = post(&server.url("/pgwy/ast"), &forged).await;
    assert_eq!(status, 200, "{code:?}");
    let (der, subject) = leaf(&body);
    assert_eq!(subject, "CN=Zoë Berg");
    assert!(contains(&der, "zoe@example.org"));
    for value in ["Evil Corp", "admin@corp.example"] {
        assert!(!contains(&der, value), "{value} reached the certificate");
    }
}

/// `(null)` (Apache's text for an unset variable) and UTF-8 read as Latin-1 are refused with
/// `field-suspicious`; the page tells the user no header name, the audit row has the detail.
#[tokio::test]
async fn suspicious_values_are_refused_with_their_code() {
    let gw = TestGateway::start_with(|root| {
        let toml = root.gateway_toml();
        let text = std::fs::read_to_string(&toml).unwrap().replacing(
            "header_encoding = \"utf-8-or-latin-1\"",
            "header_encoding = \"latin-1\"",
        );
        std::fs::write(toml, text).unwrap();
    })
    .await;
    let form = [("password", PIN)];
    // Refusals are audited one row per peer, code and minute: the first one's reason is kept.
    for (name, value) in [
        // UTF-8 `Zoë` from the front, read as Latin-1: `ZoÃ«`.
        ("commonname", "Zoë Berg"),
        ("commonname", "(null)"),
        ("email", "(null)"),
    ] {
        let mut headers = vec![("commonname", "Alice")];
        headers.retain(|(n, _)| *n != name);
        headers.push((name, value));
        let response = gw.post("", &headers, &form).await;
        assert_eq!(response.status().as_u16(), 400, "{name}: {value}");
        assert_eq!(
            response.headers()["x-ast-error"].to_str().unwrap(),
            "field-suspicious"
        );
        let message = page_message(&response.bytes().await.unwrap());
        assert!(message.contains("support desk"), "{message}");
        for header in gw.gateway.rules().headers_read() {
            assert!(!message.contains(&header), "`{header}` in {message}");
        }
        assert!(!message.contains("header"), "{message}");
    }
    // Latin-1 that is really Latin-1 is fine: `Ström` as one byte per character.
    let response = crate::kit::client()
        .post(format!("{}/pgwy/ast", gw.base))
        .header(
            "commonname",
            reqwest::header::HeaderValue::from_bytes(b"Hanna Str\xf6m").unwrap(),
        )
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // The operator's detail is in the audit row: the header and the cause, not the value.
    let audit = Command::new(BIN)
        .arg("--root")
        .arg(gw.root.path())
        .args(["audit", "export"])
        .output()
        .unwrap();
    let audit = String::from_utf8_lossy(&audit.stdout);
    let row = audit
        .lines()
        .find(|l| l.contains("field-suspicious") && l.contains("mojibake"))
        .unwrap_or_else(|| panic!("no audit row: {audit}"));
    assert!(row.contains("commonname") && !row.contains("Berg"), "{row}");
}

/// SIGHUP applies a changed `[trust] header_encoding` and warns that a changed `[trust]
/// proxies` needs a restart: every `[trust]` key either applies or warns.
#[tokio::test]
async fn sighup_applies_header_encoding_and_warns_for_proxies() {
    let (_dir, root) = init_root();
    let server = Serve::start(&root);
    // "Zoë Berg" in base64url: read as the default encoding it is a CN of base64 text.
    let headers = [("commonname", "Wm_DqyBCZXJn")];
    let (status, _, body) = post(&server.url("/pgwy/ast"), &headers).await;
    assert_eq!(status, 200);
    assert_eq!(leaf(&body).1, "CN=Wm_DqyBCZXJn");
    // … which `config explain` points out.
    let explain = Command::new(BIN)
        .arg("--root")
        .arg(&root)
        .args([
            "config",
            "explain",
            "/pgwy/ast",
            "-H",
            "commonname: Wm_DqyBCZXJn",
        ])
        .output()
        .unwrap();
    let explain = String::from_utf8(explain.stdout).unwrap();
    assert!(
        explain.contains("hint: the `commonname` value looks like base64url")
            && explain.contains("Zoë Berg"),
        "{explain}"
    );

    let toml = root.join("conf/gateway.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let changed = text.replacing(
        "header_encoding = \"utf-8-or-latin-1\"",
        "header_encoding = \"base64url\"",
    );
    assert_ne!(
        changed, text,
        "the default gateway.toml names header_encoding"
    );
    std::fs::write(&toml, &changed).unwrap();
    server.signal("-HUP");
    let log = server.wait_for("configuration reloaded");
    assert!(
        log.iter().any(|l| l.contains("header_encoding=base64url")),
        "{log:#?}"
    );
    assert!(
        !log.iter().any(|l| l.contains("only after a restart")),
        "{log:#?}"
    );
    let (status, code, body) = post(&server.url("/pgwy/ast"), &headers).await;
    assert_eq!(status, 200, "{code:?}");
    assert_eq!(leaf(&body).1, "CN=Zoë Berg", "the reload applied base64url");

    let proxies = changed.replacing("\"127.0.0.1/32\", \"::1/128\"", "\"127.0.0.1/32\"");
    assert_ne!(
        proxies, changed,
        "the default gateway.toml lists the loopback proxies"
    );
    std::fs::write(&toml, proxies).unwrap();
    server.signal("-HUP");
    server.wait_for("take effect only after a restart: [trust] proxies");
}

/// Behind a TLS-terminating front the gateway sees plain HTTP; an https `public_url` still marks
/// the `downloaded` cookie `Secure`.
#[tokio::test]
async fn downloaded_cookie_is_secure_for_an_https_public_url() {
    let gw = TestGateway::start_with(|root| {
        let toml = root.gateway_toml();
        let text = std::fs::read_to_string(&toml).unwrap().replacing(
            "public_url = \"http://127.0.0.1:8080\"",
            "public_url = \"https://ast.example.org\"",
        );
        std::fs::write(toml, text).unwrap();
    })
    .await;
    let response = gw
        .post("", &[("commonname", "Alice")], &[("password", PIN)])
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("downloaded=true") && cookie.ends_with("; Secure"),
        "{cookie}"
    );
}
