//! docs/deploy-sso.md walked as a user walks it: Apache httpd with mod_auth_openidc in front of
//! the gateway, a real OpenID Connect provider (tests/oidc-provider), Chromium (playwright-core,
//! tests/browser/sso.mjs). Sign in → the PIN page names the person → PIN → download → the token
//! in an NSS database → TLS login at nginx → refused after `certs revoke`; the sign-in ending;
//! forged headers; the three claim encodings. The Apache site, the gateway's settings and the
//! relying party are the document's blocks (`doc`), with hosts, ports and paths replaced.
//!
//! The journey's screenshots are docs/images/sso-*.png: with `AST_GATEWAY_SCREENSHOTS=update`
//! the test writes them there, otherwise into a temporary directory (and checks them either way).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod doc;
mod encodings;
mod front;
mod journey;
mod pin_page;
mod relying_party;

use std::path::{Path, PathBuf};

use ast_gateway::config::InitSettings;
use serde_json::{Value, json};

use crate::form::config::PIN;
use crate::kit::{Browser, TestGateway, free_port, skipped, tool};
use crate::trust::sso_front::contains;
use front::{Apache, Provider};

/// The tools the journey needs, found.
struct Tools {
    node: PathBuf,
    browser: Browser,
    apache2: PathBuf,
    nginx: PathBuf,
}

/// The tools, or `None` after `skipped:` (a failure under CI).
fn tools(test: &str) -> Option<Tools> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = (|| {
        let node = tool("node").ok_or("node not installed")?;
        let apache2 = front::apache_binary()
            .ok_or("apache2 with mod_auth_openidc not installed (libapache2-mod-auth-openidc)")?;
        let nginx = tool("nginx")
            .or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.is_file()))
            .ok_or("nginx not installed")?;
        tool("pk12util").ok_or("pk12util not installed (libnss3-tools)")?;
        tool("certutil").ok_or("certutil not installed (libnss3-tools)")?;
        if !repo
            .join("tests/oidc-provider/node_modules/oidc-provider")
            .is_dir()
        {
            return Err("run `npm ci` in tests/oidc-provider (oidc-provider)");
        }
        // Node.js, Chromium and playwright-core: the kit's browser (it reports what is missing).
        let browser = Browser::find(test).ok_or("the browser (see above)")?;
        Ok(Tools {
            node,
            browser,
            apache2,
            nginx,
        })
    })();
    match found {
        Ok(tools) => Some(tools),
        Err(why) => {
            skipped(test, why);
            None
        }
    }
}

/// The provider's client, as the document registers it.
fn client() -> (String, String) {
    let site = doc::block("apache", "/etc/apache2/sites-available/ast-gateway.conf");
    (
        doc::directive(&site, "OIDCClientID"),
        doc::directive(&site, "OIDCClientSecret"),
    )
}

/// Everything of one front: the gateway (configured as the document says), the provider, Apache.
struct Sso {
    tools: Tools,
    gw: TestGateway,
    provider: Provider,
    apache: Option<Apache>,
    /// Apache's plain-HTTP (publication) and HTTPS ports.
    ports: (u16, u16),
    dir: tempfile::TempDir,
}

impl Sso {
    async fn start(tools: Tools) -> Sso {
        let ports = (free_port(), free_port());
        let dir = tempfile::tempdir().unwrap();
        let (id, secret) = client();
        let redirect = doc::substitute(
            "https://ast.example.org/sso/callback",
            &[(
                "https://ast.example.org/",
                format!("https://localhost:{}/", ports.1),
            )],
        );
        let provider = Provider::start(
            &tools.node,
            (&id, &secret),
            &redirect,
            &dir.path().join("provider.log"),
        );
        let gw = gateway(ports).await;
        let files = dir.path().join("front");
        std::fs::create_dir_all(&files).unwrap();
        let tls = gw.root().data().join("tls");
        std::fs::copy(tls.join("server.pem"), files.join("front.pem")).unwrap();
        std::fs::copy(tls.join("server.key"), files.join("front.key")).unwrap();
        let mut sso = Sso {
            tools,
            gw,
            provider,
            apache: None,
            ports,
            dir,
        };
        sso.restart_apache(|site| site);
        sso
    }

