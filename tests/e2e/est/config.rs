//! EST in ast.properties: mistakes `config check` reports with file, line and key; what
//! `config check` and `config explain` show; `config hash-secret`.

use std::process::Command;

use ast_gateway::config::Root;

use super::configure;
use crate::kit::{Anchored, run_ok, skipped, tool};

const BIN: &str = env!("CARGO_BIN_EXE_ast-gateway");

/// A fresh root with the EST test configuration.
fn est_root() -> (tempfile::TempDir, Root) {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path().join("root"));
    ast_gateway::issuance::write_default(&root).unwrap();
    // The HTTPS listener with client certificates, as the officers' EST handler needs.
    let toml = std::fs::read_to_string(root.gateway_toml())
        .unwrap()
        .replacing("# https = ", "https = ")
        .replacing("# tls_cert", "tls_cert")
        .replacing("# tls_key", "tls_key")
        .replacing("# client_ca", "client_ca");
    std::fs::write(root.gateway_toml(), toml).unwrap();
    configure(&root);
    (dir, root)
}

fn cli(root: &Root, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("--root")
        .arg(root.dir())
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn config_check_reports_est_mistakes_with_their_lines() {
    let (_dir, root) = est_root();
    let ast = std::fs::read_to_string(root.ast_properties()).unwrap();
    let ast = ast
        + "handler.5.est.label = devices\n\
           handler.5.tokenprocedure = device\n\
           handler.6.est.label = cacerts\n\
           handler.6.tokenprocedure = device\n\
           handler.7.est.label = two\n\
           handler.7.tokenprocedure = default\n\
           handler.8.est.label = half\n\
           handler.8.est.user = someone\n\
           handler.8.tokenprocedure = device\n\
           handler.9.est.label = weak\n\
           handler.9.est.user = someone\n\
           handler.9.est.secret = plain-text-secret\n\
           handler.9.tokenprocedure = device\n\
           handler.10.est.user = nobody\n";
    std::fs::write(root.ast_properties(), &ast).unwrap();
    let line = |key: &str| ast.lines().position(|l| l.starts_with(key)).unwrap() + 1;
    let errors = ast_gateway::rules::load(&root).unwrap_err().to_string();
    for (key, words) in [
        (
            "handler.5.est.label",
            "already serves the EST label `devices`",
        ),
        ("handler.6.est.label", "is an EST operation"),
        ("handler.7.est.label", "has 2 certificates"),
        ("handler.8.est.secret", "needs both est.user and est.secret"),
        ("handler.9.est.secret", "not a PBKDF2-SHA256 hash"),
        ("handler.10.est.user", "serves no EST"),
    ] {
        // A missing key is reported at the handler's first line.
        let at = if key == "handler.8.est.secret" {
            line("handler.8.")
        } else {
            line(key)
        };
        let expected = format!("ast.properties:{at}: {key}: ");
        assert!(
            errors
                .lines()
                .any(|l| l.contains(&expected) && l.contains(words)),
            "{key} ({words}) not reported at line {at}:\n{errors}"
        );
    }
    // The secret is never repeated in a message.
    assert!(!errors.contains("plain-text-secret"), "{errors}");
}

#[test]
fn config_check_and_explain_show_est_services() {
    let (_dir, root) = est_root();
    let (ok, text) = cli(&root, &["config", "check"]);
    assert!(ok, "{text}");
    assert!(
        text.contains(
            "EST at /.well-known/est/devices/: enrol: HTTP Basic as `device` with the secret of est.secret"
        ),
        "{text}"
    );
    assert!(text.contains("EST at /.well-known/est/ and /.well-known/est/front/: enrol: a peer inside [trust] proxies"), "{text}");
    assert!(text.contains("EST only (no filter)"), "{text}");
    let Some(openssl) = tool("openssl") else {
        return skipped("config explain with a CSR", "openssl not installed");
    };
    let csr = |name: &str, subject: &str| {
        let path = root.dir().join(format!("{name}.csr"));
        run_ok(
            &openssl,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "/dev/null",
                "-subj",
                subject,
                "-addext",
                "subjectAltName=DNS:dev-7.devices.example",
                "-out",
                path.to_str().unwrap(),
            ],
        );
        path
    };
    let good = csr("good", "/CN=dev-7");
    let (ok, text) = cli(
        &root,
        &[
            "config",
            "explain",
            "/.well-known/est/devices/simpleenroll",
            "--client-cert",
            good.to_str().unwrap(),
        ],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("request: POST /.well-known/est/devices/simpleenroll"),
        "{text}"
    );
    assert!(text.contains("subject: CN=dev-7"), "{text}");
    assert!(text.contains("DNS:dev-7.devices.example"), "{text}");
    let evil = csr("evil", "/CN=evil");
    let (ok, text) = cli(
        &root,
        &[
            "config",
            "explain",
            "/.well-known/est/devices/simpleenroll",
            "--client-cert",
            evil.to_str().unwrap(),
        ],
    );
    assert!(!ok && text.contains("refused: field-invalid"), "{text}");
    let (ok, text) = cli(
        &root,
        &["config", "explain", "/.well-known/est/nosuch/simpleenroll"],
    );
    assert!(!ok && text.contains("refused: not-found"), "{text}");
}

