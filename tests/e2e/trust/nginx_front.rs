//! docs/deploy-nginx.md, run for real: nginx authenticates users (basic auth), strips every
//! client header, sets the identity headers, and talks to the gateway over mTLS with an
//! officer certificate. The nginx.conf is taken from the document itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::kit::{Anchored, free_port, ser};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::trust::Env;

const NGINX: &str = "/usr/sbin/nginx";

/// Kills nginx (our child, by its handle) when the test ends, pass or fail.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The first ```nginx block of the document.
fn documented_config() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/deploy-nginx.md"))
        .unwrap();
    let start = doc
        .find("```nginx\n")
        .expect("docs/deploy-nginx.md has an nginx block")
        + "```nginx\n".len();
    let end = start + doc[start..].find("```").unwrap();
    doc[start..end].to_string()
}

fn htpasswd_line(user: &str, password: &str) -> String {
    match Command::new("openssl")
        .args(["passwd", "-apr1", password])
        .output()
    {
        Ok(out) if out.status.success() => {
            format!("{user}:{}", String::from_utf8_lossy(&out.stdout).trim())
        }
        _ => format!("{user}:{{PLAIN}}{password}"),
    }
}

fn split_identity(pem: &[u8]) -> (String, String) {
    let text = String::from_utf8(pem.to_vec()).unwrap();
    let at = text.find("-----BEGIN PRIVATE KEY-----").unwrap();
    (text[..at].to_string(), text[at..].to_string())
}

