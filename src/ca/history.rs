//! A CA's history read from elsewhere (an import): certificates it issued and its CRLs, each
//! checked against the CA's public key before anything is kept. `history/pem` streams PEM
//! bundles, `history/index` reads the `openssl ca` database (index.txt).
//!
//! Read with x509-cert (the crate's one ASN.1 stack); the signed part of each certificate and
//! CRL is verified over its bytes exactly as they were read (not a re-encoding).

mod index;
mod pem;

use der::asn1::{BitString, GeneralizedTime};
use der::{Decode, Encode, Reader, SliceReader, Tagged};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::ext::Extensions;

use super::verify::CaPublicKey;
use super::{RevocationReason, Serial};

pub use index::{IndexEntry, IndexStatus, parse_index_line};
pub use pem::PemBlocks;

/// Why one item of an import is refused: a stable code and a message naming what was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `unreadable`, `other-ca`, …
    pub code: &'static str,
    pub message: String,
}

fn refusal(code: &'static str, message: String) -> Refusal {
    Refusal { code, message }
}

/// The CA whose history is imported: its subject and key.
#[derive(Debug, Clone)]
pub struct HistoryIssuer {
    subject_der: Vec<u8>,
    subject: String,
    key: CaPublicKey,
}

impl HistoryIssuer {
    /// The issuer of a CA certificate's history; `None` for a key type we cannot check.
    pub fn of(certificate: &Certificate) -> Option<HistoryIssuer> {
        let subject = certificate.tbs_certificate().subject();
        Some(HistoryIssuer {
            subject_der: der::Encode::to_der(subject).ok()?,
            subject: super::display_name(subject),
            key: CaPublicKey::of(certificate)?,
        })
    }

    /// The issuer name and signature are this CA's; else an `other-ca` refusal naming `what`.
    fn check(
        &self,
        issuer_der: &[u8],
        issuer: &str,
        signed: (&str, &[u8], &[u8]),
        what: &str,
    ) -> Result<(), Refusal> {
        if issuer_der != self.subject_der.as_slice() {
            return Err(refusal(
                "other-ca",
                format!(
                    "{what} was issued by `{issuer}`, not by this CA (`{}`)",
                    self.subject
                ),
            ));
        }
        let (algorithm, tbs, signature) = signed;
        if !self.key.verifies(algorithm, tbs, signature) {
            return Err(refusal(
                "other-ca",
                format!(
                    "{what}: the signature does not verify under the key of `{}` (another CA with the same name, or an algorithm other than RSA/ECDSA/Ed25519 with SHA-1/256/384/512)",
                    self.subject
                ),
            ));
        }
        Ok(())
    }

    /// A certificate (DER) this CA issued, checked.
    pub fn certificate(&self, der: &[u8]) -> Result<HistoricCertificate, Refusal> {
        let unreadable =
            |e: der::Error| refusal("unreadable", format!("not an X.509 certificate: {e}"));
        let cert = Certificate::from_der(der).map_err(unreadable)?;
        let tbs = cert.tbs_certificate();
        let serial = Serial::from_bytes(tbs.serial_number().as_bytes());
        let what = format!("certificate serial {serial}");
        self.check(
            &tbs.issuer().to_der().map_err(unreadable)?,
            &super::display_name(tbs.issuer()),
            (
                &cert.signature_algorithm().oid.to_string(),
                signed_part(der).map_err(unreadable)?,
                signature_bytes(cert.signature())?,
            ),
            &what,
        )?;
        Ok(HistoricCertificate {
            subject: super::display_name(tbs.subject()),
            not_after: unix(&tbs.validity().not_after),
            sha256: hex::encode(Sha256::digest(der)),
            der: der.to_vec(),
            serial,
        })
    }

