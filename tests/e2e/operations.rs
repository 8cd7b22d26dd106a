//! Operating it (issue 14): the `serve --root` guard rail, the start-up summary and its
//! warnings, the JSON log format and ANSI-free logs in files, `--admin ""`, a taken address,
//! expiry metrics with `# HELP`, `certs list --expiring`, `audit export`, backup and a
//! rehearsed restore (SQLite, and PostgreSQL through pg_dump/pg_restore), the systemd unit, and
//! the paper cuts (broken pipe, `officer issue` without a terminal).
//!
//! Everything runs the real `ast-gateway` binary as an operator would.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub(crate) mod audit;
pub(crate) mod audit_fields;
pub(crate) mod audit_upkeep;
pub(crate) mod backup_guard;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::kit::databases::TestDatabase;
use crate::kit::{Anchored, BIN, Serve, ast, client, finish, output_text, tool, url_after};

const PIN: &str = "Str0ng-Pass!";

/// Runs `ast-gateway --root ROOT ARGS…` and asserts success; returns stdout.
fn ok(root: &Path, args: &[&str]) -> String {
    let mut c = ast(root);
    c.args(args);
    let out = finish(c);
    assert!(out.status.success(), "{args:?}: {}", output_text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// A root written by `ast-gateway init` in a fresh temporary directory.
fn init() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    ok(&root, &["init"]);
    (dir, root)
}

fn edit(path: &Path, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, f(text)).unwrap();
}

/// What the operations tests do with a running `serve`.
trait Ops {
    async fn issue(&self, cn: &str) -> Vec<u8>;
    async fn crl(&self, ca: &str) -> Vec<u8>;
}

