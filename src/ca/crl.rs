//! Certificate revocation lists (RFC 5280 §5), signed through the CA's `Signer`.
//!
//! Built directly from x509-cert's `TbsCertList` rather than its `CrlBuilder`: the builder
//! copies the issuing CA's own AKI into the CRL, which names the
//! *parent's* key and makes `openssl verify -crl_check` fail under an intermediate CA. Here
//! the CRL's AKI is the CA certificate's SKI (RFC 5280 §5.2.1).

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use const_oid::db::rfc5280;
use der::Encode;
use der::asn1::{BitString, OctetString, Uint};
use x509_cert::Version;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::crl::CrlReason;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;

use super::{Ca, CaError};

/// RFC 5280 §5.3.1 revocation reasons, by their ASN.1 names. `removeFromCRL` is not a reason
/// one revokes with (it only exists in delta CRLs), so it is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    CertificateHold,
    PrivilegeWithdrawn,
    AaCompromise,
}

impl RevocationReason {
    /// Every accepted reason.
    pub const ALL: [RevocationReason; 9] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::CertificateHold,
        RevocationReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise,
    ];

    /// The RFC 5280 name (`keyCompromise`, …), also what the database stores.
    pub fn name(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "keyCompromise",
            RevocationReason::CaCompromise => "cACompromise",
            RevocationReason::AffiliationChanged => "affiliationChanged",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessationOfOperation",
            RevocationReason::CertificateHold => "certificateHold",
            RevocationReason::PrivilegeWithdrawn => "privilegeWithdrawn",
            RevocationReason::AaCompromise => "aACompromise",
        }
    }

    /// The CRLReason code.
    pub fn code(self) -> u8 {
        self.crl_reason() as u8
    }

    fn crl_reason(self) -> CrlReason {
        match self {
            RevocationReason::Unspecified => CrlReason::Unspecified,
            RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
            RevocationReason::CaCompromise => CrlReason::CaCompromise,
            RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
            RevocationReason::Superseded => CrlReason::Superseded,
            RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
            RevocationReason::CertificateHold => CrlReason::CertificateHold,
            RevocationReason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
            RevocationReason::AaCompromise => CrlReason::AaCompromise,
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for RevocationReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl FromStr for RevocationReason {
    type Err = String;
    /// Accepts the RFC names in any case (`keyCompromise`, `keycompromise`, `KEY_COMPROMISE`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted: String = s
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .collect::<String>()
            .to_ascii_lowercase();
        RevocationReason::ALL
            .into_iter()
            .find(|r| r.name().to_ascii_lowercase() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = RevocationReason::ALL.iter().map(|r| r.name()).collect();
                format!(
                    "unknown revocation reason `{s}`; use one of {}",
                    names.join(", ")
                )
            })
    }
}

/// One revoked certificate on a CRL.
#[derive(Debug, Clone)]
pub struct CrlEntry {
    /// The serial number, big-endian bytes (positive).
    pub serial: Vec<u8>,
    pub revoked_at: SystemTime,
    pub reason: Option<RevocationReason>,
    /// RFC 5280 §5.3.2 invalidityDate: when the key is known or suspected to have been
    /// compromised (imported revocations that carried one).
    pub invalidity_date: Option<SystemTime>,
}

/// What a CRL says besides its entries.
#[derive(Debug, Clone, Copy)]
pub struct CrlParameters {
    /// RFC 5280 §5.2.3 cRLNumber.
    pub number: u64,
    pub this_update: SystemTime,
    pub next_update: SystemTime,
}

use super::certificate::extension;

