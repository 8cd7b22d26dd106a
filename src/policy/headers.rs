//! Identity headers as the policy sees them: their hygiene (duplicates, `_` twins, control
//! characters) and the text encoding the front uses for non-ASCII values.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::PolicyError;

/// How the authenticating front writes identity header values (`[trust] header_encoding`,
/// `headerEncoding` per handler). HTTP carries header values as bytes; fronts differ in how
/// they put text into them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeaderEncoding {
    /// UTF-8 bytes (nginx `proxy_set_header` with UTF-8 variables, mod_auth_openidc's default).
    Utf8,
    /// ISO-8859-1: one byte per character (Java servlet stacks, mod_auth_openidc `latin1`).
    Latin1,
    /// UTF-8 when the bytes are valid UTF-8, else ISO-8859-1 (the default: accepts both kinds
    /// of front; a Latin-1 text that happens to be valid UTF-8 is read as UTF-8).
    #[default]
    Utf8OrLatin1,
    /// base64url of UTF-8, padded or not (mod_auth_openidc `base64url`).
    Base64Url,
    /// RFC 3986 percent-encoding of UTF-8 (`%C3%B6`; `+` is a plus sign).
    Percent,
}

impl HeaderEncoding {
    /// Every encoding, as written in configuration files.
    pub const NAMES: [&'static str; 5] = [
        "utf-8",
        "latin-1",
        "utf-8-or-latin-1",
        "base64url",
        "percent",
    ];

    /// The name as written in configuration files.
    pub fn name(self) -> &'static str {
        match self {
            HeaderEncoding::Utf8 => "utf-8",
            HeaderEncoding::Latin1 => "latin-1",
            HeaderEncoding::Utf8OrLatin1 => "utf-8-or-latin-1",
            HeaderEncoding::Base64Url => "base64url",
            HeaderEncoding::Percent => "percent",
        }
    }

    /// The text of a raw header value, or why it is not one.
    pub(super) fn decode(self, raw: &[u8]) -> Result<String, DecodeError> {
        let utf8 =
            |bytes: Vec<u8>| String::from_utf8(bytes).map_err(|_| DecodeError::DecodedNotUtf8);
        match self {
            HeaderEncoding::Utf8 => std::str::from_utf8(raw)
                .map(str::to_string)
                .map_err(|_| DecodeError::NotUtf8),
            HeaderEncoding::Latin1 => Ok(latin1(raw)),
            HeaderEncoding::Utf8OrLatin1 => Ok(std::str::from_utf8(raw)
                .map(str::to_string)
                .unwrap_or_else(|_| latin1(raw))),
            HeaderEncoding::Base64Url => {
                const BASE64URL: GeneralPurpose = GeneralPurpose::new(
                    &base64::alphabet::URL_SAFE,
                    GeneralPurposeConfig::new()
                        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
                );
                let bytes = BASE64URL
                    .decode(raw)
                    .map_err(|_| DecodeError::NotBase64Url)?;
                utf8(bytes)
            }
            HeaderEncoding::Percent => utf8(percent_decode(raw)?),
        }
    }
}

impl fmt::Display for HeaderEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HeaderEncoding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let found = [
            HeaderEncoding::Utf8,
            HeaderEncoding::Latin1,
            HeaderEncoding::Utf8OrLatin1,
            HeaderEncoding::Base64Url,
            HeaderEncoding::Percent,
        ]
        .into_iter()
        .find(|e| e.name().eq_ignore_ascii_case(s.trim()));
        found.ok_or_else(|| {
            format!(
                "`{}` is not a header encoding{}; use one of {}",
                s.trim(),
                super::did_you_mean(s.trim(), &HeaderEncoding::NAMES),
                HeaderEncoding::NAMES.join(", ")
            )
        })
    }
}

/// ISO-8859-1: each byte is the code point of the same number.
fn latin1(raw: &[u8]) -> String {
    raw.iter().map(|&b| char::from(b)).collect()
}

/// Strict RFC 3986 percent-decoding. Written here because the `percent-encoding` crate leaves
/// a malformed `%` as it is; a front that sends one is misconfigured and must be told.
/// Why a raw header value is not text in the configured encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum DecodeError {
    #[error("the value is not valid UTF-8")]
    NotUtf8,
    #[error("the decoded value is not valid UTF-8")]
    DecodedNotUtf8,
    #[error("the value is not base64url")]
    NotBase64Url,
    #[error("a `%` is not followed by two hex digits")]
    BadPercent,
}

fn percent_decode(raw: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hex = [bytes.next().copied(), bytes.next().copied()];
        let digit = |d: Option<u8>| d.and_then(|d| char::from(d).to_digit(16));
        match (digit(hex[0]), digit(hex[1])) {
            (Some(high), Some(low)) => out.push((high * 16 + low) as u8),
            _ => return Err(DecodeError::BadPercent),
        }
    }
    Ok(out)
}

/// The request's headers, names lower-cased, values as raw bytes, in arrival order, and the
/// encoding their values are read in.
#[derive(Debug, Clone, Default)]
pub struct IdentityHeaders {
    headers: Vec<(String, Vec<u8>)>,
    encoding: HeaderEncoding,
    /// Accept `(null)` and mojibake (`refuseSuspicious = false`); refused by default.
    accept_suspicious: bool,
}