impl Ops for Serve {
    /// Issues a token for `cn` through the AST endpoint (loopback is a trusted proxy).
    async fn issue(&self, cn: &str) -> Vec<u8> {
        let response = client()
            .post(self.url("/pgwy/ast"))
            .header("commonname", cn)
            .header("country", "SE")
            .header("email", "ops@example.com")
            .form(&[("password", PIN)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{:?}", response.headers());
        response.bytes().await.unwrap().to_vec()
    }

    async fn crl(&self, ca: &str) -> Vec<u8> {
        let response = client()
            .get(self.url(&format!("/pgwy/crl/{ca}.crl")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap().to_vec()
    }
}

/// `serve` on 127.0.0.1:0 without the admin listener (parallel tests would fight over 9102).
fn serve(root: &Path) -> Serve {
    Serve::start(root)
}

/// CRL number and revoked serials (lower-case hex, no leading zero bytes), read by x509-parser.
fn crl_facts(der: &[u8]) -> (u64, Vec<String>) {
    let (_, crl) = x509_parser::parse_x509_crl(der).unwrap();
    let number = crl.crl_number().unwrap().to_u64_digits();
    let number = number.first().copied().unwrap_or(0);
    let serials = crl
        .iter_revoked_certificates()
        .map(|r| normalise(&hex::encode(r.raw_serial())))
        .collect();
    (number, serials)
}

fn normalise(hex: &str) -> String {
    ast_gateway::ca::Serial::parse(hex)
        .unwrap()
        .hex()
        .to_string()
}

/// `certs list --json` rows.
fn certificates(root: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["certs", "list", "--json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&ok(root, &args)).unwrap()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// --- guard rails and the start-up summary ----------------------------------------------------

#[test]
fn serve_refuses_a_missing_root_unless_init() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("srv-ats");

    let mut c = ast(&typo);
    c.args(["serve", "--http", "127.0.0.1:0", "--admin", ""]);
    let out = finish(c);
    assert!(!out.status.success());
    let all = output_text(&out);
    assert!(all.contains("does not exist"), "{all}");
    assert!(all.contains("--init"), "{all}");
    assert!(all.contains("srv-ats"), "{all}");
    assert!(!typo.exists(), "the refused root was created");

    // The same through $AST_GATEWAY_ROOT.
    let mut c = Command::new(BIN);
    c.env("AST_GATEWAY_ROOT", &typo)
        .args(["serve", "--http", "127.0.0.1:0", "--admin", ""]);
    let out = finish(c);
    assert!(!out.status.success());
    assert!(
        output_text(&out).contains("does not exist"),
        "{}",
        output_text(&out)
    );
    assert!(!typo.exists());

    // --init creates it and serves.
    let mut c = ast(&typo);
    c.args(["serve", "--init", "--http", "127.0.0.1:0", "--admin", ""]);
    let server = Serve::spawn(c);
    assert!(typo.join("conf/gateway.toml").is_file());
    drop(server);

    // The default root (no --root, no $AST_GATEWAY_ROOT) keeps its first-run behaviour.
    let cwd = tempfile::tempdir().unwrap();
    let mut c = Command::new(BIN);
    c.current_dir(cwd.path())
        .env_remove("AST_GATEWAY_ROOT")
        .args(["serve", "--http", "127.0.0.1:0", "--admin", ""]);
    let _server = Serve::spawn(c);
    assert!(
        cwd.path()
            .join("ast-gateway-data/conf/gateway.toml")
            .is_file()
    );
}

#[test]
fn startup_summary_names_listeners_database_cas_public_url_and_version() {
    let (_dir, root) = init();
    let server = serve(&root);
    // The trust line is the summary's last.
    let lines = server.wait_for("[trust] proxies");
    let all = lines.join("\n");
    assert!(
        all.contains(&format!(
            "ast-gateway {} starting",
            env!("CARGO_PKG_VERSION")
        )),
        "{all}"
    );
    assert!(all.contains("listener http:  127.0.0.1:"), "{all}");
    assert!(all.contains("listener admin: off (--admin \"\")"), "{all}");
    assert!(!all.contains("metrics: http"), "{all}");
    assert!(all.contains("database: sqlite://"), "{all}");
    assert!(all.contains("CA root: EC P-384, key file "), "{all}");
    assert!(all.contains("CA issuing: EC P-256, key file "), "{all}");
    assert!(all.contains("notAfter 20"), "{all}");
    assert!(all.contains("public_url: http://127.0.0.1:8080"), "{all}");
    // Every start with a demo CA warns.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("WARN") && l.contains("DEMO CA in use: root, issuing, officers")),
        "{all}"
    );
    assert!(
        all.contains("[trust] proxies lists only loopback addresses"),
        "{all}"
    );
    // A pipe is not a terminal: no colours even without NO_COLOR.
    assert!(!all.contains('\u{1b}'), "ANSI escape in a piped log: {all}");
}

#[tokio::test]
async fn empty_proxy_list_is_worded_right_and_postgres_credentials_are_hidden() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let (_dir, root) = init();
    // Trust authentication accepts any password: the URL carries one to be hidden.
    let url = db
        .url
        .replacen("postgres://postgres@", "postgres://postgres:hunter2@", 1);
    assert!(url.contains("hunter2"), "{url}");
    edit(&root.join("conf/gateway.toml"), |t| {
        t.replacing("proxies = [\"127.0.0.1/32\", \"::1/128\"]", "proxies = []")
            .replacing(
                "url = \"sqlite://data/ast-gateway.db\"",
                &format!("url = \"{url}\""),
            )
    });
    let server = serve(&root);
    let all = server.wait_for("[trust] proxies").join("\n");
    assert!(!all.contains("hunter2"), "{all}");
    assert!(all.contains("database: postgres://postgres:***@"), "{all}");
    assert!(
        all.contains("[trust] proxies is empty: identity headers are believed from no peer"),
        "{all}"
    );
    assert!(!all.contains("loopback addresses"), "{all}");
}

// --- logs ------------------------------------------------------------------------------------

#[tokio::test]
async fn json_log_format_gives_one_object_per_line_with_audit_events() {
    let (_dir, root) = init();
    edit(&root.join("conf/gateway.toml"), |t| {
        t.replacing("format = \"text\"", "format = \"json\"")
    });
    let server = serve(&root);
    server.wait_for("[trust] proxies");
    server.issue("Json Log").await;
    // The issuance's own audit line (the start-up CRL is audited too, and may come first).
    let lines = server.wait_for("\"event\":\"issued\"");
    assert!(lines.len() > 5, "{lines:#?}");
    let mut audit = Vec::new();
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "{line}");
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        for field in ["timestamp", "level", "target"] {
            assert!(v.get(field).is_some(), "no `{field}`: {line}");
        }
        if v["target"] == "audit" {
            audit.push(v);
        }
    }
    let issued = audit
        .iter()
        .find(|v| v["event"] == "issued")
        .unwrap_or_else(|| panic!("no issued audit event: {audit:#?}"));
    for field in ["seq", "actor", "request_id", "detail"] {
        assert!(
            issued.get(field).is_some(),
            "audit event without {field}: {issued}"
        );
    }
    assert!(
        !lines.iter().any(|l| l.contains(PIN)),
        "the PIN reached the log"
    );
    // The summary is in the JSON stream too.
    assert!(lines.iter().any(|l| l.contains("DEMO CA in use")));
}

// --- paper cuts -------------------------------------------------------------------------------

#[test]
fn an_empty_ast_gateway_root_is_ignored() {
    let (_dir, root) = init();
    // `AST_GATEWAY_ROOT=` (set, empty) used to break every command, even one with --root.
    let mut c = ast(&root);
    c.env("AST_GATEWAY_ROOT", "").args(["config", "check"]);
    let out = finish(c);
    assert!(out.status.success(), "{}", output_text(&out));
    // Without --root, an empty variable means the default root (./ast-gateway-data), not "".
    let cwd = tempfile::tempdir().unwrap();
    let mut c = Command::new(BIN);
    c.current_dir(cwd.path())
        .env("AST_GATEWAY_ROOT", "")
        .args(["config", "check"]);
    let out = finish(c);
    let all = output_text(&out);
    assert!(all.contains("ast-gateway-data"), "{all}");
    assert!(!all.contains("a value is required"), "{all}");
}

#[test]
fn a_taken_address_is_named() {
    let (_dir, root) = init();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut c = ast(&root);
    c.args(["serve", "--http", &addr, "--admin", ""]);
    let out = finish(c);
    assert!(!out.status.success());
    let all = output_text(&out);
    assert!(all.contains(&format!("cannot listen on {addr}")), "{all}");
    assert!(all.to_lowercase().contains("in use"), "{all}");

    // The same for --admin.
    let mut c = ast(&root);
    c.args(["serve", "--http", "127.0.0.1:0", "--admin", &addr]);
    let out = finish(c);
    assert!(!out.status.success());
    let all = output_text(&out);
    assert!(all.contains(&format!("cannot listen on {addr}")), "{all}");
}

#[test]
fn printing_commands_survive_a_closed_pipe() {
    let (_dir, root) = init();
    for args in [
        &["config", "check"][..],
        &["ca", "list"],
        &["audit", "export"],
        &["certs", "list"],
    ] {
        // The reader is gone before the command starts: its first write meets EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut c = ast(&root);
        c.args(args).stdout(writer);
        let out = finish_with_stdout_set(c);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
    }
    // As an operator types it.
    let out = finish({
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!(
                "'{BIN}' --root '{}' config check | head -1",
                root.display()
            ))
            .env_remove("AST_GATEWAY_ROOT");
        c
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.starts_with("configuration OK"), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `finish` for a command whose stdout is already set.
fn finish_with_stdout_set(mut command: Command) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "{command:?} did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn officer_issue_without_a_terminal_asks_for_password_option() {
    let Some(setsid) = tool("setsid") else {
        crate::kit::skipped("officer_issue_without_a_terminal", "setsid not installed");
        return;
    };
    let (dir, root) = init();
    let out_file = dir.path().join("officer.p12");
    // setsid: a new session without a controlling terminal, as under cron or systemd.
    let mut c = Command::new(setsid);
    c.arg("-w")
        .arg(BIN)
        .arg("--root")
        .arg(&root)
        .args([
            "officer",
            "issue",
            "--name",
            "Olle Officer",
            "--roles",
            "ra",
        ])
        .arg("--out")
        .arg(&out_file)
        .env_remove("AST_GATEWAY_ROOT");
    let out = finish(c);
    assert!(!out.status.success());
    let all = output_text(&out);
    assert!(all.contains("no terminal"), "{all}");
    assert!(all.contains("--password"), "{all}");
    assert!(!all.contains("No such device"), "{all}");
    assert!(!out_file.exists());
    // Nothing was registered.
    let officers: Vec<serde_json::Value> =
        serde_json::from_str(&ok(&root, &["officer", "list", "--json"])).unwrap();
    assert!(officers.is_empty(), "{officers:?}");
}

#[test]
fn officer_issue_takes_the_password_from_a_file_or_the_environment() {
    let Some(openssl) = tool("openssl") else {
        return crate::kit::skipped("officer_issue_password_file", "openssl not installed");
    };
    let (dir, root) = init();
    let secret = dir.path().join("officer.pass");
    std::fs::write(&secret, "File-Pass-1\n").unwrap();
    let from_file = dir.path().join("from-file.p12");
    let from_env = dir.path().join("from-env.p12");
    let issue = |out: &Path, extra: &[&str]| {
        let mut c = ast(&root);
        c.args([
            "officer",
            "issue",
            "--name",
            "Olle Officer",
            "--roles",
            "ra",
            "--out",
        ])
        .arg(out)
        .args(extra)
        .env("OFFICER_PASS", "Env-Pass-2");
        finish(c)
    };
    let out = issue(&from_file, &["--password-file", secret.to_str().unwrap()]);
    assert!(out.status.success(), "{}", output_text(&out));
    let out = issue(&from_env, &["--password-env", "OFFICER_PASS"]);
    assert!(out.status.success(), "{}", output_text(&out));
    // Each file opens with its own password (the file's first line, without its newline).
    for (p12, pass) in [(&from_file, "File-Pass-1"), (&from_env, "Env-Pass-2")] {
        let opened = Command::new(&openssl)
            .args([
                "pkcs12",
                "-noout",
                "-passin",
                &format!("pass:{pass}"),
                "-in",
            ])
            .arg(p12)
            .output()
            .unwrap();
        assert!(
            opened.status.success(),
            "{}",
            String::from_utf8_lossy(&opened.stderr)
        );
    }
    // An unset variable is a clear error and writes nothing.
    let missing = dir.path().join("missing.p12");
    let out = issue(&missing, &["--password-env", "NO_SUCH_VARIABLE_SET"]);
    assert!(!out.status.success());
    assert!(
        output_text(&out).contains("NO_SUCH_VARIABLE_SET"),
        "{}",
        output_text(&out)
    );
    assert!(!missing.exists());
}

// --- expiry ------------------------------------------------------------------------------------

#[tokio::test]
async fn expiry_metrics_with_help_and_certs_list_expiring() {
    let (_dir, root) = init();
    let mut c = ast(&root);
    c.args(["serve", "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0"]);
    let server = Serve::spawn(c);
    let admin = server
        .wait_for("listener admin:")
        .iter()
        .find_map(|l| url_after(l, "metrics:"))
        .unwrap();
    server.issue("Expiry One").await;
    server.issue("Expiry Two").await;

    // Nothing of a one-year token expires within 30 days; all four certificates within 400.
    assert!(certificates(&root, &["--expiring", "30d"]).is_empty());
    let soon = certificates(&root, &["--expiring", "400d"]);
    assert_eq!(soon.len(), 4, "{soon:#?}");
    let not_after: Vec<&str> = soon
        .iter()
        .map(|c| c["notAfter"].as_str().unwrap())
        .collect();
    let mut sorted = not_after.clone();
    sorted.sort();
    assert_eq!(not_after, sorted, "not soonest first");
    // Revoked certificates are not "expiring" unless asked for.
    let serial = soon[0]["serial"].as_str().unwrap();
    ok(
        &root,
        &["certs", "revoke", serial, "--reason", "superseded"],
    );
    assert_eq!(certificates(&root, &["--expiring", "400d"]).len(), 3);
    assert_eq!(
        certificates(&root, &["--expiring", "400d", "--status", "revoked"]).len(),
        1
    );
    let mut c = ast(&root);
    c.args(["certs", "list", "--expiring", "soon"]);
    assert!(output_text(&finish(c)).contains("--expiring"));

    let metrics = client()
        .get(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "ast_ca_not_after_seconds",
        "ast_certificates_expiring",
        "ast_build_info",
        "ast_tokens_issued_total",
    ] {
        assert!(
            metrics.contains(&format!("# HELP {name} ")),
            "no HELP for {name}:\n{metrics}"
        );
    }
    assert!(
        metrics.contains("ast_certificates_expiring{within=\"30d\"} 0"),
        "{metrics}"
    );
    let issuing = metrics
        .lines()
        .find(|l| l.starts_with("ast_ca_not_after_seconds{ca=\"issuing\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64;
    // The demo issuing CA lives ten years.
    assert!(issuing > now + 9.0 * 365.0 * 86_400.0, "{issuing}");
}

// --- audit export ---------------------------------------------------------------------------

#[tokio::test]
async fn audit_export_prints_the_chain_as_json_lines() {
    let (_dir, root) = init();
    let server = serve(&root);
    server.issue("Export One").await;
    // A refusal is audited too.
    let refused = client()
        .post(server.url("/pgwy/ast"))
        .header("commonname", "Export Two")
        .form(&[("password", "123")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);

    let export = ok(&root, &["audit", "export"]);
    let rows: Vec<serde_json::Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(rows.len() >= 2, "{export}");
    let mut prev = "0".repeat(64);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["seq"], i as i64 + 1, "{row}");
        assert_eq!(row["prevHash"], prev.as_str(), "{row}");
        for field in ["at", "event", "actor", "requestId", "detail", "hash"] {
            assert!(row.get(field).is_some(), "no {field}: {row}");
        }
        assert!(row["detail"].is_object(), "{row}");
        prev = row["hash"].as_str().unwrap().to_string();
    }
    let events: Vec<&str> = rows.iter().map(|r| r["event"].as_str().unwrap()).collect();
    assert!(events.contains(&"issued"), "{events:?}");
    assert!(events.contains(&"refused"), "{events:?}");

    assert_eq!(ok(&root, &["audit", "export", "--since", "1h"]), export);
    assert_eq!(
        ok(
            &root,
            &["audit", "export", "--since", "2999-01-01T00:00:00Z"]
        ),
        ""
    );
    let mut c = ast(&root);
    c.args(["audit", "export", "--since", "last tuesday"]);
    let out = finish(c);
    assert!(!out.status.success());
    assert!(
        output_text(&out).contains("RFC 3339"),
        "{}",
        output_text(&out)
    );
}

// --- backup and restore ---------------------------------------------------------------------

/// Issue, revoke, CRL; backup while serving; restore into a fresh root; start from it: the
/// audit chain verifies, the revoked serial is still on the CRL and CRL numbers continue.
async fn rehearse_backup_and_restore(db: Option<&TestDatabase>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    ok(&root, &["init"]);
    if let Some(db) = db {
        edit(&root.join("conf/gateway.toml"), |t| {
            t.replacing(
                "url = \"sqlite://data/ast-gateway.db\"",
                &format!("url = \"{}\"", db.url),
            )
        });
    }
    let server = serve(&root);
    server.issue("Backup One").await;
    server.issue("Backup Two").await;
    // The tokens' certificates (besides the TLS server certificate `init` recorded).
    let all: Vec<_> = certificates(&root, &[])
        .into_iter()
        .filter(|c| c["purpose"] != "tls-server")
        .collect();
    assert_eq!(all.len(), 4);
    let revoked = all[0]["serial"].as_str().unwrap().to_string();
    ok(
        &root,
        &["certs", "revoke", &revoked, "--reason", "keyCompromise"],
    );
    let (before, serials) = crl_facts(&server.crl("issuing").await);
    assert!(serials.contains(&normalise(&revoked)), "{serials:?}");

    // Backup while the service runs.
    let backup = dir.path().join("backup");
    let report = ok(&root, &["backup", "--out", backup.to_str().unwrap()]);
    drop(server);
    let manifest = std::fs::read_to_string(backup.join("backup-manifest.txt")).unwrap();
    for file in [
        "conf/gateway.toml",
        "conf/ast.properties",
        "conf/formats/ast-default.format",
        "data/secret.key",
        "data/ca/root.key",
        "data/ca/issuing.key",
        "data/ca/issuing.pem",
        "data/tls/server.key",
    ] {
        assert!(backup.join(file).is_file(), "{file} missing:\n{manifest}");
        assert!(
            manifest.contains(file),
            "{file} not in the manifest:\n{manifest}"
        );
    }
    #[cfg(unix)]
    for entry in walk(&backup) {
        let expected = if entry.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&entry), expected, "{}", entry.display());
    }
    // A second backup into the same directory is refused.
    let mut c = ast(&root);
    c.args(["backup", "--out", backup.to_str().unwrap()]);
    assert!(!finish(c).status.success());

    // Restore into a fresh root, as docs/operations.md says: copy everything back.
    let restored = dir.path().join("restored");
    std::fs::create_dir(&restored).unwrap();
    let copied = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", backup.display()))
        .arg(&restored)
        .status()
        .unwrap();
    assert!(copied.success());
    let _restored_db;
    match db {
        None => {
            assert!(
                report.contains("SQLite snapshot data/ast-gateway.db"),
                "{report}"
            );
            assert!(restored.join("data/ast-gateway.db").is_file());
        }
        Some(_) => {
            // The database is not in the backup; the printed pg_dump command is.
            assert!(report.contains("PostgreSQL, NOT included"), "{report}");
            let command = report
                .lines()
                .find_map(|l| l.strip_prefix("run now: "))
                .unwrap_or_else(|| panic!("no pg_dump command: {report}"));
            assert!(command.starts_with("pg_dump --format=custom"), "{command}");
            let dumped = Command::new("sh").arg("-c").arg(command).output().unwrap();
            assert!(dumped.status.success(), "{}", output_text(&dumped));
            let target = TestDatabase::postgres().await.unwrap();
            let loaded = Command::new("pg_restore")
                .args(["--no-owner", "--dbname", &target.url])
                .arg(backup.join("ast-gateway.pgdump"))
                .output()
                .unwrap();
            assert!(loaded.status.success(), "{}", output_text(&loaded));
            let source_url = db.map(|d| d.url.clone()).unwrap_or_default();
            edit(&restored.join("conf/gateway.toml"), |t| {
                t.replacing(&source_url, &target.url)
            });
            _restored_db = target;
        }
    }

    let verified = ok(&restored, &["audit", "verify"]);
    assert!(verified.contains("audit trail intact"), "{verified}");
    let server = serve(&restored);
    let (served, serials) = crl_facts(&server.crl("issuing").await);
    assert!(served >= before, "{served} < {before}");
    assert!(serials.contains(&normalise(&revoked)), "{serials:?}");
    // A fresh CRL continues the numbering.
    let fresh = restored.join("fresh.crl");
    ok(
        &restored,
        &["crl", "--ca", "issuing", "--out", fresh.to_str().unwrap()],
    );
    let (next, serials) = crl_facts(&std::fs::read(&fresh).unwrap());
    assert!(
        next > before,
        "CRL number {next} does not continue after {before}"
    );
    assert!(serials.contains(&normalise(&revoked)), "{serials:?}");
    // The restored node issues from the same CA.
    server.issue("After Restore").await;
    let tokens = certificates(&restored, &[])
        .into_iter()
        .filter(|c| c["purpose"] != "tls-server")
        .count();
    assert_eq!(tokens, 6);
    // Five unrevoked certificates end within 400 days, none within 30.
    assert_eq!(certificates(&restored, &["--expiring", "400d"]).len(), 5);
    assert!(certificates(&restored, &["--expiring", "30d"]).is_empty());
    let verified = ok(&restored, &["audit", "verify"]);
    assert!(verified.contains("audit trail intact"), "{verified}");
    // The exported trail is the verified one, revocation included.
    let rows: usize = verified
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap();
    let export = ok(&restored, &["audit", "export"]);
    assert_eq!(export.lines().count(), rows, "{export}");
    assert!(export.contains("\"event\":\"revoked\""), "{export}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

#[tokio::test]
async fn backup_and_restore_sqlite() {
    rehearse_backup_and_restore(None).await;
}

#[tokio::test]
async fn backup_and_restore_postgres() {
    if tool("pg_dump").is_none() || tool("pg_restore").is_none() {
        crate::kit::skipped(
            "backup_and_restore_postgres",
            "pg_dump/pg_restore not installed",
        );
        return;
    }
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    rehearse_backup_and_restore(Some(&db)).await;
}

// --- packaging --------------------------------------------------------------------------------

#[test]
fn systemd_unit_verifies() {
    let Some(analyze) = tool("systemd-analyze") else {
        crate::kit::skipped("systemd_unit_verifies", "systemd-analyze not installed");
        return;
    };
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/ast-gateway.service"),
    )
    .unwrap();
    for needed in [
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ReadWritePaths=/var/lib/ast-gateway",
        "Restart=on-failure",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "User=ast-gateway",
        "LimitNOFILE=",
    ] {
        assert!(unit.contains(needed), "the unit lacks {needed}");
    }
    // verify checks that ExecStart is executable: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ast-gateway.service");
    std::fs::write(&path, unit.replacing("/usr/local/bin/ast-gateway", BIN)).unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let all = output_text(&out);
    assert!(out.status.success(), "{all}");
    // Unknown keys and bad values are only warnings: none may appear for our unit.
    assert!(!all.contains("ast-gateway.service"), "{all}");
}
