//! What `cert:subject.<attr>` and `cert:san.<type>` read: the facts of a client certificate.
//!
//! Parsing only (x509-cert); whether the certificate may be believed is decided elsewhere
//! (`identity`, at the TLS handshake). Used by `config explain --client-cert`. In an EST
//! request the same sources read the certification request (`of_request`).

use const_oid::AssociatedOid;
use der::{Decode, Tag, Tagged};
use x509_cert::Certificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, ExtensionReq};

use super::CertificateFacts;
use crate::ca::Attribute;

impl CertificateFacts {
    /// The subject attributes and SANs a format can read, from a DER certificate. Attributes
    /// and SAN types the format language has no name for are skipped.
    pub fn from_der(der: &[u8]) -> Result<CertificateFacts, String> {
        let certificate =
            Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
        Ok(Self::of(&certificate))
    }

    /// The same from a parsed certificate.
    pub fn of(certificate: &Certificate) -> CertificateFacts {
        let san = certificate
            .tbs_certificate()
            .get_extension::<SubjectAltName>()
            .ok()
            .flatten()
            .map(|(_, san)| san);
        Self::of_parts(certificate.tbs_certificate().subject(), san.as_ref())
    }

    /// The same from a certification request (PKCS#10): its subject and the subjectAltName
    /// of its extensionRequest attribute. What `cert:` sources read in an EST request.
    pub fn of_request(request: &CertReq) -> CertificateFacts {
        let san = request
            .info
            .attributes
            .iter()
            .filter(|a| a.oid == ExtensionReq::OID)
            .flat_map(|a| a.values.iter())
            .filter_map(|v| v.decode_as::<Vec<Extension>>().ok())
            .flatten()
            .find(|e| e.extn_id == SubjectAltName::OID)
            .and_then(|e| SubjectAltName::from_der(e.extn_value.as_bytes()).ok());
        Self::of_parts(&request.info.subject, san.as_ref())
    }

    /// The subject attributes and SANs a format can read.
    fn of_parts(subject: &Name, san: Option<&SubjectAltName>) -> CertificateFacts {
        let mut facts = CertificateFacts::default();
        for attribute in subject.iter() {
            let known = Attribute::ALL
                .into_iter()
                .find(|a| a.oid() == Some(attribute.oid));
            if let (Some(a), Some(value)) = (known, text(&attribute.value)) {
                facts.subject.push((a, value.to_string()));
            }
        }
        for name in san.map(|s| s.0.as_slice()).unwrap_or_default() {
            match name {
                GeneralName::Rfc822Name(v) => {
                    facts.sans.push((Attribute::Rfc822Name, v.to_string()))
                }
                GeneralName::DnsName(v) => facts.sans.push((Attribute::DnsName, v.to_string())),
                GeneralName::UniformResourceIdentifier(v) => {
                    facts.sans.push((Attribute::Uri, v.to_string()))
                }
                GeneralName::OtherName(other) if other.type_id == crate::ca::oids::UPN => {
                    if let Some(upn) = utf8(&other.value) {
                        facts.sans.push((Attribute::Upn, upn.to_string()));
                    }
                }
                _ => {}
            }
        }
        facts
    }

    /// The same from a PEM (the first certificate) or DER file's bytes.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<CertificateFacts, String> {
        if bytes.starts_with(b"-----") || bytes.iter().take(64).all(u8::is_ascii) {
            let der = first_pem(bytes).ok_or_else(|| "not a PEM certificate".to_string())?;
            return Self::from_der_or_request(&der);
        }
        Self::from_der_or_request(bytes)
    }

    /// A certificate, else a certification request (what `config explain` reads for EST).
    fn from_der_or_request(der: &[u8]) -> Result<CertificateFacts, String> {
        Self::from_der(der).or_else(|e| match CertReq::from_der(der) {
            Ok(request) => Ok(Self::of_request(&request)),
            Err(_) => Err(e),
        })
    }
}

/// A directory string a format can read: UTF8String, PrintableString, IA5String or
/// NumericString.
fn text(value: &der::Any) -> Option<&str> {
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::NumericString => {
            std::str::from_utf8(value.value()).ok()
        }
        _ => None,
    }
}

/// The UTF8String an otherName holds (the UPN).
fn utf8(value: &der::Any) -> Option<&str> {
    (value.tag() == Tag::Utf8String)
        .then(|| std::str::from_utf8(value.value()).ok())
        .flatten()
}

/// The contents of the first PEM block (`-----BEGIN …-----` to `-----END …`), whatever its
/// label; lines before it (comments, `Bag Attributes`) are skipped.
fn first_pem(bytes: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.lines().skip_while(|l| !l.starts_with("-----BEGIN "));
    lines.next()?;
    let mut body = String::new();
    for line in lines {
        if line.starts_with("-----END ") {
            return base64::engine::general_purpose::STANDARD
                .decode(body.as_bytes())
                .ok();
        }
        body.push_str(line.trim_end());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_is_refused() {
        assert!(CertificateFacts::from_der(b"junk").is_err());
        assert!(CertificateFacts::from_pem_or_der(b"-----BEGIN CERTIFICATE-----\n").is_err());
    }
}
