//! The PIN page in a real browser (headless Chromium driven by playwright-core).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub(crate) mod templates;

use crate::kit::{Browser, TestGateway};

#[tokio::test]
async fn pin_page_in_headless_chromium() {
    let Some(browser) = Browser::find("pin_page_in_headless_chromium") else {
        return;
    };
    let gw = TestGateway::start().await;
    let shots = std::env::temp_dir().join("ast-gateway-page-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let (ok, text) = browser
        .run("page.mjs", &[gw.base.clone(), shots.display().to_string()])
        .await;
    assert!(ok && text.contains("ok"), "browser test failed:\n{text}");
    assert_eq!(
        gw.gateway.store().count_certificates().await.unwrap(),
        2,
        "exactly one token issued"
    );
}
