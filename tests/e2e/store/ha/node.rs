//! What the failover test does with a gateway node (a `kit::TestGateway` started with
//! `start_https`): `[database]` pointing at the test's servers, a second node made as
//! docs/scale-out.md says (conf/, the CA, TLS and secret-key files; not the anchor file),
//! requests through the form and through the API with an `Idempotency-Key`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use ast_gateway::config::Root;
use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};

use crate::kit::{ALICE, TestGateway, client};

pub const PIN: &str = "Str0ng-Pass!";

/// An answer, read whole.
pub struct Answer {
    pub status: u16,
    pub code: String,
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
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

/// Makes `root` (just written with the embedded default) a new node of `existing`: its
/// conf/, data/ca/, data/tls/ and data/secret.key, never its data/audit-anchors.log.
pub fn copy_node(existing: &Root, root: &Root) {
    for part in ["conf", "data/ca", "data/tls", "data/secret.key"] {
        let target = root.dir().join(part);
        if target.is_dir() {
            std::fs::remove_dir_all(&target).unwrap();
        }
        let parent = target.parent().unwrap();
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(existing.dir().join(part))
            .arg(parent)
            .status()
            .unwrap();
        assert!(status.success(), "cp -a {part}");
    }
}

/// The form, as Alice with another common name.
pub async fn form(node: &TestGateway, n: usize) -> Answer {
    let mut request = client()
        .post(node.http_url("/pgwy/ast"))
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
pub async fn api(node: &TestGateway, officer: &[u8], key: &str, n: usize) -> Answer {
    let body = serde_json::json!({"password": PIN, "fields": {
        "commonname": format!("HA Api {n}"), "givenname": "Api", "surname": "User",
        "email": format!("api{n}@example.com"), "country": "SE"}});
    let request = node
        .https_client(Some(officer), Duration::from_secs(60))
        .post(node.https_url("/pgwy/api/softtokens"))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .header("idempotency-key", key)
        .body(body.to_string());
    answer(request).await
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
