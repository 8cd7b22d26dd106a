//! Tests of building rules from ast.properties, formats and token procedures.

use super::*;
use crate::ca::Attribute;
use crate::config::{DEFAULT_FORMAT, DEFAULT_GATEWAY_TOML, SecretKey};
use crate::policy::{IdentityHeaders, Source, evaluate};

/// A root with the default gateway.toml and format, and `ast` as ast.properties.
fn root_with(ast: &str) -> (tempfile::TempDir, Root) {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    std::fs::create_dir_all(root.formats()).unwrap();
    std::fs::write(root.gateway_toml(), DEFAULT_GATEWAY_TOML).unwrap();
    std::fs::write(root.formats().join("ast-default.format"), DEFAULT_FORMAT).unwrap();
    std::fs::write(root.ast_properties(), ast).unwrap();
    (dir, root)
}

const BASE: &str = "handler.1.filter =\nhandler.1.format = ast-default.format\nhandler.1.tokenprocedure = default\n";

#[test]
fn documented_example_verbatim() {
    let text = format!(
        "{BASE}handler.1.formatFields.4 = ast.valuetarget.countryname.value =\n\
         handler.1.formatFields.5 = ast.valuetarget.localityname.value = myheader\n"
    );
    let (_d, root) = root_with(&text);
    let config = load(&root).unwrap();
    let h = &config.rules.handlers[0];
    let f4 = h.fields.iter().find(|f| f.index == 4).unwrap();
    assert!(f4.source.is_none());
    let f5 = h.fields.iter().find(|f| f.index == 5).unwrap();
    assert_eq!(f5.source, Some(Source::Header("myheader".into())));
    let headers = IdentityHeaders::new([
        ("commonname", "A"),
        ("country", "SE"),
        ("myheader", "Lund"),
        ("locality", "X"),
    ]);
    let e = evaluate(&h.fields, &headers, None).unwrap();
    assert_eq!(e.common.first(Attribute::CountryName), None);
    assert_eq!(e.common.first(Attribute::LocalityName), Some("Lund"));
    assert_eq!(
        h.fields.len(),
        10,
        "the override replaces, the rest of the format stays"
    );
}

#[test]
fn required_roles_have_one_grammar_and_none_stands_alone() {
    let (_d, root) = root_with(&format!("{BASE}handler.1.requiredRoRoles = a, none\n"));
    let error = load(&root).unwrap_err().to_string();
    assert!(error.contains("requiredRoRoles"), "{error}");
    assert!(error.contains("`none` stands alone"), "{error}");
    let (_d, root) = root_with(&format!(
        "{BASE}handler.1.requiredRoRoles = ops, api-read\n"
    ));
    let config = load(&root).unwrap();
    assert_eq!(
        config.rules.handlers[0].required_roles,
        Some(RequiredRoles::All(vec!["ops".into(), "api-read".into()]))
    );
    let (_d, root) = root_with(&format!("{BASE}handler.1.requiredRoRoles = None\n"));
    assert_eq!(
        load(&root).unwrap().rules.handlers[0].required_roles,
        Some(RequiredRoles::AnyCertificate)
    );
    // The API's file uses the same grammar.
    assert_eq!(
        "a none".parse::<RequiredRoles>().unwrap_err(),
        "a, none".parse::<RequiredRoles>().unwrap_err()
    );
}

#[test]
fn handler_order_gaps_and_whole_match() {
    let text = "handler.20.filter = .*\nhandler.20.tokenprocedure = default\n\
                handler.3.filter = users/[a-z]+\nhandler.3.tokenprocedure = default\n\
                handler.10.filter =\nhandler.10.tokenprocedure = default\n";
    let (_d, root) = root_with(text);
    let ast = load(&root).unwrap().rules;
    assert_eq!(
        ast.handlers.iter().map(|h| h.number).collect::<Vec<_>>(),
        vec![3, 10, 20]
    );
    assert_eq!(ast.select("users/alice").unwrap().number, 3);
    assert_eq!(
        ast.select("users/alice/x").unwrap().number,
        20,
        "a partial match does not count"
    );
    assert_eq!(ast.select("").unwrap().number, 10);
    let (_d, root) = root_with("handler.1.filter = users\nhandler.1.tokenprocedure = default\n");
    let ast = load(&root).unwrap().rules;
    assert!(ast.select("users/x").is_none());
    assert!(ast.select("xusers").is_none());
    assert!(ast.select("").is_none());
}

#[test]
fn continuation_and_unicode_escapes_in_a_value() {
    let text = format!(
        "{BASE}handler.1.formatFields.11 = certrequests:1:title.value = \\\n    \"Sign\\u00e9r \\u2713\" \\\n    | upper\n\
         default.password.pattern = [0-9\\\\-]*\n"
    );
    let (_d, root) = root_with(&text);
    let config = load(&root).unwrap();
    let h = &config.rules.handlers[0];
    let f = h.fields.iter().find(|f| f.index == 11).unwrap();
    assert_eq!(f.source, Some(Source::Literal("Signér ✓".into())));
    assert_eq!(f.origin.line, 4);
    let e = evaluate(
        &h.fields,
        &IdentityHeaders::new([("commonname", "A")]),
        None,
    )
    .unwrap();
    assert_eq!(e.subject_for(1).first(Attribute::Title), Some("SIGNÉR ✓"));
    assert!(
        h.password_policy
            .check(&crate::token::Pin::new("12-34-56".into()))
            .is_ok()
    );
}

