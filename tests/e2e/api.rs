//! The REST API (/pgwy/api) end to end over real mTLS: a rustls server started on 127.0.0.1:0,
//! reqwest clients presenting officer certificates issued by the gateway itself. Every
//! operation and every refusal, idempotent retries (also concurrent), paging over several
//! pages, a custom api.properties (config check with file:line, reload), signed writes with
//! signatures made by the openssl CLI, and an API token opened by openssl and keytool whose
//! certificates are those GET certificates lists.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub(crate) mod signed;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ast_gateway::config::Root;
use ast_gateway::issuance::Gateway;
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::kit::{TestGateway, run, run_ok, skipped, tool};

const PIN: &str = "Secret-123";

/// The kit's HTTPS gateway (client_ca = officers, fast EC keys, the embedded default
/// api.properties unless `edit` changes the root), with the API's requests and checks.
pub(crate) struct Api {
    pub(crate) gw: TestGateway,
    pub(crate) root: Root,
    pub(crate) gateway: Arc<Gateway>,
    http: SocketAddr,
}

/// An officer: its registry serial and certificate + key as PEM (also written to `file`).
pub(crate) struct Officer {
    pub(crate) serial: String,
    pub(crate) pem: Vec<u8>,
    pub(crate) file: PathBuf,
}

/// A response, read whole.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub(crate) fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
    pub(crate) fn code(&self) -> String {
        self.header("x-ast-error")
    }
}

impl Api {
    pub(crate) async fn start(edit: impl FnOnce(&Root)) -> Api {
        let gw = TestGateway::start_https(|root| {
            assert!(root.api_properties().exists(), "init writes api.properties");
            edit(root);
        })
        .await;
        Api {
            root: gw.root(),
            gateway: gw.gateway.clone(),
            http: gw.http_addr(),
            gw,
        }
    }

    /// The temporary directory (the root) for files a test writes.
    pub(crate) fn dir(&self) -> &std::path::Path {
        self.gw.root.path()
    }

    pub(crate) fn client(&self, officer: Option<&Officer>) -> reqwest::Client {
        self.gw
            .https_client(officer.map(|o| o.pem.as_slice()), Duration::from_secs(60))
    }

    pub(crate) fn url(&self, path: &str) -> String {
        self.gw.https_url(&format!("/pgwy/api/{path}"))
    }

    pub(crate) async fn officer(&self, name: &str, roles: &[&str]) -> Officer {
        let (serial, pem) = self.gw.officer(name, roles).await;
        let file = self.dir().join(format!("{serial}.pem"));
        std::fs::write(&file, &pem).unwrap();
        Officer { serial, pem, file }
    }

    /// Sends a request; `body` as JSON unless `raw` gives bytes and a content type.
    pub(crate) async fn send(
        &self,
        officer: Option<&Officer>,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.client(officer).request(method, self.url(path));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        for (n, v) in headers {
            request = request.header(*n, *v);
        }
        answer(request).await
    }

    pub(crate) async fn get(&self, officer: &Officer, path: &str) -> Answer {
        self.send(Some(officer), Method::GET, path, None, &[]).await
    }

    pub(crate) async fn post(&self, officer: &Officer, path: &str, body: Value) -> Answer {
        self.send(Some(officer), Method::POST, path, Some(body), &[])
            .await
    }

    /// Audit rows (event, actor, request id, detail), in order.
    pub(crate) async fn audit(&self) -> Vec<(String, String, String, Value)> {
        let pool = sqlx::SqlitePool::connect(&self.gateway.settings().database_url)
            .await
            .unwrap();
        let rows: Vec<(String, String, String, String)> =
            sqlx::query_as("SELECT event, actor, request_id, detail FROM audit ORDER BY seq")
                .fetch_all(&pool)
                .await
                .unwrap();
        pool.close().await;
        rows.into_iter()
            .map(|(e, a, r, d)| (e, a, r, serde_json::from_str(&d).unwrap()))
            .collect()
    }

    pub(crate) async fn certificates(&self) -> i64 {
        self.gateway.store().count_certificates().await.unwrap()
    }

