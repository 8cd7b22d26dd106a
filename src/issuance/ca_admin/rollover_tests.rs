//! Tests of `issuance/ca_admin/rollover.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

#[test]
fn a_rollover_edits_only_the_ca_values() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    crate::issuance::write_default(&root).unwrap();
    let before = std::fs::read_to_string(root.gateway_toml()).unwrap();
    let config = crate::rules::load(&root).unwrap();
    let plan = plan_rollover(&root, &config, "issuing", "issuing-2").unwrap();
    let (text, references) = (plan.text(), plan.references);
    assert_eq!(references.len(), 2, "{references:?}");
    assert_eq!(references[0].purpose, "authentication");
    assert_eq!(references[1].purpose, "signing");
    // Line by line: only the two `ca =` lines of the certificates differ.
    let changed: Vec<(usize, &str, &str)> = before
        .lines()
        .zip(text.lines())
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| (i + 1, a, b))
        .collect();
    assert_eq!(
        changed,
        [
            (references[0].line, "ca = \"issuing\"", "ca = \"issuing-2\""),
            (references[1].line, "ca = \"issuing\"", "ca = \"issuing-2\""),
        ]
    );
    assert_eq!(before.lines().count(), text.lines().count());
    // The [[ca]] block named "issuing" and its parent lines are untouched.
    assert!(text.contains("name = \"issuing\"\ncertificate = \"data/ca/issuing.pem\""));
}

#[test]
fn a_rollover_is_refused_when_nothing_would_move() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    crate::issuance::write_default(&root).unwrap();
    let config = crate::rules::load(&root).unwrap();
    let e = plan_rollover(&root, &config, "root", "root-2").unwrap_err();
    assert!(
        e.to_string().contains("no token procedure uses CA `root`"),
        "{e}"
    );
    let e = plan_rollover(&root, &config, "nope", "x").unwrap_err();
    assert!(
        e.to_string()
            .contains("configured: root, issuing, officers"),
        "{e}"
    );
    let plan = plan_rollover(&root, &config, "issuing", "issuing-2").unwrap();
    assert_eq!(plan.parent.as_deref(), Some("root"));
    assert_eq!(plan.references.len(), 2);
    assert!(!plan.officers);
}

#[test]
fn the_officers_ca_is_replaced_with_its_role() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    crate::issuance::write_default(&root).unwrap();
    let config = crate::rules::load(&root).unwrap();
    let before = std::fs::read_to_string(root.gateway_toml()).unwrap();
    let plan = plan_rollover(&root, &config, "officers", "officers-2").unwrap();
    assert!(plan.officers);
    assert!(plan.references.is_empty());
    assert_eq!(plan.parent.as_deref(), Some("root"));
    // The only change: the old block's role line, commented out.
    let line = plan
        .role_line
        .expect("the default officers CA carries its role");
    let text = plan.text();
    let changed: Vec<(usize, &str, &str)> = before
        .lines()
        .zip(text.lines())
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| (i + 1, a, b))
        .collect();
    assert_eq!(
        changed,
        [(
            line,
            "role = \"officers\"",
            "# role = \"officers\"  (moved to `officers-2` by `ca create officers-2 --replaces officers`)"
        )]
    );
}
