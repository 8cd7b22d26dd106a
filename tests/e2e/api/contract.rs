//! The REST contract a generated client relies on: `POST softtokens` answers JSON unless
//! `Accept` prefers the file (the PKCS#12, or the zip of a per-purpose token); downloads are
//! negotiated the same way; a path that is no operation is `not-found`; and which AST handler
//! reads the fields is explicit (api.properties `astHandlers`), never the order of the AST
//! handlers — an operator's proxy handler with its own header names listed first changes
//! nothing for the API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use reqwest::Method;
use serde_json::{Value, json};

use super::{Answer, Api, Officer};
use crate::kit::append_file;

const PIN: &str = "Contract-Pin-1";

/// Handler 1: a proxy's, reading the common name from `x-remote-name`, issuing `default` like
/// handler 2, the handler of `/pgwy/ast`. Handler 3: a per-purpose procedure. `api` is added to
/// api.properties.
async fn start(api: &str) -> Api {
    let api = api.to_string();
    Api::start(move |root| {
        append_file(
            &root.gateway_toml(),
            "\n[[token_procedure]]\nname = \"separate\"\nlayout = \"per-purpose\"\n\n\
             [[token_procedure.certificate]]\npurpose = \"authentication\"\nca = \"issuing\"\nkey = \"ec-p256\"\nvalidity = \"30d\"\nkey_usage = [\"digitalSignature\"]\n\n\
             [[token_procedure.certificate]]\npurpose = \"signing\"\nca = \"issuing\"\nkey = \"ec-p256\"\nvalidity = \"30d\"\nkey_usage = [\"nonRepudiation\"]\n",
        );
        let ast = std::fs::read_to_string(root.ast_properties())
            .unwrap()
            .replace("handler.1.", "handler.2.");
        std::fs::write(
            root.ast_properties(),
            format!(
                "{ast}\nhandler.1.filter = sso/.*\nhandler.1.format = ast-default.format\nhandler.1.tokenprocedure = default\n\
                 handler.1.formatFields.1 = ast.valuetarget.commonname.value = x-remote-name | trim | required\n\
                 handler.3.filter = separate\nhandler.3.format = ast-default.format\nhandler.3.tokenprocedure = separate\n"
            ),
        )
        .unwrap();
        append_file(&root.api_properties(), &api);
    })
    .await
}

fn token(extra: Value) -> Value {
    let mut body =
        json!({"password": PIN, "fields": {"commonname": "Carla Contract", "country": "SE"}});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn issue(api: &Api, officer: &Officer, body: Value, accept: Option<&str>) -> Answer {
    let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
    api.send(
        Some(officer),
        Method::POST,
        "softtokens",
        Some(body),
        &headers,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn json_unless_the_file_is_preferred_and_downloads_negotiated() {
    let api = start("").await;
    let officer = api
        .officer("Contract Officer", &["api-read", "api-issue"])
        .await;
    let body = || token(json!({"handler": ""}));
    for accept in [
        None,
        Some("*/*"),
        Some("application/json, application/x-pkcs12;q=0.5"),
    ] {
        let answer = issue(&api, &officer, body(), accept).await;
        assert_eq!(answer.status, 200, "{accept:?}");
        assert_eq!(
            answer.header("content-type"),
            "application/json",
            "{accept:?}"
        );
        assert_eq!(answer.json()["certificates"].as_array().unwrap().len(), 2);
    }
    let file = issue(&api, &officer, body(), Some("application/x-pkcs12")).await;
    assert_eq!(file.status, 200);
    assert_eq!(file.header("content-type"), "application/x-pkcs12");
    assert!(
        p12_keystore::KeyStore::from_pkcs12(
            &file.body,
            PIN,
            p12_keystore::Pkcs12ImportPolicy::Strict
        )
        .is_ok()
    );
    // A per-purpose token comes as a zip when asked for; a PKCS#12 it cannot be: JSON then.
    let separate = || token(json!({"handler": "separate"}));
    let zip = issue(&api, &officer, separate(), Some("application/zip")).await;
    assert_eq!(zip.header("content-type"), "application/zip");
    assert!(zip.body.starts_with(b"PK\x03\x04"));
    let json = issue(&api, &officer, separate(), Some("application/x-pkcs12")).await;
    assert_eq!(json.header("content-type"), "application/json");
    assert_eq!(json.json()["files"].as_array().unwrap().len(), 2);
    assert!(json.json().get("pkcs12").is_none());

    // Downloads: PEM by default, DER as application/pkix-cert or application/octet-stream.
    let serial = file_serial(&api, &officer).await;
    let path = format!("certificates/{serial}/download");
    let pem = api.get(&officer, &path).await;
    assert_eq!(pem.header("content-type"), "application/x-pem-file");
    assert!(pem.body.starts_with(b"-----BEGIN CERTIFICATE-----"));
    for media in ["application/pkix-cert", "application/octet-stream"] {
        let der = api
            .send(
                Some(&officer),
                Method::GET,
                &path,
                None,
                &[("accept", media)],
            )
            .await;
        assert_eq!(der.header("content-type"), media);
        assert_eq!(der.body[0], 0x30, "{media}: DER");
    }

    // A path that is no operation: 404 not-found (as docs/api.md says), audited.
    for path in ["nosuch", "certificates/x/y/z"] {
        let answer = api.get(&officer, path).await;
        api.refused(&answer, 404, "not-found").await;
    }
}

async fn file_serial(api: &Api, officer: &Officer) -> String {
    let listed = api.get(officer, "certificates?subject=carla&limit=1").await;
    listed.json()["certificates"][0]["serial"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_handler_is_explicit_not_the_first_handler_issuing_the_procedure() {
    // No astHandlers: two handlers issue `default`, so a tokenProcedure alone is ambiguous and
    // refused, naming both; neither field: the handler of /pgwy/ast, with its field names.
    let api = start("").await;
    let officer = api.officer("Handler Officer", &["api-issue"]).await;
    let by_procedure = token(json!({"tokenProcedure": "default"}));
    let answer = issue(&api, &officer, by_procedure.clone(), None).await;
    let message = api.refused(&answer, 400, "bad-request").await;
    assert!(
        message.contains("handlers 1, 2 of ast.properties"),
        "{message}"
    );
    let answer = issue(&api, &officer, token(json!({})), None).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert!(
        answer.json()["certificates"][0]["subject"]
            .as_str()
            .unwrap()
            .contains("CN=Carla Contract")
    );
    // The proxy's handler, named by path, reads its own header name.
    let proxy = issue(&api, &officer, token(json!({"handler": "sso/x"})), None).await;
    api.refused(&proxy, 400, "field-missing").await;
    drop(api);

    // astHandlers = 2: the procedure alone means handler 2, whatever comes first; the proxy's
    // handler is not reachable through the API.
    let api = start("handler.2.astHandlers = 2, 3\n").await;
    let officer = api.officer("Handler Officer", &["api-issue"]).await;
    let answer = issue(&api, &officer, by_procedure, None).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let answer = issue(
        &api,
        &officer,
        token(json!({"tokenProcedure": "separate"})),
        None,
    )
    .await;
    assert_eq!(answer.json()["files"].as_array().unwrap().len(), 2);
    let answer = issue(&api, &officer, token(json!({})), None).await;
    assert_eq!(answer.status, 200);
    let proxy = issue(&api, &officer, token(json!({"handler": "sso/x"})), None).await;
    let message = api.refused(&proxy, 400, "bad-request").await;
    assert!(
        message.contains("handler.1 of ast.properties, which the API does not issue through"),
        "{message}"
    );
}
