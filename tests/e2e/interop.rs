//! Issue 13: tokens that work everywhere they are used. Whole-chain revocation checked by
//! OpenSSL, Java PKIX and nginx against CRLs and OCSP fetched from the running gateway; the
//! PKCS#12 layout as OpenSSL, NSS, Java and pyca read it; non-ASCII names in friendlyName and
//! in the download file name (Chromium); `init` deriving public_url and `config check` warning.
//!
//! Every test runs the real server on a port chosen first, so the demo CA certificates and the
//! issued certificates point at this very server (as `init --http` does for an operator).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ast_gateway::ca::RevocationReason;
use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};
use x509_parser::prelude::*;

use crate::kit::{ALICE, Anchored, Browser, TestGateway, free_port, skipped, tool};

pub(super) const PIN: &str = "Str0ng-Pass!";
const YOSHIDA: &str = "𠮷田 太郎";

pub(super) async fn issue(gw: &TestGateway, common_name: &str, profile: &str) -> Vec<u8> {
    let mut headers = vec![("commonname", common_name), ("country", "SE")];
    if common_name == "Alice Andersson" {
        headers = ALICE.to_vec();
    }
    let response = gw
        .post("", &headers, &[("password", PIN), ("profile", profile)])
        .await;
    let code = response.headers().get("x-ast-error").cloned();
    assert_eq!(response.status(), 200, "{common_name}: {code:?}");
    response.bytes().await.unwrap().to_vec()
}

/// The key entries of a token with an ASCII name (p12-keystore as reader): alias, leaf DER,
/// PKCS#8 key DER, chain length.
fn entries(p12: &[u8]) -> Vec<(String, Vec<u8>, Vec<u8>, usize)> {
    let store = KeyStore::from_pkcs12(p12, PIN, Pkcs12ImportPolicy::Strict).unwrap();
    store
        .entries()
        .filter_map(|(alias, entry)| match entry {
            KeyStoreEntry::PrivateKeyChain(chain) => Some((
                alias.clone(),
                chain.certs()[0].as_der().to_vec(),
                chain.key().as_der().to_vec(),
                chain.certs().len(),
            )),
            _ => None,
        })
        .collect()
}

/// The authentication entry: leaf DER and key DER.
pub(super) fn authentication(p12: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (_, leaf, key, _) = entries(p12)
        .into_iter()
        .find(|(alias, ..)| alias.ends_with("authentication"))
        .expect("an authentication entry");
    (leaf, key)
}

pub(super) fn pem(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).unwrap()
}

pub(super) fn serial_hex(der: &[u8]) -> String {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    hex::encode(cert.raw_serial())
}

async fn revoke(gw: &TestGateway, leaf: &[u8]) {
    gw.gateway
        .revoke(
            &ast_gateway::ca::Serial::parse(&serial_hex(leaf)).unwrap(),
            RevocationReason::KeyCompromise,
            &ast_gateway::identity::Caller::Cli,
            "interop",
        )
        .await
        .unwrap();
}

pub(super) async fn fetch(gw: &TestGateway, path: &str) -> Vec<u8> {
    let response = gw.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.bytes().await.unwrap().to_vec()
}

/// Runs a tool off the runtime's threads (it may call back into this very server).
pub(super) async fn run_tool(program: PathBuf, args: Vec<String>) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        let out: Output = Command::new(&program)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    })
    .await
    .unwrap()
}