    /// Asserts a refusal: status, X-Ast-Error, the JSON error body with the request id of
    /// X-Request-Id, an audit record of it, and returns the message.
    pub(crate) async fn refused(&self, answer: &Answer, status: u16, code: &str) -> String {
        let text = String::from_utf8_lossy(&answer.body).to_string();
        assert_eq!(
            (answer.status, answer.code().as_str()),
            (status, code),
            "{text}"
        );
        assert!(
            answer
                .header("content-type")
                .starts_with("application/json"),
            "{text}"
        );
        let body = answer.json();
        let request_id = answer.header("x-request-id");
        assert_eq!(body["error"]["code"], code, "{text}");
        assert_eq!(body["error"]["requestId"], request_id.as_str(), "{text}");
        let message = body["error"]["message"].as_str().unwrap().to_string();
        assert!(!message.is_empty());
        // The first refusal of a kind in a minute has its own row; later ones are counted in
        // one `refused-aggregate` row that lists their request ids.
        self.gateway.store().flush_refusals().await.unwrap();
        let audited = self
            .audit()
            .await
            .into_iter()
            .any(|(event, _, id, detail)| {
                let listed = detail["requestIds"]
                    .as_array()
                    .is_some_and(|ids| ids.iter().any(|i| i == request_id.as_str()));
                event.contains("refused") && detail["code"] == code && (id == request_id || listed)
            });
        assert!(
            audited,
            "refusal {code} ({request_id}) is not in the audit trail"
        );
        message
    }
}

pub(crate) async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap().to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

pub(crate) fn token_request(common_name: &str) -> Value {
    json!({
        "tokenProcedure": "default",
        "password": PIN,
        "fields": {"commonname": common_name, "country": "SE", "email": "alice@example.com"},
    })
}