/// Builds and signs a v2 CRL for `ca`. Returns DER.
pub fn issue_crl(
    ca: &Ca,
    parameters: &CrlParameters,
    entries: &[CrlEntry],
) -> Result<Vec<u8>, CaError> {
    let signer = ca.signer();
    let mut revoked: Vec<RevokedCert> = Vec::with_capacity(entries.len());
    for entry in entries {
        // RFC 5280 §5.3.1: the reasonCode extension should be absent rather than `unspecified`.
        let mut extensions = Vec::new();
        if let Some(reason) = entry.reason.filter(|r| *r != RevocationReason::Unspecified) {
            extensions.push(extension(
                rfc5280::ID_CE_CRL_REASONS,
                false,
                &reason.crl_reason(),
            )?);
        }
        if let Some(at) = entry.invalidity_date {
            let time = der::asn1::GeneralizedTime::from_system_time(at)?;
            extensions.push(extension(rfc5280::ID_CE_INVALIDITY_DATE, false, &time)?);
        }
        let extensions = (!extensions.is_empty()).then_some(extensions);
        revoked.push(RevokedCert {
            serial_number: SerialNumber::new(&entry.serial)
                .map_err(|e| CaError::Encoding(e.to_string()))?,
            revocation_date: Time::try_from(entry.revoked_at)?,
            crl_entry_extensions: extensions,
        });
    }
    // §5.2.1 AKI = the CA's SKI (not the AKI of the CA certificate: P3). §5.2.3 CRL number.
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(ca.key_identifier())?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    let number = Uint::new(&parameters.number.to_be_bytes())?;
    let crl_extensions = vec![
        extension(rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER, false, &aki)?,
        extension(rfc5280::ID_CE_CRL_NUMBER, false, &CrlNumber(number))?,
    ];
    let algorithm = signer.algorithm().identifier();
    let tbs = TbsCertList {
        version: Version::V2,
        signature: algorithm.clone(),
        issuer: ca.certificate().tbs_certificate().subject().clone(),
        this_update: Time::try_from(parameters.this_update)?,
        next_update: Some(Time::try_from(parameters.next_update)?),
        // §5.1.2.6: when there are no revoked certificates the list is absent, not empty.
        revoked_certificates: if revoked.is_empty() {
            None
        } else {
            Some(revoked)
        },
        crl_extensions: Some(crl_extensions),
    };
    let signature = signer.sign(&tbs.to_der()?)?;
    let crl = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(&signature)?,
    };
    Ok(crl.to_der()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;
    use x509_parser::extensions::ParsedExtension;

    /// The demo intermediate `issuing` (under `root`), loaded like `serve` does.
    fn issuing_ca(dir: &std::path::Path) -> Ca {
        super::super::write_demo_hierarchy(dir).unwrap();
        let certificate = super::super::read_certificate_file(&dir.join("issuing.pem")).unwrap();
        let root = super::super::read_certificate_file(&dir.join("root.pem")).unwrap();
        let signer = super::super::FileSigner::from_file(&dir.join("issuing.key")).unwrap();
        Ca::new("issuing", certificate, vec![root], Arc::new(signer)).unwrap()
    }

    /// Checked with an independent parser (x509-parser): version, number, times, AKI = the
    /// CA's SKI and not the CA certificate's own AKI (P3), entries and reason codes.
    #[test]
    fn crl_fields_read_back_with_x509_parser() {
        let dir = tempfile::tempdir().unwrap();
        let ca = issuing_ca(dir.path());
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        let parameters = CrlParameters {
            number: 7,
            this_update: now,
            next_update: now + Duration::from_secs(86_400),
        };
        let entries = [
            CrlEntry {
                serial: vec![0x0a, 0x01],
                revoked_at: now,
                reason: Some(RevocationReason::KeyCompromise),
                invalidity_date: Some(now - Duration::from_secs(3_600)),
            },
            CrlEntry {
                serial: vec![0x7f, 0xff, 0x00],
                revoked_at: now,
                reason: Some(RevocationReason::Unspecified),
                invalidity_date: None,
            },
        ];
        let der = issue_crl(&ca, &parameters, &entries).unwrap();
        let (rest, crl) = x509_parser::parse_x509_crl(&der).unwrap();
        assert!(rest.is_empty());
        assert_eq!(crl.version(), Some(x509_parser::x509::X509Version::V2));
        assert_eq!(
            crl.crl_number().map(|n| n.to_string()),
            Some("7".to_string())
        );
        assert_eq!(crl.last_update().timestamp(), 1_900_000_000);
        assert_eq!(
            crl.next_update().map(|t| t.timestamp()),
            Some(1_900_086_400)
        );
        let key_id_of = |extensions: &[x509_parser::extensions::X509Extension<'_>]| {
            extensions
                .iter()
                .find_map(|e| match e.parsed_extension() {
                    ParsedExtension::AuthorityKeyIdentifier(aki) => {
                        aki.key_identifier.as_ref().map(|k| k.0.to_vec())
                    }
                    _ => None,
                })
                .unwrap()
        };
        let aki = key_id_of(crl.extensions());
        assert_eq!(aki, ca.key_identifier());
        let (_, issuing) = x509_parser::parse_x509_certificate(ca.certificate_der()).unwrap();
        let own_aki = key_id_of(issuing.extensions());
        assert_ne!(aki, own_aki, "the CRL must not carry the parent's key id");
        let revoked: Vec<_> = crl.iter_revoked_certificates().collect();
        assert_eq!(revoked.len(), 2);
        assert_eq!(revoked[0].raw_serial(), &[0x0a, 0x01]);
        assert_eq!(revoked[0].reason_code().map(|(_, c)| c.0), Some(1));
        assert_eq!(
            revoked[0].invalidity_date().map(|(_, t)| t.timestamp()),
            Some(1_900_000_000 - 3_600),
            "invalidityDate (RFC 5280 §5.3.2)"
        );
        assert!(revoked[1].invalidity_date().is_none());
        assert_eq!(revoked[1].raw_serial(), &[0x7f, 0xff, 0x00]);
        assert!(
            revoked[1].reason_code().is_none(),
            "unspecified is left out (RFC 5280 §5.3.1)"
        );
        assert_eq!(crl.issuer(), issuing.subject());

        // No entries: revokedCertificates is absent, not an empty SEQUENCE.
        let empty = issue_crl(&ca, &parameters, &[]).unwrap();
        let (_, crl) = x509_parser::parse_x509_crl(&empty).unwrap();
        assert_eq!(crl.iter_revoked_certificates().count(), 0);
        assert!(empty.len() < der.len());
    }

    #[test]
    fn reason_names() {
        assert_eq!(
            "keyCompromise".parse::<RevocationReason>(),
            Ok(RevocationReason::KeyCompromise)
        );
        assert_eq!(
            "KEY_COMPROMISE".parse::<RevocationReason>(),
            Ok(RevocationReason::KeyCompromise)
        );
        assert_eq!(
            "cACompromise".parse::<RevocationReason>(),
            Ok(RevocationReason::CaCompromise)
        );
        assert_eq!(
            "certificateHold"
                .parse::<RevocationReason>()
                .map(|r| r.code()),
            Ok(6)
        );
        assert_eq!(
            "privilegeWithdrawn"
                .parse::<RevocationReason>()
                .map(|r| r.code()),
            Ok(9)
        );
        assert!("removeFromCRL".parse::<RevocationReason>().is_err());
        assert!("stolen".parse::<RevocationReason>().is_err());
        for r in RevocationReason::ALL {
            assert_eq!(r.name().parse::<RevocationReason>(), Ok(r));
        }
    }
}