fn s(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// CRL distribution point and AIA (OCSP, caIssuers) URIs of a certificate.
fn published(der: &[u8]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    let mut crl = Vec::new();
    let mut ocsp = Vec::new();
    let mut issuers = Vec::new();
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::CRLDistributionPoints(points) => {
                for point in points.iter() {
                    if let Some(DistributionPointName::FullName(names)) = &point.distribution_point
                    {
                        for name in names {
                            if let GeneralName::URI(uri) = name {
                                crl.push(uri.to_string());
                            }
                        }
                    }
                }
            }
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for access in aia.iter() {
                    if let GeneralName::URI(uri) = access.access_location {
                        if access.access_method.to_id_string() == "1.3.6.1.5.5.7.48.1" {
                            ocsp.push(uri.to_string());
                        } else if access.access_method.to_id_string() == "1.3.6.1.5.5.7.48.2" {
                            issuers.push(uri.to_string());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    (crl, ocsp, issuers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_certificate_below_the_root_points_at_its_issuer() {
    let gw = TestGateway::start_published().await;
    let base = gw.base.clone();
    let p12 = issue(&gw, "Alice Andersson", "modern").await;
    for (alias, leaf, _, _) in entries(&p12) {
        assert_eq!(
            published(&leaf),
            (
                vec![format!("{base}/pgwy/crl/issuing.crl")],
                vec![format!("{base}/pgwy/ocsp")],
                vec![format!("{base}/pgwy/ca/issuing.cer")]
            ),
            "{alias}"
        );
    }
    // CA certificates below the root: the root's CRL, certificate and OCSP responder (it
    // answers for subordinate CA certificates: whole-chain OCSP).
    for ca in ["issuing", "officers"] {
        let der = fetch(&gw, &format!("/pgwy/ca/{ca}.cer")).await;
        assert_eq!(der, gw.gateway.ca(ca).unwrap().certificate_der(), "{ca}");
        assert_eq!(
            published(&der),
            (
                vec![format!("{base}/pgwy/crl/root.crl")],
                vec![format!("{base}/pgwy/ocsp")],
                vec![format!("{base}/pgwy/ca/root.cer")]
            ),
            "{ca}"
        );
    }
    // The root carries none; its certificate and CRL are served like the others.
    let root = fetch(&gw, "/pgwy/ca/root.cer").await;
    assert_eq!(published(&root), (vec![], vec![], vec![]));
    let response = gw.get("/pgwy/ca/root.cer").await;
    assert_eq!(response.headers()["content-type"], "application/pkix-cert");
    assert_eq!(gw.get("/pgwy/ca/nosuch.cer").await.status(), 404);
    assert_eq!(gw.get("/pgwy/ca/root.der").await.status(), 404);
    let root_crl = fetch(&gw, "/pgwy/crl/root.crl").await;
    let (_, crl) = x509_parser::parse_x509_crl(&root_crl).unwrap();
    assert_eq!(crl.issuer().to_string(), {
        let (_, c) = X509Certificate::from_der(&root).unwrap();
        c.subject().to_string()
    });
    // Officer certificates point at the officers CA.
    let officer = gw
        .gateway
        .issue_officer(
            &ast_gateway::identity::Caller::Cli,
            "Olle Officer",
            vec!["ast-requester".into()],
            ast_gateway::token::Pin::new("officer-123".into()),
        )
        .await
        .unwrap();
    let store =
        KeyStore::from_pkcs12(&officer.pkcs12, "officer-123", Pkcs12ImportPolicy::Strict).unwrap();
    let (_, chain) = store.private_key_chain().unwrap();
    assert_eq!(
        published(chain.certs()[0].as_der()),
        (
            vec![format!("{base}/pgwy/crl/officers.crl")],
            vec![format!("{base}/pgwy/ocsp")],
            vec![format!("{base}/pgwy/ca/officers.cer")]
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_verify_checks_the_whole_chain_with_both_crls() {
    let Some(openssl) = tool("openssl") else {
        return skipped(
            "openssl_verify_checks_the_whole_chain",
            "openssl not installed",
        );
    };
    let gw = TestGateway::start_published().await;
    let dir = gw.root.path().join("verify");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let root = write(
        "root.pem",
        pem("CERTIFICATE", &fetch(&gw, "/pgwy/ca/root.cer").await),
    );
    let issuing = write(
        "issuing.pem",
        pem("CERTIFICATE", &fetch(&gw, "/pgwy/ca/issuing.cer").await),
    );
    let p12 = issue(&gw, "Alice Andersson", "modern").await;
    let leaves: Vec<(String, Vec<u8>)> = entries(&p12)
        .into_iter()
        .map(|(alias, leaf, _, _)| (alias, leaf))
        .collect();
    assert_eq!(leaves.len(), 2);
    let files: Vec<String> = leaves
        .iter()
        .enumerate()
        .map(|(i, (_, der))| write(&format!("leaf{i}.pem"), pem("CERTIFICATE", der)))
        .collect();
    let crls = |gw_crls: (Vec<u8>, Vec<u8>)| {
        (
            write("root.crl.pem", pem("X509 CRL", &gw_crls.0)),
            write("issuing.crl.pem", pem("X509 CRL", &gw_crls.1)),
        )
    };
    let (root_crl, issuing_crl) = crls((
        fetch(&gw, "/pgwy/crl/root.crl").await,
        fetch(&gw, "/pgwy/crl/issuing.crl").await,
    ));
    let verify = |extra: Vec<String>, leaf: &str| {
        let mut args = s(&[
            "verify",
            "-crl_check_all",
            "-CAfile",
            &root,
            "-untrusted",
            &issuing,
        ]);
        args.extend(extra);
        args.push(leaf.to_string());
        run_tool(openssl.clone(), args)
    };
    let both = s(&["-CRLfile", &root_crl, "-CRLfile", &issuing_crl]);
    for leaf in &files {
        let (ok, text) = verify(both.clone(), leaf).await;
        assert!(ok && text.contains(": OK"), "{text}");
        // The issuing CA's CRL alone is not enough: the check covers the issuing CA too.
        let (ok, text) = verify(s(&["-CRLfile", &issuing_crl]), leaf).await;
        assert!(
            !ok && text.contains("unable to get certificate CRL"),
            "{text}"
        );
        // The leaf's CRL distribution point, downloaded by openssl from this server.
        let (ok, text) = verify(s(&["-crl_download", "-CRLfile", &root_crl]), leaf).await;
        assert!(ok && text.contains(": OK"), "{text}");
    }

    // Revoke the authentication certificate: refused with fresh CRLs, the other still good.
    let (auth_index, (_, auth)) = leaves
        .iter()
        .enumerate()
        .find(|(_, (alias, _))| alias.ends_with("authentication"))
        .unwrap();
    revoke(&gw, auth).await;
    let (root_crl, issuing_crl) = crls((
        fetch(&gw, "/pgwy/crl/root.crl").await,
        fetch(&gw, "/pgwy/crl/issuing.crl").await,
    ));
    let both = s(&["-CRLfile", &root_crl, "-CRLfile", &issuing_crl]);
    for (i, leaf) in files.iter().enumerate() {
        let (ok, text) = verify(both.clone(), leaf).await;
        if i == auth_index {
            assert!(!ok && text.contains("certificate revoked"), "{text}");
            let (ok, text) = verify(s(&["-crl_download", "-CRLfile", &root_crl]), leaf).await;
            assert!(!ok && text.contains("certificate revoked"), "{text}");
        } else {
            assert!(ok && text.contains(": OK"), "{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_pkix_with_revocation_accepts_good_and_rejects_revoked() {
    let Some(java) = tool("java") else {
        return skipped("java_pkix_with_revocation", "java not installed");
    };
    let gw = TestGateway::start_published().await;
    let dir = gw.root.path().join("java");
    std::fs::create_dir_all(&dir).unwrap();
    let root = dir.join("root.pem");
    std::fs::write(
        &root,
        pem("CERTIFICATE", &fetch(&gw, "/pgwy/ca/root.cer").await),
    )
    .unwrap();
    let issuing = pem("CERTIFICATE", &fetch(&gw, "/pgwy/ca/issuing.cer").await);
    let check = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/interop/Check.java");
    let pkix = |chain: PathBuf| {
        run_tool(
            java.clone(),
            vec![
                "-Dcom.sun.security.enableCRLDP=true".into(),
                check.display().to_string(),
                "pkix".into(),
                root.display().to_string(),
                chain.display().to_string(),
            ],
        )
    };
    let good = authentication(&issue(&gw, "Alice Andersson", "modern").await).0;
    let bad = authentication(&issue(&gw, "Bob Berg", "modern").await).0;
    revoke(&gw, &bad).await;
    let chain = |name: &str, leaf: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, format!("{}{issuing}", pem("CERTIFICATE", leaf))).unwrap();
        path
    };
    // Java checks the leaf by OCSP (AIA) and the issuing CA by the root's CRL (CRL DP).
    let (ok, text) = pkix(chain("good.pem", &good)).await;
    assert!(ok && text.trim_end().ends_with("valid"), "{text}");
    let (ok, text) = pkix(chain("revoked.pem", &bad)).await;
    assert!(
        !ok && text.contains("invalid: index=0") && text.contains("REVOKED"),
        "{text}"
    );
}

/// nginx (our child, by its handle) is killed when the test ends.
pub(super) struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx with one TLS server per `(port, revocation check)`, requiring a client certificate
/// below `clients.pem`.
pub(super) fn start_nginx(nginx: &Path, dir: &Path, servers: &[(u16, &str)]) -> Nginx {
    let d = dir.display();
    let server = |port: u16, check: &str| {
        format!(
            "  server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {d}/server.pem;\n    \
             ssl_certificate_key {d}/server.key;\n    ssl_client_certificate {d}/clients.pem;\n    \
             ssl_verify_client on;\n    ssl_verify_depth 2;\n    {check}\n    \
             location / {{ return 200 \"ok $ssl_client_s_dn\\n\"; }}\n  }}\n"
        )
    };
    let config = format!(
        "pid {d}/nginx.pid;\nevents {{ worker_connections 64; }}\nhttp {{\n  \
         client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  access_log off;\n{}}}\n",
        servers
            .iter()
            .map(|(port, check)| server(*port, check))
            .collect::<String>(),
    );
    std::fs::write(dir.join("nginx.conf"), config).unwrap();
    let log = dir.join("error.log");
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(&log)
        .args([
            "-g",
            "daemon off; master_process off; error_log stderr info;",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("nginx.stderr")).unwrap())
        .spawn()
        .unwrap();
    let mut nginx = Nginx(child);
    for &(port, _) in servers {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = nginx.0.try_wait() {
                panic!(
                    "nginx exited with {status}: {}",
                    std::fs::read_to_string(dir.join("nginx.stderr")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "nginx did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    nginx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_client_auth_with_ocsp_and_whole_chain_crls() {
    let Some(nginx) =
        tool("nginx").or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.exists()))
    else {
        return skipped(
            "nginx_client_auth_with_ocsp_and_crls",
            "nginx not installed",
        );
    };
    let gw = TestGateway::start_published().await;
    let dir = gw.root.path().join("nginx");
    std::fs::create_dir_all(&dir).unwrap();
    let data = gw.root().data();
    std::fs::copy(data.join("tls/server.pem"), dir.join("server.pem")).unwrap();
    std::fs::copy(data.join("tls/server.key"), dir.join("server.key")).unwrap();
    let root = fetch(&gw, "/pgwy/ca/root.cer").await;
    let issuing = fetch(&gw, "/pgwy/ca/issuing.cer").await;
    std::fs::write(
        dir.join("clients.pem"),
        format!(
            "{}{}",
            pem("CERTIFICATE", &issuing),
            pem("CERTIFICATE", &root)
        ),
    )
    .unwrap();
    let write_crls = async |gw: &TestGateway| {
        let text = format!(
            "{}{}",
            pem("X509 CRL", &fetch(gw, "/pgwy/crl/root.crl").await),
            pem("X509 CRL", &fetch(gw, "/pgwy/crl/issuing.crl").await)
        );
        std::fs::write(dir.join("crls.pem"), text).unwrap();
    };
    write_crls(&gw).await;
    let ports = [free_port(), free_port()];
    let crls = format!("ssl_crl {}/crls.pem;", dir.display());
    let servers = [(ports[0], "ssl_ocsp leaf;"), (ports[1], crls.as_str())];

    let (leaf, key) = authentication(&issue(&gw, "Alice Andersson", "modern").await);
    let identity = format!("{}{}", pem("CERTIFICATE", &leaf), pem("PRIVATE KEY", &key));
    let client = |port: u16| {
        reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([
                reqwest::Certificate::from_pem(pem("CERTIFICATE", &root).as_bytes()).unwrap(),
            ])
            .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], port)))
            .identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    };
    let get = async |port: u16| match client(port)
        .get(format!("https://localhost:{port}/"))
        .send()
        .await
    {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    };

    let server = start_nginx(&nginx, &dir, &servers);
    for port in ports {
        let (status, body) = get(port).await;
        assert_eq!(
            status,
            200,
            "{body} / {}",
            std::fs::read_to_string(dir.join("nginx.stderr")).unwrap_or_default()
        );
        assert!(body.contains("CN=Alice Andersson"), "{body}");
    }
    drop(server);

    // Revoked: the OCSP server refuses at once; the CRL server with the new CRLs.
    revoke(&gw, &leaf).await;
    write_crls(&gw).await;
    let _server = start_nginx(&nginx, &dir, &servers);
    for port in ports {
        let (status, body) = get(port).await;
        assert_eq!(status, 400, "{body}");
    }
    let log = std::fs::read_to_string(dir.join("nginx.stderr")).unwrap_or_default();
    assert!(log.contains("revoked"), "{log}");
}

/// Certificates (PEM blocks) and friendlyName lines `openssl pkcs12 -info` prints.
async fn openssl_info(openssl: &Path, file: &Path) -> (Vec<String>, String) {
    let (ok, text) = run_tool(
        openssl.to_path_buf(),
        vec![
            "pkcs12".into(),
            "-info".into(),
            "-nokeys".into(),
            "-in".into(),
            file.display().to_string(),
            "-passin".into(),
            format!("pass:{PIN}"),
        ],
    )
    .await;
    assert!(ok, "{text}");
    let blocks = text
        .split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .map(|b| {
            b.split("-----END CERTIFICATE-----")
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    (blocks, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_layout_in_openssl_nss_java_and_pyca() {
    let gw = TestGateway::start_published().await;
    let dir = gw.root.path().join("tokens");
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for (name, profile) in [
        ("Alice Andersson", "modern"),
        ("Alice Andersson", "legacy"),
        (YOSHIDA, "modern"),
        ("A😀", "legacy"),
    ] {
        let path = dir.join(format!("{}-{profile}.p12", files.len()));
        std::fs::write(&path, issue(&gw, name, profile).await).unwrap();
        files.push((name, profile, path));
    }

    // OpenSSL: MAC and both safes open; two leaves and each CA once (no duplicates).
    match tool("openssl") {
        None => skipped("token_layout: openssl", "openssl not installed"),
        Some(openssl) => {
            for (name, profile, path) in &files {
                let (blocks, text) = openssl_info(&openssl, path).await;
                let unique: BTreeSet<_> = blocks.iter().collect();
                assert_eq!(blocks.len(), 4, "{name} {profile}: {text}");
                assert_eq!(unique.len(), 4, "{name} {profile}: a certificate twice");
                assert!(
                    text.matches("friendlyName").count() == 2
                        && text.matches("localKeyID").count() == 2,
                    "{name} {profile}: {text}"
                );
                if *name == YOSHIDA {
                    // OpenSSL 3.0's `pkcs12 -info` prints a BMPString friendlyName with
                    // OPENSSL_uni2asc (the low byte of each UTF-16 unit); later versions print
                    // UTF-8. Either shows that it read our surrogate pairs as written.
                    let name = format!("{YOSHIDA} authentication");
                    let low_bytes: Vec<u8> = name.encode_utf16().map(|u| u as u8).collect();
                    let byte_wise = String::from_utf8_lossy(&low_bytes).to_string();
                    assert!(
                        text.contains(&format!("friendlyName: {name}"))
                            || text.contains(&format!("friendlyName: {byte_wise}")),
                        "{text}"
                    );
                }
                if *name == "Alice Andersson" {
                    // Certificate bags named like their keys, authentication first.
                    let names: Vec<_> = text
                        .lines()
                        .filter_map(|l| l.trim().strip_prefix("friendlyName: "))
                        .collect();
                    assert_eq!(
                        names,
                        ["Alice Andersson authentication", "Alice Andersson signing"]
                    );
                    assert!(
                        text.contains(if *profile == "modern" {
                            "PBES2, PBKDF2, AES-256-CBC"
                        } else {
                            "pbeWithSHA1And3-KeyTripleDES-CBC"
                        }),
                        "{text}"
                    );
                }
            }
        }
    }

    // NSS: two differently named certificates with keys, any Unicode name intact.
    match tool("pk12util") {
        None => skipped(
            "token_layout: pk12util",
            "pk12util not installed (libnss3-tools)",
        ),
        Some(pk12util) => {
            for (name, profile, path) in &files {
                let (ok, text) = run_tool(
                    pk12util.clone(),
                    vec![
                        "-l".into(),
                        path.display().to_string(),
                        "-W".into(),
                        PIN.into(),
                    ],
                )
                .await;
                assert!(ok, "{name} {profile}: {text}");
                let names: Vec<_> = text
                    .lines()
                    .filter_map(|l| l.trim().strip_prefix("Friendly Name: "))
                    .collect();
                let expected = [format!("{name} authentication"), format!("{name} signing")];
                // Certificates first, then the keys: each name once per kind.
                assert_eq!(
                    names,
                    [&expected[0], &expected[1], &expected[0], &expected[1]],
                    "{name} {profile}: {text}"
                );
                assert_eq!(
                    text.matches("Certificate(has private key):").count(),
                    2,
                    "{text}"
                );
            }
        }
    }

    // Java: aliases in file order, authentication first, each with the full chain; the PKIX
    // key manager picks the authentication key. SunX509 (the JDK default) picks by hash
    // order of the aliases, whatever the file order: printed, not asserted (see docs).
    match tool("java") {
        None => skipped("token_layout: java", "java not installed"),
        Some(java) => {
            let check = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/interop/Check.java");
            for (name, profile, path) in &files {
                let (ok, text) = run_tool(
                    java.clone(),
                    vec![
                        check.display().to_string(),
                        "keystore".into(),
                        path.display().to_string(),
                        PIN.into(),
                    ],
                )
                .await;
                assert!(ok, "{name} {profile}: {text}");
                let lower = name.to_lowercase();
                let aliases: Vec<_> = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("alias: "))
                    .collect();
                assert_eq!(
                    aliases,
                    [
                        format!("{lower} authentication key=true chain=3"),
                        format!("{lower} signing key=true chain=3")
                    ],
                    "{text}"
                );
                assert!(
                    text.lines().any(|l| l.starts_with("PKIX: ")
                        && l.ends_with(&format!("{lower} authentication clientAuth=true"))),
                    "{text}"
                );
                println!(
                    "{name} {profile}: {}",
                    text.lines()
                        .find(|l| l.starts_with("SunX509"))
                        .unwrap_or("")
                );
            }
        }
    }

    // pyca/cryptography (OpenSSL's PKCS12_parse): the first key is the authentication key.
    let pyca = tool("python3").filter(|python| {
        Command::new(python)
            .args(["-c", "import cryptography"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    match pyca {
        None => skipped(
            "token_layout: pyca",
            "python3 with cryptography not installed",
        ),
        Some(python) => {
            let script = "import sys\n\
                from cryptography import x509\n\
                from cryptography.hazmat.primitives.serialization import pkcs12, Encoding, PublicFormat\n\
                key, cert, extra = pkcs12.load_key_and_certificates(open(sys.argv[1], 'rb').read(), sys.argv[2].encode())\n\
                same = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) == cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)\n\
                eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value\n\
                print('match' if same else 'mismatch', 'clientAuth' if x509.ExtendedKeyUsageOID.CLIENT_AUTH in eku else 'other', len(extra))\n";
            for (name, profile, path) in &files {
                let (ok, text) = run_tool(
                    python.clone(),
                    vec![
                        "-c".into(),
                        script.into(),
                        path.display().to_string(),
                        PIN.into(),
                    ],
                )
                .await;
                assert!(ok, "{name} {profile}: {text}");
                assert_eq!(text.trim(), "match clientAuth 3", "{name} {profile}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utf8_file_name_round_trips_through_chromium() {
    let Some(browser) = Browser::find("utf8_file_name_round_trips_through_chromium") else {
        return;
    };
    let gw = TestGateway::start_published().await;
    // The header the browser gets: an ASCII fallback and the UTF-8 name (RFC 6266).
    let response = gw
        .post(
            "",
            &[("commonname", YOSHIDA), ("country", "SE")],
            &[("password", PIN)],
        )
        .await;
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"__ __.p12\"; filename*=UTF-8''%F0%A0%AE%B7%E7%94%B0%20%E5%A4%AA%E9%83%8E.p12"
    );
    let downloads = gw.root.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let (ok, text) = browser
        .run(
            "download.mjs",
            &[
                gw.base.clone(),
                YOSHIDA.into(),
                downloads.display().to_string(),
            ],
        )
        .await;
    assert!(ok, "{text}");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    for line in &lines {
        assert_eq!(line["suggested"], format!("{YOSHIDA}.p12"), "{text}");
        let saved = PathBuf::from(line["saved"].as_str().unwrap());
        let p12 = std::fs::read(&saved).unwrap();
        // The file is a token of this user (p12-keystore reads it; the key bags are named).
        let archive = p12_keystore::Pkcs12Archive::from_pkcs12(&p12, PIN).unwrap();
        assert_eq!(archive.keys.len(), 2);
    }
}

#[tokio::test]
async fn init_derives_public_url_and_config_check_warns() {
    let bin = env!("CARGO_BIN_EXE_ast-gateway");
    let cli = |root: &Path, args: &[&str]| {
        let out = Command::new(bin)
            .arg("--root")
            .arg(root)
            .args(args)
            .env("RUST_LOG", "warn")
            .env_remove("AST_GATEWAY_ROOT")
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a");
    let (ok, text) = cli(&root, &["init", "--http", "127.0.0.1:18443"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("public_url = http://127.0.0.1:18443")
            && text.contains("derived from the HTTP listener 127.0.0.1:18443"),
        "{text}"
    );
    let toml = std::fs::read_to_string(root.join("conf/gateway.toml")).unwrap();
    assert!(toml.contains("\nhttp = \"127.0.0.1:18443\"\n"), "{toml}");
    assert!(
        toml.contains("\npublic_url = \"http://127.0.0.1:18443\"\n"),
        "{toml}"
    );
    let issuing =
        ast_gateway::ca::read_certificate_file(&root.join("data/ca/issuing.pem")).unwrap();
    assert_eq!(
        published(&issuing).0,
        ["http://127.0.0.1:18443/pgwy/crl/root.crl"]
    );
    let (ok, text) = cli(&root, &["config", "check"]);
    assert!(ok && !text.contains("warning:"), "{text}");

    // A given URL is used as given; a bad one is refused before anything is written.
    let root_b = dir.path().join("b");
    let (ok, text) = cli(
        &root_b,
        &["init", "--public-url", "https://pki.example.com/"],
    );
    assert!(ok, "{text}");
    let issuing =
        ast_gateway::ca::read_certificate_file(&root_b.join("data/ca/issuing.pem")).unwrap();
    assert_eq!(
        published(&issuing).2,
        ["https://pki.example.com/pgwy/ca/root.cer"]
    );
    let (ok, text) = cli(&dir.path().join("c"), &["init", "--public-url", "ftp://x"]);
    assert!(!ok && text.contains("--public-url"), "{text}");
    assert!(!dir.path().join("c/conf").exists());
    let (ok, text) = cli(&dir.path().join("c"), &["init", "--http", "127.0.0.1:0"]);
    assert!(!ok && text.contains("port 0"), "{text}");
    assert!(!dir.path().join("c/conf").exists());

    // Listening on every interface with a loopback public_url: `config check` says so.
    let path = root.join("conf/gateway.toml");
    std::fs::write(
        &path,
        toml.replacing("http = \"127.0.0.1:18443\"", "http = \"0.0.0.0:18443\""),
    )
    .unwrap();
    let (ok, text) = cli(&root, &["config", "check"]);
    assert!(ok, "{text}");
    assert!(
        text.contains(
            "warning: [server] public_url = `http://127.0.0.1:18443` is a loopback address"
        ),
        "{text}"
    );
    // No public_url at all: derived from the listener, and said so.
    std::fs::write(
        &path,
        toml.replacing("public_url = \"http://127.0.0.1:18443\"", ""),
    )
    .unwrap();
    let (ok, text) = cli(&root, &["config", "check"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("public URL: http://127.0.0.1:18443")
            && text.contains("warning: [server] public_url is not set"),
        "{text}"
    );
}
