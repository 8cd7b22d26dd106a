//! Java `.properties` files with the line number of every key.
//!
//! Parsing is the `java-properties` crate's (separators, comments, continuations, `\uXXXX` and
//! the other escapes, tested in reference/crates.md). It decodes windows-1252 unless told
//! otherwise (P12), so we pick the encoding: UTF-8 when the bytes are valid UTF-8, else
//! ISO-8859-1 as Java's `Properties.load(InputStream)` does (windows-1252 is the WHATWG
//! superset of ISO-8859-1).

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
    let encoding = if std::str::from_utf8(bytes).is_ok() {
        encoding_rs::UTF_8
    } else {
        encoding_rs::WINDOWS_1252
    };
    let mut out = Vec::new();
    for line in PropertiesIter::new_with_encoding(bytes, encoding) {
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
    fn utf8_and_latin1() {
        assert_eq!(
            parse("l = München\n".as_bytes()).unwrap()[0].value,
            "München"
        );
        assert_eq!(parse(b"l = M\xfcnchen\n").unwrap()[0].value, "München");
    }
}
