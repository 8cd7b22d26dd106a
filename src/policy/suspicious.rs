//! Identity values that decode but are wrong: a front's placeholder for a missing value and
//! text that went through the wrong encoding on its way here.
//!
//! Why: these values pass every syntax check and would be signed into a certificate as a name.
//! - `(null)`: Apache's `RequestHeader set h "%{VAR}e"` sends this text when `VAR` is not set
//!   (a claim the provider did not release); the fix is `env=VAR` on the directive.
//! - UTF-8 read as Latin-1 (`Zoë` arriving as `ZoÃ«`): the front sends UTF-8 and the gateway
//!   reads Latin-1 (`[trust] header_encoding = "latin-1"`), or the front itself re-encoded
//!   UTF-8 bytes. Detected as a character U+00C2–U+00F4 followed by the characters that, taken
//!   as ISO-8859-1 or Windows-1252 bytes, complete a valid UTF-8 sequence: a real name does not
//!   put `©`, `«` or `¶` after `Ã`.
//!
//! Refused by default (`field-suspicious`); a handler may accept them
//! (`refuseSuspicious = false`). Messages never contain the value.

use super::HeaderEncoding;

/// Why a decoded value is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suspicion {
    /// The literal text `(null)`.
    NullPlaceholder,
    /// UTF-8 bytes read as Latin-1 or Windows-1252.
    Mojibake,
}

impl Suspicion {
    /// The operator's explanation, without the value.
    pub fn reason(self) -> &'static str {
        match self {
            Suspicion::NullPlaceholder => {
                "the value is the literal text (null), which Apache sends for an unset \
                 variable in RequestHeader set; add env=<variable> to that directive"
            }
            Suspicion::Mojibake => {
                "the value looks like UTF-8 read as Latin-1 (mojibake such as Ã« for ë): the \
                 front sends UTF-8, so set [trust] header_encoding (or the handler's \
                 headerEncoding) to utf-8 or utf-8-or-latin-1, or fix the front's encoding"
            }
        }
    }
}

/// Whether a decoded identity value is one of the wrong-but-decodable kinds.
pub fn check(value: &str) -> Result<(), Suspicion> {
    if value.trim().eq_ignore_ascii_case("(null)") {
        return Err(Suspicion::NullPlaceholder);
    }
    if is_mojibake(value) {
        return Err(Suspicion::Mojibake);
    }
    Ok(())
}

/// A run of characters that, as single bytes, is a valid multi-byte UTF-8 sequence.
fn is_mojibake(value: &str) -> bool {
    let bytes: Vec<Option<u8>> = value.chars().map(single_byte).collect();
    bytes.iter().enumerate().any(|(i, lead)| {
        let Some(lead @ 0xC2..=0xF4) = *lead else {
            return false;
        };
        let length = match lead {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            _ => 4,
        };
        let Some(run) = bytes.get(i..i + length) else {
            return false;
        };
        let run: Option<Vec<u8>> = run.iter().copied().collect();
        run.is_some_and(|run| {
            run[1..].iter().all(|b| (0x80..=0xBF).contains(b)) && std::str::from_utf8(&run).is_ok()
        })
    })
}

/// The byte a character stands for in ISO-8859-1, or in Windows-1252 for 0x80–0x9F.
fn single_byte(c: char) -> Option<u8> {
    const CP1252: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž',
        '\u{8F}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}',
        'ž', 'Ÿ',
    ];
    if let Ok(b) = u8::try_from(u32::from(c)) {
        return Some(b);
    }
    CP1252
        .iter()
        .position(|&x| x == c)
        .and_then(|i| u8::try_from(0x80 + i).ok())
}

/// When `value` reads as base64url of a name (letters beyond ASCII or a space in printable
/// text) while the configured encoding is not base64url: the decoded text, for a hint that the
/// front probably sends base64url (`OIDCPassClaimsAs … base64url`). A hint only; never a
/// refusal (some real values are valid base64url).
pub fn base64url_text(value: &str, encoding: HeaderEncoding) -> Option<String> {
    if encoding == HeaderEncoding::Base64Url || value.len() < 4 {
        return None;
    }
    let body = value.trim_end_matches('=');
    if !body
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    let text = HeaderEncoding::Base64Url.decode(value.as_bytes()).ok()?;
    let printable = !text.chars().any(char::is_control);
    let name_like = text
        .chars()
        .any(|c| c == ' ' || (!c.is_ascii() && c.is_alphabetic()));
    (printable && name_like).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_placeholder() {
        assert_eq!(check("(null)"), Err(Suspicion::NullPlaceholder));
        assert_eq!(check(" (NULL) "), Err(Suspicion::NullPlaceholder));
        assert_eq!(check("Nullander"), Ok(()));
        assert_eq!(check("(null) Smith"), Ok(()));
    }

    #[test]
    fn mojibake() {
        for bad in [
            "ZoÃ« Berg",           // ë as UTF-8 read as Latin-1
            "Hanna StrÃ¶m",        // ö
            "Å\u{81}ukasz",        // Ł: C5 81, the 0x81 a C1 control in Latin-1
            "Ã…ngström",           // Å read as Windows-1252 (0x85 = …)
            "Ã©cole",              // é
            "â‚¬ sign",            // € (three bytes E2 82 AC, 82 AC as Windows-1252)
            "ð\u{9f}\u{98}\u{80}", // an emoji's four bytes
        ] {
            assert_eq!(check(bad), Err(Suspicion::Mojibake), "{bad}");
        }
        for good in [
            "Zoë Berg",
            "SÃO PAULO", // Ã followed by a letter
            "CÂBLE",
            "Łukasz Wróbel",
            "Ångström",
            "Müller-Lüdenscheidt",
            "José Ñúñez",
            "Æsa Ø. Å",
            "ÂÂÂ",
            "Ã",
            "李小龍",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        // The reason names the cause, not the value.
        assert!(!Suspicion::Mojibake.reason().contains("Zo"));
    }

    #[test]
    fn base64url_hint() {
        use HeaderEncoding::*;
        // "Zoë Berg" and "Hanna Ström" as base64url.
        assert_eq!(
            base64url_text("Wm_DqyBCZXJn", Utf8OrLatin1).as_deref(),
            Some("Zoë Berg")
        );
        assert_eq!(
            base64url_text("SGFubmEgU3Ryw7Zt", Latin1).as_deref(),
            Some("Hanna Ström")
        );
        assert_eq!(base64url_text("SGFubmEgU3Ryw7Zt", Base64Url), None);
        for plain in [
            "Alice",
            "Alex",
            "Anna",
            "Bert",
            "Kowalski",
            "Andersson",
            "SE",
            "Zoë Berg",
            "a@b.example",
        ] {
            assert_eq!(base64url_text(plain, Utf8), None, "{plain}");
        }
    }
}
