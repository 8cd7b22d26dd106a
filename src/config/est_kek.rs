//! EST key-encryption key files (`handler.<n>.est.keks` in ast.properties): the pre-shared AES
//! keys an EST client names with DecryptKeyIdentifier to receive its server-generated key
//! encrypted under one of them. A file under the root, mode 0600 (refused when group or others
//! may read it), one key per line:
//!
//! ```text
//! # identifier = base64 of 16 or 32 random bytes (AES-128 or AES-256 key wrap)
//! kek-1 = q1vVtTQ8b2mM0y6b0Qk3cJx0e1n7u0c4f2b9a8d7e6c=
//! ```
//!
//! An identifier is 1 to 64 letters, digits, `-`, `.`, `_`, `~` or `:`; its UTF-8 bytes are
//! what the client's DecryptKeyIdentifier holds. Problems name the file and line, never a key.
//! `ast-gateway config new-kek` adds a random key (`add_kek`), creating the file 0600.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use zeroize::Zeroizing;

use super::Root;

/// One key-encryption key. The key is zeroised on drop and never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyEncryptionKey {
    pub id: String,
    pub key: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyEncryptionKey({}, [redacted])", self.id)
    }
}

/// Whether `id` is a key identifier as a KEK file may write it.
pub fn is_kek_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':'))
}

/// Reads the KEK file `written` (relative to the root, or absolute): its path and its keys.
pub fn read_kek_file(
    root: &Root,
    written: &str,
) -> Result<(PathBuf, Vec<KeyEncryptionKey>), String> {
    let path = root.dir().join(written.trim());
    let shown = path.display().to_string();
    let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read the key-encryption key file {shown}: {e}; create it (mode 0600) with lines `<identifier> = <base64 of 32 random bytes>`"
        )
    })?);
    check_private(&path)?;
    let keys = parse(&text).map_err(|(line, m)| format!("{shown} line {line}: {m}"))?;
    Ok((path, keys))
}

/// Adds a new random 32-byte key named `id` to the KEK file `written` (relative to the root),
/// creating the file (mode 0600) and its directories (0700) when missing. Returns the key in
/// base64, for the client that will use it.
pub fn add_kek(root: &Root, written: &str, id: &str) -> Result<Zeroizing<String>, String> {
    use aws_lc_rs::rand::SecureRandom;
    use std::io::Write;
    if !is_kek_id(id) {
        return Err(format!(
            "`{id}` is not a key identifier: write 1 to 64 letters, digits, `-`, `.`, `_`, `~` or `:`"
        ));
    }
    let path = root.dir().join(written.trim());
    if path.exists() {
        let (_, keys) = read_kek_file(root, written)?;
        if keys.iter().any(|k| k.id == id) {
            return Err(format!("{} already has a key `{id}`", path.display()));
        }
    } else if let Some(dir) = path.parent() {
        crate::private_files::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut key = Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::SystemRandom::new()
        .fill(key.as_mut_slice())
        .map_err(|_| "no random bytes for the key".to_string())?;
    let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(key.as_slice()));
    let line = Zeroizing::new(format!("{id} = {}\n", encoded.as_str()));
    let mut file = crate::private_files::append(&path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(encoded)
}

/// Refuses a file group or others may read or write.
#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} holds secret keys but is accessible to group or others (mode {mode:o}); run `chmod 600 {}`",
            path.display(),
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), String> {
    Ok(())
}

/// The keys of a KEK file's text; an error names the line (1-based), never the key.
pub(crate) fn parse(text: &str) -> Result<Vec<KeyEncryptionKey>, (usize, String)> {
    let mut keys: Vec<KeyEncryptionKey> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let form = || {
            (
                number,
                "write `<identifier> = <base64 of the key>`".to_string(),
            )
        };
        // An identifier has no `=` or blank, so the first `=` ends it (base64 padding is
        // `=` too: a line without the separator must not split there).
        let (id, value) = line.split_once('=').ok_or_else(form)?;
        let id = id.trim();
        if id.contains(char::is_whitespace) {
            return Err(form());
        }
        if !is_kek_id(id) {
            return Err((
                number,
                "the identifier must be 1 to 64 letters, digits, `-`, `.`, `_`, `~` or `:`"
                    .to_string(),
            ));
        }
        if keys.iter().any(|k| k.id == id) {
            return Err((number, format!("the identifier `{id}` is written twice")));
        }
        let key = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .map_err(|_| (number, format!("the key of `{id}` is not base64")))?,
        );
        if key.len() != 16 && key.len() != 32 {
            return Err((
                number,
                format!(
                    "the key of `{id}` is {} bytes; an AES key-encryption key is 16 or 32 bytes (openssl rand -base64 32)",
                    key.len()
                ),
            ));
        }
        keys.push(KeyEncryptionKey {
            id: id.to_string(),
            key,
        });
    }
    if keys.is_empty() {
        return Err((
            1,
            "no key; write `<identifier> = <base64 of 32 random bytes>`".into(),
        ));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_are_read_and_never_shown() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let text = format!(
            "# devices\nkek-1 = {}\n\nkek:2={}\n",
            b64.encode([7u8; 32]),
            b64.encode([9u8; 16])
        );
        let keys = parse(&text).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!((keys[0].id.as_str(), keys[0].key.len()), ("kek-1", 32));
        assert_eq!((keys[1].id.as_str(), keys[1].key.len()), ("kek:2", 16));
        assert!(!format!("{keys:?}").contains("7, 7"));
        let short = format!("kek-1 = {}\n", b64.encode([1u8; 24]));
        let (line, message) = parse(&short).unwrap_err();
        assert_eq!(line, 1);
        assert!(message.contains("24 bytes"), "{message}");
        assert!(!message.contains(&b64.encode([1u8; 24])));
        let twice = format!("a = {0}\na = {0}\n", b64.encode([1u8; 32]));
        assert_eq!(parse(&twice).unwrap_err().0, 2);
        assert!(parse("bad id = AAAA\n").is_err());
        // No separator: the base64 padding is not taken for one.
        let (_, message) = parse(&format!("kek-1 {}\n", b64.encode([1u8; 32]))).unwrap_err();
        assert!(message.starts_with("write `<identifier> ="), "{message}");
        assert!(parse("# nothing\n").is_err());
    }
}
