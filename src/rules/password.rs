//! The PIN policy of a handler (`password.minLength`, `password.maxLength`, `password.pattern`,
//! `password.allowEdgeWhitespace`).

use regex::Regex;

use crate::token::Pin;

/// Why a PIN was refused. The message names the rule, never the PIN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("the password must be at least {0} characters long")]
    TooShort(usize),
    #[error("the password must be at most {0} characters long")]
    TooLong(usize),
    #[error("the password contains characters that are not allowed ({0})")]
    Pattern(String),
    #[error("the password must not consist of spaces only")]
    Blank,
    #[error(
        "the password must not begin or end with a space (they are easily lost when it is typed or pasted)"
    )]
    EdgeWhitespace,
}

/// PIN policy of a handler.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    pub min_length: usize,
    pub max_length: usize,
    /// Anchored regex the whole PIN must match.
    pub pattern: Regex,
    /// The pattern as configured, shown to users.
    pub pattern_source: String,
    /// Accept PINs that are blank or begin or end with white space (off by default).
    pub allow_edge_whitespace: bool,
}

/// Two policies are the same when their limits and pattern text are.
impl PartialEq for PasswordPolicy {
    fn eq(&self, other: &Self) -> bool {
        (
            self.min_length,
            self.max_length,
            &self.pattern_source,
            self.allow_edge_whitespace,
        ) == (
            other.min_length,
            other.max_length,
            &other.pattern_source,
            other.allow_edge_whitespace,
        )
    }
}

/// Printable ASCII: Java's PKCS#12 reader rejects anything else in a PKCS#12 password.
pub const DEFAULT_PIN_PATTERN: &str = "[\\x20-\\x7E]*";

impl PasswordPolicy {
    /// Builds a policy; the pattern must match the whole PIN. Blank PINs and PINs with white
    /// space at either end are refused (see [`PasswordPolicy::allowing_edge_whitespace`]).
    pub fn new(min_length: usize, max_length: usize, pattern: &str) -> Result<Self, regex::Error> {
        Ok(PasswordPolicy {
            min_length,
            max_length,
            pattern: Regex::new(&format!("^(?:{pattern})$"))?,
            pattern_source: pattern.to_string(),
            allow_edge_whitespace: false,
        })
    }

    /// The same policy, accepting (`true`) or refusing blank and edge-white-space PINs.
    pub fn allowing_edge_whitespace(mut self, allow: bool) -> Self {
        self.allow_edge_whitespace = allow;
        self
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
        if !self.allow_edge_whitespace {
            let pin = pin.expose();
            if pin.trim().is_empty() {
                return Err(PinError::Blank);
            }
            if pin.trim() != pin {
                return Err(PinError::EdgeWhitespace);
            }
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
            allow_edge_whitespace: false,
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
    fn refusal_does_not_print_the_pin() {
        let e = PasswordPolicy::default()
            .check(&Pin::new("sec".into()))
            .unwrap_err();
        assert!(!e.to_string().contains("sec "));
    }

    #[test]
    fn blank_and_edge_whitespace() {
        let p = PasswordPolicy::default();
        assert_eq!(p.check(&Pin::new("      ".into())), Err(PinError::Blank));
        assert_eq!(
            p.check(&Pin::new(" secret1".into())),
            Err(PinError::EdgeWhitespace)
        );
        assert_eq!(
            p.check(&Pin::new("secret1 ".into())),
            Err(PinError::EdgeWhitespace)
        );
        assert!(p.check(&Pin::new("sec ret1".into())).is_ok());
        let relaxed = p.allowing_edge_whitespace(true);
        assert!(relaxed.check(&Pin::new("      ".into())).is_ok());
        assert!(relaxed.check(&Pin::new(" secret1".into())).is_ok());
        assert_ne!(relaxed, PasswordPolicy::default());
    }

    #[test]
    fn custom_pattern_is_anchored() {
        let p = PasswordPolicy::new(4, 8, "[0-9]+").unwrap();
        assert!(p.check(&Pin::new("1234".into())).is_ok());
        assert!(p.check(&Pin::new("12a34".into())).is_err());
    }
}
