//! The PIN page in a real browser (headless Chromium driven by playwright-core).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use crate::kit::{TestGateway, skipped, tool};

#[tokio::test]
async fn pin_page_in_headless_chromium() {
    let Some(node) = tool("node") else {
        return skipped("pin_page_in_headless_chromium", "node not installed");
    };
    let Some(chromium) = tool("chromium") else {
        return skipped(
            "pin_page_in_headless_chromium",
            "chromium not installed (apt-get install chromium)",
        );
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !dir.join("node_modules/playwright-core").exists() {
        return skipped(
            "pin_page_in_headless_chromium",
            "run `npm ci` in tests/browser (playwright-core)",
        );
    }
    let gw = TestGateway::start().await;
    let shots = std::env::temp_dir().join("ast-gateway-page-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let base = gw.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(node)
            .arg(dir.join("page.mjs"))
            .arg(&base)
            .arg(&shots)
            .env("CHROMIUM", chromium)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && text.contains("ok"),
        "browser test failed:\n{text}"
    );
    assert_eq!(
        gw.gateway.store().count_certificates().await.unwrap(),
        2,
        "exactly one token issued"
    );
}