#[test]
fn every_problem_with_its_line() {
    let text = "default.pasword.minLength = 6\n\
                handler.1.filter = users/[\n\
                handler.1.tokenprocedure = defualt\n\
                handler.1.formatFields.4 = ast.valuetarget.countryname.value = country | lowr\n\
                handler.1.formatFields.5 = ast.valuetarget.nosuch.value = x\n\
                handler.2.filter = b\n\
                handler.2.format = missing.format\n\
                handler.2.tokenprocedure = default\n\
                handler.2.formatFields.12 = certrequests:2:title.value = \"T\"\n\
                handler.2.formatFields.13 = ast.valuetarget.title.value = t | match(\"(\")\n\
                handler.02.filter = again\n";
    let (_d, root) = root_with(text);
    let errors = load(&root).unwrap_err().0;
    let lines: Vec<(usize, &str)> = errors
        .iter()
        .map(|e| (e.line.unwrap(), e.message.as_str()))
        .collect();
    let expect = [
        (1, "did you mean `password.minLength`"),
        (2, "bad regular expression"),
        (3, "did you mean `default`"),
        (4, "unknown module `lowr`"),
        (5, "unknown attribute `nosuch`"),
        (7, "format file `missing.format` not found"),
        (9, "certrequests:2 does not exist"),
        (10, "bad regular expression in `match`"),
        (11, "set twice (also at line 6)"),
    ];
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
    for ((line, needle), (got_line, got)) in expect.iter().zip(&lines) {
        assert_eq!(line, got_line, "{got}");
        assert!(got.contains(needle), "line {line}: {got}");
    }
    for e in &errors {
        let shown = e.to_string();
        assert!(!shown.contains('\n'), "one line each: {shown}");
        assert!(
            shown.starts_with(&format!(
                "{}:{}: ",
                root.ast_properties().display(),
                e.line.unwrap()
            )),
            "{shown}"
        );
    }
}

#[test]
fn encrypted_parameters() {
    let (_d, root) = root_with("");
    let key = SecretKey::load_or_create(&root).unwrap();
    let text = format!(
        "{BASE}handler.1.password.pattern.encrypted = {}\nhandler.1.password.minLength.encrypted = {}\n",
        key.encrypt("[0-9]*").unwrap(),
        key.encrypt("8").unwrap()
    );
    std::fs::write(root.ast_properties(), text).unwrap();
    let h = load(&root).unwrap().rules.handlers.remove(0);
    assert_eq!(h.password_policy.min_length, 8);
    assert!(
        h.password_policy
            .check(&crate::token::Pin::new("12345678".into()))
            .is_ok()
    );
    assert!(
        h.password_policy
            .check(&crate::token::Pin::new("1234567a".into()))
            .is_err()
    );

    // A secret that fails validation is not repeated in the message.
    let text = format!(
        "{BASE}handler.1.password.minLength.encrypted = {}\n",
        key.encrypt("zz-secret").unwrap()
    );
    std::fs::write(root.ast_properties(), text).unwrap();
    let errors = load(&root).unwrap_err().to_string();
    assert!(
        errors.contains("not a number") && !errors.contains("zz-secret"),
        "{errors}"
    );
    std::fs::remove_file(root.secret_key()).unwrap();
    let errors = load(&root).unwrap_err().to_string();
    assert!(errors.contains("cannot read the secret key"), "{errors}");
}

#[test]
fn start_false_and_disabled_handler() {
    let (_d, root) = root_with("start = false\n");
    assert!(!load(&root).unwrap().rules.enabled);
    let text = format!(
        "{BASE}handler.2.filter = x\nhandler.2.tokenprocedure = default\nhandler.2.start = false\n"
    );
    let (_d, root) = root_with(&text);
    let ast = load(&root).unwrap().rules;
    assert_eq!(ast.handlers.len(), 1);
    assert!(ast.select("x").is_none());
}

/// Property test: any mix of plausible and broken lines loads or fails with located problems,
/// never panics, and every problem names a line of the file it is in.
#[cfg(test)]
mod property_tests {
    use proptest::prelude::*;

    use super::*;
    use crate::config::{DEFAULT_FORMAT, DEFAULT_GATEWAY_TOML};

