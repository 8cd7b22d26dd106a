//! The user's PIN (the PKCS#12 password); the policy it must meet is a rule (`rules`).

use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_is_not_printed() {
        let pin = Pin::new("secret-123".into());
        assert!(!format!("{pin:?}").contains("secret"));
    }
}
