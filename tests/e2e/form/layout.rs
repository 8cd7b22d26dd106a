//! Issue 13, second part: `layout = "per-purpose"` (one PKCS#12 per certificate, a zip for the
//! form), `certificate_policies` with a CPS URI, signing EKUs by name (documentSigning), the
//! documented S/MIME example procedure linted by pkilint, and the configuration errors of
//! these keys reported at their file and line by `ast-gateway config check`.
//!
//! Every artifact is read by independent software: `unzip`, `openssl`, `keytool`, Python's
//! `cryptography`, `pkilint`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use ast_gateway::config::{DEFAULT_GATEWAY_TOML, Root};

use crate::kit::{ALICE, Browser, TestGateway, run, run_ok, skipped, tool};

const PIN: &str = "Layout-Pin-42";
const BIN: &str = env!("CARGO_BIN_EXE_ast-gateway");

/// Rewrites the root's gateway.toml with `edit`.
fn edit_gateway_toml(root: &Root, edit: impl FnOnce(String) -> String) {
    let path = root.gateway_toml();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, edit(text)).unwrap();
}

/// The default procedure with `layout = "per-purpose"`.
fn per_purpose(text: String) -> String {
    let edited = text.replacen(
        "name = \"default\"\n",
        "name = \"default\"\nlayout = \"per-purpose\"\n",
        1,
    );
    assert_ne!(edited, text, "the default procedure was not found");
    edited
}

/// The entries of a zip, read with the `zip` crate, in archive order.
fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut entry = archive.by_index(i).unwrap();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            (entry.name().unwrap().to_string(), content)
        })
        .collect()
}

/// What `openssl pkcs12` finds in a file: private keys, certificates, and the leaf's text.
struct Opened {
    keys: usize,
    certificates: usize,
    leaf_text: String,
    leaf_pem: String,
    key_matches_leaf: bool,
}

fn open_with_openssl(openssl: &Path, file: &Path) -> Opened {
    let file = file.to_str().unwrap();
    let pass = format!("pass:{PIN}");
    let keys = run_ok(
        openssl,
        &[
            "pkcs12", "-in", file, "-passin", &pass, "-nocerts", "-nodes",
        ],
    );
    let certs = run_ok(
        openssl,
        &["pkcs12", "-in", file, "-passin", &pass, "-nokeys"],
    );
    let leaf = run_ok(
        openssl,
        &[
            "pkcs12", "-in", file, "-passin", &pass, "-nokeys", "-clcerts",
        ],
    );
    let dir = Path::new(file).parent().unwrap();
    let leaf_path = dir.join("leaf.pem");
    let leaf_pem = leaf[leaf.find("-----BEGIN CERTIFICATE").unwrap()..].to_string();
    std::fs::write(&leaf_path, &leaf_pem).unwrap();
    let leaf_text = run_ok(
        openssl,
        &[
            "x509",
            "-in",
            leaf_path.to_str().unwrap(),
            "-noout",
            "-text",
        ],
    );
    let key_path = dir.join("key.pem");
    std::fs::write(&key_path, &keys).unwrap();
    let key_public = run_ok(
        openssl,
        &["pkey", "-in", key_path.to_str().unwrap(), "-pubout"],
    );
    let leaf_public = run_ok(
        openssl,
        &[
            "x509",
            "-in",
            leaf_path.to_str().unwrap(),
            "-noout",
            "-pubkey",
        ],
    );
    std::fs::remove_file(&key_path).unwrap();
    Opened {
        keys: keys.matches("-----BEGIN PRIVATE KEY-----").count(),
        certificates: certs.matches("-----BEGIN CERTIFICATE-----").count(),
        leaf_text,
        leaf_pem,
        key_matches_leaf: key_public.trim() == leaf_public.trim(),
    }
}

