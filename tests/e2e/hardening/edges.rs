//! Issue 19, the low items of the second hostile review: handler paths matched as sent
//! (`%70p` is not `pp`; no encoded `/` or dot segments, so the PIN page cannot post elsewhere),
//! invisible default-ignorable characters and mixed-script words in names, a dotless `ı` that
//! upper-cases into a country code, and the identity rate limit keyed on who the user is rather
//! than on the subject DN. Each test fails on the code before.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::hardening::input::gateway;
use crate::kit::{Anchored, TestGateway};

/// POSTs the form (PIN `secret-123`) to `path` with identity headers: (status, error code,
/// the leaf certificate if issued).
async fn post(
    g: &TestGateway,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, Option<Vec<u8>>) {
    let mut request = crate::kit::client()
        .post(format!("{}{path}", g.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("password=secret-123");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let code = r
        .headers()
        .get("x-ast-error")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let leaf = (status == 200).then_some(r.bytes().await.unwrap());
    (status, code, leaf.map(|p| leaf_of(&p)))
}

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

fn subject_of(der: &[u8]) -> String {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    cert.subject().to_string()
}

/// A request sent byte for byte (reqwest would resolve dot segments before sending): the
/// status line and the error code.
async fn raw_status(g: &TestGateway, request_line: &str) -> String {
    let addr = g.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = "password=secret-123";
    let request = format!(
        "{request_line}\r\nHost: {addr}\r\ncommonname: Alice\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.lines().next().unwrap_or_default().to_string();
    let code = answer
        .lines()
        .find_map(|l| l.strip_prefix("x-ast-error: "))
        .unwrap_or_default();
    format!("{status} {code}")
}

const PATH_HANDLERS: &str = "
handler.2.filter = pp
handler.2.format = ast-default.format
handler.2.tokenprocedure = default

handler.3.filter = users/.*|contractors/acme corp
handler.3.format = ast-default.format
handler.3.tokenprocedure = default
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_paths_are_matched_as_sent() {
    let g = gateway(|t| t, PATH_HANDLERS).await;
    let alice = [("commonname", "Alice")];
    assert_eq!(post(&g, "/pgwy/ast/pp", &alice).await.0, 200);
    // An escaped unreserved character, an escaped `/`, dot segments: refused, nothing issued.
    for path in [
        "/pgwy/ast/%70p",
        "/pgwy/ast/p%70",
        "/pgwy/ast/users/..%2F..%2Fpp",
    ] {
        let (status, code, _) = post(&g, path, &alice).await;
        assert_eq!((status, code.as_str()), (400, "bad-request"), "{path}");
    }
    // Dot segments, plain or escaped (a URL library resolves both before sending: raw TCP).
    for line in [
        "POST /pgwy/ast/users/../pp HTTP/1.1",
        "POST /pgwy/ast/users/%2E%2E/pp HTTP/1.1",
        "POST /pgwy/ast/./pp HTTP/1.1",
        "GET /pgwy/request/users/%2e%2e/%2e%2e/evil/ast.html HTTP/1.1",
        "GET /pgwy/request/users/../../evil/ast.html HTTP/1.1",
    ] {
        let answer = raw_status(&g, line).await;
        assert!(
            answer.starts_with("HTTP/1.1 400") && answer.ends_with("bad-request"),
            "{line}: {answer}"
        );
    }
    // Reserved and non-ASCII escapes are still decoded for the filter.
    let (status, code, _) = post(&g, "/pgwy/ast/contractors/acme%20corp", &alice).await;
    assert_eq!(status, 200, "{code}");
    assert_eq!(g.gateway.store().count_tokens().await.unwrap(), 2);

    // The PIN page: a page whose form would post elsewhere is not served at all.
    for page in [
        "/pgwy/request/users/..%2F..%2Fevil/ast.html",
        "/pgwy/request/%70p/ast.html",
    ] {
        let r = crate::kit::client()
            .get(format!("{}{page}", g.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{page}");
        assert_eq!(r.headers()["x-ast-error"], "bad-request");
        let html = r.text().await.unwrap();
        assert!(!html.contains("<form"), "{page}: {html}");
    }
    let r = g
        .get("/pgwy/request/contractors/acme%20corp/ast.html")
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("action=\"/pgwy/ast/contractors/acme%20corp\""),
        "{html}"
    );
    let r = g.get("/pgwy/request/pp/ast.html").await;
    assert!(r.text().await.unwrap().contains("action=\"/pgwy/ast/pp\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invisible_characters_and_mixed_script_words_are_refused() {
    let g = gateway(
        |t| t,
        "
handler.2.filter = persian
handler.2.format = ast-default.format
handler.2.tokenprocedure = default
handler.2.formatFields.1 = ast.valuetarget.commonname.value = commonname | trim | required | allowformat
",
    )
    .await;
    // Combining grapheme joiner, Hangul filler, emoji variation selector, variation selector
    // 17 (none of them category Cf), and a Latin word with a Cyrillic `а`: refused on both
    // handlers, `allowformat` or not.
    for bad in [
        "Al\u{34F}ice",
        "\u{3164}",
        "Alice \u{3164}",
        "Alice\u{FE0F}",
        "Alice\u{E0100}",
        "P\u{430}ypal",
        "G\u{3BF}ogle",
    ] {
        for path in ["/pgwy/ast", "/pgwy/ast/persian"] {
            let (status, code, _) = post(&g, path, &[("commonname", bad)]).await;
            assert_eq!(
                (status, code.as_str()),
                (400, "field-invalid"),
                "{bad:?} {path}"
            );
        }
    }
    // One script per word, or Han with kana: issued as sent.
    for good in ["Иван Petrov", "山田 たろう", "Ελένη Παπαδοπούλου"] {
        let (status, code, leaf) = post(&g, "/pgwy/ast", &[("commonname", good)]).await;
        assert_eq!(status, 200, "{good}: {code}");
        assert!(subject_of(&leaf.unwrap()).contains(good));
    }
    assert_eq!(g.gateway.store().count_tokens().await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn country_codes_are_ascii_before_upper_casing() {
    let g = gateway(|t| t, "").await;
    // Dotless ı and long ſ upper-case to ASCII `I` and `S`; they are not country codes.
    for bad in ["\u{131}t", "\u{17F}e", "\u{131}T"] {
        let (status, code, _) = post(
            &g,
            "/pgwy/ast",
            &[("commonname", "Alice"), ("country", bad)],
        )
        .await;
        assert_eq!((status, code.as_str()), (400, "field-invalid"), "{bad:?}");
    }
    let (status, code, leaf) = post(
        &g,
        "/pgwy/ast",
        &[("commonname", "Alice"), ("country", "it")],
    )
    .await;
    assert_eq!(status, 200, "{code}");
    assert!(subject_of(&leaf.unwrap()).contains("C=IT"));
    assert_eq!(g.gateway.store().count_tokens().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_rate_limit_counts_users_not_subjects() {
    let g = gateway(
        |t| t.replacing("# identity_per_minute = 30", "identity_per_minute = 1"),
        "
handler.2.filter = staff
handler.2.format = ast-default.format
handler.2.tokenprocedure = default
handler.2.formatFields.7 = ast.valuetarget.organizationalunitname.value = \"Staff\"
",
    )
    .await;
    let anna_a = [("commonname", "Anna Berg"), ("email", "anna@a.example")];
    let anna_b = [("commonname", "Anna Berg"), ("email", "anna@b.example")];
    assert_eq!(post(&g, "/pgwy/ast", &anna_a).await.0, 200);
    // A namesake (same DN: the e-mail address is in the SAN) has her own budget.
    let (status, code, leaf) = post(&g, "/pgwy/ast", &anna_b).await;
    assert_eq!(status, 200, "{code}");
    assert_eq!(subject_of(&leaf.unwrap()), "CN=Anna Berg");
    // The first Anna again: through a handler that adds an OU, or with an OU header, the DN
    // differs but the user does not.
    let with_ou = [
        ("commonname", "Anna Berg"),
        ("email", "anna@a.example"),
        ("organizationalunit", "Sales"),
    ];
    for (path, headers) in [
        ("/pgwy/ast/staff", &anna_a[..]),
        ("/pgwy/ast", &with_ou[..]),
        ("/pgwy/ast", &anna_a[..]),
    ] {
        let (status, code, _) = post(&g, path, headers).await;
        assert_eq!(
            (status, code.as_str()),
            (429, "rate-limited"),
            "{path} {headers:?}"
        );
    }
    assert_eq!(g.gateway.store().count_tokens().await.unwrap(), 2);
}
