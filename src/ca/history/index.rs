//! One line of the `openssl ca` database (index.txt): status, expiry, revocation (date, reason,
//! and the compromise time or hold instruction), serial, file name and subject, tab-separated.

use super::super::{RevocationReason, Serial};

/// The status letter of an index line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexStatus {
    /// `V`
    Valid,
    /// `R`
    Revoked,
    /// `E`
    Expired,
}

/// One parsed line of index.txt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub status: IndexStatus,
    pub serial: Serial,
    /// Unix seconds.
    pub expires: i64,
    /// Unix seconds, for `R`.
    pub revoked_at: Option<i64>,
    pub reason: Option<RevocationReason>,
    /// The compromise time of keyCompromise / CACompromise (`openssl ca -crl_compromise`).
    pub invalidity_date: Option<i64>,
    pub subject: String,
}

/// Parses a line; the error says what is wrong (the caller adds the line number).
pub fn parse_index_line(line: &str) -> Result<IndexEntry, String> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [status, expires, revocation, serial, _file, subject] = fields.as_slice() else {
        return Err(format!(
            "expected 6 tab-separated fields, found {}",
            fields.len()
        ));
    };
    let status = match *status {
        "V" => IndexStatus::Valid,
        "R" => IndexStatus::Revoked,
        "E" => IndexStatus::Expired,
        other => return Err(format!("unknown status `{other}` (V, R or E)")),
    };
    let serial = Serial::parse(serial).map_err(|e| format!("serial `{serial}`: {e}"))?;
    let expires = asn1_time(expires)?;
    let (mut revoked_at, mut reason, mut invalidity_date) = (None, None, None);
    if status == IndexStatus::Revoked {
        let mut parts = revocation.split(',');
        revoked_at = Some(asn1_time(parts.next().unwrap_or(""))?);
        if let Some(name) = parts.next() {
            // OpenSSL writes `CACompromise`, `holdInstruction` (for certificateHold),
            // `removeFromCRL`, and `keyTime` / `CAkeyTime` (keyCompromise / cACompromise with
            // the compromise time, `-crl_compromise` / `-crl_CA_compromise`); our names compare
            // without case.
            reason = match name.parse::<RevocationReason>() {
                Ok(r) => Some(r),
                Err(_) if name.eq_ignore_ascii_case("keyTime") => {
                    Some(RevocationReason::KeyCompromise)
                }
                Err(_) if name.eq_ignore_ascii_case("CAkeyTime") => {
                    Some(RevocationReason::CaCompromise)
                }
                Err(_) if name.eq_ignore_ascii_case("holdInstruction") => {
                    Some(RevocationReason::CertificateHold)
                }
                Err(_) if name.eq_ignore_ascii_case("removeFromCRL") => None,
                Err(e) => return Err(e),
            };
            if let (
                Some(extra),
                Some(RevocationReason::KeyCompromise | RevocationReason::CaCompromise),
            ) = (parts.next(), reason)
            {
                invalidity_date = Some(asn1_time(extra)?);
            }
        }
    }
    Ok(IndexEntry {
        status,
        serial,
        expires,
        revoked_at,
        reason,
        invalidity_date,
        subject: subject.to_string(),
    })
}

/// `YYMMDDHHMMSSZ` (UTCTime, 1950–2049) or `YYYYMMDDHHMMSSZ` (GeneralizedTime) to Unix seconds.
fn asn1_time(text: &str) -> Result<i64, String> {
    let bad = || format!("`{text}` is not a time (YYMMDDHHMMSSZ or YYYYMMDDHHMMSSZ)");
    let digits = text.strip_suffix('Z').ok_or_else(bad)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let (year, rest) = match digits.len() {
        12 => {
            let yy: i32 = digits[..2].parse().map_err(|_| bad())?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &digits[2..])
        }
        14 => (digits[..4].parse().map_err(|_| bad())?, &digits[4..]),
        _ => return Err(bad()),
    };
    let n = |i: usize| rest[i..i + 2].parse::<u8>().map_err(|_| bad());
    let month = time::Month::try_from(n(0)?).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(year, month, n(2)?).map_err(|_| bad())?;
    let at = date
        .with_hms(n(4)?, n(6)?, n(8)?)
        .map_err(|_| bad())?
        .assume_utc();
    Ok(at.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_kinds_of_line() {
        let good = parse_index_line("V\t350101000000Z\t\t01\tunknown\t/C=SE/CN=a")
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            (good.status, good.serial.hex(), good.revoked_at),
            (IndexStatus::Valid, "01", None)
        );
        assert_eq!(good.expires, 2_051_222_400);
        let revoked = parse_index_line(
            "R\t350101000000Z\t240102030405Z,keyCompromise,20240101000000Z\t0A\tunknown\t/CN=b",
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(revoked.reason, Some(RevocationReason::KeyCompromise));
        assert_eq!(revoked.revoked_at, Some(1_704_164_645));
        assert_eq!(revoked.invalidity_date, Some(1_704_067_200));
        let held = parse_index_line(
            "R\t350101000000Z\t240102030405Z,holdInstruction,holdInstructionReject\t0b\tunknown\t/CN=c",
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            (held.reason, held.invalidity_date),
            (Some(RevocationReason::CertificateHold), None)
        );
        let ca =
            parse_index_line("R\t350101000000Z\t240102030405Z,CACompromise\t0c\tunknown\t/CN=d")
                .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(ca.reason, Some(RevocationReason::CaCompromise));
        // What `openssl ca -revoke … -crl_compromise` / `-crl_CA_compromise` really write.
        for (name, reason) in [
            ("keyTime", RevocationReason::KeyCompromise),
            ("CAkeyTime", RevocationReason::CaCompromise),
        ] {
            let line = format!(
                "R\t350101000000Z\t240102030405Z,{name},20240101000000Z\t0d\tunknown\t/CN=e"
            );
            let entry = parse_index_line(&line).unwrap_or_else(|e| unreachable!("{e}"));
            assert_eq!(
                (entry.reason, entry.invalidity_date),
                (Some(reason), Some(1_704_067_200)),
                "{name}"
            );
        }
    }

    #[test]
    fn refuses_malformed_lines() {
        assert!(parse_index_line("V\t350101000000Z\t01").is_err());
        assert!(parse_index_line("X\t350101000000Z\t\t01\tunknown\t/CN=a").is_err());
        assert!(parse_index_line("R\t350101000000Z\tyesterday\t01\tunknown\t/CN=a").is_err());
        assert!(
            parse_index_line("R\t350101000000Z\t240102030405Z,sadness\t01\tunknown\t/CN=a")
                .is_err()
        );
    }
}