/// Issues a per-purpose token through the form and writes its files to a directory.
async fn per_purpose_token(gw: &TestGateway) -> (tempfile::TempDir, Vec<(String, PathBuf)>) {
    let response = gw.post("", ALICE, &[("password", PIN)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/zip"
    );
    assert_eq!(
        response.headers()["content-disposition"].to_str().unwrap(),
        "attachment; filename=\"Alice Andersson.zip\""
    );
    let zip = response.bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("token.zip");
    std::fs::write(&zip_path, &zip).unwrap();
    // An independent unzip lists the same names and accepts the archive's checksums.
    if let Some(unzip_tool) = tool("unzip") {
        let listed = run_ok(&unzip_tool, &["-Z1", zip_path.to_str().unwrap()]);
        assert_eq!(
            listed.lines().collect::<Vec<_>>(),
            [
                "Alice Andersson authentication.p12",
                "Alice Andersson signing.p12"
            ]
        );
        run_ok(&unzip_tool, &["-tq", zip_path.to_str().unwrap()]);
    } else {
        skipped("per_purpose (unzip listing)", "unzip not installed");
    }
    let files = unzip(&zip)
        .into_iter()
        .enumerate()
        .map(|(i, (name, bytes))| {
            let sub = dir.path().join(i.to_string());
            std::fs::create_dir(&sub).unwrap();
            let path = sub.join(&name);
            std::fs::write(&path, bytes).unwrap();
            (name, path)
        })
        .collect();
    (dir, files)
}

#[tokio::test]
async fn per_purpose_form_answers_a_zip_of_one_key_files_under_the_same_pin() {
    let gw = TestGateway::start_with(|root| edit_gateway_toml(root, per_purpose)).await;
    let (_dir, files) = per_purpose_token(&gw).await;
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Alice Andersson authentication.p12",
            "Alice Andersson signing.p12"
        ]
    );
    assert_eq!(gw.gateway.store().count_tokens().await.unwrap(), 1);
    assert_eq!(gw.gateway.store().count_certificates().await.unwrap(), 2);
    let audit = gw.gateway.store().audit_page(0, 0, 100).await.unwrap();
    let issued: Vec<_> = audit.iter().filter(|r| r.event == "issued").collect();
    assert_eq!(issued.len(), 1);
    let detail: serde_json::Value = serde_json::from_str(&issued[0].detail).unwrap();
    assert_eq!(detail["layout"], "per-purpose", "{detail}");

    let Some(openssl) = tool("openssl") else {
        return skipped("per_purpose_form_answers_a_zip", "openssl not installed");
    };
    for (name, path) in &files {
        let opened = open_with_openssl(&openssl, path);
        assert_eq!(opened.keys, 1, "{name}: one key");
        assert_eq!(opened.certificates, 3, "{name}: leaf, issuing CA, root");
        assert!(opened.key_matches_leaf, "{name}: the key is the leaf's");
        assert!(
            opened.leaf_text.contains("CN=Alice Andersson")
                || opened.leaf_text.contains("CN = Alice Andersson")
        );
        if name.contains("authentication") {
            assert!(
                opened.leaf_text.contains("TLS Web Client Authentication"),
                "{name}"
            );
        } else {
            assert!(opened.leaf_text.contains("Non Repudiation"), "{name}");
            assert!(
                !opened.leaf_text.contains("TLS Web Client Authentication"),
                "{name}"
            );
        }
        // A wrong PIN does not open it.
        let wrong = run(
            &openssl,
            &[
                "pkcs12",
                "-in",
                path.to_str().unwrap(),
                "-passin",
                "pass:wrong-pin",
                "-nokeys",
            ],
        );
        assert!(!wrong.status.success(), "{name} opened with a wrong PIN");
    }

    match tool("keytool") {
        None => skipped("per_purpose (keytool)", "keytool not installed"),
        Some(keytool) => {
            for (name, path) in &files {
                let listing = run_ok(
                    &keytool,
                    &[
                        "-list",
                        "-storetype",
                        "PKCS12",
                        "-keystore",
                        path.to_str().unwrap(),
                        "-storepass",
                        PIN,
                    ],
                );
                assert!(
                    listing.contains("Your keystore contains 1 entry"),
                    "{name}:\n{listing}"
                );
                assert_eq!(
                    listing.matches("PrivateKeyEntry").count(),
                    1,
                    "{name}:\n{listing}"
                );
                let alias = name.trim_end_matches(".p12").to_lowercase();
                assert!(
                    listing.to_lowercase().contains(&alias),
                    "{name}: alias\n{listing}"
                );
            }
        }
    }

    // pyca/cryptography's load_key_and_certificates returns one key: with per-purpose it is
    // each file's own.
    let Some(python) = tool("python3") else {
        return skipped("per_purpose (pyca)", "python3 not installed");
    };
    let probe = run(&python, &["-c", "import cryptography"]);
    if !probe.status.success() {
        return skipped("per_purpose (pyca)", "python3 has no `cryptography` module");
    }
    const SCRIPT: &str = "import sys\n\
        from cryptography.hazmat.primitives.serialization import pkcs12, Encoding, PublicFormat\n\
        from cryptography import x509\n\
        key, cert, extra = pkcs12.load_key_and_certificates(open(sys.argv[1], 'rb').read(), sys.argv[2].encode())\n\
        same = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) == cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)\n\
        try:\n    eku = [o.dotted_string for o in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value]\n\
        except x509.ExtensionNotFound:\n    eku = []\n\
        print(same, len(extra), ','.join(eku))\n";
    for (name, path) in &files {
        let out = run_ok(&python, &["-c", SCRIPT, path.to_str().unwrap(), PIN]);
        let line = out.trim();
        if name.contains("authentication") {
            assert!(
                line.starts_with("True 2 ") && line.contains("1.3.6.1.5.5.7.3.2"),
                "{name}: {line}"
            );
        } else {
            assert_eq!(line, "True 2", "{name}");
        }
    }
}

