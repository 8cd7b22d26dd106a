//! Tests of the format field language.

use super::*;

#[test]
fn documented_example() {
    let f = parse_field(4, "ast.valuetarget.countryname.value =", Origin::default()).unwrap();
    assert!(f.source.is_none());
    let f = parse_field(
        5,
        "ast.valuetarget.localityname.value = myheader",
        Origin::default(),
    )
    .unwrap();
    assert_eq!(f.source, Some(Source::Header("myheader".into())));
    assert_eq!(f.target.attribute, Attribute::LocalityName);
}

#[test]
fn modules_and_regex_escapes() {
    let f = parse_field(
            9,
            r#"ast.valuetarget.rfc822name.value = email | trim | lower | match("^[^@\s]+@example\.com$") | maxlen(128)"#,
            Origin::default(),
        )
        .unwrap();
    assert_eq!(f.modules.len(), 4);
    match &f.modules[2] {
        Module::Match(r) => {
            assert!(r.is_match("a@example.com"));
            assert!(!r.is_match("a@exampleXcom"));
        }
        m => panic!("{m:?}"),
    }
}

#[test]
fn targets() {
    assert_eq!(
        parse_target("certrequests:1:upn.value").unwrap().scope,
        Scope::Request(1)
    );
    assert_eq!(
        parse_target("commoncontext:surname.value").unwrap().scope,
        Scope::Common
    );
    assert!(
        parse_target("ast.valuetarget.nosuch.value")
            .unwrap_err()
            .contains("unknown attribute")
    );
}

#[test]
fn errors_are_clear() {
    let e = parse_expression("email | lowr").unwrap_err();
    assert!(e.contains("did you mean `lower`"), "{e}");
    assert!(
        parse_expression("email | match(\"[\")")
            .unwrap_err()
            .contains("bad regular expression")
    );
    assert!(
        parse_expression("\"open")
            .unwrap_err()
            .contains("unterminated")
    );
    assert!(parse_expression("cert:subject.rfc822name").is_err());
    let (s, m) = parse_expression("\"lit \\\"q\\\"\" | default(\"x\")").unwrap();
    assert_eq!(s, Some(Source::Literal("lit \"q\"".into())));
    assert_eq!(m.len(), 1);
}

/// Property tests: the parser never panics, and printing a parsed expression and parsing it
/// again gives the same expression. Failing seeds are kept in proptest-regressions/.
#[cfg(test)]
mod property_tests {
    use proptest::prelude::*;

    use super::*;

    fn print(source: &Option<Source>, modules: &[Module]) -> String {
        let mut out = source.as_ref().map(Source::syntax).unwrap_or_default();
        for m in modules {
            out.push_str(" | ");
            out.push_str(&m.describe());
        }
        out
    }

    /// Text for a quoted string: anything but a trailing backslash or a backslash before `"`.
    fn text() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 äé✓@.,;:|()=\"'\\\\-]{0,12}".prop_map(|s| {
            let s = s.replace("\\\"", "\"");
            if s.ends_with('\\') {
                format!("{s}x")
            } else {
                s
            }
        })
    }

    fn regex_text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("[a-z]+".to_string()),
            Just("^[^@\\s]+@example\\.com$".to_string()),
            Just("a|b".to_string()),
            Just("\\d{2,4}".to_string()),
            Just("\\\"x\\\"".to_string())
        ]
    }

    fn quoted(s: &str) -> String {
        quote(s)
    }

    fn source() -> impl Strategy<Value = String> {
        let attrs: Vec<&'static str> = Attribute::ALL
            .iter()
            .filter(|a| !a.is_san())
            .map(|a| a.name())
            .collect();
        let sans: Vec<&'static str> = Attribute::ALL
            .iter()
            .filter(|a| a.is_san())
            .map(|a| a.name())
            .collect();
        prop_oneof![
            "[a-zA-Z][a-zA-Z0-9_-]{0,15}",
            text().prop_map(|t| quoted(&t)),
            proptest::sample::select(attrs).prop_map(|a| format!("cert:subject.{a}")),
            proptest::sample::select(sans).prop_map(|a| format!("cert:san.{a}")),
        ]
    }

    fn module() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(vec![
                "trim", "lower", "upper", "required", "email", "country"
            ])
            .prop_map(str::to_string),
            (
                proptest::sample::select(vec!["truncate", "maxlen", "minlen"]),
                0usize..500
            )
                .prop_map(|(m, n)| format!("{m}( {n} )")),
            text().prop_map(|t| format!("default({})", quoted(&t))),
            regex_text().prop_map(|r| format!("match({})", quoted(&r))),
            (regex_text(), text()).prop_map(|(r, w)| format!(
                "replace({}, {})",
                quoted(&r),
                quoted(&w)
            )),
            proptest::collection::vec(text(), 1..4).prop_map(|v| format!(
                "oneof({})",
                v.iter().map(|s| quoted(s)).collect::<Vec<_>>().join(" ,")
            )),
        ]
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,64}") {
            let _ = parse_expression(&s);
            let _ = parse_field(1, &s, Origin::default());
            let _ = parse_target(&s);
        }

        #[test]
        fn never_panics_on_near_misses(s in "[a-z\"|() ,.:=\\\\0-9]{0,40}") {
            let _ = parse_expression(&s);
            let _ = parse_field(1, &format!("ast.valuetarget.title.value = {s}"), Origin::default());
        }

        #[test]
        fn print_parse_round_trip(source in source(), modules in proptest::collection::vec(module(), 0..5)) {
            let written = std::iter::once(source).chain(modules).collect::<Vec<_>>().join(" | ");
            let (s1, m1) = parse_expression(&written).map_err(|e| TestCaseError::fail(format!("{written}: {e}")))?;
            let printed = print(&s1, &m1);
            let (s2, m2) = parse_expression(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
            prop_assert_eq!(&s1, &s2);
            prop_assert_eq!(print(&s2, &m2), printed);
        }

        #[test]
        fn targets_round_trip(i in 0usize..1000, a in proptest::sample::select(Attribute::ALL.to_vec()), common in any::<bool>()) {
            let t = Target { scope: if common { Scope::Common } else { Scope::Request(i) }, attribute: a };
            prop_assert_eq!(parse_target(&t.to_string()).unwrap(), t);
        }
    }
}
