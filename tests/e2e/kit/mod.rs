//! The test kit: a real gateway on a temporary root with the embedded default configuration.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use ast_gateway::config::Root;
use ast_gateway::http::{Listeners, RunningServer, start};
use ast_gateway::issuance::Gateway;
use ast_gateway::rules;

/// A running gateway and its temporary root.
pub struct TestGateway {
    pub root: tempfile::TempDir,
    pub gateway: Arc<Gateway>,
    pub server: Option<RunningServer>,
    pub base: String,
}

impl TestGateway {
    /// Embedded default, HTTP on 127.0.0.1:0.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Embedded default, edited by `edit` (e.g. rewrite conf files) before loading.
    pub async fn start_with(edit: impl FnOnce(&Root)) -> Self {
        let root = tempfile::tempdir().unwrap();
        let r = Root::new(root.path());
        ast_gateway::issuance::write_default(&r).unwrap();
        edit(&r);
        let config = rules::load(&r).unwrap_or_else(|e| panic!("config: {e}"));
        let gateway = Gateway::open(config)
            .await
            .unwrap_or_else(|e| panic!("open: {e}"));
        let server = start(
            gateway.clone(),
            Listeners {
                http: Some("127.0.0.1:0".parse().unwrap()),
                ..Listeners::default()
            },
        )
        .await
        .unwrap();
        let base = format!("http://{}", server.http_addr.unwrap());
        TestGateway {
            root,
            gateway,
            server: Some(server),
            base,
        }
    }

    /// The root.
    pub fn root(&self) -> Root {
        Root::new(self.root.path())
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

/// A plain HTTP client.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// The path of a tool on PATH, or None (the caller prints `skipped: …`).
pub fn tool(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// A port that was free a moment ago, for servers that cannot report the port the OS gave them
/// (nginx, Apache, a `serve` subprocess told its address on the command line). Our own
/// in-process server binds 127.0.0.1:0 and reports its address instead.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A serial from its hex text.
pub fn ser(text: impl AsRef<str>) -> ast_gateway::ca::Serial {
    ast_gateway::ca::Serial::parse(text.as_ref()).unwrap()
}

/// Whether the suite runs under CI (`CI` set and not empty, as CI services and `.ci/run` set it).
pub fn under_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// A test cannot run because a tool (or service) is missing. Without `CI` it prints
/// `skipped: <test>: <why>` and the caller returns; under `CI` it fails the test, naming what is
/// missing, so a machine without the tools can never pass CI.
pub fn skipped(test: &str, why: &str) {
    assert!(
        !under_ci(),
        "{test}: {why} — CI is set, so a missing tool fails the test instead of skipping it (.ci/run installs the tools)"
    );
    println!("skipped: {test}: {why}");
}

/// Runs a command and returns its output (panics if it cannot start).
pub fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()))
}

/// Asserts success and returns stdout+stderr as text.
pub fn run_ok(program: &Path, args: &[&str]) -> String {
    let out = run(program, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} {:?} failed:\n{text}",
        program.display(),
        args
    );
    text
}

/// Splits a PEM bundle into its blocks.
pub fn pem_blocks(pem: &str) -> Vec<String> {
    pem.split_inclusive("-----END CERTIFICATE-----\n")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .map(|b| b.trim_start().to_string())
        .collect()
}

/// The default identity headers of Alice.
pub const ALICE: &[(&str, &str)] = &[
    ("commonname", "Alice Andersson"),
    ("givenname", "Alice"),
    ("surname", "Andersson"),
    ("country", "SE"),
    ("email", "alice@example.com"),
];