fn wait_for_port(addr: SocketAddr, nginx: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(addr).is_ok() {
            return;
        }
        if let Ok(Some(status)) = nginx.try_wait() {
            panic!(
                "nginx exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "nginx did not listen on {addr}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_front_with_officer_mtls() {
    let Some(nginx_bin) = crate::kit::tool("nginx")
        .or_else(|| Some(std::path::PathBuf::from(NGINX)).filter(|p| p.exists()))
    else {
        crate::kit::skipped(module_path!(), "nginx not installed");
        return;
    };
    // As in the document: no trusted proxies at all, handler.1 requires the officer role.
    let env = Env::start_with("[]", "\nhandler.1.requiredRoRoles = ast-requester\n").await;
    let (serial, identity) = env.officer("nginx front", &["ast-requester"]).await;
    let (officer_cert, officer_key) = split_identity(&identity);

    let dir = env.dir().join("nginx");
    std::fs::create_dir_all(&dir).unwrap();
    let data = env.root.data();
    std::fs::write(dir.join("officer.pem"), officer_cert).unwrap();
    std::fs::write(dir.join("officer.key"), officer_key).unwrap();
    std::fs::copy(data.join("ca/root.pem"), dir.join("gateway-ca.pem")).unwrap();
    // The front presents the demo `localhost` certificate to browsers, too.
    std::fs::copy(data.join("tls/server.pem"), dir.join("front.pem")).unwrap();
    std::fs::copy(data.join("tls/server.key"), dir.join("front.key")).unwrap();
    let htpasswd = format!(
        "{}\n{}\n{}\n",
        htpasswd_line("alice", "alice-password"),
        htpasswd_line("bob", "bob-password"),
        htpasswd_line("carol", "carol-password")
    );
    std::fs::write(dir.join("htpasswd"), htpasswd).unwrap();

    let port = free_port();
    let d = dir.display().to_string();
    let config = documented_config()
        .replacing("/etc/nginx/ast/", &format!("{d}/"))
        .replacing("/var/log/nginx/", &format!("{d}/"))
        .replacing("pid /run/nginx-ast.pid;", &format!("pid {d}/nginx.pid;"))
        .replacing("listen 443 ssl;", &format!("listen 127.0.0.1:{port} ssl;"))
        .replacing("server 127.0.0.1:8443;", &format!("server {};", env.https))
        .replacing(
            "http {\n",
            &format!(
                "http {{\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n"
            ),
        );
    assert!(
        config.contains(&format!("server {};", env.https))
            && config.contains(&format!("127.0.0.1:{port}")),
        "document changed: {config}"
    );
    std::fs::write(dir.join("nginx.conf"), &config).unwrap();
    let log = dir.join("ast-error.log");
    let child = Command::new(&nginx_bin)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(&log)
        .args(["-g", "daemon off; master_process off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut nginx = Nginx(child);
    let front: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_for_port(front, &mut nginx.0, &log);

    let browser = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(&env.root_ca_pem()).unwrap()])
        .resolve("localhost", front)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let url = format!("https://localhost:{port}/pgwy/ast");
    let submit = |user: Option<(&str, &str)>, extra: &[(&str, &str)]| {
        let mut request = browser
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("password=secret-123");
        if let Some((u, p)) = user {
            request = request.basic_auth(u, Some(p));
        }
        for (n, v) in extra {
            request = request.header(*n, *v);
        }
        request.send()
    };

    // Alice, authenticated: the token carries the identity nginx set.
    let r = submit(Some(("alice", "alice-password")), &[])
        .await
        .unwrap();
    let error = r.headers().get("x-ast-error").cloned();
    assert_eq!(
        r.status(),
        200,
        "{error:?} / nginx log: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(r.headers()["content-type"], "application/x-pkcs12");
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("downloaded=true")
    );
    let subject = token_subject(&r.bytes().await.unwrap());
    assert!(subject.contains("CN=Alice Andersson"), "{subject}");

    // Alice trying to be someone else: her own identity headers (and `_` / case variants,
    // duplicates, X-Forwarded-For) never reach the gateway.
    let spoof = [
        ("commonname", "Mallory"),
        ("CommonName", "Mallory Two"),
        ("common_name", "Mallory Three"),
        ("email", "mallory@evil.example"),
        ("x-forwarded-for", "10.0.0.1"),
    ];
    let r = submit(Some(("alice", "alice-password")), &spoof)
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.headers().get("x-ast-error"));
    let subject = token_subject(&r.bytes().await.unwrap());
    assert!(
        subject.contains("CN=Alice Andersson") && !subject.contains("Mallory"),
        "{subject}"
    );

    cross_site_through_the_front(&submit, port, &log).await;

    // Not authenticated, or wrong password: nginx answers 401, the gateway sees nothing.
    let before = env.gateway.store().count_certificates().await.unwrap();
    assert_eq!(
        submit(None, &[("commonname", "Mallory")])
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        submit(Some(("alice", "wrong")), &[])
            .await
            .unwrap()
            .status(),
        401
    );
    // Carol is authenticated but has no directory entry: no header, the gateway refuses.
    let r = submit(
        Some(("carol", "carol-password")),
        &[("commonname", "Carol Spoof")],
    )
    .await
    .unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["x-ast-error"].to_str().unwrap()
        ),
        (400, "field-missing")
    );
    assert_eq!(
        env.gateway.store().count_certificates().await.unwrap(),
        before
    );

    // Bypassing nginx (straight to the gateway, from this very host) is refused.
    let r = env
        .client(None)
        .post(env.https_url("/pgwy/ast"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("commonname", "Mallory")
        .body("password=secret-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = crate::kit::client()
        .post(env.http_url("/pgwy/ast"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("commonname", "Mallory")
        .body("password=secret-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Issued tokens record the nginx officer as caller.
    let rows = env.audit_rows().await;
    let issued: Vec<_> = rows.iter().filter(|(e, _, _)| e == "issued").collect();
    assert_eq!(issued.len(), 4);
    assert!(
        issued
            .iter()
            .all(|(_, actor, _)| actor.starts_with("officer:"))
    );

    // Revoking nginx's officer certificate cuts it off for the next request.
    env.gateway
        .revoke_officer(&ast_gateway::identity::Caller::Cli, &ser(&serial))
        .await
        .unwrap()
        .unwrap();
    let r = submit(Some(("alice", "alice-password")), &[])
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

/// The headers the cross-site check reads reach the gateway through the documented front: a
/// form another site's page sent is refused as it is without the front, the gateway's own page
/// (and an older browser posting from the same origin) still gets its token.
async fn cross_site_through_the_front<F, Fut>(submit: &F, port: u16, log: &Path)
where
    F: Fn(Option<(&str, &str)>, &[(&str, &str)]) -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    let alice = Some(("alice", "alice-password"));
    let refused: [&[(&str, &str)]; 3] = [
        &[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example"),
        ],
        &[("sec-fetch-site", "same-site")],
        &[("origin", "https://evil.example")],
    ];
    for headers in refused {
        let r = submit(alice, headers).await.unwrap();
        assert_eq!(
            (
                r.status().as_u16(),
                r.headers()
                    .get("x-ast-error")
                    .map(|v| v.to_str().unwrap().to_string())
            ),
            (403, Some("cross-site".to_string())),
            "{headers:?} / nginx log: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
    // The browser's own origin, with and without Sec-Fetch-Site (an older browser: its Origin
    // is compared with the Host nginx passes on, port included).
    let origin = format!("https://localhost:{port}");
    let same_site: [&[(&str, &str)]; 2] = [
        &[("sec-fetch-site", "same-origin"), ("origin", &origin)],
        &[("origin", &origin)],
    ];
    for headers in same_site {
        let r = submit(alice, headers).await.unwrap();
        assert_eq!(
            r.status(),
            200,
            "{headers:?}: {:?}",
            r.headers().get("x-ast-error")
        );
        assert!(token_subject(&r.bytes().await.unwrap()).contains("CN=Alice Andersson"));
    }
}

/// Subject of the first certificate in a token (PIN `secret-123`), RFC 4514 as x509-parser
/// prints it.
fn token_subject(pkcs12: &[u8]) -> String {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let store = p12_keystore::KeyStore::from_pkcs12(
        pkcs12,
        "secret-123",
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )
    .unwrap();
    let (_, chain) = store.private_key_chain().unwrap();
    let (_, cert) = X509Certificate::from_der(chain.certs()[0].as_der()).unwrap();
    cert.subject().to_string()
}
