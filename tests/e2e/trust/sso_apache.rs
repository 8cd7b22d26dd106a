//! The gateway behind a real Apache httpd (issue 26, docs/deploy-apache.md): the strip list
//! `config front-headers --front apache` prints removes every header the gateway reads; an unset
//! claim without `env=` arrives as `(null)` and is refused; `allowed_origins` admits the front's
//! origin; one HSTS header in front of the HTTPS listener; the `downloaded` cookie is `Secure`
//! behind a TLS-terminating front. Skipped with `skipped:` when apache2 is not installed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::form::config::PIN;
use crate::kit::BIN;
use crate::kit::{Anchored, TestGateway, free_port, skipped, tool};
use crate::trust::sso_front::{contains, leaf};

/// A real Apache httpd started on a free loopback port with `config` (the server-level
/// directives); killed on drop.
struct Apache {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Apache {
    /// Apache on a free port.
    fn start(binary: &Path, directives: &str) -> Apache {
        Self::start_on(binary, free_port(), directives)
    }

    /// Apache on `port` with the server-level `directives`.
    fn start_on(binary: &Path, port: u16, directives: &str) -> Apache {
        let dir = tempfile::tempdir().unwrap();
        let modules = Path::new("/usr/lib/apache2/modules");
        let load: String = [
            ("mpm_event_module", "mod_mpm_event.so"),
            ("authz_core_module", "mod_authz_core.so"),
            ("env_module", "mod_env.so"),
            ("headers_module", "mod_headers.so"),
            ("proxy_module", "mod_proxy.so"),
            ("proxy_http_module", "mod_proxy_http.so"),
            ("ssl_module", "mod_ssl.so"),
        ]
        .iter()
        .map(|(name, file)| format!("LoadModule {name} {}\n", modules.join(file).display()))
        .collect();
        let d = dir.path().display();
        let conf = format!(
            "ServerRoot {d}\nServerName 127.0.0.1\nListen 127.0.0.1:{port}\nPidFile {d}/httpd.pid\n\
             DefaultRuntimeDir {d}\nErrorLog {d}/error.log\nLogLevel warn\n{load}{directives}\n"
        );
        let file = dir.path().join("httpd.conf");
        std::fs::write(&file, conf).unwrap();
        let child = Command::new(binary)
            .arg("-f")
            .arg(&file)
            .arg("-DFOREGROUND")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut apache = Apache { child, port, dir };
        apache.wait_until_listening();
        apache
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.dir.path().join("error.log"));
                panic!("apache2 exited with {status}: {log:?}");
            }
            assert!(Instant::now() < deadline, "apache2 did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The apache2 binary with the modules these tests load, or `None` after printing `skipped:`.
fn apache_binary(test: &str) -> Option<PathBuf> {
    let binary = tool("apache2")
        .or_else(|| Some(PathBuf::from("/usr/sbin/apache2")).filter(|p| p.is_file()));
    let Some(binary) = binary else {
        skipped(test, "apache2 not installed (apt-get install apache2)");
        return None;
    };
    if !Path::new("/usr/lib/apache2/modules/mod_proxy_http.so").is_file() {
        skipped(test, "apache2 modules not in /usr/lib/apache2/modules");
        return None;
    }
    Some(binary)
}

/// POSTs the PIN form with `headers`; status, X-Ast-Error, the response headers and body.
async fn post_form(
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, String, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = crate::kit::client().post(url).form(&[("password", PIN)]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let code = response
        .headers()
        .get("x-ast-error")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let headers = response.headers().clone();
    (
        status,
        code,
        headers,
        response.bytes().await.unwrap().to_vec(),
    )
}

/// The strip list `config front-headers --front apache` prints, put in front of the gateway in
/// a real Apache, removes every header the gateway reads: each is sent forged and none reaches
/// the certificate. Without the list the same Apache forwards them (the forgery works).
#[tokio::test]
async fn apache_strip_list_removes_every_header_the_gateway_reads() {
    let Some(apache2) = apache_binary("apache_strip_list_removes_every_header_the_gateway_reads")
    else {
        return;
    };
    let gw = TestGateway::start().await;
    let printed = Command::new(BIN)
        .arg("--root")
        .arg(gw.root.path())
        .args(["config", "front-headers", "--front", "apache"])
        .output()
        .unwrap();
    assert!(printed.status.success());
    let strip = String::from_utf8(printed.stdout).unwrap();
    let read: Vec<String> = strip
        .lines()
        .filter_map(|l| l.strip_prefix("RequestHeader unset "))
        .map(|l| l.trim_end_matches(" early").to_string())
        .collect();
    assert_eq!(read, gw.gateway.rules().headers_read());
    assert_eq!(read.len(), 10, "{read:?}");

    // The sign-in module's part: the name claim set, the e-mail claim not released (`env=`
    // leaves the header unset, so only the strip list stands between the browser and it).
    let front = format!(
        "SetEnv OIDC_CLAIM_name \"Alice Front\"\n\
         RequestHeader set commonname \"%{{OIDC_CLAIM_name}}e\" env=OIDC_CLAIM_name\n\
         RequestHeader set email \"%{{OIDC_CLAIM_email}}e\" env=OIDC_CLAIM_email\n\
         ProxyPass /pgwy/ {base}/pgwy/\nProxyPassReverse /pgwy/ {base}/pgwy/\n",
        base = gw.base
    );
    let forged = |h: &str| match h {
        "country" => "DE".to_string(),
        "email" => "forged@evil.example".to_string(),
        "upn" => "admin@corp.example".to_string(),
        "serialnumber" => "FORGED1".to_string(),
        _ => format!("Forged {h}"),
    };
    let send = |url: String| {
        let headers: Vec<(String, String)> = read.iter().map(|h| (h.clone(), forged(h))).collect();
        async move {
            let mut request = crate::kit::client().post(url).form(&[("password", PIN)]);
            for (name, value) in &headers {
                request = request.header(name, value);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.bytes().await.unwrap().to_vec())
        }
    };

    // Without the strip list, Apache forwards what the browser sent.
    let open = Apache::start(&apache2, &front);
    let (status, body) = send(open.url("/pgwy/ast")).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (der, subject) = leaf(&body);
    assert!(subject.contains("O=Forged organization"), "{subject}");
    assert!(contains(&der, "admin@corp.example"));
    drop(open);

    let guarded = Apache::start(&apache2, &format!("{strip}\n{front}"));
    let (status, body) = send(guarded.url("/pgwy/ast")).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (der, subject) = leaf(&body);
    assert_eq!(subject, "CN=Alice Front");
    for h in &read {
        assert!(
            !contains(&der, &forged(h)),
            "forged `{h}` reached the certificate"
        );
    }
}

/// `RequestHeader set h "%{VAR}e"` without `env=VAR` sends the literal `(null)` when the claim is
/// not released: the gateway refuses it (`field-suspicious`) instead of issuing `CN=(null)`.
#[tokio::test]
async fn apache_unset_claim_without_env_is_refused() {
    let Some(apache2) = apache_binary("apache_unset_claim_without_env_is_refused") else {
        return;
    };
    let gw = TestGateway::start().await;
    let front = Apache::start(
        &apache2,
        &format!(
            "RequestHeader set commonname \"%{{OIDC_CLAIM_name}}e\"\n\
             ProxyPass /pgwy/ {base}/pgwy/\n",
            base = gw.base
        ),
    );
    let (status, code, _, body) = post_form(&front.url("/pgwy/ast"), &[]).await;
    assert_eq!(
        (status, code.as_str()),
        (400, "field-suspicious"),
        "{}",
        String::from_utf8_lossy(&body)
    );
}

/// With Apache's default `ProxyPreserveHost Off` the gateway sees its own address as `Host`, so
/// a browser `Origin` of the front (without `Sec-Fetch-Site`) is refused as cross-site, unless
/// `allowed_origins` names the front's origin.
#[tokio::test]
async fn apache_front_origin_is_admitted_by_allowed_origins() {
    let Some(apache2) = apache_binary("apache_front_origin_is_admitted_by_allowed_origins") else {
        return;
    };
    let port = free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let plain = TestGateway::start().await;
    let allowed = origin.clone();
    let listed = TestGateway::start_with(move |root| {
        let toml = root.gateway_toml();
        let text = std::fs::read_to_string(&toml).unwrap().replacing(
            "# allowed_origins = [\"https://portal.example.org\"]",
            &format!("allowed_origins = [\"{allowed}\"]"),
        );
        std::fs::write(toml, text).unwrap();
    })
    .await;
    let front = Apache::start_on(
        &apache2,
        port,
        &format!(
            "ProxyPass /plain/pgwy/ {}/pgwy/\nProxyPass /pgwy/ {}/pgwy/\n",
            plain.base, listed.base
        ),
    );
    let headers = [("commonname", "Alice"), ("origin", origin.as_str())];
    let (status, code, _, _) = post_form(&front.url("/plain/pgwy/ast"), &headers).await;
    assert_eq!((status, code.as_str()), (403, "cross-site"));
    let (status, code, _, _) = post_form(&front.url("/pgwy/ast"), &headers).await;
    assert_eq!(
        (status, code.as_str()),
        (200, ""),
        "allowed_origins admits {origin}"
    );
}

/// In front of the gateway's HTTPS listener, Apache's `Header always set
/// Strict-Transport-Security` adds a second header to the gateway's; the documented pair
/// (`Header onsuccess unset` first) sends exactly one, on tokens and refusals alike.
#[tokio::test]
async fn apache_in_front_of_https_sends_one_hsts_header() {
    let Some(apache2) = apache_binary("apache_in_front_of_https_sends_one_hsts_header") else {
        return;
    };
    let gw = TestGateway::start_with(|root| {
        let toml = root.gateway_toml();
        let text = std::fs::read_to_string(&toml)
            .unwrap()
            .replacing("# https = \"127.0.0.1:8443\"", "https = \"127.0.0.1:0\"")
            .replacing("# tls_cert", "tls_cert")
            .replacing("# tls_key", "tls_key");
        std::fs::write(toml, text).unwrap();
    })
    .await;
    let https = gw
        .server
        .as_ref()
        .unwrap()
        .https_addr
        .expect("https listener");
    let upstream = format!("https://127.0.0.1:{}", https.port());
    let hsts = "\"max-age=31536000\"";
    let front = Apache::start(
        &apache2,
        &format!(
            "SSLProxyEngine on\nSSLProxyVerify none\nSSLProxyCheckPeerName off\n\
             SSLProxyCheckPeerCN off\n\
             ProxyPass /twice/ {upstream}/\nProxyPass /once/ {upstream}/\n\
             <Location /twice/>\nHeader always set Strict-Transport-Security {hsts}\n</Location>\n\
             <Location /once/>\nHeader onsuccess unset Strict-Transport-Security\n\
             Header always set Strict-Transport-Security {hsts}\n</Location>\n"
        ),
    );
    let count = |headers: &reqwest::header::HeaderMap| {
        headers.get_all("strict-transport-security").iter().count()
    };
    let (status, _, headers, _) =
        post_form(&front.url("/twice/pgwy/ast"), &[("commonname", "Alice")]).await;
    assert_eq!(
        (status, count(&headers)),
        (200, 2),
        "the problem the recipe avoids"
    );
    for (identity, expected) in [(&[("commonname", "Alice")][..], 200), (&[][..], 400)] {
        let (status, _, headers, _) = post_form(&front.url("/once/pgwy/ast"), identity).await;
        assert_eq!((status, count(&headers)), (expected, 1), "{headers:?}");
    }
}
