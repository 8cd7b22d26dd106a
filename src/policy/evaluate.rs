//! Evaluating format fields over a request.

use std::collections::BTreeMap;

use super::{FieldSpec, IdentityHeaders, Module, PolicyError, Scope, Source};
use crate::ca::{Attribute, Subject};

/// What the caller's verified client certificate says, for `cert:` sources.
#[derive(Debug, Clone, Default)]
pub struct CertificateFacts {
    pub subject: Vec<(Attribute, String)>,
    pub sans: Vec<(Attribute, String)>,
}

/// The evaluated fields: the common context and per-request values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvaluatedFields {
    pub common: Subject,
    pub requests: BTreeMap<usize, Subject>,
}

impl EvaluatedFields {
    /// The subject of certificate request `index`: its own values, then every common value
    /// of an attribute it lacks.
    pub fn subject_for(&self, index: usize) -> Subject {
        let own = self.requests.get(&index).cloned().unwrap_or_default();
        let mut values = own.values.clone();
        for (attribute, value) in &self.common.values {
            if own.first(*attribute).is_none() {
                values.push((*attribute, value.clone()));
            }
        }
        Subject { values }
    }
}

/// Evaluates the fields (already merged and ordered by index) over the request's headers and
/// the caller's certificate.
pub fn evaluate(
    fields: &[FieldSpec],
    headers: &IdentityHeaders,
    certificate: Option<&CertificateFacts>,
) -> Result<EvaluatedFields, PolicyError> {
    let mut out = EvaluatedFields::default();
    for field in fields {
        let Some(source) = &field.source else {
            continue;
        };
        let raw: Option<String> = match source {
            Source::Header(name) => headers.get(name)?,
            Source::Literal(text) => Some(text.clone()),
            Source::CertSubject(a) => certificate.and_then(|c| find(&c.subject, *a)),
            Source::CertSan(a) => certificate.and_then(|c| find(&c.sans, *a)),
        };
        let invalid = |rule: String| PolicyError::FieldInvalid {
            field: field.target.attribute.name().to_string(),
            index: field.index,
            rule,
        };
        // NFC first, so that verifiers and `oneof`/`match` see one spelling of each text.
        let raw = raw
            .map(|v| super::text::nfc(&v))
            .transpose()
            .map_err(|e| invalid(e.to_string()))?;
        let value = apply_modules(field, source, raw)?;
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            continue;
        };
        let allow_format = field
            .modules
            .iter()
            .any(|m| matches!(m, Module::AllowFormat));
        super::text::check_characters(&value, allow_format).map_err(|e| invalid(e.to_string()))?;
        // A modifier (`replace`) may have produced a non-NFC sequence.
        let value = super::text::nfc(&value).map_err(|e| invalid(e.to_string()))?;
        let subject = match field.target.scope {
            Scope::Common => &mut out.common,
            Scope::Request(i) => out.requests.entry(i).or_default(),
        };
        subject.values.push((field.target.attribute, value));
    }
    Ok(out)
}

fn find(values: &[(Attribute, String)], attribute: Attribute) -> Option<String> {
    values
        .iter()
        .find(|(a, _)| *a == attribute)
        .map(|(_, v)| v.clone())
}

