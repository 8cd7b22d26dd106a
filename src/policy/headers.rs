//! Identity headers as the policy sees them, with their hygiene rules (duplicates, `_` twins,
//! invalid UTF-8 and control characters are refused).

use super::PolicyError;

/// The request's headers, names lower-cased, values as raw bytes, in arrival order.
#[derive(Debug, Clone, Default)]
pub struct IdentityHeaders {
    headers: Vec<(String, Vec<u8>)>,
}

impl IdentityHeaders {
    /// Collects headers (name, raw value). Names are compared case-insensitively.
    pub fn new<I, N, V>(headers: I) -> Self
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        IdentityHeaders {
            headers: headers
                .into_iter()
                .map(|(n, v)| (n.as_ref().to_ascii_lowercase(), v.as_ref().to_vec()))
                .collect(),
        }
    }

    /// Reads one identity header. Refuses a header sent twice, a `_` spelling of a `-` name
    /// (proxies strip `-` names but often forget `_` twins), invalid UTF-8 and control
    /// characters.
    pub fn get(&self, name: &str) -> Result<Option<&str>, PolicyError> {
        let name = name.to_ascii_lowercase();
        if name.contains('-') {
            let twin = name.replace('-', "_");
            if self.headers.iter().any(|(n, _)| *n == twin) {
                return Err(PolicyError::BadHeader {
                    name: twin,
                    reason: format!("spelled with `_`; only `{name}` is accepted"),
                });
            }
        }
        let mut values = self
            .headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v);
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(PolicyError::DuplicateHeader(name));
        }
        let text = std::str::from_utf8(value).map_err(|_| PolicyError::BadHeader {
            name: name.clone(),
            reason: "the value is not valid UTF-8".into(),
        })?;
        if text.chars().any(char::is_control) {
            return Err(PolicyError::BadHeader {
                name,
                reason: "the value contains control characters".into(),
            });
        }
        Ok(Some(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hygiene() {
        let h = IdentityHeaders::new([
            ("CommonName", b"Alice".as_slice()),
            ("email", b"a@x".as_slice()),
            ("email", b"b@x".as_slice()),
            ("given_name", b"x".as_slice()),
            ("bin", b"\xff\xfe".as_slice()),
            ("ctl", b"a\x01b".as_slice()),
        ]);
        assert_eq!(h.get("commonname").unwrap(), Some("Alice"));
        assert_eq!(h.get("missing").unwrap(), None);
        assert_eq!(
            h.get("email"),
            Err(PolicyError::DuplicateHeader("email".into()))
        );
        assert!(matches!(
            h.get("given-name"),
            Err(PolicyError::BadHeader { .. })
        ));
        assert!(matches!(h.get("bin"), Err(PolicyError::BadHeader { .. })));
        assert!(matches!(h.get("ctl"), Err(PolicyError::BadHeader { .. })));
    }
}
