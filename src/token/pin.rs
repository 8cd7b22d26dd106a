//! The user's PIN (the PKCS#12 password) and the policy it must meet.

use std::fmt;

use regex::Regex;
use zeroize::Zeroizing;

/// A PIN as typed by the user. Zeroised on drop; never printed.
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// Wraps a PIN. The caller hands over ownership so that no other copy stays behind.
    pub fn new(pin: String) -> Self {
        Pin(Zeroizing::new(pin))
    }
    /// The PIN itself, for the PKCS#12 writer only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin([redacted])")
    }
}

/// Why a PIN was refused. The message names the rule, never the PIN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("the password must be at least {0} characters long")]
    TooShort(usize),
    #[error("the password must be at most {0} characters long")]
    TooLong(usize),
    #[error("the password contains characters that are not allowed ({0})")]
    Pattern(String),
}

/// PIN policy of a handler (`password.minLength`, `password.maxLength`, `password.pattern`).
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    pub min_length: usize,
    pub max_length: usize,
    /// Anchored regex the whole PIN must match.
    pub pattern: Regex,
    /// The pattern as configured, shown to users.
    pub pattern_source: String,
}

/// Printable ASCII: Java's PKCS#12 reader rejects anything else.
pub const DEFAULT_PIN_PATTERN: &str = "[\\x20-\\x7E]*";

impl PasswordPolicy {
    /// Builds a policy; the pattern must match the whole PIN.
    pub fn new(min_length: usize, max_length: usize, pattern: &str) -> Result<Self, regex::Error> {
        Ok(PasswordPolicy {
            min_length,
            max_length,
            pattern: Regex::new(&format!("^(?:{pattern})$"))?,
            pattern_source: pattern.to_string(),
        })
    }

    /// Checks a PIN against the policy.
    pub fn check(&self, pin: &Pin) -> Result<(), PinError> {
        let len = pin.expose().chars().count();
        if len < self.min_length {
            return Err(PinError::TooShort(self.min_length));
        }
        if len > self.max_length {
            return Err(PinError::TooLong(self.max_length));
        }
        if !self.pattern.is_match(pin.expose()) {
            let rule = if self.pattern_source == DEFAULT_PIN_PATTERN {
                "printable ASCII only".to_string()
            } else {
                format!("must match {}", self.pattern_source)
            };
            return Err(PinError::Pattern(rule));
        }
        Ok(())
    }
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: 6,
            max_length: 128,
            #[allow(clippy::expect_used)] // a constant pattern, covered by the tests below
            pattern: Regex::new(&format!("^(?:{DEFAULT_PIN_PATTERN})$")).expect("valid"),
            pattern_source: DEFAULT_PIN_PATTERN.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy() {
        let p = PasswordPolicy::default();
        assert_eq!(
            p.check(&Pin::new("12345".into())),
            Err(PinError::TooShort(6))
        );
        assert!(p.check(&Pin::new("123456".into())).is_ok());
        assert!(p.check(&Pin::new("Str0ng Pass!~".into())).is_ok());
        assert!(matches!(
            p.check(&Pin::new("Pässwörd1".into())),
            Err(PinError::Pattern(_))
        ));
        assert!(matches!(
            p.check(&Pin::new("a".repeat(129))),
            Err(PinError::TooLong(128))
        ));
    }

    #[test]
    fn pin_is_not_printed() {
        let pin = Pin::new("secret-123".into());
        assert!(!format!("{pin:?}").contains("secret"));
        let e = PasswordPolicy::default()
            .check(&Pin::new("sec".into()))
            .unwrap_err();
        assert!(!e.to_string().contains("sec "));
    }

    #[test]
    fn custom_pattern_is_anchored() {
        let p = PasswordPolicy::new(4, 8, "[0-9]+").unwrap();
        assert!(p.check(&Pin::new("1234".into())).is_ok());
        assert!(p.check(&Pin::new("12a34".into())).is_err());
    }
}
