//! The PIN page per handler and operators' templates: each handler's page, templates checked
//! (CSP hashes), served and reloaded, and the pages in headless Chromium.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Output, Stdio};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::kit::{ALICE, Anchored, Browser, TestGateway, append_file as append, ast, output_text};

/// The Swedish template shipped as an example for operators.
const SWEDISH: &str = include_str!("../../../docs/examples/pages/ast.sv.html");

/// handler.2 (`staff`: PIN of 10+, no legacy file) and handler.3 (`contractors/…`).
const HANDLERS: &str = "\nhandler.2.filter = staff\nhandler.2.format = ast-default.format\n\
     handler.2.tokenprocedure = default\nhandler.2.password.minLength = 10\n\
     handler.2.pkcs12.profiles = modern\n\
     handler.3.filter = contractors/.*\nhandler.3.format = ast-default.format\n\
     handler.3.tokenprocedure = default\n";

/// Runs `ast-gateway --root ROOT ARGS…` to completion.
fn cli(root: &Path, args: &[&str]) -> Output {
    let mut c = ast(root);
    c.args(args).stdin(Stdio::null());
    c.output().unwrap()
}

/// `sha256-…` of a block, computed here independently of the crate.
fn sha256_source(block: &str) -> String {
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(block.as_bytes()))
    )
}

/// The text between `<tag>` and `</tag>`.
fn block<'a>(html: &'a str, tag: &str) -> &'a str {
    html.split_once(&format!("<{tag}>"))
        .and_then(|(_, rest)| rest.split_once(&format!("</{tag}>")))
        .map(|(b, _)| b)
        .unwrap()
}

/// GET a page: status, error code, CSP and body.
async fn page(gw: &TestGateway, path: &str) -> (u16, Option<String>, String, String) {
    let response = gw.get(path).await;
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let code = header("x-ast-error");
    let csp = header("content-security-policy").unwrap_or_default();
    (status, code, csp, response.text().await.unwrap())
}

// --- the PIN page per handler ----------------------------------------------------------------

