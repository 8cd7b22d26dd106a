//! Issue 21, revoking an issuing CA: nginx with `ssl_ocsp on` (every certificate of the chain
//! checked by OCSP, not only the leaf) accepts a good token while its issuing CA is good and
//! refuses it once `certs revoke <serial of the issuing CA>` put that CA on the root's CRL and
//! in the root's OCSP answers; Java PKIX with revocation refuses it too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ast_gateway::ca::{RevocationReason, Serial};
use ast_gateway::identity::Caller;

use crate::interop::{authentication, fetch, issue, pem, run_tool, serial_hex, start_nginx};
use crate::kit::{TestGateway, free_port, skipped, tool};

/// `GET /` on nginx with the token's authentication key: status and body (0 and the error when
/// the handshake failed).
async fn through_nginx(port: u16, root: &[u8], identity: &str) -> (u16, String) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([
            reqwest::Certificate::from_pem(pem("CERTIFICATE", root).as_bytes()).unwrap(),
        ])
        .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], port)))
        .identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    match client
        .get(format!("https://localhost:{port}/"))
        .send()
        .await
    {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// Java PKIX with revocation (OCSP, CRL DP as fallback) of `leaf` + issuing CA below the root.
async fn java_pkix(java: &Path, dir: &Path, root: &[u8], chain: &[&[u8]]) -> (bool, String) {
    let root_file = dir.join("java-root.pem");
    std::fs::write(&root_file, pem("CERTIFICATE", root)).unwrap();
    let chain_file = dir.join("java-chain.pem");
    let text: String = chain.iter().map(|c| pem("CERTIFICATE", c)).collect();
    std::fs::write(&chain_file, text).unwrap();
    let check = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/interop/Check.java");
    run_tool(
        java.to_path_buf(),
        vec![
            "-Dcom.sun.security.enableCRLDP=true".into(),
            check.display().to_string(),
            "pkix".into(),
            root_file.display().to_string(),
            chain_file.display().to_string(),
        ],
    )
    .await
}

/// Audit rows (event, detail) in order.
async fn audit_events(gw: &TestGateway) -> Vec<(String, serde_json::Value)> {
    let url = ast_gateway::rules::load(&gw.root())
        .unwrap()
        .settings
        .database_url;
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT event, detail FROM audit ORDER BY seq")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    rows.into_iter()
        .map(|(e, d)| (e, serde_json::from_str(&d).unwrap()))
        .collect()
}

fn nginx_binary() -> Option<PathBuf> {
    tool("nginx").or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.exists()))
}