#[tokio::test]
async fn combined_layout_is_unchanged() {
    let gw = TestGateway::start().await;
    let response = gw.post("", ALICE, &[("password", PIN)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/x-pkcs12"
    );
    assert_eq!(
        response.headers()["content-disposition"].to_str().unwrap(),
        "attachment; filename=\"Alice Andersson.p12\""
    );
    let body = response.bytes().await.unwrap();
    assert!(zip::ZipArchive::new(std::io::Cursor::new(body.as_ref())).is_err());
    let Some(openssl) = tool("openssl") else {
        return skipped("combined_layout_is_unchanged", "openssl not installed");
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token.p12");
    std::fs::write(&path, &body).unwrap();
    let keys = run_ok(
        &openssl,
        &[
            "pkcs12",
            "-in",
            path.to_str().unwrap(),
            "-passin",
            &format!("pass:{PIN}"),
            "-nocerts",
            "-nodes",
        ],
    );
    assert_eq!(keys.matches("-----BEGIN PRIVATE KEY-----").count(), 2);
}

#[tokio::test]
async fn certificate_policies_with_a_cps_and_signing_ekus_by_name() {
    let gw = TestGateway::start_with(|root| {
        edit_gateway_toml(root, |text| {
            let text = text.replacen(
                "extended_key_usage = [\"clientAuth\", \"emailProtection\"]\n",
                "extended_key_usage = [\"clientAuth\", \"emailProtection\"]\n\
                 policies = [\"1.2.752.201.3.1\"]\n\
                 certificate_policies = [{ oid = \"2.23.140.1.5.4.2\", cps = \"https://pki.example.com/cps\" }, { oid = \"1.3.6.1.4.1.99999.7\" }]\n",
                1,
            );
            let text = text.replacen(
                "key_usage = [\"nonRepudiation\"]",
                "key_usage = [\"digitalSignature\", \"nonRepudiation\"]\n\
                 extended_key_usage = [\"emailProtection\", \"documentSigning\", \"1.3.6.1.4.1.311.10.3.12\"]",
                1,
            );
            per_purpose(text)
        })
    })
    .await;
    let Some(openssl) = tool("openssl") else {
        return skipped("certificate_policies_with_a_cps", "openssl not installed");
    };
    let (_dir, files) = per_purpose_token(&gw).await;
    let authentication = open_with_openssl(&openssl, &files[0].1).leaf_text;
    let policies = &authentication[authentication.find("X509v3 Certificate Policies").unwrap()..];
    let p1 = policies.find("Policy: 1.2.752.201.3.1").unwrap();
    let p2 = policies.find("Policy: 2.23.140.1.5.4.2").unwrap();
    let cps = policies.find("CPS: https://pki.example.com/cps").unwrap();
    let p3 = policies.find("Policy: 1.3.6.1.4.1.99999.7").unwrap();
    assert!(
        p1 < p2 && p2 < cps && cps < p3,
        "order as configured:\n{policies}"
    );
    assert_eq!(policies.matches("CPS:").count(), 1, "{policies}");

    let signing = open_with_openssl(&openssl, &files[1].1).leaf_text;
    let eku = signing
        .lines()
        .skip_while(|l| !l.contains("X509v3 Extended Key Usage"))
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    // OpenSSL 3.0 has no name for documentSigning (RFC 9336) and prints its OID.
    assert!(eku.starts_with("E-mail Protection, "), "{eku}");
    assert!(eku.contains("1.3.6.1.5.5.7.3.36"), "{eku}");
    assert!(
        eku.contains("1.3.6.1.4.1.311.10.3.12")
            || eku.contains("Microsoft Encrypted File System")
            || eku.contains("Document Signing"),
        "{eku}"
    );
    assert!(
        !signing.contains("X509v3 Certificate Policies"),
        "no policies on the signing certificate"
    );
}

/// The S/MIME example of the embedded gateway.toml, uncommented, and the ast.properties lines
/// it asks for: exactly what operators read.
fn smime_example() -> (String, String) {
    let start = DEFAULT_GATEWAY_TOML
        .find("# [[token_procedure]]\n# name = \"smime\"")
        .expect("the S/MIME example is in the default gateway.toml");
    let end = DEFAULT_GATEWAY_TOML
        .find("# --- end of the S/MIME example")
        .unwrap();
    let procedure = DEFAULT_GATEWAY_TOML[start..end]
        .lines()
        .map(|l| l.strip_prefix("# ").unwrap_or(l.trim_start_matches('#')))
        .collect::<Vec<_>>()
        .join("\n");
    let handler = DEFAULT_GATEWAY_TOML
        .lines()
        .filter_map(|l| l.strip_prefix("#   handler.2."))
        .map(|l| format!("handler.2.{l}\n"))
        .collect::<String>();
    assert_eq!(handler.lines().count(), 8, "{handler}");
    (procedure, handler)
}

/// pkilint's `lint_cabf_smime_cert`, from a venv under target/ (installed on first use).
fn pkilint() -> Result<PathBuf, String> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pkilint/venv");
    let lint = venv.join("bin/lint_cabf_smime_cert");
    if lint.is_file() {
        return Ok(lint);
    }
    let python = tool("python3").ok_or("python3 not installed")?;
    let made = Command::new(&python)
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .map_err(|e| e.to_string())?;
    if !made.status.success() {
        return Err(format!(
            "python3 -m venv failed: {}",
            String::from_utf8_lossy(&made.stderr)
        ));
    }
    let installed = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "-q",
            "--disable-pip-version-check",
            "--timeout",
            "20",
            "--retries",
            "1",
            "pkilint",
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if !installed.status.success() || !lint.is_file() {
        return Err(format!(
            "pip install pkilint failed: {}",
            String::from_utf8_lossy(&installed.stderr)
        ));
    }
    Ok(lint)
}

/// The findings we accept, at NOTICE and above (below that pkilint reports INFO lines that
/// identify rather than judge, e.g. `pkix.subject_key_identifier_method_1_identified`):
/// - `cabf.smime.common_name_value_unknown_source` (ERROR), the CN source rule: the CN must
///   hold the person's name, pseudonym or e-mail address as *validated*. The gateway takes the
///   CN from the trusted front and cannot know where the front took it from; pkilint raises it
///   when the CN is not the e-mail address and no givenName, surname or pseudonym is present.
/// - `pkix.certificate_policies_policy_has_qualifier` (NOTICE): RFC 5280 §4.2.1.4 recommends
///   bare policy OIDs; the CPS URI qualifier is what `certificate_policies … cps` is for, and the
///   S/MIME Baseline Requirements (§7.1.2.3 a) allow id-qt-cps with an HTTP(S) URL.
const CN_SOURCE: &str = "cabf.smime.common_name_value_unknown_source";
const ACCEPTED: &[&str] = &[CN_SOURCE, "pkix.certificate_policies_policy_has_qualifier"];

/// Runs pkilint on a PEM certificate; returns its findings (NOTICE and above).
fn lint_smime(lint: &Path, pem: &str, dir: &Path) -> Vec<String> {
    let path = dir.join("lint.pem");
    std::fs::write(&path, pem).unwrap();
    let out = run(
        lint,
        &[
            "lint",
            "-t",
            "INDIVIDUAL-MULTIPURPOSE",
            "-s",
            "NOTICE",
            "-f",
            "JSON",
            path.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "pkilint output is not JSON ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut codes = Vec::new();
    for result in report["results"].as_array().unwrap() {
        for finding in result["finding_descriptions"].as_array().unwrap() {
            codes.push(format!(
                "{} {}{}",
                finding["severity"].as_str().unwrap_or("?"),
                finding["code"].as_str().unwrap_or("?"),
                finding["message"]
                    .as_str()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ));
        }
    }
    codes
}

#[tokio::test]
async fn the_documented_smime_example_passes_pkilint() {
    let lint = match pkilint() {
        Ok(lint) => lint,
        Err(why) => return skipped("the_documented_smime_example_passes_pkilint", &why),
    };
    let Some(openssl) = tool("openssl") else {
        return skipped(
            "the_documented_smime_example_passes_pkilint",
            "openssl not installed",
        );
    };
    let (example, handler) = smime_example();
    assert!(example.contains("layout = \"per-purpose\"") && example.contains("2.23.140.1.5.4.2"));
    let gw = TestGateway::start_with(|root| {
        // The published URLs must name a public host (no internal names: CA/B Forum); nothing
        // fetches them in this test.
        edit_gateway_toml(root, |text| {
            let text = text.replacen(
                "public_url = \"http://127.0.0.1:8080\"",
                "public_url = \"http://pki.example.com\"",
                1,
            );
            assert!(
                text.contains("http://pki.example.com\""),
                "public_url not found"
            );
            format!("{text}\n{example}\n")
        });
        let ast = std::fs::read_to_string(root.ast_properties()).unwrap();
        std::fs::write(root.ast_properties(), format!("{ast}\n{handler}")).unwrap();
    })
    .await;
    let bob: &[(&str, &str)] = &[
        ("commonname", "Bob the Builder"),
        ("surname", "Builder"),
        ("country", "SE"),
        ("locality", "Lund"),
        ("serialnumber", "19800101-1234"),
        ("organization", "Builders AB"),
        ("organizationalunit", "Roofs"),
        ("upn", "bob@corp.example"),
        ("email", "Bob@Example.com"),
    ];
    for headers in [ALICE, bob] {
        let response = gw.post("/smime", headers, &[("password", PIN)]).await;
        if response.status() != 200 {
            panic!("{}: {}", response.status(), response.text().await.unwrap());
        }
        assert_eq!(response.headers()["content-type"], "application/zip");
        let zip = response.bytes().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let entries = unzip(&zip);
        assert_eq!(entries.len(), 2);
        for (name, bytes) in entries {
            let path = dir.path().join(&name);
            std::fs::write(&path, bytes).unwrap();
            let opened = open_with_openssl(&openssl, &path);
            assert_eq!(opened.keys, 1, "{name}");
            let subject = opened
                .leaf_text
                .lines()
                .find(|l| l.trim_start().starts_with("Subject:"))
                .unwrap();
            assert!(!subject.contains("O = "), "no organization: {subject}");
            let findings = lint_smime(&lint, &opened.leaf_pem, dir.path());
            println!("pkilint INDIVIDUAL-MULTIPURPOSE {name}: {findings:?}");
            let unexpected: Vec<&String> = findings
                .iter()
                .filter(|f| !ACCEPTED.iter().any(|a| f.contains(a)))
                .collect();
            assert!(
                unexpected.is_empty(),
                "{name}: pkilint findings {unexpected:?}\n{}",
                opened.leaf_text
            );
        }
    }
    // Without a surname (the profile needs the person's name) nothing is issued.
    let before = gw.gateway.store().count_certificates().await.unwrap();
    let response = gw
        .post(
            "/smime",
            &[("commonname", "Carol"), ("email", "carol@example.com")],
            &[("password", PIN)],
        )
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["x-ast-error"], "field-missing");
    assert_eq!(
        gw.gateway.store().count_certificates().await.unwrap(),
        before
    );
}

#[test]
fn config_check_reports_layout_oid_and_cps_errors_at_their_lines() {
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
    let toml = root.join("conf/gateway.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str(
        "\n[[token_procedure]]\n\
         name = \"broken\"\n\
         layout = \"one-per-key\"\n\
         \n\
         [[token_procedure.certificate]]\n\
         purpose = \"signing\"\n\
         ca = \"issuing\"\n\
         key = \"ec-p256\"\n\
         validity = \"365d\"\n\
         key_usage = [\"digitalSignature\"]\n\
         extended_key_usage = [\"emailProtection\", \"documentSigning\"]\n\
         certificate_policies = [\n\
         \x20 { oid = \"2.23.140.1.5.4.2\", cps = \"https://pki.example.com/cps\" },\n\
         \x20 { oid = \"2.23.140.one\" },\n\
         \x20 { oid = \"1.2.3.4\", cps = \"pki.example.com/cps\" },\n\
         ]\n",
    );
    std::fs::write(&toml, &text).unwrap();
    let line = |needle: &str| 1 + text.lines().position(|l| l.contains(needle)).unwrap();
    let out = Command::new(BIN)
        .arg("--root")
        .arg(&root)
        .args(["config", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let path = toml.display();
    let expected = [
        format!(
            "{path}:{}: token_procedure.broken.layout: unknown layout `one-per-key`; expected `combined`",
            line("one-per-key")
        ),
        format!(
            "{path}:{}: token_procedure.broken.certificate.signing: `2.23.140.one` is not an object identifier; write it dotted",
            line("2.23.140.one")
        ),
        format!(
            "{path}:{}: token_procedure.broken.certificate.signing: `pki.example.com/cps` is not a CPS URI; expected an http:// or https:// URL",
            line("\"pki.example.com/cps\"")
        ),
    ];
    for e in &expected {
        assert!(
            stdout.lines().any(|l| l.starts_with(e.as_str())),
            "missing `{e}` in:\n{stdout}"
        );
    }
    assert!(stdout.contains("3 problem(s) found"), "{stdout}");
}

#[tokio::test]
async fn per_purpose_page_in_headless_chromium() {
    let Some(browser) = Browser::find("per_purpose_page_in_headless_chromium") else {
        return;
    };
    let gw = TestGateway::start_with(|root| edit_gateway_toml(root, per_purpose)).await;
    let downloads = tempfile::tempdir().unwrap();
    let (ok, text) = browser
        .run(
            "layout.mjs",
            &[gw.base.clone(), downloads.path().display().to_string()],
        )
        .await;
    assert!(ok && text.contains("ok"), "browser test failed:\n{text}");
    let zip = std::fs::read(downloads.path().join("Alice Andersson.zip")).unwrap();
    let names: Vec<String> = unzip(&zip).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "Alice Andersson authentication.p12",
            "Alice Andersson signing.p12"
        ]
    );
}
