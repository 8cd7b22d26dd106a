//! The whole journey in Chromium, each step's screenshot checked (and, on request, written to
//! docs/images/ for docs/deploy-sso.md).

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{Sso, forged, nothing_forged, relying_party, tools};
use crate::form::config::{BIN, PIN};
use crate::kit::free_port;
use crate::trust::sso_front::leaf;

/// The screenshots the journey takes, in docs/deploy-sso.md's order.
const SHOTS: [&str; 8] = [
    "sso-1-sign-in",
    "sso-2-pin-page",
    "sso-3-creating",
    "sso-4-downloaded",
    "sso-5-sign-in-ended",
    "sso-6-relying-party",
    "sso-7-revoked",
    "sso-8-refused",
];

/// Larger screenshots are refused (they are committed).
const MAX_SHOT_BYTES: u64 = 150 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_journey_in_chromium() {
    let Some(tools) = tools("sso_journey_in_chromium") else {
        return;
    };
    let sso = Sso::start(tools).await;
    let dir = sso.dir.path().to_path_buf();
    let update = std::env::var("AST_GATEWAY_SCREENSHOTS").is_ok_and(|v| v == "update");
    let shots = if update {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/images")
    } else {
        dir.join("shots")
    };
    std::fs::create_dir_all(&shots).unwrap();
    let downloads = dir.join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();

    // Sign in, PIN page, PIN, download; the sign-in ends, Sign in again, a second token.
    let shown = sso
        .browser(
            "token",
            json!({
                "url": sso.pin_page(), "user": "zoe", "password": "zoe-password", "pin": PIN,
                "downloads": downloads, "shots": shots, "forged": forged(), "expire": true,
            }),
        )
        .await;
    what_the_user_saw(&shown, &sso.provider.issuer);
    let token = std::fs::read(shown["first"]["saved"].as_str().unwrap()).unwrap();
    let (der, subject) = leaf(&token);
    assert!(subject.contains("CN=Zoë Ångström"), "{subject}");
    nothing_forged(&der);
    assert_eq!(
        sso.gw.gateway.store().count_certificates().await.unwrap(),
        4
    );

    let serial = use_the_token(&sso, &der, &token, &shots).await;
    assert!(!serial.is_empty());
    a_sign_in_without_a_name(&sso, &shots).await;
    the_screenshots(&shots);
}

/// The provider first, then the PIN page naming the person and both certificates (with her
/// e-mail, not the forged one) and the PIN policy; the download named after her, the progress
/// animation stopped, the `downloaded` cookie across Apache; the sign-in ending, in words, and a
/// second token after signing in again.
fn what_the_user_saw(shown: &Value, provider: &str) {
    assert!(
        shown["signInAt"].as_str().unwrap().starts_with(provider),
        "the PIN page sent the user to the provider first: {shown}"
    );
    let page = &shown["page"];
    assert_eq!(page["person"], "Zoë Ångström", "{shown}");
    let certificates = page["certificates"].as_array().unwrap();
    assert_eq!(certificates.len(), 2, "{shown}");
    for (item, purpose) in certificates.iter().zip(["authentication", "signing"]) {
        let item = item.as_str().unwrap();
        assert!(
            item.starts_with(purpose) && item.contains("CN=Zoë Ångström"),
            "{item}"
        );
        assert!(
            item.contains("zoe.angstrom@example.org") && !item.contains("ceo@"),
            "{item}"
        );
    }
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    assert!(text(&page["policy"]).contains("characters"), "{shown}");
    assert_eq!(shown["first"]["suggested"], "Zoë Ångström.p12", "{shown}");
    assert!(text(&shown["first"]["status"]).contains("Zoë Ångström.p12"));
    let cookies = shown["cookies"].as_array().unwrap();
    assert!(cookies.iter().any(|c| c == "downloaded=true"), "{shown}");
    assert!(
        text(&shown["ended"]).contains("sign-in has ended"),
        "{shown}"
    );
    assert_eq!(shown["again"]["person"], "Zoë Ångström", "{shown}");
    assert_eq!(shown["second"]["suggested"], "Zoë Ångström.p12", "{shown}");
}

