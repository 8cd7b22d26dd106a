//! Configuration edits that fail loudly: a replacement whose anchor text is missing panics with
//! the file and the anchor, so a change to the embedded default cannot silently turn a test
//! into one that checks the default instead of its edit.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

/// `text` with the first `from` replaced by `to`; panics when `from` is absent.
pub fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the anchor {from:?} is not in the text being edited:\n{text}"
    );
    text.replacen(from, to, 1)
}

/// `text` with every `from` replaced by `to`; panics when `from` is absent.
pub fn replaced_all(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the anchor {from:?} is not in the text being edited:\n{text}"
    );
    text.replace(from, to)
}

/// Appends `text` to the file at `path`.
pub fn append_file(path: &Path, text: &str) {
    let mut old =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    old.push_str(text);
    std::fs::write(path, old).unwrap();
}

/// Configuration text edited by anchor: `text.replacing(from, to)` is `str::replace` that
/// panics when `from` is not in the text (a changed default fails the test that edits it,
/// instead of silently testing the default).
pub trait Anchored {
    /// Every `from` replaced by `to`; panics when there is none.
    fn replacing(&self, from: &str, to: &str) -> String;
}

impl Anchored for str {
    fn replacing(&self, from: &str, to: &str) -> String {
        replaced_all(self, from, to)
    }
}
