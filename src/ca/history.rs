//! A CA's history read from elsewhere (an import): certificates it issued and its CRLs, each
//! checked against the CA's public key before anything is kept. `history/pem` streams PEM
//! bundles, `history/index` reads the `openssl ca` database (index.txt).

mod index;
mod pem;

use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

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
            subject: subject.to_string(),
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
        let cert = match X509Certificate::from_der(der) {
            Ok((_, cert)) => cert,
            Err(e) => {
                return Err(refusal(
                    "unreadable",
                    format!("not an X.509 certificate: {e}"),
                ));
            }
        };
        let serial = Serial::from_bytes(cert.raw_serial());
        let what = format!("certificate serial {serial}");
        self.check(
            cert.issuer().as_raw(),
            &cert.issuer().to_string(),
            (
                &cert.signature_algorithm.algorithm.to_id_string(),
                cert.tbs_certificate.as_ref(),
                &cert.signature_value.data,
            ),
            &what,
        )?;
        Ok(HistoricCertificate {
            subject: cert.subject().to_string(),
            not_after: cert.validity().not_after.timestamp(),
            sha256: hex::encode(Sha256::digest(der)),
            der: der.to_vec(),
            serial,
        })
    }

    /// A CRL (DER) this CA signed, checked.
    pub fn crl(&self, der: &[u8]) -> Result<HistoricCrl, Refusal> {
        let crl = match CertificateRevocationList::from_der(der) {
            Ok((_, crl)) => crl,
            Err(e) => return Err(refusal("unreadable", format!("not an X.509 CRL: {e}"))),
        };
        let number = crl.crl_number().map(|n| n.to_bytes_be());
        let number = match number {
            Some(bytes) if bytes.len() > 7 => {
                return Err(refusal(
                    "unreadable",
                    "the CRL number is larger than 2^56; not supported".into(),
                ));
            }
            Some(bytes) => Some(bytes.iter().fold(0i64, |n, b| (n << 8) | i64::from(*b))),
            None => None,
        };
        let what = format!(
            "CRL number {}",
            number.map_or("(none)".into(), |n| n.to_string())
        );
        self.check(
            crl.issuer().as_raw(),
            &crl.issuer().to_string(),
            (
                &crl.signature_algorithm.algorithm.to_id_string(),
                crl.tbs_cert_list.as_ref(),
                &crl.signature_value.data,
            ),
            &what,
        )?;
        let mut entries = Vec::new();
        for revoked in crl.iter_revoked_certificates() {
            let code = revoked.reason_code().map(|(_, c)| c.0);
            // removeFromCRL (8) only exists in delta CRLs: nothing to keep.
            if code == Some(8) {
                continue;
            }
            entries.push(HistoricRevocation {
                serial: Serial::from_bytes(revoked.raw_serial()),
                revoked_at: revoked.revocation_date.timestamp(),
                reason: code.and_then(reason_of_code),
                invalidity_date: revoked.invalidity_date().map(|(_, t)| t.timestamp()),
            });
        }
        Ok(HistoricCrl { number, entries })
    }
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
