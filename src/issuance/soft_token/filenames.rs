//! The file names of a delivered soft token: `<commonname>.p12` for the combined file,
//! `<commonname> <purpose>.p12` per purpose, sanitised so that they are safe on every file system
//! and in a Content-Disposition header, and unique within the token.

use crate::ca::IssuedCertificate;
use crate::issuance::recipe::{MadeFile, Planned};

use super::TokenFile;

/// Names the files of a made token: the combined file `filename`, a per-purpose file
/// `<its certificate's commonname> <purpose>.p12`; a name already taken gets ` (2)`, ` (3)` ….
pub(super) fn name_files(
    files: Vec<MadeFile>,
    issued: &[(Planned, IssuedCertificate)],
    filename: &str,
    common_name: impl Fn(Option<&Planned>) -> String,
) -> Vec<TokenFile> {
    let mut named: Vec<TokenFile> = Vec::with_capacity(files.len());
    for file in files {
        let planned = file
            .certificate
            .and_then(|index| issued.get(index))
            .map(|(p, _)| p);
        let purpose = planned.map(|p| p.template.purpose.clone());
        let base = match &purpose {
            Some(purpose) => per_purpose_stem(&common_name(planned), purpose),
            None => filename
                .strip_suffix(".p12")
                .unwrap_or(filename)
                .to_string(),
        };
        let name = unique_name(&base, |name| {
            named.iter().any(|f| f.name.eq_ignore_ascii_case(name))
        });
        named.push(TokenFile {
            name,
            purpose,
            pkcs12: file.pkcs12,
        });
    }
    named
}

/// `<commonname> <purpose>`, each part sanitised like [`sanitise_filename`].
fn per_purpose_stem(common_name: &str, purpose: &str) -> String {
    format!(
        "{} {}",
        sanitise_stem(common_name).unwrap_or_else(|| "token".into()),
        sanitise_stem(purpose).unwrap_or_else(|| "certificate".into())
    )
}

/// `<stem>.p12`, or `<stem> (2).p12`, `<stem> (3).p12` … while `taken`.
fn unique_name(stem: &str, taken: impl Fn(&str) -> bool) -> String {
    let mut name = format!("{stem}.p12");
    let mut n = 2;
    while taken(&name) {
        name = format!("{stem} ({n}).p12");
        n += 1;
    }
    name
}

/// `<commonname>.p12` with everything but letters and digits (of any script, with their
/// combining marks), space, `.`, `-` and `_` replaced by `_`, so the name is safe on every file
/// system and in a Content-Disposition header (the HTTP layer adds the ASCII fallback and the
/// RFC 6266 `filename*`).
pub fn sanitise_filename(common_name: &str) -> String {
    match sanitise_stem(common_name) {
        Some(stem) => format!("{stem}.p12"),
        None => "token.p12".into(),
    }
}

/// The sanitised text of [`sanitise_filename`] without the extension; `None` if nothing is left.
fn sanitise_stem(text: &str) -> Option<String> {
    let combining = |c: char| matches!(c, '\u{300}'..='\u{36F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}' | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}');
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || combining(c) || matches!(c, ' ' | '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.');
    (!cleaned.is_empty()).then(|| cleaned.to_string())
}

#[cfg(test)]
#[path = "filenames_tests.rs"]
mod tests;
