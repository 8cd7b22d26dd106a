//! The in-process gateway of the suite: the embedded default configuration on a temporary
//! root, served on `127.0.0.1:0` (the addresses the listeners report), over HTTP — or, with
//! `start_https`, also over HTTPS with `client_ca = officers` and fast test keys, with officers
//! issued by the gateway itself and HTTPS clients that present them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ast_gateway::ca::pem_certificate;
use ast_gateway::config::Root;
use ast_gateway::http::{Listeners, RunningServer, start};
use ast_gateway::identity::Caller;
use ast_gateway::issuance::Gateway;
use ast_gateway::rules;
use ast_gateway::token::Pin;

use super::{client, replaced};

/// The PKCS#12 password of the officers `TestGateway::officer` issues.
pub const OFFICER_PASSWORD: &str = "officer-pw";

/// A running gateway and its temporary root; shut down when dropped.
pub struct TestGateway {
    pub root: tempfile::TempDir,
    pub gateway: Arc<Gateway>,
    pub server: Option<RunningServer>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The HTTPS listener (`start_https`).
    pub https: Option<SocketAddr>,
}

impl TestGateway {
    /// Embedded default, HTTP on 127.0.0.1:0.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Embedded default, edited by `edit` (e.g. rewrite conf files) before loading.
    pub async fn start_with(edit: impl FnOnce(&Root)) -> Self {
        Self::open(
            edit,
            Listeners {
                http: Some("127.0.0.1:0".parse().unwrap()),
                ..Listeners::default()
            },
        )
        .await
    }

    /// HTTP and HTTPS on 127.0.0.1:0 with the demo TLS certificate (`localhost`),
    /// `client_ca = officers`, EC P-256 keys and 1 000 PBKDF2 iterations (fast tokens), no admin
    /// listener; then `edit`.
    pub async fn start_https(edit: impl FnOnce(&Root)) -> Self {
        Self::open(
            |root| {
                let path = root.gateway_toml();
                let mut toml = std::fs::read_to_string(&path).unwrap();
                for (from, to) in [
                    ("http = \"127.0.0.1:8080\"", "http = \"127.0.0.1:0\""),
                    ("# https = \"127.0.0.1:8443\"", "https = \"127.0.0.1:0\""),
                    ("# tls_cert", "tls_cert"),
                    ("# tls_key", "tls_key"),
                    ("# client_ca", "client_ca"),
                    ("iterations = 10000", "iterations = 1000"),
                    ("key = \"rsa-2048\"", "key = \"ec-p256\""),
                    ("admin = \"127.0.0.1:9102\"", "admin = \"\""),
                ] {
                    toml = replaced(&toml, from, to);
                }
                std::fs::write(&path, toml).unwrap();
                edit(root);
            },
            Listeners::default(),
        )
        .await
    }

    /// A gateway whose root was initialised for its own listener (`init` with the listener's
    /// URL as `public_url`): the demo CA certificates and every issued certificate point at
    /// this server.
    pub async fn start_published() -> Self {
        Self::start_bound(|http, root| {
            let settings = ast_gateway::config::InitSettings {
                http,
                public_url: format!("http://{http}"),
                derived: true,
            };
            ast_gateway::issuance::write_default_for(root, &settings).unwrap();
        })
        .await
    }

    /// A gateway on an HTTP listener bound first, on a port the OS assigns, and handed over:
    /// `prepare` writes the root knowing that address (e.g. `init` for it, a front's
    /// configuration naming it).
    pub async fn start_bound(prepare: impl FnOnce(SocketAddr, &Root)) -> Self {
        let bound = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let http = bound.local_addr().unwrap();
        Self::open_with(
            |root| prepare(http, root),
            |_| {},
            Listeners {
                http_bound: Some(bound),
                ..Listeners::default()
            },
        )
        .await
    }

    async fn open(edit: impl FnOnce(&Root), listeners: Listeners) -> Self {
        Self::open_with(
            |root| ast_gateway::issuance::write_default(root).unwrap(),
            edit,
            listeners,
        )
        .await
    }

