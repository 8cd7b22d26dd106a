//! Certificate serial numbers as one type, parsed once where they enter (command line, HTTP
//! path or body) and carried as is everywhere else.

use std::fmt;
use std::str::FromStr;

/// A certificate serial number: canonical lower-case hex of its positive INTEGER value, an
/// even number of digits, no leading zero bytes (`0abc01`). This is how the database stores
/// it and how `certs list` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(String);

/// Text that is not a serial number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a serial number; write it in hex, e.g. 0A:BC:01 or 0abc01")]
pub struct SerialError(pub String);

impl Serial {
    /// Parses hex in any case, with or without `0x`, colons, spaces, dashes or leading zeros.
    pub fn parse(input: &str) -> Result<Serial, SerialError> {
        let hex: String = input
            .trim()
            .trim_start_matches("0x")
            .chars()
            .filter(|c| !matches!(c, ':' | ' ' | '-'))
            .collect::<String>()
            .to_ascii_lowercase();
        if hex.is_empty() || hex.len() > 128 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(SerialError(input.chars().take(80).collect()));
        }
        let trimmed = hex.trim_start_matches('0');
        let trimmed = if trimmed.is_empty() { "0" } else { trimmed };
        Ok(Serial(if trimmed.len() % 2 == 1 {
            format!("0{trimmed}")
        } else {
            trimmed.to_string()
        }))
    }

    /// The serial of certificate bytes (the INTEGER's content octets).
    pub fn from_bytes(bytes: &[u8]) -> Serial {
        let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        let significant = &bytes[first..];
        if significant.is_empty() {
            Serial("00".into())
        } else {
            Serial(hex::encode(significant))
        }
    }

    /// Canonical lower-case hex.
    pub fn hex(&self) -> &str {
        &self.0
    }

    /// The value's bytes, big-endian, without leading zero bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        hex::decode(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Serial {
    type Err = SerialError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Serial::parse(s)
    }
}

impl serde::Serialize for Serial {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Serial;

    #[test]
    fn spellings_normalise_to_one_serial() {
        let canonical = Serial::parse("0abc01").unwrap();
        for spelling in ["0A:bC:01", "000abc01", "ABC01", "0xabc01", " 0a bc 01 "] {
            assert_eq!(Serial::parse(spelling).unwrap(), canonical, "{spelling}");
        }
        assert_eq!(Serial::parse("7f").unwrap().hex(), "7f");
        assert!(Serial::parse("xyz").is_err());
        assert!(Serial::parse("").is_err());
        assert!(Serial::parse(&"a".repeat(200)).is_err());
        assert_eq!(Serial::from_bytes(&[0, 0x0a, 0xbc, 0x01]), canonical);
        assert_eq!(canonical.to_bytes(), vec![0x0a, 0xbc, 0x01]);
    }
}