    /// The documented site, as `edit` changes it, in a fresh Apache (sessions do not survive).
    fn restart_apache(&mut self, edit: impl FnOnce(String) -> String) {
        self.apache = None;
        let files = self.dir.path().join("front");
        let site = edit(front::site(
            &self.gw.base,
            &self.provider.issuer,
            &files,
            self.ports,
        ));
        self.apache = Some(Apache::start(
            &self.tools.apache2,
            &self.dir.path().join("apache"),
            self.ports,
            &site,
        ));
    }

    /// The link users are given.
    fn pin_page(&self) -> String {
        format!("https://localhost:{}/pgwy/request/ast.html", self.ports.1)
    }

    /// Runs `node tests/browser/sso.mjs <command> <options>`; its JSON line.
    async fn browser(&self, command: &str, options: Value) -> Value {
        let output = self
            .tools
            .browser
            .output("sso.mjs", &[command.to_string(), options.to_string()])
            .await;
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        let log = || {
            format!(
                "{stdout}{}\n--- apache:\n{}\n--- provider:\n{}",
                String::from_utf8_lossy(&output.stderr),
                self.apache.as_ref().map(Apache::log).unwrap_or_default(),
                std::fs::read_to_string(self.dir.path().join("provider.log")).unwrap_or_default()
            )
        };
        assert!(output.status.success(), "sso.mjs failed:\n{}", log());
        let line = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {}", log()))
    }

    /// Signs `user` in and downloads a token with forged identity headers added by the
    /// browser; the page's account and the token's bytes.
    async fn token(&self, user: &str, forged: &Value) -> (Value, Vec<u8>) {
        let downloads = self.dir.path().join(format!("downloads-{user}"));
        std::fs::create_dir_all(&downloads).unwrap();
        let shown = self
            .browser(
                "token",
                json!({
                    "url": self.pin_page(), "user": user, "password": format!("{user}-password"),
                    "pin": PIN, "downloads": downloads, "shots": "", "forged": forged,
                }),
            )
            .await;
        let saved = shown["first"]["saved"].as_str().unwrap();
        (shown.clone(), std::fs::read(saved).unwrap())
    }
}

/// A gateway configured with the document's gateway.toml and ast.properties blocks, for a
/// front on `ports` (its publication site serves `public_url`).
async fn gateway(ports: (u16, u16)) -> TestGateway {
    TestGateway::start_bound(|http, root| {
        let block = doc::substitute(
            &doc::block("toml", "conf/gateway.toml"),
            &[
                ("127.0.0.1:8080", http.to_string()),
                (
                    "http://ast.example.org",
                    format!("http://127.0.0.1:{}", ports.0),
                ),
                (
                    "https://ast.example.org",
                    format!("https://localhost:{}", ports.1),
                ),
            ],
        );
        let public_url = block
            .lines()
            .find_map(|l| l.strip_prefix("public_url = "))
            .unwrap()
            .trim_matches('"')
            .to_string();
        let settings = InitSettings {
            http,
            public_url,
            derived: false,
        };
        ast_gateway::issuance::write_default_for(root, &settings).unwrap();
        doc::apply_toml(&root.gateway_toml(), &block);
        let mut properties = std::fs::read_to_string(root.ast_properties()).unwrap();
        properties.push_str(&doc::block("properties", "conf/ast.properties"));
        std::fs::write(root.ast_properties(), properties).unwrap();
    })
    .await
}

/// The forged copies a browser sends of every header the documented handler reads.
fn forged() -> Value {
    json!({
        "email": "ceo@example.org", "commonname": "Mallory Forged",
        "givenname": "Mallory", "surname": "Forged",
    })
}

/// Asserts no forged value is in the certificate `der`.
fn nothing_forged(der: &[u8]) {
    for value in ["ceo@example.org", "Mallory"] {
        assert!(
            !contains(der, value),
            "the forged `{value}` reached a certificate"
        );
    }
}
