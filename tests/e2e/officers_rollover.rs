//! The officers CA is a role of a `[[ca]]` entry, not a fixed name. Replaced with `ca create NEW
//! --replaces OLD`: new officers come from NEW, an officer OLD issued keeps authenticating over
//! mTLS and can still be revoked (the handshake then refuses it, OLD's CRL lists it, OLD's OCSP
//! answers revoked — checked with openssl). And a freely named officers CA written by `init`
//! issues officers that log in. Everything runs the real binary (`init`, `ca create`, `officer`,
//! `serve` with HTTPS).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::kit::{free_port, skipped, tool};

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
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn init(args: &[&str]) -> Root {
        let root = Root {
            dir: tempfile::tempdir().unwrap(),
        };
        let mut all = vec!["init"];
        all.extend_from_slice(args);
        root.ok(&all);
        root
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn file(&self, rel: &str) -> PathBuf {
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
    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        text(&out)
    }
    /// Standard output of a command that must succeed (JSON listings).
    fn stdout(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }
    fn gateway_toml(&self) -> String {
        std::fs::read_to_string(self.file("conf/gateway.toml")).unwrap()
    }
    /// `officer issue`: the PKCS#12 file, the certificate (PEM) and key+certificate PEM for
    /// reqwest, and the serial.
    fn officer(&self, name: &str, file: &str) -> Officer {
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
    fn enable_https(&self, http: u16, https: u16) {
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
    fn serve(&self, http: u16, https: u16) -> Server {
        let child = self
            .command()
            .args([
                "serve",
                "--http",
                &format!("127.0.0.1:{http}"),
                "--admin",
                "",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.file("serve.err")).unwrap())
            .spawn()
            .unwrap();
        let mut server = Server { child, http, https };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", https)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "serve exited with {status}: {}",
                    std::fs::read_to_string(self.file("serve.err")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "serve did not listen on {https}");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }
}

struct Officer {
    /// Key and certificates, PEM (as reqwest's Identity takes them).
    identity: String,
    /// The certificate alone.
    cert: PathBuf,
    serial: String,
    issuer: String,
    /// What `officer issue` printed.
    said: String,
}

struct Server {
    child: Child,
    http: u16,
    https: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `GET /pgwy/api/tokenprocedures` over mTLS as `officer`: the status, or 0 when the TLS
    /// handshake refused the certificate as revoked.
    async fn api_as(&self, root: &Root, officer: &Officer) -> u16 {
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
            Ok(r) => r.status().as_u16(),
            Err(e) if format!("{e:?}").contains("CertificateRevoked") => 0,
            Err(e) => panic!("the officer request failed otherwise: {e:?}"),
        }
    }
    async fn crl(&self, ca: &str) -> Vec<u8> {
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
fn crl_serials(der: &[u8]) -> Vec<String> {
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
fn openssl_ocsp(root: &Root, server: &Server, ca: &str, cert: &Path) -> String {
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

fn ca_list(root: &Root) -> Vec<serde_json::Value> {
    serde_json::from_str(&root.stdout(&["ca", "list", "--json"])).unwrap()
}

fn ca_row<'a>(rows: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    rows.iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no CA {name} in {rows:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officers_ca_rollover_keeps_old_officers_and_issues_from_the_new_one() {
    if tool("openssl").is_none() {
        skipped(module_path!(), "openssl not installed");
        return;
    }
    let root = Root::init(&[]);
    let (http, https) = (free_port(), free_port());
    root.enable_https(http, https);
    let old = root.officer("Olle Old", "old.p12");
    assert!(old.said.contains("from CA `officers`"), "{}", old.said);

    let said = root.ok(&[
        "ca",
        "create",
        "officers-2",
        "--replaces",
        "officers",
        "--common-name",
        "Example Officers CA 2",
        "--organization",
        "Example AB",
    ]);
    assert!(
        said.contains("`officers-2` is the officers CA now"),
        "{said}"
    );
    let toml = root.gateway_toml();
    assert!(
        toml.contains("# role = \"officers\"  (moved to `officers-2`"),
        "{toml}"
    );
    assert!(
        toml.contains("name = \"officers-2\"\ncertificate = \"data/ca/officers-2.pem\"\nkey = \"data/ca/officers-2.key\"\nparent = \"root\"\n# It issues the officer client certificates (docs/configuration.md).\nrole = \"officers\"\n"),
        "{toml}"
    );
    assert!(
        toml.contains("\nclient_ca = \"data/tls/client-ca.pem\"\n"),
        "{toml}"
    );
    let bundle = std::fs::read_to_string(root.file("data/tls/client-ca.pem")).unwrap();
    assert_eq!(crate::kit::pem_blocks(&bundle).len(), 2, "{bundle}");

    let new = root.officer("Nora New", "new.p12");
    assert!(new.said.contains("from CA `officers-2`"), "{}", new.said);
    assert!(
        new.issuer.contains("Example Officers CA 2"),
        "{}",
        new.issuer
    );
    assert!(old.issuer.contains("Demo Officers CA"), "{}", old.issuer);
    let listed: Vec<serde_json::Value> =
        serde_json::from_str(&root.stdout(&["officer", "list", "--json"])).unwrap();
    let ca_of = |serial: &str| {
        listed.iter().find(|o| o["serial"] == serial).unwrap()["ca"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(ca_of(&old.serial), "officers");
    assert_eq!(ca_of(&new.serial), "officers-2");

    // The new CA is the officers CA; the old one retires while its officer is unexpired.
    let rows = ca_list(&root);
    let active = ca_row(&rows, "officers-2");
    assert_eq!(active["state"], "active", "{active}");
    assert!(
        active["stateDetail"]
            .as_str()
            .unwrap()
            .contains("officer certificates"),
        "{active}"
    );
    let retiring = ca_row(&rows, "officers");
    assert_eq!(retiring["state"], "retiring", "{retiring}");
    assert_eq!(retiring["unexpiredCertificates"], 1, "{retiring}");

    // Both officers log in over mTLS.
    let server = root.serve(http, https);
    assert_eq!(server.api_as(&root, &old).await, 200, "the old officer");
    assert_eq!(server.api_as(&root, &new).await, 200, "the new officer");
    let out = openssl_ocsp(&root, &server, "officers", &old.cert);
    assert!(out.contains(": good"), "{out}");

    // The old officer is revoked: on the old CA's CRL and OCSP, refused at the handshake.
    root.ok(&["officer", "revoke", &old.serial]);
    let crl = server.crl("officers").await;
    assert!(
        crl_serials(&crl).contains(&old.serial),
        "{:?}",
        crl_serials(&crl)
    );
    assert!(!crl_serials(&server.crl("officers-2").await).contains(&old.serial));
    let out = openssl_ocsp(&root, &server, "officers", &old.cert);
    assert!(
        out.contains("Response verify OK") && out.contains(": revoked"),
        "{out}"
    );
    let out = openssl_ocsp(&root, &server, "officers-2", &new.cert);
    assert!(out.contains(": good"), "{out}");
    // The service re-reads revoked officers every 10 seconds.
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.api_as(&root, &old).await != 0 {
        assert!(
            Instant::now() < deadline,
            "the revoked old officer still logs in"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(server.api_as(&root, &new).await, 200, "the new officer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freely_named_officers_ca_from_init_issues_officers_who_log_in() {
    if tool("openssl").is_none() {
        skipped(module_path!(), "openssl not installed");
        return;
    }
    let root = Root::init(&[
        "--root-name",
        "acme-root",
        "--issuing-name",
        "acme-tokens",
        "--officers-name",
        "acme-staff",
    ]);
    let toml = root.gateway_toml();
    assert!(
        toml.contains("name = \"acme-staff\"\ncertificate = \"data/ca/acme-staff.pem\"\nkey = \"data/ca/acme-staff.key\"\nparent = \"acme-root\"\nrole = \"officers\"\n"),
        "{toml}"
    );
    assert!(!toml.contains("name = \"officers\""), "{toml}");
    let (http, https) = (free_port(), free_port());
    root.enable_https(http, https);
    assert!(
        root.gateway_toml()
            .contains("\nclient_ca = \"data/ca/acme-staff.pem\"\n")
    );
    let officer = root.officer("Stina Staff", "staff.p12");
    assert!(
        officer.said.contains("from CA `acme-staff`"),
        "{}",
        officer.said
    );
    let rows = ca_list(&root);
    assert!(
        ca_row(&rows, "acme-staff")["stateDetail"]
            .as_str()
            .unwrap()
            .contains("officer certificates"),
        "{rows:?}"
    );
    let server = root.serve(http, https);
    assert_eq!(server.api_as(&root, &officer).await, 200);
    root.ok(&["officer", "revoke", &officer.serial]);
    assert!(crl_serials(&server.crl("acme-staff").await).contains(&officer.serial));
    let out = openssl_ocsp(&root, &server, "acme-staff", &officer.cert);
    assert!(out.contains(": revoked"), "{out}");
}
