//! The harness of `officers_rollover`: a root made by the real binary's `init`, officers
//! issued by `officer issue` (unpacked with openssl), `serve` with HTTPS and client
//! certificates, mTLS API calls, CRL serials and `openssl ocsp`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::kit::Serve;
use std::time::{Duration, Instant};

const PASSWORD: &str = "officer-pw-1";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ast-gateway")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A root made by `init` with `args`, run with the real binary.
pub(super) struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    pub(super) fn init(args: &[&str]) -> Root {
        let root = Root {
            dir: tempfile::tempdir().unwrap(),
        };
        let mut all = vec!["init"];
        all.extend_from_slice(args);
        root.ok(&all);
        root
    }
    pub(super) fn path(&self) -> &Path {
        self.dir.path()
    }
    pub(super) fn file(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }
    fn command(&self) -> Command {
        let mut c = Command::new(bin());
        c.arg("--root")
            .arg(self.path())
            .env("RUST_LOG", "warn")
            .env_remove("AST_GATEWAY_ROOT");
        c
    }
    fn cli(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }
    pub(super) fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        text(&out)
    }
    /// Standard output of a command that must succeed (JSON listings).
    pub(super) fn stdout(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }
    pub(super) fn gateway_toml(&self) -> String {
        std::fs::read_to_string(self.file("conf/gateway.toml")).unwrap()
    }
    /// `officer issue`: the PKCS#12 file, the certificate (PEM) and key+certificate PEM for
    /// reqwest, and the serial.
    pub(super) fn officer(&self, name: &str, file: &str) -> Officer {
        let p12 = self.file(file);
        let said = self.ok(&[
            "officer",
            "issue",
            "--name",
            name,
            "--roles",
            "api-read",
            "--out",
            p12.to_str().unwrap(),
            "--password",
            PASSWORD,
        ]);
        let pkcs12 = |extra: &[&str]| {
            let out = Command::new("openssl")
                .arg("pkcs12")
                .args(extra)
                .arg("-passin")
                .arg(format!("pass:{PASSWORD}"))
                .arg("-in")
                .arg(&p12)
                .output()
                .unwrap();
            assert!(out.status.success(), "openssl pkcs12: {}", text(&out));
            String::from_utf8(out.stdout).unwrap()
        };
        let identity = pkcs12(&["-nodes"]);
        let leaf = pkcs12(&["-nokeys", "-clcerts"]);
        let begin = leaf.find("-----BEGIN CERTIFICATE-----").unwrap();
        let leaf = &leaf[begin..];
        let cert = self.file(&format!("{file}.pem"));
        std::fs::write(&cert, leaf).unwrap();
        let der = ast_gateway::ca::read_certificate_file(&cert).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        Officer {
            identity,
            cert,
            serial: ast_gateway::ca::Serial::from_bytes(parsed.raw_serial())
                .hex()
                .to_string(),
            issuer: parsed.issuer().to_string(),
            said,
        }
    }
    /// Turns HTTPS (with client certificates) on at `https` and points public_url at `http`.
    pub(super) fn enable_https(&self, http: u16, https: u16) {
        let path = self.file("conf/gateway.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let text: String = text
            .lines()
            .map(|l| {
                if l.starts_with("public_url = ") {
                    format!("public_url = \"http://127.0.0.1:{http}\"")
                } else if l == "# https = \"127.0.0.1:8443\"" {
                    format!("https = \"127.0.0.1:{https}\"")
                } else if let Some(rest) = l
                    .strip_prefix("# ")
                    .filter(|r| r.starts_with("tls_cert = ") || r.starts_with("tls_key = "))
                {
                    rest.to_string()
                } else if let Some(rest) = l
                    .strip_prefix("# ")
                    .filter(|r| r.starts_with("client_ca = "))
                {
                    rest.to_string()
                } else {
                    l.to_string()
                }
            })
            .map(|l| l + "\n")
            .collect();
        assert!(text.contains(&format!("https = \"127.0.0.1:{https}\"")));
        std::fs::write(&path, text).unwrap();
    }
    pub(super) fn serve(&self, http: u16, https: u16) -> Server {
        // The kit's `serve` harness; the ports were chosen before the start because
        // public_url and the HTTPS listener are written into gateway.toml.
        let mut command = self.command();
        command.env("RUST_LOG", "info,sqlx=warn").args([
            "serve",
            "--http",
            &format!("127.0.0.1:{http}"),
            "--admin",
            "",
        ]);
        let serve = Serve::spawn(command);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", https)).is_err() {
            assert!(
                Instant::now() < deadline,
                "serve did not listen on {https}: {}",
                serve.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Server { serve, http, https }
    }
}

pub(super) struct Officer {
    /// Key and certificates, PEM (as reqwest's Identity takes them).
    pub(super) identity: String,
    /// The certificate alone.
    pub(super) cert: PathBuf,
    pub(super) serial: String,
    pub(super) issuer: String,
    /// What `officer issue` printed.
    pub(super) said: String,
}

pub(super) struct Server {
    serve: Serve,
    pub(super) http: u16,
    pub(super) https: u16,
}

impl Server {
    /// What `serve` logged so far.
    pub(super) fn log(&self) -> String {
        self.serve.log_text()
    }

    /// `GET /pgwy/api/tokenprocedures` over mTLS as `officer`: the status, or the error (a
    /// refused handshake reads as an alert or a closed connection, depending on timing).
    pub(super) async fn api_as(&self, root: &Root, officer: &Officer) -> Result<u16, String> {
        let trust = std::fs::read(root.file(&format!("data/ca/{}.pem", root_ca(root)))).unwrap();
        let client = reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([reqwest::Certificate::from_pem(&trust).unwrap()])
            .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], self.https)))
            .identity(reqwest::Identity::from_pem(officer.identity.as_bytes()).unwrap())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        match client
            .get(format!(
                "https://localhost:{}/pgwy/api/tokenprocedures",
                self.https
            ))
            .send()
            .await
        {
            Ok(r) => Ok(r.status().as_u16()),
            Err(e) => Err(format!("{e:?}")),
        }
    }
    pub(super) async fn crl(&self, ca: &str) -> Vec<u8> {
        let response = crate::kit::client()
            .get(format!("http://127.0.0.1:{}/pgwy/crl/{ca}.crl", self.http))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "CRL of {ca}");
        response.bytes().await.unwrap().to_vec()
    }
}

