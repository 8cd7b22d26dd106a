//! What a name may contain: Unicode NFC, no invisible or direction-changing characters, no
//! unassigned code points; and what an e-mail address is (an RFC 5321 mailbox whose domain
//! survives IDNA unchanged).
//!
//! Why: a certificate shows a name to people and to programs. `Ström` sent decomposed
//! (`o` + U+0308) and composed must give the same certificate; a right-to-left override or a
//! zero-width space makes a name look like another one; a code point Unicode has not assigned
//! yet renders differently tomorrow. The crates do the Unicode work (`unicode-normalization`,
//! `unicode-properties`, `idna`, `email_address`); this module only decides what to refuse.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::decompose_canonical;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Why a field value is refused. The message names the code point or the rule, never the value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum TextRefusal {
    /// A character whose NFC form is a different ASCII character.
    LookAlike(char),
    /// A character that is never (or, for format characters, not without `allowformat`)
    /// accepted, and what it is.
    Character { c: char, what: &'static str },
    /// Not an RFC 5321 mailbox as the e-mail parser reads it.
    NotAnAddress(email_address::Error),
    /// A mailbox the parser accepts but a certificate must not carry, and why.
    Mailbox(&'static str),
    /// A word that mixes scripts (two of its characters).
    MixedScripts(super::script::MixedScripts),
}

impl std::fmt::Display for TextRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TextRefusal::LookAlike(c) => write!(
                f,
                "characters: {} is a look-alike of an ASCII character (Unicode normalisation would replace it)",
                code_point(*c)
            ),
            TextRefusal::Character { c, what } => {
                write!(f, "characters: {} is {what}", code_point(*c))
            }
            TextRefusal::NotAnAddress(e) => write!(f, "not an e-mail address ({e})"),
            TextRefusal::Mailbox(why) => f.write_str(why),
            TextRefusal::MixedScripts(mixed) => {
                let (first, second) = mixed.scripts();
                write!(
                    f,
                    "characters: a word mixes scripts ({} {first} with {} {second}); \
                     write each word in one script",
                    code_point(mixed.first),
                    code_point(mixed.second)
                )
            }
        }
    }
}

/// The NFC form of a field value. Refuses the few characters whose NFC form is a different
/// ASCII character (KELVIN SIGN → `K`, GREEK QUESTION MARK → `;`, GREEK VARIA → `` ` ``): they
/// are look-alikes, and silently turning them into ASCII (then `lower` into `k`) would put
/// something into the certificate that nobody sent.
pub(super) fn nfc(value: &str) -> Result<String, TextRefusal> {
    if let Some(c) = value.chars().find(|&c| !c.is_ascii() && maps_to_ascii(c)) {
        return Err(TextRefusal::LookAlike(c));
    }
    Ok(value.nfc().collect())
}

fn maps_to_ascii(c: char) -> bool {
    let mut all_ascii = true;
    decompose_canonical(c, |d| all_ascii &= d.is_ascii());
    all_ascii
}

/// Checks the characters of a final field value. Always refused: control characters, line and
/// paragraph separators, unassigned code points (Unicode 18 as known to `unicode-properties`),
/// the explicit bidirectional embeddings, overrides and isolates (U+202A–U+202E,
/// U+2066–U+2069), which reorder what a reader sees, the invisible default-ignorable code
/// points outside category Cf (variation selectors, Hangul fillers, the combining grapheme
/// joiner …) and a word that mixes scripts (`script`). Other format characters (zero-width
/// space and joiners, LRM/RLM, soft hyphen …) are refused unless the field says
/// `allowformat` — names in Persian or Indic scripts may need the zero-width non-joiner.
pub(super) fn check_characters(value: &str, allow_format: bool) -> Result<(), TextRefusal> {
    for c in value.chars() {
        let why = match c.general_category() {
            _ if is_bidi_control(c) => "a bidirectional embedding, override or isolate",
            GeneralCategory::Control => "a control character",
            GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => {
                "a line or paragraph separator"
            }
            GeneralCategory::Unassigned => "an unassigned code point",
            GeneralCategory::Format if !allow_format => {
                "an invisible format character (add `allowformat` to the field to accept these)"
            }
            GeneralCategory::Format => continue,
            _ if super::script::is_default_ignorable(c) => {
                "an invisible character (Unicode Default_Ignorable_Code_Point: a variation \
                 selector, a filler, a grapheme joiner …)"
            }
            _ => continue,
        };
        return Err(TextRefusal::Character { c, what: why });
    }
    super::script::check_words(value).map_err(TextRefusal::MixedScripts)
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// `value` in upper (or lower) case, except that a non-ASCII character whose case mapping is
/// all ASCII stays as it is: dotless `ı` → `I`, long `ſ` → `S`, `ß` → `SS`, `ﬁ` → `FI`. Such a
/// mapping would put ASCII into the certificate that nobody sent (`ıt | upper | country`
/// would pass as `IT`); kept, the character meets the verifiers that follow as itself.
pub(super) fn change_case(value: &str, upper: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        let mapped: String = if upper {
            c.to_uppercase().collect()
        } else {
            c.to_lowercase().collect()
        };
        if !c.is_ascii() && mapped.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&mapped);
        }
    }
    out
}

