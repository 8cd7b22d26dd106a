//! The test kit, the one place the suite's harnesses live: the in-process gateway
//! (`TestGateway`, HTTP or HTTPS with officers), the real binary (`ast`, `Serve`), configuration
//! edits that fail when their anchor text is missing (`replaced`, `edit_file`), tools and the
//! skip policy (`tool`, `skipped`: a missing tool fails under `CI`), and small helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod browser;
pub mod databases;
mod edit;
mod gateway;
mod python;
mod serve;
pub mod tcp_proxy;

pub use browser::Browser;
pub use edit::{Anchored, append_file, replaced};
pub use gateway::{TestGateway, identity_pem};
pub use python::python_venv;
pub use serve::{BIN, Serve, ast, finish, output_text, url_after};

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

/// POSTs the form with PIN `pin` and identity headers given as raw bytes (names and values
/// exactly as a front or an attacker would send them).
pub async fn post_raw_headers(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &[u8])],
    pin: &str,
) -> reqwest::Response {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("password", pin)
        .finish();
    let mut request = client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    for (name, value) in headers {
        request = request.header(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            reqwest::header::HeaderValue::from_bytes(value).unwrap(),
        );
    }
    request.send().await.unwrap()
}

/// The `X-Ast-Error` code of an answer (empty when there is none).
pub fn error_code(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-ast-error")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}
