//! `Timestamp`: a point in time, written one way everywhere — RFC 3339 in UTC
//! (`2026-12-01T10:00:00Z`, with milliseconds only when there are any). Listings, JSON, the
//! API, messages and backups all format through it. A value RFC 3339 cannot write (outside the
//! years 0000–9999) is written as its Unix seconds with a note, never as some other date.
//!
//! Must not: import any other module of the crate (every module may use it).

use std::fmt;
use std::time::SystemTime;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A point in time, as Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    millis: i64,
}

impl Timestamp {
    /// From Unix seconds (the certificate and store columns).
    pub fn from_unix(seconds: i64) -> Self {
        Timestamp {
            millis: seconds.saturating_mul(1000),
        }
    }

    /// From Unix milliseconds (audit rows).
    pub fn from_unix_millis(millis: i64) -> Self {
        Timestamp { millis }
    }

    /// Now.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// Unix seconds (rounded down).
    pub fn unix(self) -> i64 {
        self.millis.div_euclid(1000)
    }

    /// Reads an RFC 3339 time (any offset); `None` when `text` is not one.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        i64::try_from(at.unix_timestamp_nanos() / 1_000_000)
            .ok()
            .map(Self::from_unix_millis)
    }

    /// Unix milliseconds.
    pub fn unix_millis(self) -> i64 {
        self.millis
    }

    /// RFC 3339 in UTC, or `None` when the time is outside what RFC 3339 can write.
    pub fn rfc3339(self) -> Option<String> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.millis) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        let millis = match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |m| -m),
        };
        Timestamp { millis }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rfc3339() {
            Some(text) => f.write_str(&text),
            None => write!(f, "{} (Unix seconds; outside RFC 3339)", self.unix()),
        }
    }
}

/// As its text (RFC 3339), the way every JSON answer and listing writes times.
impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_format_and_no_other_date_for_a_bad_value() {
        assert_eq!(Timestamp::from_unix(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::from_unix(1_796_126_400).to_string(),
            "2026-12-01T12:00:00Z"
        );
        assert_eq!(
            Timestamp::from_unix_millis(1_796_126_400_123).to_string(),
            "2026-12-01T12:00:00.123Z"
        );
        // Beyond the year 9999: the number, not 1970 and not a made-up date.
        let far = Timestamp::from_unix(400_000_000_000);
        assert_eq!(far.rfc3339(), None);
        assert_eq!(
            far.to_string(),
            "400000000000 (Unix seconds; outside RFC 3339)"
        );
        assert_eq!(Timestamp::from_unix(-5).unix(), -5);
        // Read back, from any offset.
        assert_eq!(
            Timestamp::parse_rfc3339("2026-12-01T14:00:00.123+02:00"),
            Some(Timestamp::from_unix_millis(1_796_126_400_123))
        );
        assert_eq!(Timestamp::parse_rfc3339("2026-12-01"), None);
        let now = SystemTime::now();
        assert_eq!(
            Timestamp::from(now).unix(),
            i64::try_from(
                now.duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
            )
            .unwrap()
        );
    }
}
