//! Parsing what the configuration says a certificate holds: key usage and extended key usage
//! names, policy OIDs and CPS URIs. Errors are messages for the operator, naming what was
//! written and what would be right.

use const_oid::ObjectIdentifier;
use x509_cert::ext::pkix::{KeyUsage, KeyUsages};

/// Parses key usage names (RFC 5280 §4.2.1.3; `contentCommitment` = `nonRepudiation`).
pub fn parse_key_usage(names: &[String]) -> Result<KeyUsage, String> {
    let mut flags = der::flagset::FlagSet::<KeyUsages>::default();
    for name in names {
        flags |= match name.as_str() {
            "digitalSignature" => KeyUsages::DigitalSignature,
            "nonRepudiation" | "contentCommitment" => KeyUsages::NonRepudiation,
            "keyEncipherment" => KeyUsages::KeyEncipherment,
            "dataEncipherment" => KeyUsages::DataEncipherment,
            "keyAgreement" => KeyUsages::KeyAgreement,
            "keyCertSign" => KeyUsages::KeyCertSign,
            "cRLSign" => KeyUsages::CRLSign,
            "encipherOnly" => KeyUsages::EncipherOnly,
            "decipherOnly" => KeyUsages::DecipherOnly,
            other => {
                return Err(format!(
                    "unknown key usage `{other}`; expected digitalSignature, nonRepudiation, keyEncipherment, \
                     dataEncipherment, keyAgreement, keyCertSign, cRLSign, encipherOnly or decipherOnly"
                ));
            }
        };
    }
    if flags.is_empty() {
        return Err("at least one key usage is needed".into());
    }
    Ok(KeyUsage(flags))
}

/// Parses an extended key usage given by name or dotted OID.
pub fn parse_extended_key_usage(name: &str) -> Result<ObjectIdentifier, String> {
    use const_oid::db::rfc5280;
    Ok(match name {
        "serverAuth" => rfc5280::ID_KP_SERVER_AUTH,
        "clientAuth" => rfc5280::ID_KP_CLIENT_AUTH,
        "codeSigning" => rfc5280::ID_KP_CODE_SIGNING,
        "emailProtection" => rfc5280::ID_KP_EMAIL_PROTECTION,
        "timeStamping" => rfc5280::ID_KP_TIME_STAMPING,
        "OCSPSigning" | "ocspSigning" => rfc5280::ID_KP_OCSP_SIGNING,
        "smartcardLogon" | "msSmartcardLogin" => crate::ca::oids::SMARTCARD_LOGON,
        "documentSigning" => crate::ca::oids::DOCUMENT_SIGNING,
        other => ObjectIdentifier::new(other).map_err(|_| {
        format!(
            "unknown extended key usage `{name}`; use serverAuth, clientAuth, codeSigning, emailProtection, \
             timeStamping, OCSPSigning, smartcardLogon, documentSigning or a dotted OID"
        )
    })?,
    })
}

/// Parses a dotted OID (certificate policies).
pub fn parse_oid(s: &str) -> Result<ObjectIdentifier, String> {
    ObjectIdentifier::new(s).map_err(|_| {
        format!("`{s}` is not an object identifier; write it dotted, e.g. 2.23.140.1.5.4.2")
    })
}

/// Checks a CPS URI: an absolute http:// or https:// URL with a host, printable ASCII without
/// spaces (it is written as an IA5String, and relying parties show it as a link), at most 1024
/// characters.
pub fn parse_cps_uri(s: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "`{s}` is not a CPS URI; expected an http:// or https:// URL with a host, in ASCII without spaces"
        )
    };
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let printable = s.bytes().all(|b| b.is_ascii_graphic());
    if !printable || host.is_empty() || host.starts_with(':') || s.len() > 1024 {
        return Err(bad());
    }
    Ok(s.to_string())
}
