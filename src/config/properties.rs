//! Java `.properties` files with the line number of every key.
//!
//! Parsing is the `java-properties` crate's (separators, comments, continuations, `\uXXXX` and
//! the other escapes). It decodes windows-1252 unless told otherwise, so we decode
//! ourselves: UTF-8 when the bytes are valid UTF-8, else
//! ISO-8859-1 as Java's `Properties.load(InputStream)` does, and hand the crate UTF-8. Escaped
//! UTF-16 surrogate pairs (how Java writes characters outside the BMP) are joined first; the
//! property tests below found that the crate rejects them.

use std::path::Path;

use java_properties::{LineContent, PropertiesIter};

use super::ConfigError;

/// One `key = value` with the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// Parses properties text (bytes, encoding detected as described above).
pub fn parse(bytes: &[u8]) -> Result<Vec<Entry>, (Option<usize>, String)> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        // ISO-8859-1: every byte is the code point of the same number.
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    };
    let text = join_surrogate_escapes(&blank_comments(&text));
    let mut out = Vec::new();
    for line in PropertiesIter::new_with_encoding(text.as_bytes(), encoding_rs::UTF_8) {
        let line = line.map_err(|e| (e.line_number(), e.to_string()))?;
        let number = line.line_number();
        if let LineContent::KVPair(key, value) = line.consume_content() {
            out.push(Entry {
                key,
                value,
                line: number,
            });
        }
    }
    Ok(out)
}

/// Empties comment lines (keeping the line breaks, so line numbers stay). Java never looks
/// inside a comment, but the crate decodes escapes there and rejects e.g. `# C:\users`.
/// A line starting with `#` or `!` that continues a value (the previous line ended in an odd
/// number of backslashes) is not a comment.
fn blank_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut continuing = false;
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let body = line.strip_suffix('\r').unwrap_or(line);
        let trimmed = body.trim_start_matches([' ', '\t', '\u{c}']);
        if !continuing && (trimmed.starts_with('#') || trimmed.starts_with('!')) {
            continue;
        }
        out.push_str(line);
        if !continuing && trimmed.is_empty() {
            continue;
        }
        continuing = body.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1;
    }
    out
}

/// Java writes a character outside the BMP as two `\uXXXX` escapes (a UTF-16 surrogate pair);
/// the crate decodes each escape alone and rejects surrogates. Replaces each escaped pair with
/// the character itself; a lone surrogate is left for the crate to report.
fn join_surrogate_escapes(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let unit = |at: usize| -> Option<u32> {
        if chars.get(at) != Some(&'\\') || chars.get(at + 1) != Some(&'u') {
            return None;
        }
        let hex: String = chars.get(at + 2..at + 6)?.iter().collect();
        u32::from_str_radix(&hex, 16).ok()
    };
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '\\' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        if let (Some(high @ 0xD800..=0xDBFF), Some(low @ 0xDC00..=0xDFFF)) = (unit(i), unit(i + 6))
            && let Some(c) = char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
        {
            out.push(c);
            i += 12;
            continue;
        }
        // A backslash and the character it escapes travel together, so `\\u` is not an escape.
        out.push('\\');
        if let Some(&next) = chars.get(i + 1) {
            out.push(next);
        }
        i += 2;
    }
    out
}