    /// A CRL (DER) this CA signed, checked.
    pub fn crl(&self, der: &[u8]) -> Result<HistoricCrl, Refusal> {
        let unreadable = |e: der::Error| refusal("unreadable", format!("not an X.509 CRL: {e}"));
        let crl = <CertificateList>::from_der(der).map_err(unreadable)?;
        let tbs = &crl.tbs_cert_list;
        let number = match extension(&tbs.crl_extensions, CRL_NUMBER) {
            Some(value) => {
                let number =
                    x509_cert::ext::pkix::CrlNumber::from_der(value).map_err(unreadable)?;
                let bytes = number.0.as_bytes();
                if bytes.len() > 7 {
                    return Err(refusal(
                        "unreadable",
                        "the CRL number is larger than 2^56; not supported".into(),
                    ));
                }
                Some(bytes.iter().fold(0i64, |n, b| (n << 8) | i64::from(*b)))
            }
            None => None,
        };
        let what = format!(
            "CRL number {}",
            number.map_or("(none)".into(), |n| n.to_string())
        );
        self.check(
            &tbs.issuer.to_der().map_err(unreadable)?,
            &super::display_name(&tbs.issuer),
            (
                &crl.signature_algorithm.oid.to_string(),
                signed_part(der).map_err(unreadable)?,
                signature_bytes(&crl.signature)?,
            ),
            &what,
        )?;
        let mut entries = Vec::new();
        for revoked in tbs.revoked_certificates.iter().flatten() {
            let extensions = &revoked.crl_entry_extensions;
            let code = match extension(extensions, REASON_CODE) {
                Some(value) => Some(reason_code(value).map_err(unreadable)?),
                None => None,
            };
            // removeFromCRL (8) only exists in delta CRLs: nothing to keep.
            if code == Some(8) {
                continue;
            }
            let invalidity_date = match extension(extensions, INVALIDITY_DATE) {
                Some(value) => Some(
                    GeneralizedTime::from_der(value)
                        .map_err(unreadable)?
                        .to_unix_duration()
                        .as_secs() as i64,
                ),
                None => None,
            };
            entries.push(HistoricRevocation {
                serial: Serial::from_bytes(revoked.serial_number.as_bytes()),
                revoked_at: unix(&revoked.revocation_date),
                reason: code.and_then(reason_of_code),
                invalidity_date,
            });
        }
        Ok(HistoricCrl { number, entries })
    }
}

const CRL_NUMBER: der::asn1::ObjectIdentifier = const_oid::db::rfc5280::ID_CE_CRL_NUMBER;
const REASON_CODE: der::asn1::ObjectIdentifier = const_oid::db::rfc5280::ID_CE_CRL_REASONS;
const INVALIDITY_DATE: der::asn1::ObjectIdentifier = const_oid::db::rfc5280::ID_CE_INVALIDITY_DATE;

/// The value (DER inside the OCTET STRING) of the extension `oid`, if present.
fn extension(extensions: &Option<Extensions>, oid: der::asn1::ObjectIdentifier) -> Option<&[u8]> {
    extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == oid)
        .map(|e| e.extn_value.as_bytes())
}

/// A CRLReason (ENUMERATED) as its code.
fn reason_code(value: &[u8]) -> der::Result<u8> {
    let any = der::asn1::AnyRef::from_der(value)?;
    match (any.tag(), any.value()) {
        (der::Tag::Enumerated, [code]) => Ok(*code),
        _ => Err(der::Tag::Enumerated.value_error().into()),
    }
}

/// The signed part (`tbsCertificate` / `tbsCertList`) exactly as read: the first element of
/// the outer SEQUENCE, header included. x509-cert hands out decoded values only, and a
/// signature must be checked over the bytes that were signed.
fn signed_part(der: &[u8]) -> der::Result<&[u8]> {
    let mut reader = SliceReader::new(der)?;
    reader.sequence(|inner: &mut SliceReader<'_>| {
        let tbs = inner.tlv_bytes()?;
        inner.tlv_bytes()?;
        inner.tlv_bytes()?;
        Ok(tbs)
    })
}

/// The signature's bytes (a whole number of octets, as every X.509 signature is).
fn signature_bytes(signature: &BitString) -> Result<&[u8], Refusal> {
    signature.as_bytes().ok_or_else(|| {
        refusal(
            "unreadable",
            "the signature is not a whole number of bytes".into(),
        )
    })
}

/// Unix seconds of an X.509 time.
fn unix(time: &x509_cert::time::Time) -> i64 {
    time.to_unix_duration().as_secs() as i64
}

/// The reason of a CRLReason code (RFC 5280 §5.3.1); `None` for codes that name none.
pub fn reason_of_code(code: u8) -> Option<RevocationReason> {
    RevocationReason::ALL.into_iter().find(|r| r.code() == code)
}

/// A certificate of the history, checked.
#[derive(Debug, Clone)]
pub struct HistoricCertificate {
    pub serial: Serial,
    pub subject: String,
    /// Unix seconds.
    pub not_after: i64,
    pub der: Vec<u8>,
    /// SHA-256 of `der`, lower-case hex.
    pub sha256: String,
}

/// A CRL of the history, checked.
#[derive(Debug, Clone)]
pub struct HistoricCrl {
    pub number: Option<i64>,
    pub entries: Vec<HistoricRevocation>,
}

/// One revocation of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoricRevocation {
    pub serial: Serial,
    /// Unix seconds.
    pub revoked_at: i64,
    pub reason: Option<RevocationReason>,
    pub invalidity_date: Option<i64>,
}