    fn line() -> impl Strategy<Value = String> {
        let scope = prop_oneof![
            Just("default.".to_string()),
            (0u32..4).prop_map(|n| format!("handler.{n}.")),
            Just("handler.x.".to_string()),
            Just(String::new()),
        ];
        let param = proptest::sample::select(vec![
            "filter",
            "format",
            "tokenprocedure",
            "requiredRoRoles",
            "start",
            "password.minLength",
            "password.maxLength",
            "password.pattern",
            "pkcs12.profile",
            "pkcs12.profiles",
            "formatFields.4",
            "formatFields.11",
            "formatFields.x",
            "filtr",
            "pattern.encrypted",
        ]);
        let value = proptest::sample::select(vec![
            "",
            "users/.*",
            "[",
            "(",
            "ast-default.format",
            "nosuch.format",
            "../x",
            "default",
            "nosuch",
            "none",
            "a, b",
            "true",
            "false",
            "maybe",
            "6",
            "-1",
            "modern",
            "legacy, modern",
            "pbmac1",
            "ast.valuetarget.countryname.value =",
            "ast.valuetarget.localityname.value = myheader | trim",
            "certrequests:9:title.value = \"x\"",
            "ast.valuetarget.nosuch.value = x",
            "ast.valuetarget.title.value = x | lowr",
            "v1:AAAA",
        ]);
        (scope, param, value).prop_map(|(s, p, v)| format!("{s}{p} = {v}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn load_never_panics_and_locates_every_problem(lines in proptest::collection::vec(line(), 0..12)) {
            let dir = tempfile::tempdir().unwrap();
            let root = Root::new(dir.path());
            std::fs::create_dir_all(root.formats()).unwrap();
            std::fs::write(root.gateway_toml(), DEFAULT_GATEWAY_TOML).unwrap();
            std::fs::write(root.formats().join("ast-default.format"), DEFAULT_FORMAT).unwrap();
            let text = lines.join("\n");
            std::fs::write(root.ast_properties(), &text).unwrap();
            if let Err(errors) = load(&root) {
                prop_assert!(!errors.0.is_empty());
                for e in &errors.0 {
                    let shown = e.to_string();
                    prop_assert!(!shown.contains('\n'), "one line: {}", shown);
                    if let Some(line) = e.line {
                        prop_assert!(line >= 1 && line <= lines.len().max(1), "{} in\n{}", shown, text);
                    } else {
                        prop_assert!(shown.contains("no handler is defined") || shown.contains("secret key"), "{}", shown);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod migration_tests {
    use super::*;
    use crate::config::{DEFAULT_FORMAT, DEFAULT_GATEWAY_TOML};
    use crate::policy::{IdentityHeaders, evaluate};

    /// A Nexus-style file as operators have them: ISO-8859-1 bytes, `!` and `#` comments (one
    /// with a Windows path), `:` and whitespace separators, gaps in handler numbers, a value
    /// continued over lines, `\u` escapes, and the documented example.
    #[test]
    fn nexus_style_file_loads() {
        let mut text: Vec<u8> = Vec::new();
        text.extend_from_slice(b"! AST configuration, copied from C:\\Nexus\\pgwy\\conf\n");
        text.extend_from_slice(b"# R\xe4ksm\xf6rg\xe5s handler (Latin-1 comment)\n");
        text.extend_from_slice(b"default.tokenprocedure : default\n");
        text.extend_from_slice(b"default.requiredRoRoles  \n");
        text.extend_from_slice(b"handler.0.filter\n");
        text.extend_from_slice(b"handler.10.filter       staff/.*\n");
        text.extend_from_slice(
            b"handler.10.formatFields.4 = ast.valuetarget.countryname.value =\n",
        );
        text.extend_from_slice(
            b"handler.10.formatFields.5 = ast.valuetarget.localityname.value = myheader\n",
        );
        text.extend_from_slice(
            b"handler.10.formatFields.20 = commoncontext:organizationname.value = \\\n",
        );
        text.extend_from_slice(b"        \"V\xe4stra \\u00d6stra AB\"\n");
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        std::fs::create_dir_all(root.formats()).unwrap();
        std::fs::write(root.gateway_toml(), DEFAULT_GATEWAY_TOML).unwrap();
        std::fs::write(root.formats().join("ast-default.format"), DEFAULT_FORMAT).unwrap();
        std::fs::write(root.ast_properties(), &text).unwrap();
        let config = load(&root).unwrap_or_else(|e| panic!("{e}"));
        let ast = &config.rules;
        assert_eq!(
            ast.handlers.iter().map(|h| h.number).collect::<Vec<_>>(),
            vec![0, 10]
        );
        assert_eq!(ast.select("").unwrap().number, 0);
        let h = ast.select("staff/x").unwrap();
        assert_eq!(h.number, 10);
        assert!(
            h.required_roles.is_none(),
            "an empty requiredRoRoles means trusted proxies"
        );
        let headers =
            IdentityHeaders::new([("commonname", "A"), ("country", "SE"), ("myheader", "Lund")]);
        let e = evaluate(&h.fields, &headers, None).unwrap();
        use crate::ca::Attribute;
        assert_eq!(
            e.common.first(Attribute::OrganizationName),
            Some("Västra Östra AB")
        );
        assert_eq!(e.common.first(Attribute::CountryName), None);
        assert_eq!(e.common.first(Attribute::LocalityName), Some("Lund"));
    }
}