/// An e-mail address for a certificate (rfc822Name, an IA5String): an RFC 5321 mailbox with
/// an unquoted ASCII local part and a host name, no comments, no display name, no IP literal.
/// An internationalised domain is written as its A-labels (RFC 8399 §2.3); a domain that IDNA
/// would *change* rather than only encode (a Kelvin sign becoming `k`, full-width letters,
/// `。` as a dot) is refused, so the certificate names exactly the host that was sent. Host
/// names follow STD3: letters, digits and hyphens (no `_`), no hyphen at either end.
pub(super) fn mailbox(value: &str) -> Result<String, TextRefusal> {
    let options = email_address::Options::default()
        .with_required_tld()
        .without_domain_literal()
        .without_display_text();
    let parsed = email_address::EmailAddress::parse_with_options(value, options)
        .map_err(TextRefusal::NotAnAddress)?;
    let (local, domain) = (parsed.local_part(), parsed.domain());
    if local.starts_with('"') {
        return Err(TextRefusal::Mailbox("quoted local parts are not accepted"));
    }
    if !local.is_ascii() {
        return Err(TextRefusal::Mailbox("the part before `@` must be ASCII"));
    }
    let ascii = idna::uts46::Uts46::new()
        .to_ascii(
            domain.as_bytes(),
            idna::uts46::AsciiDenyList::STD3,
            idna::uts46::Hyphens::CheckFirstLast,
            idna::uts46::DnsLength::Verify,
        )
        .map_err(|_| {
            TextRefusal::Mailbox(
                "the domain is not a host name (letters, digits and inner hyphens per label; IDNA for others)",
            )
        })?;
    let sent: Vec<&str> = domain.split('.').collect();
    let encoded: Vec<&str> = ascii.split('.').collect();
    if sent.len() != encoded.len() {
        return Err(TextRefusal::Mailbox(
            "IDNA would change the domain's labels",
        ));
    }
    for (sent, encoded) in sent.iter().zip(&encoded) {
        let same = if sent.is_ascii() {
            sent.to_ascii_lowercase() == *encoded
        } else {
            idna::domain_to_unicode(encoded).0 == lower_keeping_lookalikes(sent)
        };
        if !same {
            return Err(TextRefusal::Mailbox(
                "IDNA would replace characters of the domain (e.g. a Kelvin sign or full-width letters)",
            ));
        }
    }
    if encoded
        .last()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(TextRefusal::Mailbox(
            "the domain is an IP address; a host name is needed",
        ));
    }
    Ok(format!("{local}@{ascii}"))
}