fn apply_modules(
    field: &FieldSpec,
    source: &Source,
    mut value: Option<String>,
) -> Result<Option<String>, PolicyError> {
    let invalid = |rule: String| PolicyError::FieldInvalid {
        field: field.target.attribute.name().to_string(),
        index: field.index,
        rule,
    };
    for module in &field.modules {
        match module {
            Module::Default(d) => {
                if value.as_deref().is_none_or(str::is_empty) {
                    value = Some(d.clone());
                }
                continue;
            }
            Module::Required => {
                if value.as_deref().is_none_or(str::is_empty) {
                    return Err(PolicyError::FieldMissing {
                        field: field.target.attribute.name().to_string(),
                        index: field.index,
                        source_name: source.to_string(),
                    });
                }
                continue;
            }
            _ => {}
        }
        // Every other module leaves a missing value missing.
        let Some(v) = value.as_mut() else { continue };
        match module {
            Module::Trim => *v = v.trim().to_string(),
            Module::Lower => *v = super::text::change_case(v, false),
            Module::Upper => *v = super::text::change_case(v, true),
            Module::Replace(re, with) => *v = re.replace_all(v, with.as_str()).into_owned(),
            Module::Truncate(n) => *v = v.chars().take(*n).collect(),
            Module::Match(re) => {
                if !re.is_match(v) {
                    return Err(invalid(module.describe()));
                }
            }
            Module::MaxLen(n) => {
                if v.chars().count() > *n {
                    return Err(invalid(module.describe()));
                }
            }
            Module::MinLen(n) => {
                if v.chars().count() < *n {
                    return Err(invalid(module.describe()));
                }
            }
            Module::OneOf(options) => {
                if !options.iter().any(|o| o == v) {
                    return Err(invalid(module.describe()));
                }
            }
            Module::Email => {
                *v = super::text::mailbox(v).map_err(|why| invalid(format!("email: {why}")))?;
            }
            Module::Country => {
                if !is_country(v) {
                    return Err(invalid(
                        "country (an ISO 3166 alpha-2 code such as SE)".into(),
                    ));
                }
            }
            Module::Default(_) | Module::Required | Module::AllowFormat => {}
        }
    }
    Ok(value)
}

/// ISO 3166-1 alpha-2 officially assigned codes.
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS \
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK \
FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM \
JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS \
MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW \
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM \
US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

