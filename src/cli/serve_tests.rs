//! Tests of `serve`.

use super::*;

#[test]
fn admin_argument() {
    assert_eq!(parse_admin(""), Ok(AdminAddress::Off));
    assert_eq!(
        parse_admin("127.0.0.1:9200"),
        Ok(AdminAddress::At("127.0.0.1:9200".parse().unwrap()))
    );
    assert!(
        parse_admin("nowhere")
            .unwrap_err()
            .contains("\"\" turns it off")
    );
}

#[test]
fn a_missing_explicit_root_is_refused_unless_init() {
    let dir = tempfile::tempdir().unwrap();
    let typo = Root::new(dir.path().join("srv-ats"));
    let e = root_state(&typo, true, false).unwrap_err().to_string();
    assert!(e.contains("does not exist"), "{e}");
    assert!(e.contains("--init"), "{e}");
    assert!(e.contains("srv-ats"), "{e}");
    assert_eq!(
        root_state(&typo, true, true).unwrap(),
        RootState::WriteDefault
    );
    // The default root (not named) keeps the first-run behaviour.
    assert_eq!(
        root_state(&typo, false, false).unwrap(),
        RootState::WriteDefault
    );
    // An existing empty directory (a fresh volume) is initialised as before.
    let empty = Root::new(dir.path());
    assert_eq!(
        root_state(&empty, true, false).unwrap(),
        RootState::WriteDefault
    );
    crate::issuance::write_default(&empty).unwrap();
    assert_eq!(root_state(&empty, true, false).unwrap(), RootState::Ready);
}

#[test]
fn ca_summary_names_key_kind_expiry_and_demo() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    crate::issuance::write_default(&root).unwrap();
    let config = crate::rules::load(&root).unwrap();
    let cas = crate::issuance::load_cas(&config.settings).unwrap();
    let lines: Vec<String> = config
        .settings
        .cas
        .iter()
        .map(|c| CaSummary::of(&cas[&c.name], c).to_string())
        .collect();
    assert!(
        lines[0].starts_with("CA root: EC P-384, key file "),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("CA issuing: EC P-256, key file "),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| l.ends_with("(DEMO)")), "{lines:?}");
    assert!(lines.iter().all(|l| l.contains("notAfter 20")), "{lines:?}");
}
