//! The front of the journey: the OpenID Connect provider (tests/oidc-provider, Node.js) and
//! Apache httpd with mod_auth_openidc configured with docs/deploy-sso.md's site. Both are our
//! children, killed (by their handles) when the test ends.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::doc;

const MODULES: &str = "/usr/lib/apache2/modules";

/// A child process, killed on drop.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The test's provider: its issuer URL and process.
pub struct Provider {
    pub issuer: String,
    _process: Process,
}

impl Provider {
    /// Starts tests/oidc-provider/provider.mjs for one client; `log` receives its stderr.
    pub fn start(node: &Path, client: (&str, &str), redirect_uri: &str, log: &Path) -> Provider {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider/provider.mjs");
        let mut child = Command::new(node)
            .arg(script)
            .args([client.0, client.1, redirect_uri])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let process = Process(child);
        // The first line says where it listens (a thread, so a silent provider cannot hang us).
        // Then the rest is read and dropped: a closed pipe would end it at its next log line.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let issuer = line
            .trim()
            .strip_prefix("issuer ")
            .unwrap_or_else(|| {
                panic!(
                    "the provider did not start: {line:?} {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                )
            })
            .to_string();
        Provider {
            issuer,
            _process: process,
        }
    }
}

/// Whether apache2 and the modules the site needs are installed.
pub fn apache_binary() -> Option<PathBuf> {
    let binary = crate::kit::tool("apache2")
        .or_else(|| Some(PathBuf::from("/usr/sbin/apache2")).filter(|p| p.is_file()))?;
    Path::new(MODULES)
        .join("mod_auth_openidc.so")
        .is_file()
        .then_some(binary)
}

/// Apache httpd running docs/deploy-sso.md's site on `ports` (plain HTTP, HTTPS). Stopped
/// with SIGTERM, so that its workers close the listening sockets with it (after SIGKILL they
/// keep them a while and the next Apache on the same ports cannot bind).
pub struct Apache {
    pub dir: PathBuf,
    process: Process,
    ports: (u16, u16),
}

impl Drop for Apache {
    fn drop(&mut self) {
        let pid = self.process.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.process.0.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Until the ports are free again (or the deadline), for the next Apache.
        while [self.ports.0, self.ports.1]
            .iter()
            .any(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Apache {
    /// The server-level lines Debian's apache2.conf and ports.conf would give, then `site`.
    pub fn start(binary: &Path, dir: &Path, ports: (u16, u16), site: &str) -> Apache {
        std::fs::create_dir_all(dir).unwrap();
        let load: String = [
            ("mpm_event_module", "mod_mpm_event.so"),
            ("authz_core_module", "mod_authz_core.so"),
            ("authz_user_module", "mod_authz_user.so"),
            ("authn_core_module", "mod_authn_core.so"),
            ("alias_module", "mod_alias.so"),
            ("headers_module", "mod_headers.so"),
            ("proxy_module", "mod_proxy.so"),
            ("proxy_http_module", "mod_proxy_http.so"),
            ("socache_shmcb_module", "mod_socache_shmcb.so"),
            ("ssl_module", "mod_ssl.so"),
            ("auth_openidc_module", "mod_auth_openidc.so"),
        ]
        .iter()
        .map(|(name, file)| format!("LoadModule {name} {MODULES}/{file}\n"))
        .collect();
        let d = dir.display();
        let conf = format!(
            "ServerRoot {d}\nServerName localhost\nListen 127.0.0.1:{}\nListen 127.0.0.1:{}\n\
             PidFile {d}/httpd.pid\nDefaultRuntimeDir {d}\nErrorLog {d}/error.log\n\
             LogLevel warn\n{load}{site}\n",
            ports.0, ports.1
        );
        let file = dir.join("httpd.conf");
        std::fs::write(&file, conf).unwrap();
        let child = Command::new(binary)
            .arg("-f")
            .arg(&file)
            .arg("-DFOREGROUND")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        let mut apache = Apache {
            dir: dir.to_path_buf(),
            process: Process(child),
            ports,
        };
        for port in [ports.0, ports.1] {
            apache.wait_for(port);
        }
        apache
    }

    fn wait_for(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = self.process.0.try_wait() {
                panic!("apache2 exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "apache2 did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its error log and standard error.
    pub fn log(&self) -> String {
        ["stderr.log", "error.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default())
            .collect()
    }
}

/// The documented Apache site with the test's hosts, ports and paths: `gateway` (the
/// gateway's `http://…` base), `issuer` (the provider), `files` (the front's certificate
/// and key), `ports` (plain HTTP, HTTPS).
pub fn site(gateway: &str, issuer: &str, files: &Path, ports: (u16, u16)) -> String {
    doc::substitute(
        &doc::block("apache", "/etc/apache2/sites-available/ast-gateway.conf"),
        &[
            (
                "<VirtualHost *:80>",
                format!("<VirtualHost 127.0.0.1:{}>", ports.0),
            ),
            (
                "<VirtualHost *:443>",
                format!("<VirtualHost 127.0.0.1:{}>", ports.1),
            ),
            ("ServerName ast.example.org", "ServerName localhost".into()),
            (
                "https://ast.example.org/",
                format!("https://localhost:{}/", ports.1),
            ),
            ("https://login.example.org", issuer.to_string()),
            ("http://127.0.0.1:8080", gateway.to_string()),
            ("/etc/apache2/ast/", format!("{}/", files.display())),
        ],
    )
}
