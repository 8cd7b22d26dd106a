//! The path remainder a handler filter sees, from the path as the client sent it.
//!
//! The remainder after `/pgwy/ast/` (or between `/pgwy/request/` and `ast.html`) arrives
//! percent-encoded. Filters are written for the decoded text (`contractors/acme corp`), so it
//! is decoded once, here — but only where decoding cannot make one path look like another to
//! a front that routes or authorises by the path it sees:
//!
//! * an escaped *unreserved* character (`%70p` for `pp`, `%2E` for `.`) is refused: RFC 3986
//!   calls the two spellings equivalent, yet fronts that match locations on the raw path
//!   would treat them as different paths, so a rule on `/pgwy/ast/pp` could be bypassed;
//! * an escaped `/` is refused: it would turn one segment the front saw into two for the
//!   filter;
//! * `.` and `..` segments are refused: a browser resolves them (a PIN page under
//!   `users/..%2F..%2Fevil/` would post its form to another path of the same origin);
//! * control characters, a `%` not followed by two hex digits and escapes that do not decode
//!   to UTF-8 are refused.

use percent_encoding::percent_decode_str;

/// Why a path remainder is refused; the message names the rule, never more than the offending
/// escape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathRefusal {
    #[error("the path spells `{0}` percent-encoded; send unreserved characters as themselves")]
    EncodedUnreserved(char),
    #[error("the path holds an encoded `/` (%2F); path segments must be sent as `/`")]
    EncodedSlash,
    #[error("the path holds a `.` or `..` segment")]
    DotSegment,
    #[error("the path holds a `%` that is not followed by two hex digits")]
    BadEscape,
    #[error("the path's escapes do not decode to UTF-8 text")]
    NotUtf8,
    #[error("the path holds a control character")]
    Control,
}

/// The decoded remainder a handler filter is matched against, from the remainder `sent` as it
/// appeared in the URL (see the module doc for what is refused).
pub fn decode_remainder(sent: &str) -> Result<String, PathRefusal> {
    let bytes = sent.as_bytes();
    let mut at = 0;
    while let Some(offset) = bytes[at..].iter().position(|&b| b == b'%') {
        let escape = at + offset;
        let hex = bytes
            .get(escape + 1..escape + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .ok_or(PathRefusal::BadEscape)?;
        if hex.is_ascii_alphanumeric() || matches!(hex, b'-' | b'.' | b'_' | b'~') {
            return Err(PathRefusal::EncodedUnreserved(char::from(hex)));
        }
        if hex == b'/' {
            return Err(PathRefusal::EncodedSlash);
        }
        at = escape + 3;
    }
    let decoded = percent_decode_str(sent)
        .decode_utf8()
        .map_err(|_| PathRefusal::NotUtf8)?;
    if decoded.chars().any(char::is_control) {
        return Err(PathRefusal::Control);
    }
    if decoded
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(PathRefusal::DotSegment);
    }
    Ok(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_and_non_ascii_escapes_decode() {
        assert_eq!(decode_remainder("").unwrap(), "");
        assert_eq!(decode_remainder("staff").unwrap(), "staff");
        assert_eq!(
            decode_remainder("contractors/acme%20corp").unwrap(),
            "contractors/acme corp"
        );
        assert_eq!(decode_remainder("st%C3%A4d").unwrap(), "städ");
        assert_eq!(decode_remainder("a%3Fb%23c%25").unwrap(), "a?b#c%");
        // What the PIN page's action writes decodes back to the same remainder.
        assert_eq!(decode_remainder("a..b/.x/..y").unwrap(), "a..b/.x/..y");
    }

    #[test]
    fn ambiguous_spellings_are_refused() {
        assert_eq!(
            decode_remainder("%70p"),
            Err(PathRefusal::EncodedUnreserved('p'))
        );
        assert_eq!(
            decode_remainder("users/%2e%2e/x"),
            Err(PathRefusal::EncodedUnreserved('.'))
        );
        for unreserved in ["%41", "%7A", "%30", "%2D", "%5F", "%7e"] {
            assert!(
                matches!(
                    decode_remainder(unreserved),
                    Err(PathRefusal::EncodedUnreserved(_))
                ),
                "{unreserved}"
            );
        }
        assert_eq!(
            decode_remainder("users/..%2F..%2Fevil"),
            Err(PathRefusal::EncodedSlash)
        );
        assert_eq!(decode_remainder("a%2fb"), Err(PathRefusal::EncodedSlash));
        for dots in ["..", ".", "users/../x", "x/./y", "x/.."] {
            assert_eq!(
                decode_remainder(dots),
                Err(PathRefusal::DotSegment),
                "{dots}"
            );
        }
        assert_eq!(decode_remainder("a%2"), Err(PathRefusal::BadEscape));
        assert_eq!(decode_remainder("a%zz"), Err(PathRefusal::BadEscape));
        assert_eq!(decode_remainder("%C3"), Err(PathRefusal::NotUtf8));
        assert_eq!(decode_remainder("a%0Ab"), Err(PathRefusal::Control));
        assert_eq!(decode_remainder("a%00"), Err(PathRefusal::Control));
    }
}
