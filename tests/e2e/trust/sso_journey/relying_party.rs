//! Using the token: an NSS database (pk12util) that a second Chromium uses, with the
//! certificate picked automatically, and nginx as the relying party (docs/deploy-sso.md's
//! server block: `ssl_verify_client on`, `ssl_ocsp on`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::doc;
use super::front::Process;
use crate::kit::run_ok;

/// nginx serving the documented relying-party block on `port`, with `files` holding
/// server.pem, server.key and ast-ca-chain.pem.
pub fn nginx(binary: &Path, files: &Path, port: u16) -> Process {
    let d = files.display();
    let server = doc::substitute(
        &doc::block("nginx", "/etc/nginx/sites-available/intranet"),
        &[
            ("listen 443 ssl;", format!("listen 127.0.0.1:{port} ssl;")),
            ("/etc/nginx/tls/", format!("{d}/")),
        ],
    );
    let config = format!(
        "pid {d}/nginx.pid;\nevents {{ worker_connections 64; }}\nhttp {{\n\
         client_body_temp_path {d}/body;\nproxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
         access_log off;\n{server}}}\n"
    );
    std::fs::write(files.join("nginx.conf"), config).unwrap();
    let child = Command::new(binary)
        .arg("-p")
        .arg(files)
        .arg("-c")
        .arg(files.join("nginx.conf"))
        .arg("-e")
        .arg(files.join("error.log"))
        .args([
            "-g",
            "daemon off; master_process off; error_log stderr info;",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(files.join("nginx.stderr")).unwrap())
        .spawn()
        .unwrap();
    let mut nginx = Process(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = nginx.0.try_wait() {
            panic!(
                "nginx exited with {status}: {}",
                std::fs::read_to_string(files.join("nginx.stderr")).unwrap_or_default()
            );
        }
        assert!(std::time::Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    nginx
}

/// A fresh home for the second Chromium: `~/.pki/nssdb` holding the token (imported by
/// pk12util) and `root` trusted for TLS servers, and a profile whose preferences select a
/// certificate of `issuer_cn` for `origin` without asking — the content setting the
/// AutoSelectCertificateForUrls policy sets, kept inside this profile instead of
/// /etc/chromium/policies. Returns (home, profile).
pub fn browser_home(
    dir: &Path,
    token: &Path,
    pin: &str,
    root: &Path,
    issuer_cn: &str,
    origin: &str,
) -> (PathBuf, PathBuf) {
    let home = dir.join("home");
    let nssdb = home.join(".pki/nssdb");
    std::fs::create_dir_all(&nssdb).unwrap();
    let db = format!("sql:{}", nssdb.display());
    let certutil = crate::kit::tool("certutil").expect("certutil (libnss3-tools)");
    let pk12util = crate::kit::tool("pk12util").expect("pk12util (libnss3-tools)");
    run_ok(&certutil, &["-N", "-d", &db, "--empty-password"]);
    run_ok(
        &certutil,
        &[
            "-A",
            "-d",
            &db,
            "-n",
            "AST root",
            "-t",
            "C,,",
            "-i",
            &root.display().to_string(),
        ],
    );
    let imported = run_ok(
        &pk12util,
        &[
            "-i",
            &token.display().to_string(),
            "-d",
            &db,
            "-W",
            pin,
            "-K",
            "",
        ],
    );
    assert!(imported.contains("PKCS12 IMPORT SUCCESSFUL"), "{imported}");
    let profile = dir.join("profile");
    std::fs::create_dir_all(profile.join("Default")).unwrap();
    let preferences = serde_json::json!({
        "profile": { "content_settings": { "exceptions": { "auto_select_certificate": {
            format!("{origin},*"): {
                "setting": { "filters": [ { "ISSUER": { "CN": issuer_cn } } ] }
            }
        } } } }
    });
    std::fs::write(profile.join("Default/Preferences"), preferences.to_string()).unwrap();
    (home, profile)
}
