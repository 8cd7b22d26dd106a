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

#[test]
fn an_operators_comments_and_blank_lines_survive_a_rollover() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    crate::issuance::write_default(&root).unwrap();
    let text = std::fs::read_to_string(root.gateway_toml()).unwrap();
    let note = "# Operator: the issuing CA is rolled over every May (ticket 42).\n\n\n";
    let before = text.replacen(
        "# Token procedures:",
        &format!("{note}# Token procedures:"),
        1,
    );
    let before = before.replacen("ca = \"issuing\"\n", "ca = \"issuing\"   # reviewed\n\n", 1);
    std::fs::write(root.gateway_toml(), &before).unwrap();
    let config = crate::rules::load(&root).unwrap();
    let created = super::super::create(
        &root,
        &config,
        super::super::NewCa {
            name: "issuing-2".into(),
            key: None,
            key_type: crate::token::KeyType::EcP256,
            parent: None,
            replaces: Some("issuing".into()),
            subject: crate::ca::parse_dn("CN=Issuing CA 2").unwrap(),
            validity: std::time::Duration::from_secs(365 * 86_400),
        },
    )
    .unwrap();
    assert_eq!(created.rollover.unwrap().references.len(), 2);
    let after = std::fs::read_to_string(root.gateway_toml()).unwrap();
    // Every byte stays but the two values; the new block follows at the end.
    // (The commented-out examples that name `issuing` stay as they are.)
    let expected: String = before
        .split_inclusive('\n')
        .map(|line| match line {
            "ca = \"issuing\"   # reviewed\n" => "ca = \"issuing-2\"   # reviewed\n",
            "ca = \"issuing\"\n" => "ca = \"issuing-2\"\n",
            other => other,
        })
        .collect();
    let differs = after
        .bytes()
        .zip(expected.bytes())
        .position(|(a, b)| a != b);
    assert_eq!(
        differs,
        None,
        "{:?}",
        &after[differs.unwrap_or(0).saturating_sub(200)..]
    );
    assert!(after.starts_with(&expected), "{after}");
    assert!(after.contains(note));
    assert!(
        after[expected.len()..].starts_with("\n[[ca]]\nname = \"issuing-2\"\n"),
        "{}",
        &after[expected.len()..]
    );
    assert!(crate::rules::load(&root).is_ok());
}
