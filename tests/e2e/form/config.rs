//! Configuration end to end (issue 3): the documented Nexus example through the real HTTP
//! endpoint with the issued certificate inspected by the `openssl` CLI, handler order and
//! whole-match filters, modules, continuation lines and `\u` escapes, `config check` with
//! several errors, `config explain`, and reload by SIGHUP (accepted and refused).
//!
//! The documented example and the in-process reload run on the kit's gateway; the other tests
//! start the real `ast-gateway serve` binary on 127.0.0.1:0, so SIGHUP reaches the real signal
//! hook, and run `config check` / `config explain` as an operator would.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::kit::{Serve, TestGateway, append_file as append};

pub(crate) use crate::kit::BIN;
pub(crate) const PIN: &str = "correct horse 1";

/// A root written by `ast-gateway init`.
pub(crate) fn init_root() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let out = Command::new(BIN)
        .arg("--root")
        .arg(&root)
        .arg("init")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, root)
}

fn ast_properties(root: &Path) -> PathBuf {
    root.join("conf/ast.properties")
}

/// POSTs the PIN form with identity headers; returns status, X-Ast-Error and body.
pub(crate) async fn post(url: &str, headers: &[(&str, &str)]) -> (u16, Option<String>, Vec<u8>) {
    let client = reqwest::Client::new();
    let mut request = client.post(url).form(&[("password", PIN)]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let code = response
        .headers()
        .get("x-ast-error")
        .map(|v| v.to_str().unwrap().to_string());
    (status, code, response.bytes().await.unwrap().to_vec())
}

fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The subject (RFC 2253, one line) and SAN text of each certificate in a PKCS#12, read by the
/// `openssl` CLI.
fn certificates_in(p12: &[u8]) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token.p12");
    std::fs::write(&file, p12).unwrap();
    let out = Command::new("openssl")
        .args([
            "pkcs12",
            "-nokeys",
            "-clcerts",
            "-passin",
            &format!("pass:{PIN}"),
            "-in",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl pkcs12: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut result = Vec::new();
    for (i, block) in pem
        .split("-----END CERTIFICATE-----")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .enumerate()
    {
        let start = block.find("-----BEGIN CERTIFICATE-----").unwrap();
        let cert = dir.path().join(format!("c{i}.pem"));
        std::fs::write(
            &cert,
            format!("{}-----END CERTIFICATE-----\n", &block[start..]),
        )
        .unwrap();
        let out = Command::new("openssl")
            .args([
                "x509",
                "-noout",
                "-subject",
                "-nameopt",
                "RFC2253,-esc_msb",
                "-ext",
                "subjectAltName",
                "-in",
            ])
            .arg(&cert)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl x509: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let subject = text
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("subject=")
            .to_string();
        let sans = text.lines().skip(1).collect::<Vec<_>>().join(" ");
        result.push((subject, sans));
    }
    result
}

#[tokio::test]
async fn documented_example_verbatim_through_the_endpoint() {
    if !openssl_available() {
        crate::kit::skipped("documented_example", "the openssl CLI is not installed");
        return;
    }
    // The original's documented example, verbatim, on the kit's gateway.
    let gw = TestGateway::start_with(|root| {
        append(
            &root.ast_properties(),
            "handler.1.formatFields.4 = ast.valuetarget.countryname.value =\n\
             handler.1.formatFields.5 = ast.valuetarget.localityname.value = myheader\n",
        )
    })
    .await;
    let headers = [
        ("commonname", "Alice Andersson"),
        ("country", "SE"),
        ("locality", "Stockholm"),
        ("myheader", "Lund"),
        ("email", "alice@example.com"),
    ];
    let response = gw.post("", &headers, &[("password", PIN)]).await;
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap().to_vec();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let certificates = certificates_in(&body);
    assert_eq!(certificates.len(), 2, "authentication and signing");
    for (subject, sans) in &certificates {
        assert_eq!(
            subject, "CN=Alice Andersson,L=Lund",
            "C is gone, L comes from myheader"
        );
        assert!(sans.contains("email:alice@example.com"), "{sans}");
    }

    // Without the example, the same request carries C and L from `country` and `locality`.
    let plain = TestGateway::start().await;
    let response = plain.post("", &headers, &[("password", PIN)]).await;
    assert_eq!(response.status().as_u16(), 200);
    let body = response.bytes().await.unwrap().to_vec();
    assert_eq!(
        certificates_in(&body)[0].0,
        "CN=Alice Andersson,L=Stockholm,C=SE"
    );
}

/// `Gateway::reload` in process: a good configuration is swapped in for new requests, a broken
/// one is refused with every problem and the old one keeps serving.
#[tokio::test]
async fn reload_in_process() {
    let gw = TestGateway::start().await;
    let form = [("password", PIN)];
    let alice = [("commonname", "Alice")];
    assert_eq!(gw.post("/new", &alice, &form).await.status().as_u16(), 404);
    let ast = gw.root().ast_properties();
    append(
        &ast,
        "handler.2.filter = new\nhandler.2.tokenprocedure = default\n",
    );
    let summary = gw.gateway.reload().unwrap();
    assert_eq!(summary.handlers, 2);
    assert!(summary.restart_needed.is_empty(), "{summary:?}");
    assert_eq!(gw.post("/new", &alice, &form).await.status().as_u16(), 200);

    append(
        &ast,
        "handler.3.filter = (\nhandler.3.tokenprocedure = nosuch\n",
    );
    let errors = gw.gateway.reload().unwrap_err();
    assert_eq!(errors.0.len(), 2, "{errors}");
    assert!(errors.0.iter().all(|e| e.line.is_some()), "{errors}");
    assert_eq!(
        gw.gateway.rules().handlers.len(),
        2,
        "the old configuration stays"
    );
    assert_eq!(gw.post("/new", &alice, &form).await.status().as_u16(), 200);
}

#[tokio::test]
async fn handler_order_whole_match_modules_and_escapes() {
    if !openssl_available() {
        crate::kit::skipped(module_path!(), "the openssl CLI is not installed");
        return;
    }
    let (_dir, root) = init_root();
    std::fs::write(
        root.join("conf/formats/staff.format"),
        "formatFields.1 = ast.valuetarget.commonname.value = commonname | trim | required | maxlen(20)\n\
         formatFields.2 = ast.valuetarget.organizationname.value = org | default(\"Example AB\")\n\
         formatFields.3 = ast.valuetarget.organizationalunitname.value = unit | upper | oneof(\"HR\",\"IT\")\n\
         formatFields.4 = ast.valuetarget.serialnumber.value = employee | replace(\"[^0-9]\",\"\") | minlen(4) | match(\"[0-9]+\")\n\
         formatFields.5 = ast.valuetarget.rfc822name.value = email | trim | lower | email\n\
         formatFields.6 = ast.valuetarget.countryname.value = country | country\n\
         formatFields.7 = ast.valuetarget.title.value = title | truncate(5)\n\
         # continuation line and \\u escapes in one value\n\
         formatFields.8 = ast.valuetarget.localityname.value = \\\n    \"M\\u00fcnchen \\u2713\"\n",
    )
    .unwrap();
    append(
        &ast_properties(&root),
        "handler.30.filter = .*\nhandler.30.tokenprocedure = default\n\
         handler.5.filter = staff/[a-z]+\nhandler.5.format = staff.format\nhandler.5.tokenprocedure = default\n\
         handler.7.filter = staff/admin\nhandler.7.tokenprocedure = default\nhandler.7.requiredRoRoles = admins\n",
    );
    let mut server = Serve::start(&root);

    let good = [
        ("commonname", "  Bob  "),
        ("unit", "it"),
        ("employee", "E-0042"),
        ("email", " Bob@Example.COM "),
        ("country", "DE"),
        ("title", "Engineer"),
    ];
    let (status, code, body) = post(&server.url("/pgwy/ast/staff/bob"), &good).await;
    assert_eq!(status, 200, "{code:?} {}", String::from_utf8_lossy(&body));
    let (subject, sans) = &certificates_in(&body)[0];
    // Every module applied; RFC 2253 prints the RDNs of the conventional order (C, L, O, OU,
    // title, CN, serialNumber) last to first.
    assert_eq!(
        subject,
        "serialNumber=0042,CN=Bob,title=Engin,OU=IT,O=Example AB,L=München ✓,C=DE"
    );
    assert!(sans.contains("email:bob@example.com"), "{sans}");

    // handler.5 is tried before handler.7 and matches staff/admin too (numeric order).
    let (status, _, _) = post(&server.url("/pgwy/ast/staff/admin"), &good).await;
    assert_eq!(status, 200, "handler.5 wins over handler.7");
    // Whole match: staff/bob/x is not staff/[a-z]+, so handler.30 (default format) takes it.
    let (status, code, _) = post(
        &server.url("/pgwy/ast/staff/bob/x"),
        &[("commonname", "Bob"), ("unit", "nope")],
    )
    .await;
    assert_eq!(
        (status, code.as_deref()),
        (200, None),
        "handler.30 ignores `unit`"
    );

    let long = "x".repeat(21);
    for (headers, field_code, why) in [
        (
            vec![("unit", "IT")],
            "field-missing",
            "commonname is required",
        ),
        (
            vec![("commonname", long.as_str())],
            "field-invalid",
            "maxlen(20)",
        ),
        (
            vec![("commonname", "Bob"), ("unit", "Sales")],
            "field-invalid",
            "oneof",
        ),
        (
            vec![("commonname", "Bob"), ("employee", "E-12")],
            "field-invalid",
            "minlen(4)",
        ),
        (
            vec![("commonname", "Bob"), ("email", "bob")],
            "field-invalid",
            "email",
        ),
        (
            vec![("commonname", "Bob"), ("country", "XX")],
            "field-invalid",
            "country",
        ),
    ] {
        let (status, code, body) = post(&server.url("/pgwy/ast/staff/bob"), &headers).await;
        assert_eq!(
            (status, code.as_deref()),
            (400, Some(field_code)),
            "{why}: {}",
            String::from_utf8_lossy(&body)
        );
    }

    // Only handler.30 has a catch-all; without it nothing matches → 404 no-handler.
    std::fs::write(
        ast_properties(&root),
        "handler.1.filter = users\nhandler.1.tokenprocedure = default\n\
         handler.2.filter = users/[0-9]+\nhandler.2.tokenprocedure = default\n",
    )
    .unwrap();
    drop(server);
    server = Serve::start(&root);
    for path in [
        "/pgwy/ast",
        "/pgwy/ast/users/",
        "/pgwy/ast/xusers",
        "/pgwy/ast/users/12/a",
        "/pgwy/ast/users/a",
    ] {
        let (status, code, _) = post(&server.url(path), &[("commonname", "Bob")]).await;
        assert_eq!(
            (status, code.as_deref()),
            (404, Some("no-handler")),
            "{path}"
        );
    }
    for path in ["/pgwy/ast/users", "/pgwy/ast/users/12"] {
        let (status, _, _) = post(&server.url(path), &[("commonname", "Bob")]).await;
        assert_eq!(status, 200, "{path}");
    }
}

#[tokio::test]
async fn reload_on_sighup_accepts_and_refuses() {
    let (_dir, root) = init_root();
    let server = Serve::start(&root);
    let (status, _, _) = post(&server.url("/pgwy/ast/new"), &[("commonname", "Bob")]).await;
    assert_eq!(status, 404, "no handler for /pgwy/ast/new yet");

    append(
        &ast_properties(&root),
        "handler.2.filter = new\nhandler.2.tokenprocedure = default\n",
    );
    server.signal("-HUP");
    server.wait_for("configuration reloaded");
    let (status, code, body) = post(&server.url("/pgwy/ast/new"), &[("commonname", "Bob")]).await;
    assert_eq!(status, 200, "{code:?} {}", String::from_utf8_lossy(&body));

    // A broken configuration: every problem logged as `config check` prints it; the old one stays.
    append(
        &ast_properties(&root),
        "handler.3.filter = broken/[\nhandler.3.tokenprocedure = nosuch\nhandler.3.formatFields.1 = ast.valuetarget.commonname.value = x | lowr\n",
    );
    let check = Command::new(BIN)
        .arg("--root")
        .arg(&root)
        .args(["config", "check"])
        .output()
        .unwrap();
    let check_lines: Vec<String> = String::from_utf8(check.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.contains(".properties:"))
        .map(str::to_string)
        .collect();
    assert_eq!(check_lines.len(), 3, "{check_lines:?}");
    server.signal("-HUP");
    let log = server.wait_for("reload refused: 3 problem(s)");
    for line in &check_lines {
        assert!(
            log.iter().any(|l| l.contains(line.as_str())),
            "log lacks `{line}`: {log:#?}"
        );
    }
    let (status, _, _) = post(&server.url("/pgwy/ast/new"), &[("commonname", "Bob")]).await;
    assert_eq!(status, 200, "the previous configuration keeps serving");
    let (status, code, _) = post(&server.url("/pgwy/ast/broken/x"), &[("commonname", "Bob")]).await;
    assert_eq!((status, code.as_deref()), (404, Some("no-handler")));
}

#[test]
fn config_check_reports_every_problem_with_its_line() {
    let (_dir, root) = init_root();
    std::fs::write(root.join("conf/formats/bad.format"), "formatFields.1 = ast.valuetarget.commonname.value = commonname\nformatFields.2 = ast.valuetarget.nosuch.value = x\n").unwrap();
    std::fs::write(
        ast_properties(&root),
        "# line 1\n\
         default.pasword.minLength = 6\n\
         handler.1.filter = users/[\n\
         handler.1.tokenprocedure = defualt\n\
         handler.1.formatFields.4 = ast.valuetarget.countryname.value = country | lowr\n\
         handler.2.formatFields.11 = certrequests:7:title.value = \"T\"\n\
         handler.2.filter = b\n\
         handler.2.format = missing.format\n\
         handler.2.tokenprocedure = default\n\
         handler.3.filter = c\n\
         handler.3.format = bad.format\n\
         handler.3.tokenprocedure = default\n",
    )
    .unwrap();
    // A CA key others can read is reported in the same run.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            root.join("data/ca/issuing.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    let out = Command::new(BIN)
        .arg("--root")
        .arg(&root)
        .args(["config", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let ast = ast_properties(&root).display().to_string();
    let bad = root.join("conf/formats/bad.format").display().to_string();
    let toml = root.join("conf/gateway.toml");
    let ca_line = 1 + std::fs::read_to_string(&toml)
        .unwrap()
        .lines()
        .position(|l| l.trim() == "name = \"issuing\"")
        .unwrap();
    let toml = toml.display();
    let expected = [
        format!(
            "{ast}:2: default.pasword.minLength: unknown parameter `pasword.minLength` (did you mean `password.minLength`?)"
        ),
        format!("{ast}:3: handler.1.filter: bad regular expression"),
        format!(
            "{ast}:4: handler.1.tokenprocedure: token procedure `defualt` is not defined in gateway.toml (did you mean `default`?)"
        ),
        format!("{ast}:5: handler.1.formatFields.4: unknown module `lowr` (did you mean `lower`?)"),
        format!("{ast}:6: handler.2.formatFields.11: certrequests:7 does not exist for handler.2"),
        format!("{ast}:8: handler.2.format: format file `missing.format` not found"),
        format!("{bad}:2: formatFields.2: unknown attribute `nosuch`"),
        format!("{toml}:{ca_line}: ca.issuing: "),
    ];
    let lines: Vec<&str> = stdout.lines().collect();
    for e in &expected {
        assert!(
            lines.iter().any(|l| l.starts_with(e.as_str())),
            "missing `{e}` in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains(&format!("{} problem(s) found", expected.len())),
        "{stdout}"
    );
    for line in lines.iter().filter(|l| l.contains(": ")) {
        if !line.ends_with("problem(s) found") {
            assert!(line.contains(';'), "says what would be right: {line}");
        }
    }
}

#[test]
fn config_explain_without_issuing() {
    let (_dir, root) = init_root();
    let explain = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("--root")
            .arg(&root)
            .args(["config", "explain"])
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    let (code, text) = explain(&[
        "/pgwy/ast",
        "-H",
        "commonname: Alice, O=Evil",
        "-H",
        "country: se",
        "-H",
        "email: A@Example.com",
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("handler.1"), "{text}");
    assert!(
        text.contains("subject: C=SE, CN=Alice\\, O\\=Evil"),
        "{text}"
    );
    assert!(text.contains("SANs: email:a@example.com"), "{text}");
    let (code, text) = explain(&["/pgwy/ast/other", "-H", "commonname: A"]);
    assert_eq!(code, Some(2));
    assert!(text.contains("refused: no-handler"), "{text}");
    let (code, text) = explain(&["/pgwy/ast", "-H", "country: SE"]);
    assert_eq!(code, Some(2));
    assert!(text.contains("refused: field-missing"), "{text}");
    // cert: sources read the certificate given with --client-cert (made by the openssl CLI).
    if openssl_available() {
        std::fs::write(
            root.join("conf/formats/officer.format"),
            "formatFields.1 = ast.valuetarget.commonname.value = commonname | required\n\
             formatFields.2 = ast.valuetarget.organizationname.value = cert:subject.organizationname | required\n\
             formatFields.3 = certrequests:1:upn.value = cert:san.upn\n\
             formatFields.4 = ast.valuetarget.rfc822name.value = cert:san.rfc822name\n",
        )
        .unwrap();
        append(
            &ast_properties(&root),
            "handler.2.filter = officer\nhandler.2.format = officer.format\nhandler.2.tokenprocedure = default\nhandler.2.requiredRoRoles = none\n",
        );
        let cert = root.join("officer.pem");
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout"])
            .arg(root.join("officer.key"))
            .args(["-subj", "/CN=Officer One/O=Example AB", "-addext", "subjectAltName=email:o@example.com,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:o@corp.example", "-out"])
            .arg(&cert)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (code, text) = explain(&[
            "/pgwy/ast/officer",
            "-H",
            "commonname: Carol",
            "--client-cert",
            cert.to_str().unwrap(),
        ]);
        assert_eq!(code, Some(0), "{text}");
        assert!(text.contains("any officer client certificate"), "{text}");
        assert!(text.contains("subject: O=Example AB, CN=Carol"), "{text}");
        assert!(
            text.contains("SANs: email:o@example.com\n"),
            "certificate 0 has no UPN: {text}"
        );
        assert!(
            text.contains("SANs: UPN:o@corp.example, email:o@example.com"),
            "its own value first, then the common context: {text}"
        );
        let (code, text) = explain(&["/pgwy/ast/officer", "-H", "commonname: Carol"]);
        assert_eq!(code, Some(2));
        assert!(
            text.contains("refused: field-missing"),
            "no certificate, no O: {text}"
        );
    } else {
        crate::kit::skipped("cert: part", "the openssl CLI is not installed");
    }
    // Nothing was issued: the database holds no certificate but the TLS server certificate
    // `init` recorded.
    let out = Command::new(BIN)
        .arg("--root")
        .arg(&root)
        .args(["certs", "list", "--json"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listed}");
    let listed: Vec<serde_json::Value> = serde_json::from_str(&listed).unwrap();
    assert!(
        listed.iter().all(|c| c["purpose"] == "tls-server") && listed.len() == 1,
        "{listed:?}"
    );
}

#[tokio::test]
async fn encrypted_parameter_from_config_encrypt() {
    let (_dir, root) = init_root();
    let key = root.join("data/secret.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "init writes the secret key 0600");
    }
    let encrypt = |value: &str| {
        use std::io::Write;
        let mut child = Command::new(BIN)
            .arg("--root")
            .arg(&root)
            .args(["config", "encrypt"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{value}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(text.starts_with("v1:") && !text.contains(value), "{text}");
        text
    };
    append(
        &ast_properties(&root),
        &format!(
            "handler.1.password.minLength.encrypted = {}\nhandler.1.password.pattern.encrypted = {}\n",
            encrypt("10"),
            encrypt("[0-9 a-z]*")
        ),
    );
    let server = Serve::start(&root);
    let client = reqwest::Client::new();
    let send = |pin: &'static str| {
        client
            .post(server.url("/pgwy/ast"))
            .header("commonname", "Bob")
            .form(&[("password", pin)])
            .send()
    };
    let short = send("abc 12345").await.unwrap();
    assert_eq!(short.status().as_u16(), 400);
    assert_eq!(short.headers()["x-ast-error"], "password-policy");
    let upper = send("ABC 123456").await.unwrap();
    assert_eq!(upper.headers()["x-ast-error"], "password-policy");
    assert_eq!(send("abc 123456").await.unwrap().status().as_u16(), 200);

    // A value encrypted under another root's key is a located problem, and its text is not shown.
    let (_other_dir, other) = init_root();
    let mut child = Command::new(BIN)
        .arg("--root")
        .arg(&other)
        .args(["config", "encrypt"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"users/.*\n").unwrap();
    let foreign = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    append(
        &ast_properties(&root),
        &format!("default.filter.encrypted = {}", foreign.trim()),
    );
    let out = Command::new(BIN)
        .arg("--root")
        .arg(&root)
        .args(["config", "check"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    let lines = std::fs::read_to_string(ast_properties(&root))
        .unwrap()
        .lines()
        .count();
    assert!(
        text.contains(&format!(
            ":{lines}: default.filter.encrypted: cannot decrypt"
        )),
        "{text}"
    );
    assert!(!text.contains("users/"), "{text}");
}