#[test]
fn config_hash_secret_writes_a_hash_est_secret_accepts() {
    use std::io::Write;
    let (_dir, root) = est_root();
    let mut child = Command::new(BIN)
        .arg("--root")
        .arg(root.dir())
        .args(["config", "hash-secret"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"another-device-secret-42\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(hash.starts_with("$pbkdf2-sha256$i=600000$"), "{hash}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("another-device-secret"));
    let ast = std::fs::read_to_string(root.ast_properties()).unwrap();
    let ast = ast
        + &format!(
            "handler.5.est.label = spare\nhandler.5.tokenprocedure = device\nhandler.5.est.user = spare\nhandler.5.est.secret = {hash}\n"
        );
    std::fs::write(root.ast_properties(), ast).unwrap();
    let rules = ast_gateway::rules::load(&root).unwrap().rules;
    assert!(rules.est_handler(Some("spare")).is_some());
}

/// `est.keks`: a key file group or others may read, or with a key of the wrong size, is
/// refused at the line of `est.keks` without repeating a key; a good one is shown by its
/// identifiers only, in `config check` and `config explain`.
#[test]
fn config_check_reads_kek_files_and_never_shows_a_key() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, root) = est_root();
    let b64 = |n: usize| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(vec![0x3cu8; n])
    };
    let file = root.conf().join("devices.keks");
    let ast = std::fs::read_to_string(root.ast_properties()).unwrap()
        + "handler.2.est.keks = conf/devices.keks\n";
    std::fs::write(root.ast_properties(), &ast).unwrap();
    let at = ast
        .lines()
        .position(|l| l.starts_with("handler.2.est.keks"))
        .unwrap()
        + 1;
    let expected = format!("ast.properties:{at}: handler.2.est.keks: ");
    for (text, mode, words) in [
        (format!("kek-1 = {}\n", b64(32)), 0o644, "chmod 600"),
        (
            format!("kek-1 = {}\n", b64(24)),
            0o600,
            "line 1: the key of `kek-1` is 24 bytes",
        ),
        (
            format!("kek-1 {}\n", b64(32)),
            0o600,
            "line 1: write `<identifier> = ",
        ),
    ] {
        std::fs::write(&file, &text).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        let errors = ast_gateway::rules::load(&root).unwrap_err().to_string();
        assert!(
            errors
                .lines()
                .any(|l| l.contains(&expected) && l.contains(words)),
            "{words}:\n{errors}"
        );
        assert!(
            !errors.contains(&b64(24)) && !errors.contains(&b64(32)),
            "{errors}"
        );
    }
    std::fs::write(&file, format!("kek-1 = {}\nkek-2 = {}\n", b64(32), b64(16))).unwrap();
    let (ok, text) = cli(&root, &["config", "check"]);
    assert!(ok, "{text}");
    assert!(
        text.contains(
            "under the key-encryption keys `kek-1`, `kek-2` (est.keks = conf/devices.keks)"
        ),
        "{text}"
    );
    let (ok, text) = cli(
        &root,
        &["config", "explain", "/.well-known/est/devices/serverkeygen"],
    );
    assert!(text.contains("`kek-1`, `kek-2`"), "{ok} {text}");
    assert!(
        !text.contains(&b64(32)) && !text.contains(&b64(16)),
        "{text}"
    );
}

/// `config new-kek`: a random 32-byte key appended to a file created 0600, printed once in
/// base64; an identifier already there is refused.
#[test]
fn config_new_kek_adds_keys_to_a_private_file() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, root) = est_root();
    let (ok, first) = cli(&root, &["config", "new-kek", "conf/est/new.keks", "kek-1"]);
    assert!(ok, "{first}");
    let (ok, second) = cli(&root, &["config", "new-kek", "conf/est/new.keks", "kek-2"]);
    assert!(ok, "{second}");
    let file = root.conf().join("est/new.keks");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&file).unwrap();
    let key = |out: &str| out.lines().next().unwrap().trim().to_string();
    assert!(
        text.contains(&format!("kek-1 = {}\n", key(&first))),
        "{text}"
    );
    assert!(
        text.contains(&format!("kek-2 = {}\n", key(&second))),
        "{text}"
    );
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(key(&first))
        .unwrap();
    assert_eq!(raw.len(), 32);
    assert_ne!(key(&first), key(&second));
    let (ok, again) = cli(&root, &["config", "new-kek", "conf/est/new.keks", "kek-1"]);
    assert!(
        !ok && again.contains("already has a key `kek-1`"),
        "{again}"
    );
}
