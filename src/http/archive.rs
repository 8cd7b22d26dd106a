//! The form's answer for a `per-purpose` token: its PKCS#12 files in one zip, because a
//! browser form can download one file per request.
//!
//! Entries are stored, not deflated (PKCS#12 is encrypted: compression gains nothing), dated
//! now, mode 0600 for unzip tools that keep Unix permissions; non-ASCII names are written as
//! UTF-8 with the language-encoding flag (APPNOTE 4.4.4 bit 11), which the `zip` crate sets.

use std::io::{Cursor, Write};

use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

use crate::issuance::TokenFile;

/// The zip of `files`, in their order, under their names.
pub fn zip_files(files: &[TokenFile]) -> Result<Vec<u8>, zip::result::ZipError> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .unix_permissions(crate::private_files::FILE_MODE);
    for file in files {
        writer.start_file(file.name.as_str(), options)?;
        writer.write_all(&file.pkcs12)?;
    }
    Ok(writer.finish()?.into_inner())
}

/// The archive's download name: the combined file name with `.zip` for `.p12`.
pub fn zip_name(p12_name: &str) -> String {
    format!("{}.zip", p12_name.strip_suffix(".p12").unwrap_or(p12_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_bytes_survive_a_round_trip() {
        let files = vec![
            TokenFile {
                name: "Hanna Ström authentication.p12".into(),
                purpose: Some("authentication".into()),
                pkcs12: vec![1, 2, 3],
            },
            TokenFile {
                name: "Hanna Ström signing.p12".into(),
                purpose: Some("signing".into()),
                pkcs12: vec![4; 5000],
            },
        ];
        let bytes = zip_files(&files).unwrap();
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        assert_eq!(archive.len(), 2);
        for (index, expected) in files.iter().enumerate() {
            let mut entry = archive.by_index(index).unwrap();
            assert_eq!(entry.name().unwrap(), expected.name.as_str());
            assert_eq!(entry.compression(), CompressionMethod::Stored);
            assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o600));
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
            assert_eq!(content, expected.pkcs12);
        }
        assert_eq!(zip_name("Hanna Ström.p12"), "Hanna Ström.zip");
    }
}