/// A sign-in without a name: the PIN page explains before any PIN, shows no form, issues
/// nothing.
async fn a_sign_in_without_a_name(sso: &Sso, shots: &Path) {
    let before = sso.gw.gateway.store().count_certificates().await.unwrap();
    let refused = sso
        .browser(
            "refused",
            json!({ "url": sso.pin_page(), "user": "kim", "password": "kim-password", "shots": shots }),
        )
        .await;
    assert_eq!(refused["refusalCode"], "field-missing", "{refused}");
    assert!(
        refused["refusal"]
            .as_str()
            .unwrap()
            .contains("could not be used for a certificate"),
        "{refused}"
    );
    assert_eq!(refused["form"], false, "{refused}");
    assert_eq!(
        sso.gw.gateway.store().count_certificates().await.unwrap(),
        before
    );
}

/// Every step's screenshot exists, is small, and docs/deploy-sso.md shows it.
fn the_screenshots(shots: &Path) {
    let doc = super::doc::TEXT;
    for name in SHOTS {
        let file = shots.join(format!("{name}.png"));
        let size = std::fs::metadata(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .len();
        assert!(
            size > 1000 && size <= MAX_SHOT_BYTES,
            "{name}.png is {size} bytes"
        );
        assert!(
            doc.contains(&format!("(images/{name}.png)")),
            "the doc does not show {name}"
        );
    }
}

/// The token in an NSS database, a second Chromium at nginx: the page shows the subject;
/// after `certs revoke` the same visit is refused. The revoked serial.
async fn use_the_token(sso: &Sso, der: &[u8], token: &[u8], shots: &Path) -> String {
    let dir = sso.dir.path().join("relying-party");
    std::fs::create_dir_all(&dir).unwrap();
    let data = sso.gw.root().data();
    std::fs::copy(data.join("tls/server.pem"), dir.join("server.pem")).unwrap();
    std::fs::copy(data.join("tls/server.key"), dir.join("server.key")).unwrap();
    let chain = format!(
        "{}{}",
        std::fs::read_to_string(data.join("ca/issuing.pem")).unwrap(),
        std::fs::read_to_string(data.join("ca/root.pem")).unwrap()
    );
    std::fs::write(dir.join("ast-ca-chain.pem"), chain).unwrap();
    let token_file = dir.join("token.p12");
    std::fs::write(&token_file, token).unwrap();
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    let issuer_cn = cert
        .issuer()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap()
        .to_string();
    // As nginx's $ssl_client_serial writes it: hex, no sign byte.
    let serial = cert
        .raw_serial()
        .iter()
        .skip_while(|b| **b == 0)
        .map(|b| format!("{b:02X}"))
        .collect::<String>();
    let port = free_port();
    let origin = format!("https://localhost:{port}");
    let (home, profile) = relying_party::browser_home(
        &dir,
        &token_file,
        PIN,
        &data.join("ca/root.pem"),
        &issuer_cn,
        &origin,
    );
    let _nginx = relying_party::nginx(&sso.tools.nginx, &dir, port);
    let visit = |name: &str| json!({ "url": format!("{origin}/"), "home": home, "profile": profile, "shots": shots, "name": name });
    let welcomed = sso.browser("visit", visit("sso-6-relying-party")).await;
    let nginx_log = || std::fs::read_to_string(dir.join("nginx.stderr")).unwrap_or_default();
    assert_eq!(welcomed["status"], 200, "{welcomed} {}", nginx_log());
    let dn = welcomed["dn"].as_str().unwrap();
    assert!(dn.contains("CN=Zoë Ångström"), "{welcomed}");
    assert!(
        welcomed["text"].as_str().unwrap().contains(&serial),
        "the authentication certificate was used: {welcomed} (serial {serial})"
    );

    let revoked = Command::new(BIN)
        .arg("--root")
        .arg(sso.gw.root.path())
        .args(["certs", "revoke", &serial, "--reason", "keyCompromise"])
        .output()
        .unwrap();
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let refused = sso.browser("visit", visit("sso-7-revoked")).await;
    assert_eq!(refused["status"], 400, "{refused} {}", nginx_log());
    assert!(
        refused["dn"].is_null() && !refused["text"].as_str().unwrap().contains("Zoë"),
        "{refused}"
    );
    assert!(
        nginx_log().contains("revoked"),
        "nginx asked OCSP: {}",
        nginx_log()
    );
    serial
}
