//! Tests of `issuance/ca_admin/gateway_toml.rs`: the operator's text survives every edit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

const TEXT: &str = "\
# The operator's own header.

[server]
http = \"127.0.0.1:8080\"   # loopback only
client_ca = 'data/ca/officers.pem'  # who may log in


[[ca]]
name = \"officers\"
# Issued by root.
parent = \"root\"
role = \"officers\"

# Our procedures, reviewed 2026.
[[token_procedure]]
name = \"default\"

[[token_procedure.certificate]]
purpose = \"authentication\"
ca   =   \"issuing\"   # moved yearly
";

#[test]
fn comments_and_blank_lines_survive_a_rollover_edit() {
    let mut doc = parse(TEXT).unwrap();
    assert_eq!(move_certificates(&mut doc, "issuing", "issuing-2"), 1);
    assert!(comment_out_role(
        &mut doc,
        "officers",
        "# role = \"officers\"  (moved)"
    ));
    assert!(point_client_ca(&mut doc, "data/tls/client-ca.pem"));
    let text = doc.to_string();
    let expected = TEXT
        .replace("ca   =   \"issuing\"", "ca   =   \"issuing-2\"")
        .replace("role = \"officers\"\n", "# role = \"officers\"  (moved)\n")
        .replace(
            "client_ca = 'data/ca/officers.pem'",
            "client_ca = \"data/tls/client-ca.pem\"",
        );
    assert_eq!(text, expected);
}

#[test]
fn a_role_before_other_keys_leaves_its_comment_in_place() {
    let text = "[[ca]]\nname = \"o\"\n# why\nrole = \"officers\"\nkey = \"k\"\n";
    let mut doc = parse(text).unwrap();
    assert!(comment_out_role(&mut doc, "o", "# role gone"));
    assert_eq!(
        doc.to_string(),
        "[[ca]]\nname = \"o\"\n# why\n# role gone\nkey = \"k\"\n"
    );
    assert!(!comment_out_role(&mut doc, "o", "# again"));
    assert!(!point_client_ca(&mut doc, "x"));
}

#[test]
fn a_new_ca_block_goes_at_the_end_with_its_comments() {
    let text = format!("{TEXT}\n# The operator's last words.\n");
    let mut doc = parse(&text).unwrap();
    let order = [crate::ca::Attribute::CommonName];
    append_ca(
        &mut doc,
        &CaBlock {
            name: "officers-2",
            certificate: "data/ca/officers-2.pem",
            key: "data/ca/officers-2.key",
            parent: Some("root"),
            passphrase_env: None,
            role: Some("officers"),
            subject_order: &order,
        },
    )
    .unwrap();
    let edited = doc.to_string();
    assert!(edited.starts_with(&text), "{edited}");
    assert_eq!(
        &edited[text.len()..],
        "\n[[ca]]\nname = \"officers-2\"\ncertificate = \"data/ca/officers-2.pem\"\n\
         key = \"data/ca/officers-2.key\"\nparent = \"root\"\n\
         # It issues the officer client certificates (docs/configuration.md).\n\
         role = \"officers\"\n\
         # The RDN order of the subjects it signs when a token procedure certificate\n\
         # lists no `subject` (kept from the CA certificate's own subject).\n\
         subject_order = [\"commonname\"]\n"
    );
    assert_eq!(toml_string("a\"b"), "\"a\\\"b\"");
}
