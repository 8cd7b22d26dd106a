//! Tests of `issuance/lints.rs`.

use super::*;
use crate::config::Root;

#[test]
fn validities_past_the_ca_end_are_warned_about() {
    use der::Decode;
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    crate::issuance::write_default(&root).unwrap();
    let der = crate::ca::read_certificate_file(&root.resolve("data/ca/issuing.pem")).unwrap();
    let cert = x509_cert::Certificate::from_der(&der).unwrap();
    let end = cert
        .tbs_certificate()
        .validity()
        .not_after
        .to_unix_duration()
        .as_secs() as i64;
    let config = crate::rules::load(&root).unwrap();
    // Two years before the end: 365 days fit.
    assert!(ca_lifetime_warnings(&config, end - 730 * 86_400).is_empty());
    // 100 days before the end: both certificates of `default` reach past it.
    let warnings = ca_lifetime_warnings(&config, end - 100 * 86_400);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    let w = &warnings[0];
    assert!(
        w.starts_with("token procedure `default`, certificate `authentication`: validity 365 days exceeds the remaining life of CA `issuing`"),
        "{w}"
    );
    assert!(w.contains("100 days left"), "{w}");
    assert!(
        w.contains("leaf_not_after = \"cap\"), 100 days instead of 365"),
        "{w}"
    );
    assert!(w.contains("--replaces issuing"), "{w}");

    let text = std::fs::read_to_string(root.gateway_toml()).unwrap();
    let text = text.replace(
        "key_usage = [\"nonRepudiation\"]",
        "key_usage = [\"nonRepudiation\"]\nleaf_not_after = \"refuse\"",
    );
    std::fs::write(root.gateway_toml(), text).unwrap();
    let config = crate::rules::load(&root).unwrap();
    let warnings = ca_lifetime_warnings(&config, end - 100 * 86_400);
    assert!(
        warnings[1].contains("certificate `signing`"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].contains("every request for it is refused (leaf_not_after = \"refuse\")"),
        "{warnings:?}"
    );
    // Past the end: one warning for the CA, not one per certificate.
    let warnings = ca_lifetime_warnings(&config, end + 1);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("CA `issuing` expired on"),
        "{warnings:?}"
    );
}

#[test]
fn subject_lists_that_drop_format_fields_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    crate::issuance::write_default(&root).unwrap();
    let config = crate::rules::load(&root).unwrap();
    assert!(subject_warnings(&config).is_empty());

    let text = std::fs::read_to_string(root.gateway_toml()).unwrap();
    let text = text.replace(
        "key_usage = [\"nonRepudiation\"]",
        "key_usage = [\"nonRepudiation\"]\nsubject = [\"countryname\", \"commonname\"]",
    );
    std::fs::write(root.gateway_toml(), text).unwrap();
    let config = crate::rules::load(&root).unwrap();
    let warnings = subject_warnings(&config);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    assert!(w.starts_with("handler.1: certificate 1 (signing)"), "{w}");
    assert!(w.contains("subject = [countryname, commonname]"), "{w}");
    assert!(w.contains("2 (givenname)"), "{w}");
    assert!(w.contains("6 (organizationname)"), "{w}");
    // Listed attributes and SANs are not dropped.
    assert!(
        !w.contains("(commonname)") && !w.contains("(countryname)"),
        "{w}"
    );
    assert!(!w.contains("rfc822name"), "{w}");
}