    async fn open_with(
        write: impl FnOnce(&Root),
        edit: impl FnOnce(&Root),
        listeners: Listeners,
    ) -> Self {
        let root = tempfile::tempdir().unwrap();
        let r = Root::new(root.path());
        write(&r);
        edit(&r);
        let config = rules::load(&r).unwrap_or_else(|e| panic!("config: {e}"));
        let gateway = Gateway::open(config)
            .await
            .unwrap_or_else(|e| panic!("open: {e}"));
        let server = start(gateway.clone(), listeners).await.unwrap();
        let base = format!("http://{}", server.http_addr.unwrap());
        let https = server.https_addr;
        TestGateway {
            root,
            gateway,
            server: Some(server),
            base,
            https,
        }
    }

    /// The root.
    pub fn root(&self) -> Root {
        Root::new(self.root.path())
    }

    /// The plain HTTP listener.
    pub fn http_addr(&self) -> SocketAddr {
        self.base.trim_start_matches("http://").parse().unwrap()
    }

    /// The HTTPS listener (panics unless started with `start_https`).
    pub fn https_addr(&self) -> SocketAddr {
        self.https.expect("started with start_https")
    }

    /// `https://localhost:<port><path>` (the demo TLS certificate names `localhost`).
    pub fn https_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https_addr().port())
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn http_url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The demo root CA certificate (PEM) the HTTPS clients trust.
    pub fn root_ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.root().data().join("ca/root.pem")).unwrap()
    }

    /// An HTTPS client trusting the demo root, resolving `localhost` to the listener,
    /// presenting `identity` (PEM: certificate + key) when given.
    pub fn https_client(&self, identity: Option<&[u8]>, timeout: Duration) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([reqwest::Certificate::from_pem(&self.root_ca_pem()).unwrap()])
            .resolve("localhost", self.https_addr())
            .timeout(timeout);
        if let Some(pem) = identity {
            builder = builder.identity(reqwest::Identity::from_pem(pem).unwrap());
        }
        builder.build().unwrap()
    }

    /// Issues and registers an officer with `roles`; returns its serial and its certificate
    /// and key as PEM (for `reqwest::Identity`).
    pub async fn officer(&self, name: &str, roles: &[&str]) -> (String, Vec<u8>) {
        let issued = self
            .gateway
            .issue_officer(
                &Caller::Cli,
                name,
                roles.iter().map(|r| r.to_string()).collect(),
                Pin::new(OFFICER_PASSWORD.into()),
            )
            .await
            .unwrap();
        (
            issued.record.serial.clone(),
            identity_pem(&issued.pkcs12, OFFICER_PASSWORD),
        )
    }

    /// POSTs the form to `/pgwy/ast{suffix}` with identity headers.
    pub async fn post(
        &self,
        suffix: &str,
        headers: &[(&str, &str)],
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = client()
            .post(format!("{}/pgwy/ast{suffix}", self.base))
            .form(form);
        for (n, v) in headers {
            request = request.header(*n, *v);
        }
        request.send().await.unwrap()
    }

    /// GET a path.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        client()
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// Writes bytes to a file in the root's temp area.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.root.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.shutdown_handle().send(true);
        }
    }
}

/// Leaf certificate + PKCS#8 key of a PKCS#12, as PEM.
pub fn identity_pem(pkcs12: &[u8], password: &str) -> Vec<u8> {
    let store = p12_keystore::KeyStore::from_pkcs12(
        pkcs12,
        password,
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )
    .unwrap();
    let (_, chain) = store.private_key_chain().unwrap();
    let mut pem = pem_certificate(chain.certs()[0].as_der());
    pem.push_str(
        &der::pem::encode_string(
            "PRIVATE KEY",
            der::pem::LineEnding::LF,
            chain.key().as_der(),
        )
        .unwrap(),
    );
    pem.into_bytes()
}