/// Lower case, except that a non-ASCII character whose lower case is ASCII (KELVIN SIGN → `k`)
/// stays as it is, so the comparison above sees the difference.
fn lower_keeping_lookalikes(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    for c in label.chars() {
        let lower: String = c.to_lowercase().collect();
        if !c.is_ascii() && lower.chars().any(|l| l.is_ascii()) {
            out.push(c);
        } else {
            out.push_str(&lower);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfc_composes_and_refuses_ascii_look_alikes() {
        assert_eq!(nfc("Stro\u{308}m").unwrap(), "Ström");
        assert_eq!(nfc("Ström").unwrap(), "Ström");
        // Canonical singletons onto non-ASCII are fine (OHM SIGN → GREEK CAPITAL OMEGA).
        assert_eq!(nfc("\u{2126}").unwrap(), "\u{3A9}");
        for lookalike in ["\u{212A}elvin", "a\u{37E}b", "\u{1FEF}"] {
            let e = nfc(lookalike).unwrap_err().to_string();
            assert!(e.contains("look-alike"), "{e}");
        }
        // Compatibility forms are not NFC's business (the e-mail check handles domains).
        assert_eq!(nfc("ｅ").unwrap(), "ｅ");
    }

    #[test]
    fn characters() {
        assert!(check_characters("Hanna Ström", false).is_ok());
        assert!(check_characters("𠮷田 太郎", false).is_ok());
        assert!(check_characters("A😀", false).is_ok());
        assert!(check_characters("محمد", false).is_ok());
        // Zero-width space, joiners, LRM, soft hyphen: format characters.
        for c in [
            '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{AD}', '\u{FEFF}',
        ] {
            let value = format!("Al{c}ice");
            assert!(check_characters(&value, false).is_err(), "{c:?}");
            assert!(
                check_characters(&value, true).is_ok(),
                "{c:?} with allowformat"
            );
        }
        // Explicit bidi controls: never.
        for c in ['\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}'] {
            let e = check_characters(&format!("Al{c}ice"), true)
                .unwrap_err()
                .to_string();
            assert!(e.contains("bidirectional"), "{e}");
        }
        // Unassigned (U+0378), a noncharacter (U+FFFF), separators, controls.
        for c in [
            '\u{378}', '\u{FFFF}', '\u{2028}', '\u{2029}', '\u{7}', '\u{85}',
        ] {
            assert!(check_characters(&format!("a{c}"), true).is_err(), "{c:?}");
        }
        // Invisible characters outside Cf, with or without `allowformat`.
        for c in ['\u{34F}', '\u{3164}', '\u{FE0F}', '\u{E0100}'] {
            let e = check_characters(&format!("Al{c}ice"), true)
                .unwrap_err()
                .to_string();
            assert!(e.contains("Default_Ignorable"), "{c:?}: {e}");
        }
        // A word mixing Latin and Cyrillic (the `а` is U+0430).
        let e = check_characters("P\u{430}ypal", true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("U+0050 Latn with U+0430 Cyrl"), "{e}");
        // The message names the code point, never the value.
        let e = check_characters("secret\u{200B}", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("U+200B") && !e.contains("secret"), "{e}");
    }

    #[test]
    fn case_changes_never_make_ascii_from_other_letters() {
        assert_eq!(change_case("Hanna Ström", true), "HANNA STRÖM");
        assert_eq!(change_case("ÅSA", false), "åsa");
        assert_eq!(change_case("se", true), "SE");
        assert_eq!(change_case("\u{131}t", true), "\u{131}T");
        assert_eq!(change_case("\u{17F}e", true), "\u{17F}E");
        assert_eq!(change_case("Weiß", true), "WEIß");
        assert_eq!(change_case("\u{212A}", false), "\u{212A}");
    }

    #[test]
    fn mailboxes() {
        assert_eq!(mailbox("alice@example.com").unwrap(), "alice@example.com");
        assert_eq!(
            mailbox("Alice.Andersson+tag@Sub.Example.COM").unwrap(),
            "Alice.Andersson+tag@sub.example.com"
        );
        // IDN domains become A-labels; A-labels stay.
        assert_eq!(
            mailbox("hanna@bücher.example").unwrap(),
            "hanna@xn--bcher-kva.example"
        );
        assert_eq!(
            mailbox("hanna@BÜCHER.example").unwrap(),
            "hanna@xn--bcher-kva.example"
        );
        assert_eq!(
            mailbox("hanna@xn--bcher-kva.example").unwrap(),
            "hanna@xn--bcher-kva.example"
        );
        for bad in [
            "alice(comment)@example.com",
            "alice@example.com (Alice)",
            "Alice <alice@example.com>",
            "alice@[127.0.0.1]",
            "alice@[IPv6:::1]",
            "alice@127.0.0.1",
            "alice@ex_ample.com",
            "alice@-example.com",
            "alice@localhost",
            "\"alice bob\"@example.com",
            "älice@example.com",
            "alice@\u{212A}.example.com",
            "alice@ｅｘａｍｐｌｅ.com",
            "alice@example\u{3002}com",
            "alice@@example.com",
            "alice@example..com",
            "@example.com",
            "alice",
        ] {
            assert!(
                mailbox(bad).is_err(),
                "{bad} was accepted: {:?}",
                mailbox(bad)
            );
        }
    }
}