impl IdentityHeaders {
    /// Collects headers (name, raw value). Names are compared case-insensitively. Values are
    /// read as UTF-8, else ISO-8859-1, until [`IdentityHeaders::decoded_as`] says otherwise.
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
            encoding: HeaderEncoding::default(),
            accept_suspicious: false,
        }
    }

    /// The same headers; `refuse` (the default) refuses decoded values that are wrong but
    /// decodable: the literal `(null)` and UTF-8 read as Latin-1 (see `suspicious`).
    pub fn refusing_suspicious(mut self, refuse: bool) -> Self {
        self.accept_suspicious = !refuse;
        self
    }

    /// The same headers, their values read in `encoding`.
    pub fn decoded_as(mut self, encoding: HeaderEncoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// The encoding values are read in.
    pub fn encoding(&self) -> HeaderEncoding {
        self.encoding
    }

    /// Reads one identity header. Refuses a header sent twice, a `_` spelling of a `-` name
    /// (proxies strip `-` names but often forget `_` twins), a value that does not decode in
    /// the configured encoding, control characters (after decoding) and, unless told
    /// otherwise, `(null)` and mojibake.
    pub fn get(&self, name: &str) -> Result<Option<String>, PolicyError> {
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
        let text = self
            .encoding
            .decode(value)
            .map_err(|reason| PolicyError::BadHeader {
                name: name.clone(),
                reason: format!("{reason} (header encoding {})", self.encoding),
            })?;
        if text.chars().any(char::is_control) {
            return Err(PolicyError::BadHeader {
                name,
                reason: "the value contains control characters".into(),
            });
        }
        if !self.accept_suspicious
            && let Err(suspicion) = super::suspicious::check(&text)
        {
            return Err(PolicyError::Suspicious {
                name,
                reason: suspicion.reason(),
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
        ])
        .decoded_as(HeaderEncoding::Utf8);
        assert_eq!(h.get("commonname").unwrap().as_deref(), Some("Alice"));
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

    fn read(encoding: HeaderEncoding, raw: &[u8]) -> Result<Option<String>, PolicyError> {
        IdentityHeaders::new([("cn", raw)])
            .decoded_as(encoding)
            .get("cn")
    }

    #[test]
    fn encodings() {
        use HeaderEncoding::*;
        let strom = Some("Hanna Ström".to_string());
        // UTF-8 bytes, and the same name in ISO-8859-1 (ö = 0xF6).
        assert_eq!(read(Utf8, "Hanna Ström".as_bytes()).unwrap(), strom);
        assert!(read(Utf8, b"Hanna Str\xf6m").is_err());
        assert_eq!(read(Latin1, b"Hanna Str\xf6m").unwrap(), strom);
        assert_eq!(read(Utf8OrLatin1, b"Hanna Str\xf6m").unwrap(), strom);
        assert_eq!(read(Utf8OrLatin1, "Hanna Ström".as_bytes()).unwrap(), strom);
        // Latin-1 read as Latin-1 only: UTF-8 bytes become two characters each.
        // That is mojibake, refused by default; a handler may accept it.
        assert!(matches!(
            read(Latin1, "ö".as_bytes()),
            Err(PolicyError::Suspicious { .. })
        ));
        let accepting = IdentityHeaders::new([("cn", "ö".as_bytes())])
            .decoded_as(Latin1)
            .refusing_suspicious(false);
        assert_eq!(accepting.get("cn").unwrap().as_deref(), Some("Ã¶"));
        // `(null)` from an unset Apache variable, in any encoding that can carry it.
        assert!(matches!(
            read(Utf8, b"(null)"),
            Err(PolicyError::Suspicious { .. })
        ));
        // C1 controls (0x80–0x9F) decode to control characters and are refused.
        assert!(read(Latin1, b"a\x85b").is_err());
        // base64url of UTF-8, with and without padding; `+`/`/` are not base64url.
        assert_eq!(read(Base64Url, b"SGFubmEgU3Ryw7Zt").unwrap(), strom);
        assert_eq!(read(Base64Url, b"w7Y").unwrap().as_deref(), Some("ö"));
        assert_eq!(read(Base64Url, b"w7Y=").unwrap().as_deref(), Some("ö"));
        for bad in [b"w7Y+".as_slice(), b"!!!!", b"w7"] {
            assert!(
                matches!(read(Base64Url, bad), Err(PolicyError::BadHeader { .. })),
                "{bad:?}"
            );
        }
        // base64url of bytes that are not UTF-8.
        assert!(read(Base64Url, b"_w").is_err());
        // Percent-encoding, strictly.
        assert_eq!(read(Percent, b"Hanna%20Str%C3%B6m").unwrap(), strom);
        assert_eq!(read(Percent, b"a+b").unwrap().as_deref(), Some("a+b"));
        for bad in [b"100%".as_slice(), b"%G1", b"%C3", b"%0A"] {
            assert!(read(Percent, bad).is_err(), "{bad:?}");
        }
        // A refusal names the encoding, never the value.
        let e = read(Base64Url, b"secret!").unwrap_err().to_string();
        assert!(e.contains("base64url") && !e.contains("secret"), "{e}");
    }

    #[test]
    fn names_round_trip() {
        for name in HeaderEncoding::NAMES {
            assert_eq!(name.parse::<HeaderEncoding>().unwrap().name(), name);
        }
        let e = "latin1".parse::<HeaderEncoding>().unwrap_err();
        assert!(e.contains("latin-1"), "{e}");
    }
}
