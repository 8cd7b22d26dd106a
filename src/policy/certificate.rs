//! What `cert:subject.<attr>` and `cert:san.<type>` read: the facts of a client certificate.
//!
//! Parsing only (x509-parser); whether the certificate may be believed is decided elsewhere
//! (`identity`, at the TLS handshake). Used by `config explain --client-cert`.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::CertificateFacts;
use crate::ca::Attribute;

/// Microsoft UPN otherName (1.3.6.1.4.1.311.20.2.3).
const UPN_OID: &str = "1.3.6.1.4.1.311.20.2.3";

impl CertificateFacts {
    /// The subject attributes and SANs a format can read, from a DER certificate. Attributes
    /// and SAN types the format language has no name for are skipped.
    pub fn from_der(der: &[u8]) -> Result<CertificateFacts, String> {
        let (_, certificate) =
            X509Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let mut facts = CertificateFacts::default();
        for attribute in certificate.subject().iter_attributes() {
            let oid = attribute.attr_type().to_id_string();
            let known = Attribute::ALL
                .into_iter()
                .find(|a| a.oid().is_some_and(|o| o.to_string() == oid));
            if let (Some(a), Ok(value)) = (known, attribute.as_str()) {
                facts.subject.push((a, value.to_string()));
            }
        }
        if let Ok(Some(san)) = certificate.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::RFC822Name(v) => {
                        facts.sans.push((Attribute::Rfc822Name, v.to_string()))
                    }
                    GeneralName::DNSName(v) => facts.sans.push((Attribute::DnsName, v.to_string())),
                    GeneralName::URI(v) => facts.sans.push((Attribute::Uri, v.to_string())),
                    GeneralName::OtherName(oid, value) if oid.to_id_string() == UPN_OID => {
                        if let Some(upn) = explicit_utf8(value) {
                            facts.sans.push((Attribute::Upn, upn));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(facts)
    }

    /// The same from a PEM (the first certificate) or DER file's bytes.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<CertificateFacts, String> {
        if bytes.starts_with(b"-----") || bytes.iter().take(64).all(u8::is_ascii) {
            let (_, pem) = x509_parser::pem::parse_x509_pem(bytes)
                .map_err(|e| format!("not a PEM certificate: {e}"))?;
            return Self::from_der(&pem.contents);
        }
        Self::from_der(bytes)
    }
}

/// `[0] EXPLICIT UTF8String` → the string.
fn explicit_utf8(bytes: &[u8]) -> Option<String> {
    let (tag, inner) = tlv(bytes)?;
    if tag != 0xA0 {
        return None;
    }
    let (tag, text) = tlv(inner)?;
    if tag != 0x0C {
        return None;
    }
    String::from_utf8(text.to_vec()).ok()
}

/// One DER tag-length-value: the tag byte and the value.
fn tlv(bytes: &[u8]) -> Option<(u8, &[u8])> {
    let tag = *bytes.first()?;
    let first = *bytes.get(1)? as usize;
    let (length, start) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let length = bytes
            .get(2..2 + n)?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (length, 2 + n)
    };
    Some((tag, bytes.get(start..start.checked_add(length)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlv_bounds() {
        assert_eq!(
            explicit_utf8(&[0xA0, 0x05, 0x0C, 0x03, b'a', b'@', b'b']).as_deref(),
            Some("a@b")
        );
        assert_eq!(explicit_utf8(&[0xA0, 0x05, 0x0C, 0x09, b'a']), None);
        assert_eq!(explicit_utf8(&[0xA0, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(explicit_utf8(&[]), None);
        assert!(CertificateFacts::from_der(b"junk").is_err());
    }
}
