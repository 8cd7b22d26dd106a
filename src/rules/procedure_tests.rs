//! Tests of `rules/procedure.rs`.

use crate::ca::CertificatePolicy;
use crate::config::{DEFAULT_FORMAT, DEFAULT_GATEWAY_TOML, Root};
use crate::rules::{Layout, load};

const AST: &str = "handler.1.filter =\nhandler.1.format = ast-default.format\nhandler.1.tokenprocedure = default\n";

/// Loads the default configuration with `extra` appended to gateway.toml; returns the
/// procedures or the errors as `line: message` (line numbers of the whole file).
fn load_with(extra: &str) -> Result<crate::rules::Rules, Vec<(usize, String)>> {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    std::fs::create_dir_all(root.formats()).unwrap();
    std::fs::write(
        root.gateway_toml(),
        format!("{DEFAULT_GATEWAY_TOML}{extra}"),
    )
    .unwrap();
    std::fs::write(root.formats().join("ast-default.format"), DEFAULT_FORMAT).unwrap();
    std::fs::write(root.ast_properties(), AST).unwrap();
    load(&root).map(|c| c.rules).map_err(|e| {
        e.0.iter()
            .map(|e| (e.line.unwrap_or(0), e.message.clone()))
            .collect()
    })
}

/// The 1-based line of `needle` in the default file plus `extra` (comments skipped).
fn line_of(extra: &str, needle: &str) -> usize {
    let text = format!("{DEFAULT_GATEWAY_TOML}{extra}");
    1 + text
        .lines()
        .position(|l| !l.starts_with('#') && l.contains(needle))
        .unwrap()
}

const SMIME: &str = r#"
[[token_procedure]]
name = "smime"
layout = "per-purpose"

[[token_procedure.certificate]]
purpose = "authentication"
ca = "issuing"
key = "ec-p256"
validity = "730d"
key_usage = ["digitalSignature"]
extended_key_usage = ["emailProtection", "clientAuth"]
policies = ["1.2.752.201.3.1"]
certificate_policies = [{ oid = "2.23.140.1.5.4.2", cps = "https://pki.example.com/cps" }, { oid = "1.3.6.1.4.1.99999.1" }]

[[token_procedure.certificate]]
purpose = "signing"
ca = "issuing"
key = "ec-p256"
validity = "730d"
key_usage = ["digitalSignature", "nonRepudiation"]
extended_key_usage = ["emailProtection", "documentSigning", "1.3.6.1.4.1.311.10.3.12"]
"#;

#[test]
fn layout_and_policies_with_cps() {
    let rules = load_with(SMIME).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(rules.procedure("default").unwrap().layout, Layout::Combined);
    let smime = rules.procedure("smime").unwrap();
    assert_eq!(smime.layout, Layout::PerPurpose);
    let oid = |s| const_oid::ObjectIdentifier::new(s).unwrap();
    assert_eq!(
        smime.certificates[0].policies,
        vec![
            CertificatePolicy::oid(oid("1.2.752.201.3.1")),
            CertificatePolicy {
                oid: oid("2.23.140.1.5.4.2"),
                cps: Some("https://pki.example.com/cps".into())
            },
            CertificatePolicy::oid(oid("1.3.6.1.4.1.99999.1")),
        ]
    );
    assert_eq!(
        smime.certificates[1].extended_key_usage,
        vec![
            oid("1.3.6.1.5.5.7.3.4"),
            oid("1.3.6.1.5.5.7.3.36"),
            oid("1.3.6.1.4.1.311.10.3.12")
        ]
    );
    assert!(smime.certificates[1].policies.is_empty());
}

#[test]
fn every_problem_at_its_line() {
    let extra = SMIME
        .replace("\"per-purpose\"", "\"per_purpose\"")
        .replace("\"2.23.140.1.5.4.2\"", "\"2.23.140.1.5.4.two\"")
        .replace("https://pki.example.com/cps", "pki.example.com/cps")
        .replace(
            "{ oid = \"1.3.6.1.4.1.99999.1\" }",
            "{ oid = \"1.2.752.201.3.1\" }",
        );
    let errors = load_with(&extra).unwrap_err();
    let line = |needle| line_of(&extra, needle);
    let expect = [
        (
            line("per_purpose"),
            "unknown layout `per_purpose`; expected",
        ),
        (
            line("2.23.140.1.5.4.two"),
            "`2.23.140.1.5.4.two` is not an object identifier",
        ),
        (
            line("certificate_policies ="),
            "`pki.example.com/cps` is not a CPS URI; expected",
        ),
        (
            line("certificate_policies ="),
            "policy `1.2.752.201.3.1` is listed twice",
        ),
    ];
    for (line, start) in expect {
        assert!(
            errors
                .iter()
                .any(|(l, m)| *l == line && m.starts_with(start)),
            "missing {line}: {start} in {errors:?}"
        );
    }
    assert_eq!(errors.len(), expect.len(), "{errors:?}");
}

#[test]
fn per_purpose_needs_distinct_purposes() {
    let extra = SMIME.replace("purpose = \"signing\"", "purpose = \"Authentication\"");
    let errors = load_with(&extra).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, line_of(&extra, "\"Authentication\""));
    assert!(errors[0].1.contains("used twice;"), "{errors:?}");
    // Combined: the same purposes are allowed (as before).
    assert!(load_with(&extra.replace("layout = \"per-purpose\"", "")).is_ok());
}

#[test]
fn an_unknown_key_in_a_policy_is_refused() {
    let extra = SMIME.replace("cps = ", "cps_uri = ");
    let errors = load_with(&extra).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|(l, m)| *l == line_of(&extra, "cps_uri") && m.contains("cps_uri")),
        "{errors:?}"
    );
}