#[tokio::test]
async fn each_handler_has_its_pin_page() {
    let gw = TestGateway::start_with(|root| append(&root.ast_properties(), HANDLERS)).await;

    let (status, _, default_csp, html) = page(&gw, "/pgwy/request/ast.html").await;
    assert_eq!(status, 200);
    assert!(html.contains("action=\"/pgwy/ast\""), "{html}");
    assert!(html.contains("minlength=\"6\""));
    assert!(
        html.contains("value=\"legacy\""),
        "handler.1 offers the legacy file"
    );

    let (status, _, csp, html) = page(&gw, "/pgwy/request/staff/ast.html").await;
    assert_eq!(status, 200);
    assert!(html.contains("action=\"/pgwy/ast/staff\""), "{html}");
    assert!(html.contains("minlength=\"10\""), "handler.2's PIN policy");
    assert!(html.contains("10 to 128 characters"));
    assert!(
        !html.contains("value=\"legacy\""),
        "handler.2 offers no legacy file"
    );
    // The same bundled template: the same hashes.
    assert_eq!(csp, default_csp);
    for tag in ["script", "style"] {
        assert!(csp.contains(&sha256_source(block(&html, tag))), "{csp}");
    }

    let (status, _, _, html) = page(&gw, "/pgwy/request/contractors/acme/ast.html").await;
    assert_eq!(status, 200);
    assert!(html.contains("action=\"/pgwy/ast/contractors/acme\""));
    // Percent-encoded on the way in, decoded for selection, encoded again in the action.
    let (status, _, _, html) = page(&gw, "/pgwy/request/contractors/acme%20ab/ast.html").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("action=\"/pgwy/ast/contractors/acme%20ab\""),
        "{html}"
    );

    // No handler for the path: refused like the issuance would be, and audited.
    let (status, code, _, html) = page(&gw, "/pgwy/request/nobody/ast.html").await;
    assert_eq!((status, code.as_deref()), (404, Some("no-handler")));
    assert!(html.contains("no handler matches this path"), "{html}");
    let audit = gw.gateway.store().audit_page(0, 0, 1000).await.unwrap();
    assert!(
        audit.iter().any(|r| r.event == "refused"
            && r.detail.contains("\"path\":\"nobody\"")
            && r.detail.contains("no-handler")),
        "no audit record of the refusal"
    );
    let (status, code, _, _) = page(&gw, "/pgwy/request/staff/other.html").await;
    assert_eq!((status, code.as_deref()), (404, Some("not-found")));

    // The page's rules are the ones issuance enforces.
    let response = gw.post("/staff", ALICE, &[("password", "Nine-char")]).await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["x-ast-error"], "password-policy");
    let response = gw
        .post("/staff", ALICE, &[("password", "Ten-chars!")])
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn page_templates_are_checked_served_and_reloaded() {
    let gw = TestGateway::start_with(|root| {
        append(&root.ast_properties(), HANDLERS);
        std::fs::create_dir_all(root.pages()).unwrap();
        std::fs::write(root.pages().join("ast.html"), SWEDISH).unwrap();
    })
    .await;
    let root = gw.root();
    // The bundled page's script hash, for comparison: computed from the source file.
    let bundled_csp = sha256_source(block(include_str!("../../../src/http/ast.html"), "script"));

    // Every handler without its own template gets ast.html, with its own values.
    let (status, _, csp, html) = page(&gw, "/pgwy/request/staff/ast.html").await;
    assert_eq!(status, 200);
    assert!(html.contains("<html lang=\"sv\">"));
    assert!(html.contains("<title>Hämta ditt mjuka certifikat</title>"));
    assert!(html.contains("action=\"/pgwy/ast/staff\""));
    assert!(html.contains("10 till 128 tecken: bokstäver"), "{html}");
    assert!(
        !html.contains("Fil för äldre enheter"),
        "no legacy section for handler.2"
    );
    assert!(!html.contains("{{"), "a placeholder left in the page");
    // Its own hashes, not the bundled page's.
    assert!(
        csp.contains(&sha256_source(block(&html, "script"))),
        "{csp}"
    );
    assert!(csp.contains(&sha256_source(block(&html, "style"))), "{csp}");
    assert!(!csp.contains(&bundled_csp), "{csp}");
    assert!(!csp.contains("unsafe-inline"));
    let (_, _, _, html) = page(&gw, "/pgwy/request/ast.html").await;
    assert!(
        html.contains("Fil för äldre enheter"),
        "legacy section for handler.1"
    );

    // A broken template is refused on reload (with its line) and the old page keeps serving.
    let broken = SWEDISH.replacen(
        "<button id=\"submit\" type=\"submit\">",
        "<button id=\"submit\" type=\"submit\" onclick=\"go()\">",
        1,
    );
    let line = broken.lines().position(|l| l.contains("onclick")).unwrap() + 1;
    std::fs::write(root.pages().join("ast.html"), &broken).unwrap();
    let errors = gw.gateway.reload().unwrap_err().to_string();
    assert!(
        errors.contains(&format!("ast.html:{line}: an inline event handler")),
        "{errors}"
    );
    let (_, _, _, html) = page(&gw, "/pgwy/request/ast.html").await;
    assert!(html.contains("lang=\"sv\"") && !html.contains("onclick"));
    // `config check` reports the same, and fails.
    let out = cli(root.dir(), &["config", "check"]);
    assert!(!out.status.success());
    assert!(
        output_text(&out).contains(&format!("ast.html:{line}: an inline event handler")),
        "{}",
        output_text(&out)
    );

    // A page for a handler that does not exist is refused too.
    std::fs::write(root.pages().join("ast.html"), SWEDISH).unwrap();
    std::fs::write(root.pages().join("handler.9.html"), SWEDISH).unwrap();
    let errors = gw.gateway.reload().unwrap_err().to_string();
    assert!(
        errors.contains("handler.9.html: there is no enabled handler.9"),
        "{errors}"
    );
    std::fs::remove_file(root.pages().join("handler.9.html")).unwrap();

    // A per-handler template and a changed default take effect on reload.
    let german = SWEDISH
        .replacing("<html lang=\"sv\">", "<html lang=\"de\">")
        .replacing("Hämta ditt mjuka certifikat", "Ihr Zertifikat abholen");
    std::fs::write(root.pages().join("handler.2.html"), &german).unwrap();
    gw.gateway.reload().unwrap();
    let (_, _, _, html) = page(&gw, "/pgwy/request/staff/ast.html").await;
    assert!(
        html.contains("<title>Ihr Zertifikat abholen</title>"),
        "{html}"
    );
    let (_, _, _, html) = page(&gw, "/pgwy/request/ast.html").await;
    assert!(html.contains("lang=\"sv\""));

    // Without templates the bundled page is back.
    std::fs::remove_dir_all(root.pages()).unwrap();
    gw.gateway.reload().unwrap();
    let (_, _, csp, html) = page(&gw, "/pgwy/request/staff/ast.html").await;
    assert!(html.contains("<html lang=\"en\">"));
    assert!(csp.contains(&bundled_csp), "{csp}");
}

#[tokio::test]
async fn handler_pages_in_headless_chromium() {
    let Some(browser) = Browser::find("handler_pages_in_headless_chromium") else {
        return;
    };
    let gw = TestGateway::start_with(|root| {
        append(&root.ast_properties(), HANDLERS);
        std::fs::create_dir_all(root.pages()).unwrap();
        std::fs::write(root.pages().join("handler.1.html"), SWEDISH).unwrap();
    })
    .await;
    let shots = std::env::temp_dir().join("ast-gateway-handler-page-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let (ok, out) = browser
        .run(
            "handlers.mjs",
            &[gw.base.clone(), shots.display().to_string()],
        )
        .await;
    assert!(ok && out.contains("ok"), "browser test failed:\n{out}");
    // Two tokens of two certificates: one through each page.
    assert_eq!(gw.gateway.store().count_certificates().await.unwrap(), 4);
}