/// Reads a properties file.
pub fn read_file(path: &Path) -> Result<Vec<Entry>, ConfigError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError::at(path, None, None, format!("cannot read the file: {e}")))?;
    parse(&bytes).map_err(|(line, message)| {
        ConfigError::at(
            path,
            line,
            None,
            format!("not a valid properties file: {message}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_comments_continuations_escapes() {
        let text = b"# comment\n! also\na=1\nb : 2\nc 3\nlong = one \\\n    two\nu = M\\u00fcnchen\n\nlast=x\n";
        let e = parse(text).unwrap();
        let get = |k: &str| e.iter().find(|x| x.key == k).unwrap().clone();
        assert_eq!(get("a").value, "1");
        assert_eq!(get("b").value, "2");
        assert_eq!(get("c").value, "3");
        assert_eq!(get("long").value, "one two");
        assert_eq!(get("long").line, 6);
        assert_eq!(get("u").value, "München");
        assert_eq!(get("last").line, 10);
    }

    #[test]
    fn surrogate_pairs_and_lone_surrogates() {
        // Found by the property test below (seed kept in proptest-regressions/).
        let e = parse(
            br"a = x\uD834\uDF00y
b = \\uD834 \\\uD834\uDF00
",
        )
        .unwrap();
        assert_eq!(e[0].value, "x\u{1D300}y");
        assert_eq!(
            e[1].value, "\\uD834 \\\u{1D300}",
            "an escaped backslash starts no escape"
        );
        let (line, message) = parse(b"ok = 1\nbad = \\uD834\n").unwrap_err();
        assert_eq!(line, Some(2), "{message}");
    }

    #[test]
    fn escapes_in_comments_are_ignored() {
        // Found by the e2e test: Java never decodes a comment, the crate did.
        let e = parse(
            br"# C:\users\ and \u escapes
! also \u12
a = 1 \
# not a comment \u0041
b = 2
",
        )
        .unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].value, "1 # not a comment A");
        assert_eq!((e[1].key.as_str(), e[1].line), ("b", 5));
        let (line, message) = parse(b"x = 1\n# \\u\nbad = \\uZZZZ\n").unwrap_err();
        assert_eq!(line, Some(3), "{message}");
    }

    #[test]
    fn utf8_and_latin1() {
        assert_eq!(
            parse("l = München\n".as_bytes()).unwrap()[0].value,
            "München"
        );
        assert_eq!(parse(b"l = M\xfcnchen\n").unwrap()[0].value, "München");
    }
}

/// Property tests of the reader: no panics on any bytes, and Java-escaped files read back to
/// the same keys, values and line numbers. Failing seeds are kept in proptest-regressions/.
#[cfg(test)]
mod property_tests {
    use proptest::prelude::*;

    use super::*;

    /// One character as Java's `Properties.store` writes it (non-ASCII as `\uXXXX`, UTF-16).
    fn escape_char(c: char, in_key: bool, first: bool) -> String {
        match c {
            '\\' => "\\\\".into(),
            '\n' => "\\n".into(),
            '\r' => "\\r".into(),
            '\t' => "\\t".into(),
            '\u{c}' => "\\f".into(),
            '=' | ':' | '#' | '!' => format!("\\{c}"),
            ' ' if in_key || first => "\\ ".into(),
            c if (' '..='~').contains(&c) => c.to_string(),
            c => {
                let mut units = [0u16; 2];
                c.encode_utf16(&mut units)
                    .iter()
                    .map(|u| format!("\\u{u:04X}"))
                    .collect()
            }
        }
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn never_panics_on_near_misses(s in "[ a=:#!\\\\u0-9A-FnZ\\n\\r\\t]{0,64}") {
            let _ = parse(s.as_bytes());
        }

        #[test]
        fn escaped_entries_read_back(
            entries in proptest::collection::vec(("[a-zA-Z0-9 .=:_ä-]{1,12}", "\\PC{0,20}", proptest::collection::vec(any::<bool>(), 0..20), any::<bool>()), 1..8),
        ) {
            let mut text = String::new();
            let mut line = 1;
            let mut expected = Vec::new();
            for (i, (key, value, breaks, comment)) in entries.iter().enumerate() {
                let key = format!("k{i}{key}");
                if *comment {
                    text.push_str("# a comment \\u \\\n! C:\\users\\ \n");
                    line += 2;
                }
                expected.push(Entry { key: key.clone(), value: value.clone(), line });
                let k: String = key.chars().map(|c| escape_char(c, true, false)).collect();
                text.push_str(&k);
                text.push_str(if i % 2 == 0 { " = " } else { ":" });
                for (j, c) in value.chars().enumerate() {
                    // A continuation may go before any character that is not whitespace (the
                    // next line's leading whitespace is dropped, as in Java).
                    if j > 0 && breaks.get(j).copied().unwrap_or(false) && !c.is_whitespace() {
                        text.push_str("\\\n    ");
                        line += 1;
                    }
                    text.push_str(&escape_char(c, false, j == 0));
                }
                text.push('\n');
                line += 1;
            }
            let parsed = parse(text.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e:?}\n{text}")))?;
            prop_assert_eq!(parsed, expected, "{}", text);
        }
    }
}
