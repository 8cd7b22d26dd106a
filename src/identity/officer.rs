//! How an officer certificate is identified: by its issuer and serial number, the two facts a
//! CA signs into the certificate and keeps unique. Never by a hash of the DER: an ECDSA
//! signature is malleable (`s` → `n − s` still verifies), so anyone holding a certificate can
//! make a second, equally valid encoding of it with another fingerprint.
//!
//! Also the set of revoked officer certificates the TLS client verifier consults during the
//! handshake (`RevokedOfficers`): shared, swapped whole on refresh, read without a lock.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use der::Decode;

use crate::ca::Serial;

/// Issuer DN (RFC 4514 text, as x509-cert prints it) and serial of a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertificateId {
    pub issuer: String,
    pub serial: Serial,
}

impl CertificateId {
    /// Reads issuer and serial from a DER certificate (`None` when it does not parse).
    pub fn from_der(der: &[u8]) -> Option<CertificateId> {
        let certificate = x509_cert::Certificate::from_der(der).ok()?;
        Some(Self::of(&certificate))
    }

    /// Issuer and serial of a parsed certificate.
    pub fn of(certificate: &x509_cert::Certificate) -> CertificateId {
        let tbs = certificate.tbs_certificate();
        CertificateId {
            issuer: tbs.issuer().to_string(),
            serial: Serial::from_bytes(tbs.serial_number().as_bytes()),
        }
    }
}

impl fmt::Display for CertificateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "serial {} from {}", self.serial, self.issuer)
    }
}

/// The revoked officer certificates, for the TLS client verifier. The gateway adds an
/// officer when it revokes one and replaces the whole set from the registry at start and
/// periodically (revocations made by another node or by the CLI); the per-request registry
/// lookup stays the authority, this set only closes the door earlier.
#[derive(Debug, Default)]
pub struct RevokedOfficers {
    set: ArcSwap<HashSet<CertificateId>>,
}

impl RevokedOfficers {
    /// An empty set.
    pub fn new() -> Arc<RevokedOfficers> {
        Arc::new(RevokedOfficers::default())
    }

    /// True when this certificate is known to be revoked.
    pub fn contains(&self, id: &CertificateId) -> bool {
        self.set.load().contains(id)
    }

    /// Replaces the set (a refresh from the registry).
    pub fn replace(&self, revoked: HashSet<CertificateId>) {
        self.set.store(Arc::new(revoked));
    }

    /// Adds one revoked certificate.
    pub fn insert(&self, id: CertificateId) {
        self.set.rcu(|current| {
            let mut next = HashSet::clone(current);
            next.insert(id.clone());
            next
        });
    }

    /// How many certificates are in the set.
    pub fn len(&self) -> usize {
        self.set.load().len()
    }

    /// True when no certificate is in the set.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(serial: &str) -> CertificateId {
        CertificateId {
            issuer: "CN=Officers".into(),
            serial: Serial::parse(serial).unwrap(),
        }
    }

    #[test]
    fn revoked_set_insert_and_replace() {
        let revoked = RevokedOfficers::new();
        assert!(revoked.is_empty());
        revoked.insert(id("01"));
        assert!(revoked.contains(&id("0x01")));
        assert!(!revoked.contains(&id("02")));
        // The same serial from another issuer is another certificate.
        let other = CertificateId {
            issuer: "CN=Elsewhere".into(),
            ..id("01")
        };
        assert!(!revoked.contains(&other));
        revoked.replace(HashSet::from([id("02")]));
        assert!(revoked.contains(&id("02")) && !revoked.contains(&id("01")));
        assert_eq!(revoked.len(), 1);
    }

    #[test]
    fn junk_has_no_identity() {
        assert_eq!(CertificateId::from_der(b"not a certificate"), None);
    }
}