/// `openssl ocsp` against the root's responder about the issuing CA certificate.
fn root_ocsp_says(gw: &TestGateway, dir: &Path) -> String {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(["ocsp", "-issuer", "root.pem", "-CAfile", "root.pem"])
        .args(["-cert", "issuing.pem", "-url"])
        .arg(format!("{}/pgwy/ocsp", gw.base))
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_issuing_ca_fails_a_good_token_in_nginx_whole_chain_ocsp_and_java() {
    let nginx = nginx_binary();
    let java = tool("java");
    if nginx.is_none() && java.is_none() {
        return skipped("revoked issuing CA", "neither nginx nor java installed");
    }
    let gw = TestGateway::start_published().await;
    let dir = gw.root.path().join("chain");
    std::fs::create_dir_all(&dir).unwrap();
    let data = gw.root().data();
    std::fs::copy(data.join("tls/server.pem"), dir.join("server.pem")).unwrap();
    std::fs::copy(data.join("tls/server.key"), dir.join("server.key")).unwrap();
    let root = fetch(&gw, "/pgwy/ca/root.cer").await;
    let issuing = fetch(&gw, "/pgwy/ca/issuing.cer").await;
    std::fs::write(dir.join("root.pem"), pem("CERTIFICATE", &root)).unwrap();
    std::fs::write(dir.join("issuing.pem"), pem("CERTIFICATE", &issuing)).unwrap();
    // The client sends its leaf only; nginx builds the chain from clients.pem (issuing CA and
    // root) and, with `ssl_ocsp on`, asks OCSP about every certificate below the root.
    std::fs::write(
        dir.join("clients.pem"),
        format!(
            "{}{}",
            pem("CERTIFICATE", &issuing),
            pem("CERTIFICATE", &root)
        ),
    )
    .unwrap();
    let (leaf, key) = authentication(&issue(&gw, "Alice Andersson", "modern").await);
    let identity = format!("{}{}", pem("CERTIFICATE", &leaf), pem("PRIVATE KEY", &key));
    let port = free_port();
    let servers = [(port, "ssl_ocsp on;")];

    // Before: the whole chain is good.
    if let Some(nginx) = &nginx {
        let server = start_nginx(nginx, &dir, &servers);
        let (status, body) = through_nginx(port, &root, &identity).await;
        assert_eq!(
            status,
            200,
            "{body} / {}",
            std::fs::read_to_string(dir.join("nginx.stderr")).unwrap_or_default()
        );
        assert!(body.contains("CN=Alice Andersson"), "{body}");
        drop(server);
    }
    if let Some(java) = &java {
        let (ok, text) = java_pkix(java, &dir, &root, &[&leaf, &issuing]).await;
        assert!(ok && text.trim_end().ends_with("valid"), "{text}");
    }

    // `certs revoke <serial of the issuing CA>`, as the CLI calls it.
    let issuing_serial = Serial::parse(&serial_hex(&issuing)).unwrap();
    gw.gateway
        .revoke(
            &issuing_serial,
            RevocationReason::KeyCompromise,
            &Caller::Cli,
            "migration-chain",
        )
        .await
        .unwrap();
    if tool("openssl").is_some() {
        let said = root_ocsp_says(&gw, &dir);
        assert!(
            said.contains("Response verify OK") && said.contains("issuing.pem: revoked"),
            "{said}"
        );
    }

    // After: the leaf is still good, its issuing CA is not; both checkers refuse the token.
    if let Some(nginx) = &nginx {
        let _server = start_nginx(nginx, &dir, &servers);
        let (status, body) = through_nginx(port, &root, &identity).await;
        assert_eq!(status, 400, "{body}");
        let log = std::fs::read_to_string(dir.join("nginx.stderr")).unwrap_or_default();
        assert!(log.contains("revoked"), "{log}");
    } else {
        skipped("revoked issuing CA: nginx", "nginx not installed");
    }
    if let Some(java) = &java {
        let (ok, text) = java_pkix(java, &dir, &root, &[&leaf, &issuing]).await;
        assert!(
            !ok && text.contains("invalid: index=1") && text.contains("REVOKED"),
            "{text}"
        );
    } else {
        skipped("revoked issuing CA: java", "java not installed");
    }

    // The revoked issuing CA refuses new tokens (ca-revoked); nothing is issued.
    let before = gw.gateway.store().count_certificates().await.unwrap();
    let response = gw
        .post(
            "",
            &[("commonname", "Carl Carlsson"), ("country", "SE")],
            &[("password", crate::interop::PIN)],
        )
        .await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["x-ast-error"], "ca-revoked");
    assert_eq!(
        gw.gateway.store().count_certificates().await.unwrap(),
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_officers_ca_refuses_officer_certificates() {
    let gw = TestGateway::start_published().await;
    let officers = fetch(&gw, "/pgwy/ca/officers.cer").await;
    let issue = async || {
        gw.gateway
            .issue_officer(
                &Caller::Cli,
                "Olga Officer",
                vec!["ast-requester".into()],
                ast_gateway::token::Pin::new("officer-pw-1".into()),
            )
            .await
    };
    assert!(issue().await.is_ok(), "the officers CA issues while good");
    gw.gateway
        .revoke(
            &Serial::parse(&serial_hex(&officers)).unwrap(),
            RevocationReason::CaCompromise,
            &Caller::Cli,
            "migration-chain",
        )
        .await
        .unwrap();
    let Err(refused) = issue().await else {
        panic!("the officers CA issued while revoked");
    };
    assert_eq!(refused.code().as_str(), "ca-revoked", "{refused}");
    let officers_known = gw.gateway.officers().await.unwrap();
    assert_eq!(officers_known.len(), 1, "nothing issued by the refusal");
    let audited = audit_events(&gw).await;
    assert!(
        audited
            .iter()
            .any(|(event, detail)| event == "officer-refused" && detail["code"] == "ca-revoked"),
        "{audited:?}"
    );
}