fn is_country(v: &str) -> bool {
    v.len() == 2 && COUNTRIES.split(' ').any(|c| c == v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Origin, parse_field};

    fn fields(lines: &[(u32, &str)]) -> Vec<FieldSpec> {
        lines
            .iter()
            .map(|(i, l)| parse_field(*i, l, Origin::default()).unwrap())
            .collect()
    }

    #[test]
    fn common_context_fills_requests() {
        let f = fields(&[
            (
                1,
                "ast.valuetarget.commonname.value = commonname | required",
            ),
            (2, "certrequests:1:commonname.value = \"Signer\""),
            (
                3,
                "ast.valuetarget.countryname.value = country | upper | country",
            ),
        ]);
        let h = IdentityHeaders::new([("commonname", "Alice"), ("country", "se")]);
        let e = evaluate(&f, &h, None).unwrap();
        assert_eq!(e.subject_for(0).first(Attribute::CommonName), Some("Alice"));
        assert_eq!(
            e.subject_for(1).first(Attribute::CommonName),
            Some("Signer")
        );
        assert_eq!(e.subject_for(1).first(Attribute::CountryName), Some("SE"));
    }

    #[test]
    fn each_module() {
        let h = IdentityHeaders::new([("v", "  Hello World  ")]);
        let run = |expr: &str| {
            let f = fields(&[(1, &format!("ast.valuetarget.title.value = {expr}"))]);
            evaluate(&f, &h, None).map(|e| e.common.first(Attribute::Title).map(str::to_string))
        };
        assert_eq!(run("v | trim").unwrap().as_deref(), Some("Hello World"));
        assert_eq!(
            run("v | trim | lower").unwrap().as_deref(),
            Some("hello world")
        );
        assert_eq!(
            run("v | trim | upper").unwrap().as_deref(),
            Some("HELLO WORLD")
        );
        assert_eq!(
            run("v | trim | replace(\"o\",\"0\")").unwrap().as_deref(),
            Some("Hell0 W0rld")
        );
        assert_eq!(
            run("v | trim | truncate(5)").unwrap().as_deref(),
            Some("Hello")
        );
        assert_eq!(run("nope | default(\"x\")").unwrap().as_deref(), Some("x"));
        assert_eq!(run("nope | trim").unwrap(), None);
        assert!(matches!(
            run("nope | required"),
            Err(PolicyError::FieldMissing { .. })
        ));
        assert!(run("v | trim | match(\"Hello.*\")").is_ok());
        assert!(matches!(
            run("v | trim | match(\"Hello\")"),
            Err(PolicyError::FieldInvalid { .. })
        ));
        assert!(matches!(
            run("v | maxlen(3)"),
            Err(PolicyError::FieldInvalid { .. })
        ));
        assert!(matches!(
            run("v | minlen(30)"),
            Err(PolicyError::FieldInvalid { .. })
        ));
        assert!(run("v | trim | oneof(\"Hello World\",\"x\")").is_ok());
        assert!(matches!(
            run("v | oneof(\"x\")"),
            Err(PolicyError::FieldInvalid { .. })
        ));
        assert!(matches!(
            run("v | email"),
            Err(PolicyError::FieldInvalid { .. })
        ));
        assert!(matches!(
            run("v | country"),
            Err(PolicyError::FieldInvalid { .. })
        ));
        assert!(is_country("SE") && !is_country("XX") && !is_country("se"));
        // Dotless i and long s upper-case to ASCII; they stay themselves and are refused.
        for sent in ["\u{131}t", "\u{17F}e"] {
            let h = IdentityHeaders::new([("v", sent)]);
            let f = fields(&[(1, "ast.valuetarget.countryname.value = v | upper | country")]);
            assert!(
                matches!(
                    evaluate(&f, &h, None),
                    Err(PolicyError::FieldInvalid { .. })
                ),
                "{sent}"
            );
        }
    }

    #[test]
    fn names_are_nfc_and_visible() {
        let run = |line: &str, value: &str| {
            let h = IdentityHeaders::new([("v", value)]);
            let f = fields(&[(1, line)]);
            evaluate(&f, &h, None)
                .map(|e| e.common.first(Attribute::CommonName).map(str::to_string))
        };
        let cn = "ast.valuetarget.commonname.value = v | trim";
        // Decomposed and composed spellings give one value; `oneof` compares NFC.
        assert_eq!(run(cn, "Stro\u{308}m").unwrap().as_deref(), Some("Ström"));
        assert!(
            run(
                "ast.valuetarget.commonname.value = v | oneof(\"Ström\")",
                "Stro\u{308}m"
            )
            .is_ok()
        );
        for bad in [
            "Alice\u{202E}ecilA",
            "Al\u{200B}ice",
            "A\u{378}",
            "\u{212A}ai",
        ] {
            assert!(
                matches!(run(cn, bad), Err(PolicyError::FieldInvalid { .. })),
                "{bad:?}"
            );
        }
        // Per field: `allowformat` admits the zero-width non-joiner (Persian names), not RLO.
        let allow = "ast.valuetarget.commonname.value = v | trim | allowformat";
        assert!(run(allow, "می\u{200C}خواهم").is_ok());
        assert!(run(allow, "Alice\u{202E}").is_err());
        // `replace` can remove what the check would refuse.
        let strip = "ast.valuetarget.commonname.value = v | replace(\"\u{200B}\",\"\")";
        assert_eq!(
            run(strip, "Al\u{200B}ice").unwrap().as_deref(),
            Some("Alice")
        );
    }

    #[test]
    fn email_module_writes_a_labels() {
        let run = |value: &str| {
            let h = IdentityHeaders::new([("email", value)]);
            let f = fields(&[(
                1,
                "ast.valuetarget.rfc822name.value = email | trim | lower | email",
            )]);
            evaluate(&f, &h, None)
                .map(|e| e.common.first(Attribute::Rfc822Name).map(str::to_string))
        };
        assert_eq!(
            run("Hanna@Bücher.Example").unwrap().as_deref(),
            Some("hanna@xn--bcher-kva.example")
        );
        // The Kelvin sign never becomes `k` (NFC would make it `K`, `lower` then `k`).
        assert!(matches!(
            run("alice@\u{212A}.example.com"),
            Err(PolicyError::FieldInvalid { .. })
        ));
        assert!(run("alice@[127.0.0.1]").is_err());
    }

    #[test]
    fn refusal_does_not_echo_the_value() {
        let h = IdentityHeaders::new([("v", "secret-value")]);
        let f = fields(&[(1, "ast.valuetarget.title.value = v | maxlen(3)")]);
        let e = evaluate(&f, &h, None).unwrap_err().to_string();
        assert!(!e.contains("secret-value"), "{e}");
        assert!(e.contains("title") && e.contains("maxlen(3)"), "{e}");
    }
}
