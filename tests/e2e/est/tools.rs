//! curl and openssl against a gateway started by `Api`: requests, CSRs, certs-only and
//! multipart answers, audit rows. Shared by `curl` and `refusals`.

use std::path::{Path, PathBuf};

use base64::Engine;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::{base, root_pem};
use ast_gateway::issuance::Gateway;

use crate::api::{Answer, Api};
use crate::kit::{run_ok, tool};

/// curl and openssl against one gateway.
pub(super) struct Tools {
    pub(super) curl: PathBuf,
    pub(super) openssl: PathBuf,
    pub(super) dir: PathBuf,
}

impl Tools {
    pub(super) fn new(api: &Api) -> Option<Tools> {
        Self::in_dir(api.dir().join("curl"))
    }

    /// The tools, working in `dir` (created); `None` when curl or openssl is missing.
    pub(super) fn in_dir(dir: PathBuf) -> Option<Tools> {
        std::fs::create_dir_all(&dir).unwrap();
        Some(Tools {
            curl: tool("curl")?,
            openssl: tool("openssl")?,
            dir,
        })
    }

    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Runs curl on `https://localhost:<port><path>` with `extra` arguments; the answer whole.
    pub(super) async fn curl(&self, api: &Api, path: &str, extra: &[&str]) -> Answer {
        let url = format!("{}{path}", base(api));
        let port = url
            .rsplit(':')
            .next()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let head = self.path("head.txt");
        let body = self.path("body.bin");
        let mut args: Vec<String> = [
            "-sS",
            "--cacert",
            root_pem(api).to_str().unwrap(),
            "--resolve",
            &format!("localhost:{port}:127.0.0.1"),
            "-D",
            head.to_str().unwrap(),
            "-o",
            body.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(url);
        let curl = self.curl.clone();
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(curl)
                .args(&args)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            output.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let head = std::fs::read_to_string(&head).unwrap();
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .parse()
            .unwrap();
        let mut headers = HeaderMap::new();
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                headers.append(
                    HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                    HeaderValue::from_str(value.trim()).unwrap(),
                );
            }
        }
        Answer {
            status,
            headers,
            body: std::fs::read(&body).unwrap(),
        }
    }

    /// A new EC P-256 key (`<name>.key`) and a base64 DER CSR for it (`<name>.b64`), made by
    /// openssl; `extra` adds `req` options (e.g. `-addext`).
    pub(super) fn csr(&self, name: &str, subject: &str, extra: &[&str]) -> PathBuf {
        let key = self.path(&format!("{name}.key"));
        let der = self.path(&format!("{name}.der"));
        let mut args = vec![
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            key.to_str().unwrap(),
            "-subj",
            subject,
            "-outform",
            "DER",
            "-out",
            der.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run_ok(&self.openssl, &args);
        self.base64_file(name, &std::fs::read(&der).unwrap())
    }

    /// A CSR for the key `<key_of>.key`, as `<name>.b64`.
    pub(super) fn csr_for_key(
        &self,
        name: &str,
        key_of: &str,
        subject: &str,
        extra: &[&str],
    ) -> PathBuf {
        let key = self.path(&format!("{key_of}.key"));
        let der = self.path(&format!("{name}.der"));
        let mut args = vec![
            "req",
            "-new",
            "-key",
            key.to_str().unwrap(),
            "-subj",
            subject,
            "-outform",
            "DER",
            "-out",
            der.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run_ok(&self.openssl, &args);
        self.base64_file(name, &std::fs::read(&der).unwrap())
    }

    /// `bytes` as base64 in lines of 64, as `<name>.b64`.
    pub(super) fn base64_file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        let lines: Vec<&str> = text
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let path = self.path(&format!("{name}.b64"));
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    }

    /// POSTs a CSR file to an operation.
    pub(super) async fn post(&self, api: &Api, path: &str, csr: &Path, extra: &[&str]) -> Answer {
        let data = format!("@{}", csr.display());
        let mut args = vec![
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            data.as_str(),
        ];
        args.extend_from_slice(extra);
        self.curl(api, path, &args).await
    }

    /// `post`, asserting a 200 answer (the body shown otherwise).
    pub(super) async fn post_ok(
        &self,
        api: &Api,
        path: &str,
        csr: &Path,
        extra: &[&str],
    ) -> Answer {
        let answer = self.post(api, path, csr, extra).await;
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        answer
    }

    /// The certificates of a base64 certs-only body, as PEM (`<name>.pem`), via openssl pkcs7.
    pub(super) fn certs_only(&self, name: &str, base64_body: &[u8]) -> (PathBuf, String) {
        let der = decode(base64_body);
        let der_file = self.path(&format!("{name}.p7"));
        std::fs::write(&der_file, der).unwrap();
        let pem = self.path(&format!("{name}.pem"));
        let text = run_ok(
            &self.openssl,
            &[
                "pkcs7",
                "-inform",
                "DER",
                "-in",
                der_file.to_str().unwrap(),
                "-print_certs",
                "-out",
                pem.to_str().unwrap(),
            ],
        );
        (pem, text)
    }
}

/// The refusal with this request id is in the audit trail with this code.
pub(super) async fn audited(api: &Api, request_id: &str, code: &str) {
    audited_in(&api.gateway, request_id, code).await;
}

/// The same for any gateway (its SQLite database read directly).
pub(super) async fn audited_in(gateway: &Gateway, request_id: &str, code: &str) {
    gateway.store().flush_refusals().await.unwrap();
    let pool = sqlx::SqlitePool::connect(&gateway.settings().database_url)
        .await
        .unwrap();
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT event, request_id, detail FROM audit ORDER BY seq")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    let found = rows.into_iter().any(|(event, id, detail)| {
        let detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
        let listed = detail["requestIds"]
            .as_array()
            .is_some_and(|ids| ids.iter().any(|i| i == request_id));
        event.contains("refused") && detail["code"] == code && (id == request_id || listed)
    });
    assert!(
        found,
        "refusal {code} ({request_id}) is not in the audit trail"
    );
}

pub(super) fn decode(text: &[u8]) -> Vec<u8> {
    let compact: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .unwrap()
}

/// The parts of a multipart/mixed body: (content type, body) each.
pub(super) fn parts(answer: &Answer) -> Vec<(String, Vec<u8>)> {
    let content_type = answer.header("content-type");
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"');
    let body = String::from_utf8(answer.body.clone()).unwrap();
    body.split(&format!("--{boundary}"))
        .filter(|p| !p.trim().is_empty() && !p.starts_with("--"))
        .map(|part| {
            let (head, content) = part.split_once("\r\n\r\n").unwrap();
            let kind = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Type:"))
                .unwrap()
                .trim()
                .to_string();
            (kind, content.as_bytes().to_vec())
        })
        .collect()
}