/// Every operation over mTLS with the default api.properties and roles, and the token opened by
/// openssl and keytool with exactly the certificates GET certificates lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_over_mtls() {
    let api = Api::start(|_| {}).await;
    let all = api
        .officer("Ada All", &["api-read", "api-issue", "api-revoke"])
        .await;

    // The OpenAPI document is public.
    let doc = answer(api.client(None).get(api.url("openapi.json"))).await;
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/softtokens"]["post"].is_object());

    // POST softtokens, JSON answer.
    let issued = api
        .send(
            Some(&all),
            Method::POST,
            "softtokens",
            Some(token_request("Alice Andersson")),
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(
        issued.status,
        200,
        "{}",
        String::from_utf8_lossy(&issued.body)
    );
    let issued = issued.json();
    let serials: Vec<String> = issued["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["serial"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(serials.len(), 2, "{issued}");
    assert_eq!(issued["certificates"][0]["purpose"], "authentication");
    assert!(
        issued["certificates"][0]["subject"]
            .as_str()
            .unwrap()
            .contains("CN=Alice Andersson")
    );
    assert!(
        issued["certificates"][0]["notAfter"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let pkcs12 = base64::engine::general_purpose::STANDARD
        .decode(issued["pkcs12"].as_str().unwrap())
        .unwrap();

    // POST softtokens, PKCS#12 answer.
    let binary = api
        .post(&all, "softtokens", token_request("Bo Binary"))
        .await;
    assert_eq!(binary.status, 200);
    assert_eq!(binary.header("content-type"), "application/x-pkcs12");
    assert_eq!(
        binary.header("content-disposition"),
        "attachment; filename=\"Bo Binary.p12\""
    );
    let store = p12_keystore::KeyStore::from_pkcs12(
        &binary.body,
        PIN,
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )
    .unwrap();
    assert!(store.private_key_chain().is_some());

    // GET certificates lists exactly the token's certificates for its subject.
    let listed = api
        .get(&all, "certificates?subject=alice%20andersson")
        .await;
    assert_eq!(listed.status, 200);
    let listed = listed.json();
    let mut listed_serials: Vec<String> = listed["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["serial"].as_str().unwrap().to_string())
        .collect();
    listed_serials.sort();
    let mut expected = serials.clone();
    expected.sort();
    assert_eq!(listed_serials, expected);
    assert!(listed["nextCursor"].is_null());
    let first = &listed["certificates"][0];
    assert_eq!(first["status"], "good");
    assert_eq!(first["ca"], "issuing");
    assert_eq!(first["tokenId"], issued["tokenId"]);

    // Details and download of each; the PEMs are the certificates inside the token.
    let mut api_pems = Vec::new();
    for serial in &serials {
        let details = api
            .get(&all, &format!("certificates/{serial}/details"))
            .await;
        assert_eq!(details.status, 200);
        let details = details.json();
        assert_eq!(details["serial"], serial.as_str());
        let pem = details["pem"].as_str().unwrap().to_string();
        let download = api
            .get(
                &all,
                &format!("certificates/{}/download", serial.to_uppercase()),
            )
            .await;
        assert_eq!(download.status, 200);
        assert_eq!(download.header("content-type"), "application/x-pem-file");
        assert_eq!(String::from_utf8(download.body.clone()).unwrap(), pem);
        let der = api
            .send(
                Some(&all),
                Method::GET,
                &format!("certificates/{serial}/download"),
                None,
                &[("accept", "application/pkix-cert")],
            )
            .await;
        assert_eq!(der.header("content-type"), "application/pkix-cert");
        use sha2::Digest;
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&der.body)),
            details["sha256Fingerprint"].as_str().unwrap()
        );
        api_pems.push(pem);
    }
    open_with_openssl_and_keytool(&api, &pkcs12, &serials, &api_pems);

    // Filters.
    let q = |query: &str| format!("certificates?{query}");
    let count = |v: &Value| v["certificates"].as_array().unwrap().len();
    let by_serial = api
        .get(&all, &q(&format!("serial={}", serials[1])))
        .await
        .json();
    assert_eq!(count(&by_serial), 1);
    assert_eq!(by_serial["certificates"][0]["purpose"], "signing");
    let signing = api.get(&all, &q("purpose=signing")).await.json();
    assert_eq!(count(&signing), 2);
    let now = time::OffsetDateTime::now_utc();
    let iso = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let window = format!(
        "issuedAfter={}&issuedBefore={}&expiringAfter={}",
        iso(now - Duration::from_secs(3600)),
        iso(now + Duration::from_secs(3600)),
        iso(now + Duration::from_secs(300 * 86_400)),
    );
    assert_eq!(count(&api.get(&all, &q(&window)).await.json()), 4);
    let expired = format!("expiringBefore={}", iso(now + Duration::from_secs(86_400)));
    assert_eq!(count(&api.get(&all, &q(&expired)).await.json()), 0);

    // Revoke (hold), reinstate, revoke for good; the answers are the records as they now are.
    let held = api
        .post(
            &all,
            "certificates/revoke",
            json!({"serial": serials[0], "reason": "certificateHold"}),
        )
        .await;
    assert_eq!(held.status, 200, "{}", String::from_utf8_lossy(&held.body));
    assert_eq!(held.json()["revocationReason"], "certificateHold");
    assert_eq!(count(&api.get(&all, &q("status=revoked")).await.json()), 1);
    let back = api
        .post(
            &all,
            "certificates/reinstate",
            json!({"serial": serials[0]}),
        )
        .await;
    assert_eq!(back.status, 200);
    assert_eq!(back.json()["status"], "good");
    let revoked = api
        .post(
            &all,
            "certificates/revoke",
            json!({"serial": serials[0], "reason": "keyCompromise"}),
        )
        .await;
    assert_eq!(revoked.json()["status"], "revoked");
    let again = api
        .post(
            &all,
            "certificates/reinstate",
            json!({"serial": serials[0]}),
        )
        .await;
    api.refused(&again, 409, "conflict").await;
    let unknown = api
        .post(
            &all,
            "certificates/revoke",
            json!({"serial": "0badc0de", "reason": "superseded"}),
        )
        .await;
    api.refused(&unknown, 404, "not-found").await;
    let missing = api.get(&all, "certificates/0badc0de/details").await;
    api.refused(&missing, 404, "not-found").await;

    // Configuration views.
    let procedures = api.get(&all, "tokenprocedures").await.json();
    let default = &procedures["tokenProcedures"][0];
    assert_eq!(default["name"], "default");
    assert_eq!(default["certificates"][1]["purpose"], "signing");
    assert_eq!(default["certificates"][0]["key"], "ec-p256");
    let handlers = api.get(&all, "handlers").await.json();
    let first = &handlers["handlers"][0];
    assert_eq!(first["tokenProcedure"], "default");
    assert!(first["fields"].as_array().unwrap().iter().any(|f| {
        f["target"] == "ast.valuetarget.commonname.value"
            && f["source"] == "commonname"
            && f["modules"] == json!(["trim", "required", "maxlen(64)"])
            && f["definedAt"]
                .as_str()
                .unwrap()
                .starts_with("ast-default.format:")
    }));

    // Every state change is audited with the officer as actor.
    let audit = api.audit().await;
    let officer_actor = |event: &str| {
        audit
            .iter()
            .filter(|(e, a, _, _)| e == event && a.starts_with("officer:"))
            .count()
    };
    assert_eq!(officer_actor("issued"), 2);
    assert_eq!(officer_actor("revoked"), 2);
    assert_eq!(officer_actor("reinstated"), 1);
    assert!(
        audit.iter().any(|(e, _, _, d)| e == "issued"
            && d["api"] == true
            && d["serials"] == json!(serials))
    );
}

/// openssl and keytool open the API token; its leaf certificates are the API's PEMs.
fn open_with_openssl_and_keytool(api: &Api, pkcs12: &[u8], serials: &[String], pems: &[String]) {
    let file = api.dir().join("api-token.p12");
    std::fs::write(&file, pkcs12).unwrap();
    let file = file.to_str().unwrap();
    match tool("openssl") {
        None => skipped("api token in openssl", "openssl not installed"),
        Some(openssl) => {
            let pass = format!("pass:{PIN}");
            let out = run_ok(
                &openssl,
                &[
                    "pkcs12", "-in", file, "-passin", &pass, "-clcerts", "-nokeys",
                ],
            );
            let mut in_token: Vec<String> = out
                .split("-----BEGIN CERTIFICATE-----")
                .skip(1)
                .filter_map(|rest| rest.split_once("-----END CERTIFICATE-----"))
                .map(|(body, _)| {
                    format!("-----BEGIN CERTIFICATE-----{body}-----END CERTIFICATE-----")
                })
                .collect();
            in_token.sort();
            let mut listed: Vec<String> = pems.iter().map(|p| p.trim().to_string()).collect();
            listed.sort();
            assert_eq!(in_token, listed, "openssl's leaf certificates differ");
            // The keys decrypt too.
            run_ok(
                &openssl,
                &[
                    "pkcs12", "-in", file, "-passin", &pass, "-nocerts", "-nodes",
                ],
            );
        }
    }
    match tool("keytool") {
        None => skipped("api token in keytool", "Java keytool not installed"),
        Some(keytool) => {
            let out = run_ok(
                &keytool,
                &[
                    "-list",
                    "-v",
                    "-storetype",
                    "PKCS12",
                    "-keystore",
                    file,
                    "-storepass",
                    PIN,
                ],
            )
            .to_ascii_lowercase();
            assert!(out.contains("privatekeyentry"), "{out}");
            for serial in serials {
                let shown = serial.trim_start_matches('0');
                assert!(
                    out.contains(&format!("serial number: {shown}")),
                    "keytool does not show {serial}:\n{out}"
                );
            }
        }
    }
}

/// Every refusal the API knows: status, code, JSON body, audit record, nothing issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_json_audited_and_issues_nothing() {
    let api = Api::start(|_| {}).await;
    let reader = api.officer("Rita Reader", &["api-read"]).await;
    let issuer = api.officer("Ivan Issuer", &["api-issue"]).await;
    let before = api.certificates().await;

    // No client certificate: 401, over HTTPS and over plain HTTP.
    let r = api.send(None, Method::GET, "certificates", None, &[]).await;
    api.refused(&r, 401, "unauthenticated").await;
    let plain = answer(
        crate::kit::client()
            .post(format!("http://{}/pgwy/api/softtokens", api.http))
            .header("content-type", "application/json")
            .body(token_request("Plain").to_string()),
    )
    .await;
    api.refused(&plain, 401, "unauthenticated").await;

    // Wrong role: 403 missing-role, naming the role.
    let r = api.post(&reader, "softtokens", token_request("Nope")).await;
    let message = api.refused(&r, 403, "missing-role").await;
    assert!(message.contains("api-issue"), "{message}");
    let r = api.get(&issuer, "certificates").await;
    api.refused(&r, 403, "missing-role").await;
    let r = api
        .post(
            &reader,
            "certificates/revoke",
            json!({"serial": "01", "reason": "superseded"}),
        )
        .await;
    api.refused(&r, 403, "missing-role").await;

    // Malformed JSON, unknown fields, wrong types: 400 naming the field, never the value.
    let raw = |body: &'static str| {
        api.client(Some(&issuer))
            .post(api.url("softtokens"))
            .header("content-type", "application/json")
            .body(body)
    };
    let r = answer(raw(
        r#"{"password": "Secret-123", "fields": {"commonname": "A""#,
    ))
    .await;
    api.refused(&r, 400, "bad-request").await;
    let r = answer(raw(r#"{"password": "Secret-123", "colour": "red"}"#)).await;
    let message = api.refused(&r, 400, "bad-request").await;
    assert!(message.contains("unknown field `colour`"), "{message}");
    let r = answer(raw(r#"{"password": 98765432}"#)).await;
    let message = api.refused(&r, 400, "bad-request").await;
    assert!(
        message.contains("`password`") && !message.contains("98765432"),
        "{message}"
    );
    let r = answer(raw(
        r#"{"password": "Secret-123", "fields": {"commonname": 7}}"#,
    ))
    .await;
    let message = api.refused(&r, 400, "bad-request").await;
    assert!(message.contains("`fields.commonname`"), "{message}");
    let r = answer(raw(r#"{"fields": {}}"#)).await;
    let message = api.refused(&r, 400, "bad-request").await;
    assert!(message.contains("missing field `password`"), "{message}");
    let r = api.get(&reader, "certificates?limit=many").await;
    let message = api.refused(&r, 400, "bad-request").await;
    assert!(message.contains("`limit`"), "{message}");
    let r = api.get(&reader, "certificates?colour=red").await;
    api.refused(&r, 400, "bad-request").await;
    let r = api.get(&reader, "certificates?cursor=forged").await;
    api.refused(&r, 400, "bad-request").await;
    let r = api.get(&reader, "certificates?issuedAfter=yesterday").await;
    api.refused(&r, 400, "bad-request").await;
    let r = api.get(&reader, "certificates/not-hex/details").await;
    api.refused(&r, 400, "bad-request").await;

    // Wrong content type: 415. Wrong method: 405 with Allow.
    let r = answer(
        api.client(Some(&issuer))
            .post(api.url("softtokens"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("password=Secret-123"),
    )
    .await;
    api.refused(&r, 415, "unsupported-media-type").await;
    let r = api
        .send(Some(&reader), Method::DELETE, "certificates", None, &[])
        .await;
    api.refused(&r, 405, "method-not-allowed").await;
    assert_eq!(r.header("allow"), "GET,HEAD");
    let r = api.get(&reader, "softtokens").await;
    api.refused(&r, 405, "method-not-allowed").await;
    assert_eq!(r.header("allow"), "POST");
    // No such operation: 404.
    let r = api.get(&reader, "certificates/01/history").await;
    api.refused(&r, 404, "not-found").await;

    // The fields go through the format's verifiers exactly as headers do.
    let with = |fields: Value, password: &str| json!({"tokenProcedure": "default", "password": password, "fields": fields});
    let r = api
        .post(&issuer, "softtokens", with(json!({"country": "SE"}), PIN))
        .await;
    let message = api.refused(&r, 400, "field-missing").await;
    assert!(message.contains("commonname"), "{message}");
    let r = api
        .post(
            &issuer,
            "softtokens",
            with(json!({"commonname": "Al", "country": "Sweden"}), PIN),
        )
        .await;
    let message = api.refused(&r, 400, "field-invalid").await;
    assert!(!message.contains("Sweden"), "{message}");
    let r = api
        .post(
            &issuer,
            "softtokens",
            with(json!({"commonname": "Al"}), "123"),
        )
        .await;
    api.refused(&r, 400, "password-policy").await;
    let r = answer(raw(
        r#"{"password": "Secret-123", "fields": {"commonname": "A", "CommonName": "B"}}"#,
    ))
    .await;
    api.refused(&r, 400, "duplicate-header").await;
    let r = api
        .post(
            &issuer,
            "softtokens",
            with(json!({"common_name": "A", "commonname": "A"}), PIN),
        )
        .await;
    assert_eq!(
        r.status, 200,
        "a field no format reads is ignored, as a header would be"
    );
    let before = before + 2;
    let r = api
        .post(
            &issuer,
            "softtokens",
            json!({"handler": "no/such/path", "password": PIN, "fields": {"commonname": "A"}}),
        )
        .await;
    let message = api.refused(&r, 400, "bad-request").await;
    assert!(message.contains("`handler`"), "{message}");
    let r = api
        .post(
            &issuer,
            "softtokens",
            json!({"tokenProcedure": "gold", "password": PIN, "fields": {"commonname": "A"}}),
        )
        .await;
    let message = api.refused(&r, 400, "bad-request").await;
    assert!(message.contains("`tokenProcedure`"), "{message}");

    // Too large a body: 413.
    let big = json!({"password": PIN, "fields": {"commonname": "x".repeat(20_000)}});
    let r = api.post(&issuer, "softtokens", big).await;
    api.refused(&r, 413, "too-large").await;

    assert_eq!(
        api.certificates().await,
        before,
        "a refusal issued a certificate"
    );

    // A revoked officer is refused on the next request.
    let ok = api.get(&reader, "handlers").await;
    assert_eq!(ok.status, 200);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ast-gateway"))
        .arg("--root")
        .arg(api.root.dir())
        .args(["officer", "revoke", &reader.serial])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = api.get(&reader, "handlers").await;
    let message = api.refused(&r, 403, "untrusted-caller").await;
    assert!(message.contains("revoked"), "{message}");
}

/// Idempotency-Key: a retry answers 409 already-issued with the first token's serials (also
/// when two requests race), a different request under the same key is a conflict; and paging
/// walks several pages in a stable order while certificates are issued meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_retry_and_paging() {
    let api = Api::start(|_| {}).await;
    let officer = api.officer("Paula Pager", &["api-read", "api-issue"]).await;
    let key = [
        ("idempotency-key", "order-4711"),
        ("accept", "application/json"),
    ];
    let first = api
        .send(
            Some(&officer),
            Method::POST,
            "softtokens",
            Some(token_request("Pager 1")),
            &key,
        )
        .await;
    assert_eq!(first.status, 200);
    let serials: Vec<Value> = first.json()["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["serial"].clone())
        .collect();
    let count = api.certificates().await;
    let retry = api
        .send(
            Some(&officer),
            Method::POST,
            "softtokens",
            Some(token_request("Pager 1")),
            &key,
        )
        .await;
    api.refused(&retry, 409, "already-issued").await;
    let error = &retry.json()["error"];
    let mut answered: Vec<Value> = error["serials"].as_array().unwrap().clone();
    let mut serials = serials;
    answered.sort_by_key(|v| v.to_string());
    serials.sort_by_key(|v| v.to_string());
    assert_eq!(answered, serials);
    assert_eq!(error["tokenId"], first.json()["tokenId"]);
    let other = api
        .send(
            Some(&officer),
            Method::POST,
            "softtokens",
            Some(token_request("Someone Else")),
            &key,
        )
        .await;
    api.refused(&other, 409, "conflict").await;
    assert_eq!(api.certificates().await, count, "a retry issued again");

    // Two requests with one new key at the same time: exactly one token.
    let race = [("idempotency-key", "race-1")];
    let (a, b) = tokio::join!(
        api.send(
            Some(&officer),
            Method::POST,
            "softtokens",
            Some(token_request("Pager 2")),
            &race
        ),
        api.send(
            Some(&officer),
            Method::POST,
            "softtokens",
            Some(token_request("Pager 2")),
            &race
        ),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409]);
    assert_eq!(api.certificates().await, count + 2);
    let loser = if a.status == 409 { &a } else { &b };
    assert_eq!(loser.code(), "already-issued");

    // Paging: 3 more tokens, 10 "Pager" certificates in all, pages of 3.
    for n in 3..6 {
        let r = api
            .post(&officer, "softtokens", token_request(&format!("Pager {n}")))
            .await;
        assert_eq!(r.status, 200);
    }
    let everything = api
        .get(&officer, "certificates?subject=pager&limit=1000")
        .await
        .json();
    let all: Vec<String> = everything["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["serial"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(all.len(), 10);
    let mut walked: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    let mut meanwhile: Vec<String> = Vec::new();
    loop {
        let query = match &cursor {
            Some(c) => format!("certificates?subject=pager&limit=3&cursor={c}"),
            None => "certificates?subject=pager&limit=3".to_string(),
        };
        let page = api.get(&officer, &query).await;
        assert_eq!(page.status, 200);
        let page = page.json();
        pages += 1;
        if pages == 2 {
            // Issued meanwhile: newer than the cursor, so it does not disturb the walk.
            let r = api
                .send(
                    Some(&officer),
                    Method::POST,
                    "softtokens",
                    Some(token_request("Pager 6")),
                    &[("accept", "application/json")],
                )
                .await;
            assert_eq!(r.status, 200);
            meanwhile.extend(
                r.json()["certificates"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["serial"].as_str().unwrap().to_string()),
            );
        }
        walked.extend(
            page["certificates"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["serial"].as_str().unwrap().to_string()),
        );
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    // 10 certificates in pages of 3; the 2 issued meanwhile are newer than every cursor and so
    // absent, unless they fall into the same second as the cursor (then they sort by serial).
    assert!((4..=5).contains(&pages), "{pages} pages");
    let mut sorted = walked.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), walked.len(), "a certificate was listed twice");
    let existing: Vec<String> = walked
        .iter()
        .filter(|s| !meanwhile.contains(s))
        .cloned()
        .collect();
    assert_eq!(existing, all, "the walk is the listing, in the same order");
    assert!(walked.len() <= all.len() + meanwhile.len());
}

/// A custom api.properties: other roles and groups take effect; `config check` reports its
/// problems with file and line; a reload swaps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_api_properties_check_and_reload() {
    let custom = "\
# Auditors read the database; any officer may issue; nothing else is served.
handler.10.filter = certificates(/[^/]+/(details|download))?
handler.10.requiredRoRoles = auditor
handler.20.filter = softtokens
handler.20.requiredRoRoles = none
";
    let api = Api::start(|root| std::fs::write(root.api_properties(), custom).unwrap()).await;
    let auditor = api.officer("Audrey Auditor", &["auditor"]).await;
    let other = api.officer("Otto Other", &["something"]).await;
    let r = api
        .post(&other, "softtokens", token_request("Carl Custom"))
        .await;
    assert_eq!(r.status, 200, "requiredRoRoles = none admits any officer");
    let listed = api.get(&auditor, "certificates?subject=carl").await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["certificates"].as_array().unwrap().len(), 2);
    let r = api.get(&other, "certificates").await;
    api.refused(&r, 403, "missing-role").await;
    let r = api.get(&auditor, "tokenprocedures").await;
    let message = api.refused(&r, 404, "no-handler").await;
    assert!(message.contains("/pgwy/api/tokenprocedures"), "{message}");
    let r = api
        .post(
            &auditor,
            "certificates/revoke",
            json!({"serial": "01", "reason": "superseded"}),
        )
        .await;
    api.refused(&r, 404, "no-handler").await;

    // A broken file: config check names file, line and key; a reload refuses it and the
    // running configuration keeps serving.
    let broken = "handler.1.filter = certificates\nhandler.1.requiredRoRoles = none, auditor\nhandler.2.filtre = softtokens\n";
    std::fs::write(api.root.api_properties(), broken).unwrap();
    let out = run(
        std::path::Path::new(env!("CARGO_BIN_EXE_ast-gateway")),
        &[
            "config",
            "check",
            "--root",
            api.root.dir().to_str().unwrap(),
        ],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("api.properties:2: handler.1.requiredRoRoles"),
        "{text}"
    );
    assert!(
        text.contains("api.properties:3: handler.2.filtre: unknown parameter `filtre` (did you mean `filter`?)"),
        "{text}"
    );
    assert!(api.gateway.reload().is_err());
    assert_eq!(api.get(&auditor, "certificates").await.status, 200);

    // A good file is swapped in by a reload (SIGHUP): the auditor loses the listing.
    let swapped = "handler.1.filter = certificates\nhandler.1.requiredRoRoles = api-read\n";
    std::fs::write(api.root.api_properties(), swapped).unwrap();
    api.gateway.reload().unwrap();
    let r = api.get(&auditor, "certificates").await;
    api.refused(&r, 403, "missing-role").await;
}

/// The API's store queries (pages with filters and cursor, idempotency keys in the issuance
/// transaction) on SQLite and on a fresh PostgreSQL database (migration 0005 on both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_store_on_sqlite_and_postgres() {
    for db in crate::kit::databases::TestDatabase::all().await {
        api_store_sequence(&db.url).await;
    }
}

async fn api_store_sequence(url: &str) {
    use ast_gateway::ca::Serial;
    use ast_gateway::store::{
        AuditEvent, CertificateQuery, CertificateRecord, CertificateStatus, IdempotencyKey, Store,
        StoreError, TokenRecord,
    };
    let store = Store::open(url, 2).await.unwrap();
    let event = || AuditEvent::now("issued", "officer:x", "r", json!({}));
    let token = |id: &str, at: i64| TokenRecord {
        id: id.into(),
        created_at: at,
        handler: "handler.1".into(),
        token_procedure: "default".into(),
        caller: "officer:x".into(),
        request_id: "r".into(),
        profile: "modern".into(),
    };
    let certificate = |serial: &str, token: &str, subject: &str, purpose: &str, not_after: i64| {
        CertificateRecord {
            serial: crate::kit::ser(serial),
            ca: "issuing".into(),
            issuer: "CN=Issuing".into(),
            subject: subject.into(),
            sans: vec![],
            not_before: 1_000,
            not_after,
            purpose: purpose.into(),
            token_id: token.into(),
            status: CertificateStatus::Good,
            revoked_at: None,
            revocation_reason: None,
            der: vec![0x30, 0x00],
        }
    };
    // Five tokens at three instants; two share one (ordered by serial within it).
    for (i, at) in [(1, 100), (2, 200), (3, 200), (4, 300), (5, 300)] {
        let id = format!("t{i}");
        let certs = [
            certificate(
                &format!("a{i}"),
                &id,
                &format!("CN=User {i}"),
                "authentication",
                10_000 * i,
            ),
            certificate(
                &format!("b{i}"),
                &id,
                &format!("CN=User {i}"),
                "signing",
                10_000 * i,
            ),
        ];
        store
            .record_issuance(&token(&id, at), &certs, &event())
            .await
            .unwrap();
    }
    let page = |query: CertificateQuery| {
        let store = store.clone();
        async move { store.certificate_page(&query).await.unwrap() }
    };
    let serials = |p: &ast_gateway::store::CertificatePage| {
        p.certificates
            .iter()
            .map(|c| c.serial.to_string())
            .collect::<Vec<_>>()
    };
    let mut cursor = None;
    let mut walked = Vec::new();
    loop {
        let p = page(CertificateQuery {
            limit: 3,
            after: cursor.clone(),
            ..Default::default()
        })
        .await;
        walked.extend(serials(&p));
        match p.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(
        walked,
        ["a4", "a5", "b4", "b5", "a2", "a3", "b2", "b3", "a1", "b1"],
        "{url}"
    );
    let filtered = page(CertificateQuery {
        subject: Some("user 3".into()),
        purpose: Some("signing".into()),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(serials(&filtered), ["b3"], "{url}");
    let expiring = page(CertificateQuery {
        expiring_after: Some(20_000),
        expiring_before: Some(30_000),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(serials(&expiring), ["a2", "a3", "b2", "b3"], "{url}");
    let one = page(CertificateQuery {
        serial: Some(Serial::parse("B5").unwrap()),
        status: Some(CertificateStatus::Good),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(serials(&one), ["b5"], "{url}");
    let literal = page(CertificateQuery {
        subject: Some("%".into()),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert!(
        literal.certificates.is_empty(),
        "{url}: % is matched literally"
    );

    // Idempotency keys: recorded with the token; the same key again fails the whole
    // transaction (nothing of it is written); another scope may use the same key.
    let key = IdempotencyKey {
        scope: "officer:x",
        key: "k1",
        request_hash: "h1",
    };
    store
        .record_issuance_once(
            &token("t6", 400),
            &[certificate("c6", "t6", "CN=Six", "signing", 1)],
            &event(),
            Some(&key),
        )
        .await
        .unwrap();
    let again = store
        .record_issuance_once(
            &token("t7", 400),
            &[certificate("c7", "t7", "CN=Seven", "signing", 1)],
            &event(),
            Some(&key),
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::DuplicateIdempotencyKey)),
        "{url}: {again:?}"
    );
    assert!(
        store
            .certificate(&Serial::parse("c7").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    let found = store
        .idempotent_token("officer:x", "k1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.token_id.as_str(), found.request_hash.as_str()),
        ("t6", "h1")
    );
    assert_eq!(found.serials, ["c6"]);
    assert!(
        store
            .idempotent_token("officer:y", "k1")
            .await
            .unwrap()
            .is_none()
    );
    let other_scope = IdempotencyKey {
        scope: "officer:y",
        ..key
    };
    store
        .record_issuance_once(
            &token("t8", 400),
            &[certificate("c8", "t8", "CN=Eight", "signing", 1)],
            &event(),
            Some(&other_scope),
        )
        .await
        .unwrap();
    store.close().await;
}