/// The name of the root CA (the `[[ca]]` without a parent).
fn root_ca(root: &Root) -> String {
    let config = ast_gateway::rules::load(&ast_gateway::config::Root::new(root.path())).unwrap();
    config
        .settings
        .cas
        .iter()
        .find(|c| c.parent.is_none())
        .unwrap()
        .name
        .clone()
}

/// The serials (lower-case hex) a DER CRL lists.
pub(super) fn crl_serials(der: &[u8]) -> Vec<String> {
    let (_, crl) = x509_parser::parse_x509_crl(der).unwrap();
    crl.iter_revoked_certificates()
        .map(|r| {
            ast_gateway::ca::Serial::from_bytes(r.raw_serial())
                .hex()
                .to_string()
        })
        .collect()
}

/// `openssl ocsp` for `cert` issued by CA `ca`, verified against that CA and the root.
pub(super) fn openssl_ocsp(root: &Root, server: &Server, ca: &str, cert: &Path) -> String {
    let chain = root.file(&format!("chain-{ca}.pem"));
    let text_of = |name: &str| std::fs::read_to_string(root.file(&format!("data/ca/{name}.pem")));
    std::fs::write(
        &chain,
        text_of(ca).unwrap() + &text_of(&root_ca(root)).unwrap(),
    )
    .unwrap();
    let out = Command::new("openssl")
        .args(["ocsp", "-issuer"])
        .arg(root.file(&format!("data/ca/{ca}.pem")))
        .arg("-CAfile")
        .arg(&chain)
        .arg("-cert")
        .arg(cert)
        .args([
            "-url",
            &format!("http://127.0.0.1:{}/pgwy/ocsp", server.http),
        ])
        .current_dir(root.path())
        .output()
        .unwrap();
    text(&out)
}

pub(super) fn ca_list(root: &Root) -> Vec<serde_json::Value> {
    serde_json::from_str(&root.stdout(&["ca", "list", "--json"])).unwrap()
}

pub(super) fn ca_row<'a>(rows: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    rows.iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no CA {name} in {rows:?}"))
}
