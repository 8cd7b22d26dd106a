//! A gateway node of the failover test: the embedded default on a temporary root, HTTP (the
//! form) and HTTPS with officer mTLS (the API), `[database]` pointing at the test's servers; an
//! officer with `api-issue`; requests through the form and the API with an `Idempotency-Key`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ast_gateway::config::Root;
use ast_gateway::http::{Listeners, RunningServer, start};
use ast_gateway::identity::Caller;
use ast_gateway::issuance::Gateway;
use ast_gateway::token::Pin;
use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};

use crate::kit::{ALICE, client};

pub const PIN: &str = "Str0ng-Pass!";

/// A running node.
pub struct Node {
    pub gateway: Arc<Gateway>,
    pub base: String,
    https: SocketAddr,
    _server: RunningServer,
}

/// An answer, read whole.
pub struct Answer {
    pub status: u16,
    pub code: String,
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
}

/// Writes the embedded default into `root` (once) with HTTPS and officer mTLS, EC keys.
pub fn init(root: &Root) {
    ast_gateway::issuance::write_default(root).unwrap();
    let toml = std::fs::read_to_string(root.gateway_toml()).unwrap();
    let toml = toml
        .replace("http = \"127.0.0.1:8080\"", "http = \"127.0.0.1:0\"")
        .replace("# https = \"127.0.0.1:8443\"", "https = \"127.0.0.1:0\"")
        .replace("# tls_cert", "tls_cert")
        .replace("# tls_key", "tls_key")
        .replace("# client_ca", "client_ca")
        .replace("iterations = 10000", "iterations = 1000")
        .replace("key = \"rsa-2048\"", "key = \"ec-p256\"")
        .replace("admin = \"127.0.0.1:9102\"", "admin = \"\"");
    std::fs::write(root.gateway_toml(), toml).unwrap();
}

/// Points the root's `[database]` at `url`, with or without the synchronous requirement.
pub fn configure(root: &Root, url: &str, require_synchronous: bool) {
    let toml = std::fs::read_to_string(root.gateway_toml()).unwrap();
    let database = format!(
        "url = \"{url}\"\nrequire_synchronous_replication = {require_synchronous}\nmax_connections = 4"
    );
    let mut out = Vec::new();
    let mut in_database = false;
    for line in toml.lines() {
        if line.starts_with('[') {
            in_database = line.trim() == "[database]";
            out.push(line.to_string());
            if in_database {
                out.push(database.clone());
            }
            continue;
        }
        let key = line.split('=').next().unwrap_or("").trim();
        let ours = matches!(
            key,
            "url" | "require_synchronous_replication" | "max_connections"
        );
        if !(in_database && ours) {
            out.push(line.to_string());
        }
    }
    std::fs::write(root.gateway_toml(), out.join("\n") + "\n").unwrap();
}

impl Node {
    /// Opens the gateway of `root` and serves it on the configured listeners.
    pub async fn start(root: &Root) -> Node {
        let config = ast_gateway::rules::load(root).unwrap_or_else(|e| panic!("config: {e}"));
        let gateway = Gateway::open(config)
            .await
            .unwrap_or_else(|e| panic!("open: {e}"));
        let server = start(gateway.clone(), Listeners::default()).await.unwrap();
        Node {
            gateway,
            base: format!("http://{}", server.http_addr.unwrap()),
            https: server.https_addr.unwrap(),
            _server: server,
        }
    }

    /// An officer holding `api-issue`, as PEM (certificate and key).
    pub async fn officer(&self) -> Vec<u8> {
        let issued = self
            .gateway
            .issue_officer(
                &Caller::Cli,
                "HA Officer",
                vec!["api-issue".into()],
                Pin::new("officer-pw".into()),
            )
            .await
            .unwrap();
        crate::trust::identity_pem(&issued.pkcs12, "officer-pw")
    }

    /// The form, as Alice with another common name.
    pub async fn form(&self, n: usize) -> Answer {
        let mut request = client()
            .post(format!("{}/pgwy/ast", self.base))
            .timeout(Duration::from_secs(60))
            .form(&[("password", PIN)]);
        for (name, value) in ALICE {
            let value = match *name {
                "commonname" => format!("HA User {n}"),
                _ => value.to_string(),
            };
            request = request.header(*name, value);
        }
        answer(request).await
    }

    /// `POST softtokens` with an `Idempotency-Key`, as `officer` (PEM), JSON answer.
    pub async fn api(&self, officer: &[u8], key: &str, n: usize) -> Answer {
        let root_ca =
            std::fs::read(self.gateway.settings().root.data().join("ca/root.pem")).unwrap();
        let client = reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([reqwest::Certificate::from_pem(&root_ca).unwrap()])
            .resolve("localhost", self.https)
            .identity(reqwest::Identity::from_pem(officer).unwrap())
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let body = serde_json::json!({"password": PIN, "fields": {
            "commonname": format!("HA Api {n}"), "givenname": "Api", "surname": "User",
            "email": format!("api{n}@example.com"), "country": "SE"}});
        let request = client
            .post(format!(
                "https://localhost:{}/pgwy/api/softtokens",
                self.https.port()
            ))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("idempotency-key", key)
            .body(body.to_string());
        answer(request).await
    }
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    Answer {
        status: response.status().as_u16(),
        code: header("x-ast-error").unwrap_or_default(),
        retry_after: header("retry-after"),
        body: response.bytes().await.unwrap().to_vec(),
    }
}

impl Answer {
    /// Serials of a delivered token: the leaves of a PKCS#12 (the form) or the `certificates`
    /// of a JSON answer (the API); the serials of a 409 `already-issued`.
    pub fn serials(&self) -> Vec<String> {
        if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&self.body) {
            let list = json["certificates"]
                .as_array()
                .map(|c| c.iter().map(|c| c["serial"].clone()).collect::<Vec<_>>())
                .or_else(|| json["error"]["serials"].as_array().cloned())
                .unwrap_or_default();
            let mut serials: Vec<String> = list
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
            serials.sort();
            return serials;
        }
        let keystore = KeyStore::from_pkcs12(&self.body, PIN, Pkcs12ImportPolicy::Strict).unwrap();
        let mut serials: Vec<String> = keystore
            .entries()
            .filter_map(|(_, entry)| match entry {
                KeyStoreEntry::PrivateKeyChain(chain) => chain.certs().first().map(|c| {
                    let (_, cert) = x509_parser::parse_x509_certificate(c.as_der()).unwrap();
                    crate::kit::ser(hex::encode(cert.tbs_certificate.raw_serial())).to_string()
                }),
                _ => None,
            })
            .collect();
        serials.sort();
        serials
    }

    /// A refusal that asks the client to come back: 503, the code, a `Retry-After`.
    pub fn assert_retry_later(&self, code: &str, when: &str) {
        assert_eq!(
            (self.status, self.code.as_str()),
            (503, code),
            "{when}: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert!(self.retry_after.is_some(), "{when}: Retry-After");
    }
}
