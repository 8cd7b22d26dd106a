//! Issue 7: the admin listener's `/metrics` over real HTTP, the key pool serving a real
//! request, and the `bench` subcommand end to end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use ast_gateway::http::start_admin;
use ast_gateway::token::KeyType;

use crate::kit::{Anchored, TestGateway, client, run};

const HEADERS: &[(&str, &str)] = &[
    ("commonname", "Petra Pool"),
    ("country", "SE"),
    ("email", "petra.pool@example.com"),
];
const PIN: &str = "pool-pin-2468";

/// The value of the first sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_scrape_after_issuing_a_token_over_http() {
    let gw = TestGateway::start().await;
    let admin = start_admin(gw.gateway.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        gw.post("", HEADERS, &[("password", PIN)]).await.status(),
        200
    );
    let refused = gw.post("", HEADERS, &[("password", "12")]).await;
    assert_eq!(refused.headers()["x-ast-error"], "password-policy");

    let response = client()
        .get(format!("http://{}/metrics", admin.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    // The recorder is process-wide and other tests issue too: at least ours is counted.
    let issued = sample(
        &text,
        "ast_tokens_issued_total{handler=\"handler.1\",token_procedure=\"default\"}",
    );
    assert!(issued.is_some_and(|v| v >= 1.0), "{text}");
    let refused = sample(
        &text,
        "ast_tokens_refused_total{handler=\"handler.1\",code=\"password-policy\"}",
    );
    assert!(refused.is_some_and(|v| v >= 1.0), "{text}");
    for stage in ["keygen", "sign", "pkcs12", "store"] {
        let prefix = format!("ast_issuance_stage_seconds_count{{stage=\"{stage}\"}}");
        assert!(
            sample(&text, &prefix).is_some_and(|v| v >= 1.0),
            "{stage}: {text}"
        );
    }
    assert_eq!(
        sample(&text, "ast_key_pool_capacity{key_type=\"rsa-2048\"}"),
        Some(32.0),
        "{text}"
    );
    assert!(sample(&text, "ast_db_max_connections").is_some(), "{text}");
    assert!(text.contains("ast_build_info{version=\""), "{text}");
    assert!(!text.contains(PIN));
    // The service listener does not serve metrics.
    assert_eq!(gw.get("/metrics").await.status(), 404);
    admin.task.abort();
}

#[tokio::test]
async fn a_warm_pool_serves_the_keys_of_a_request() {
    // P-384 keys, pooled: no other test pools that type, so the pool counters are ours alone.
    let metrics = ast_gateway::http::prometheus().expect("recorder");
    let gw = TestGateway::start_with(|root| {
        let path = root.gateway_toml();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("rsa-2048 = 32"),
            "the default has a [key_pool]"
        );
        let text = text
            .replacing("rsa-2048 = 32", "ec-p384 = 4")
            .replacing("key = \"rsa-2048\"", "key = \"ec-p384\"");
        std::fs::write(&path, text).unwrap();
    })
    .await;
    let pool = gw.gateway.key_pool();
    assert!(
        pool.wait_full(Duration::from_secs(60)),
        "pool never filled: {:?}",
        pool.fill()
    );
    let fill = pool.fill();
    assert_eq!(fill.len(), 1, "only ec-p384 is pooled: {fill:?}");
    assert_eq!(
        (fill[0].key_type, fill[0].keys, fill[0].capacity),
        (KeyType::EcP384, 4, 4)
    );

    let count = |source: &str| {
        let prefix =
            format!("ast_key_pool_requests_total{{key_type=\"ec-p384\",source=\"{source}\"}}");
        sample(&metrics.render(), &prefix).unwrap_or(0.0)
    };
    let (pooled, inline) = (count("pool"), count("inline"));
    let response = gw.post("", HEADERS, &[("password", PIN)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(count("pool") - pooled, 2.0, "both keys come from the pool");
    assert_eq!(count("inline") - inline, 0.0);
    // The refill thread tops the pool up again.
    assert!(pool.wait_full(Duration::from_secs(60)), "{:?}", pool.fill());
}

#[test]
fn bench_subcommand_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_ast-gateway"));
    let root = dir.path().to_str().unwrap();
    let out = run(
        &bin,
        &[
            "--root",
            root,
            "bench",
            "--tokens",
            "2",
            "--no-pool",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["procedure"], "default");
    assert_eq!(report["tokens"], 2);
    assert_eq!(report["inline_keys"], 4);
    assert_eq!(report["pooled_keys"], 0);
    assert!(report["tokens_per_second"].as_f64().unwrap() > 0.0);
    for stage in ["keygen", "sign", "pkcs12"] {
        assert!(
            report["stage_mean_ms"][stage].as_f64().unwrap() > 0.0,
            "{stage}"
        );
    }
    let out = run(&bin, &["--root", root, "bench", "--procedure", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no token procedure named `nope`"));
}
