//! Revoking the certificate of a subordinate CA that one of our CAs issued (`certs revoke
//! <serial of the CA certificate>`): the revocation is kept in the parent's history
//! (`imported_certificates`, source `ca`), so it is on the parent's CRL and in its OCSP answers;
//! the revoked CA then refuses to issue (`ca-revoked`). Only CA certificate files are read,
//! never keys: the CLI revokes with no HSM at hand.

use std::time::SystemTime;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::unix;
use crate::ca::{RevocationReason, Serial};
use crate::issuance::{Gateway, IssuanceError};
use crate::store::{
    AuditEvent, CertificateRecord, CertificateStatus, ImportRow, ImportedCertificate,
    ImportedRevocation,
};

/// A configured CA's certificate that its configured parent issued.
pub(super) struct SubordinateCertificate {
    pub parent: String,
    pub name: String,
    pub der: Vec<u8>,
    pub subject: String,
    pub issuer: String,
    pub not_before: i64,
    pub not_after: i64,
}

impl Gateway {
    /// The configured CA whose certificate has `serial` and was issued by a configured parent.
    pub(super) fn subordinate_certificate(
        &self,
        serial: &Serial,
    ) -> Option<SubordinateCertificate> {
        self.settings().cas.iter().find_map(|ca| {
            let parent = ca.parent.clone()?;
            let der = crate::ca::read_certificate_file(&ca.certificate).ok()?;
            let cert = <x509_cert::Certificate as der::Decode>::from_der(&der).ok()?;
            let tbs = cert.tbs_certificate();
            if Serial::from_bytes(tbs.serial_number().as_bytes()) != *serial {
                return None;
            }
            let time = |t: &x509_cert::time::Time| t.to_unix_duration().as_secs() as i64;
            Some(SubordinateCertificate {
                parent,
                name: ca.name.clone(),
                subject: crate::ca::display_name(tbs.subject()),
                issuer: crate::ca::display_name(tbs.issuer()),
                not_before: time(&tbs.validity().not_before),
                not_after: time(&tbs.validity().not_after),
                der,
            })
        })
    }

    /// Revokes the certificate of a subordinate CA in its parent's records, audited as
    /// `ca-certificate-revoked`. `None` when `serial` is no such certificate.
    pub(super) async fn revoke_ca_certificate(
        &self,
        serial: &Serial,
        reason: RevocationReason,
        caller: &str,
        request_id: &str,
    ) -> Option<Result<CertificateRecord, IssuanceError>> {
        let ca = self.subordinate_certificate(serial)?;
        let now = unix(SystemTime::now());
        let row = ImportRow {
            serial: serial.hex().to_string(),
            certificate: Some(ImportedCertificate {
                subject: ca.subject.clone(),
                not_after: ca.not_after,
                sha256: hex::encode(Sha256::digest(&ca.der)),
                der: ca.der.clone(),
            }),
            revocation: Some(ImportedRevocation {
                revoked_at: now,
                reason: Some(reason.name().to_string()),
                invalidity_date: None,
            }),
        };
        let event = AuditEvent::now(
            "ca-certificate-revoked",
            caller,
            request_id,
            json!({"revokedCa": ca.name, "reason": reason.name()}),
        );
        Some(
            match self
                .store
                .revoke_ca_certificate(&ca.parent, &row, &event, now)
                .await
            {
                Err(e) => Err(e.into()),
                Ok(false) => Err(IssuanceError::Conflict(format!(
                    "the certificate of CA `{}` ({serial}) is already revoked",
                    ca.name
                ))),
                Ok(true) => Ok(CertificateRecord {
                    serial: serial.clone(),
                    ca: ca.parent,
                    issuer: ca.issuer,
                    subject: ca.subject,
                    sans: Vec::new(),
                    not_before: ca.not_before,
                    not_after: ca.not_after,
                    purpose: format!("ca:{}", ca.name),
                    token_id: String::new(),
                    status: CertificateStatus::Revoked,
                    revoked_at: Some(now),
                    revocation_reason: Some(reason),
                    der: ca.der,
                }),
            },
        )
    }

    /// The revocation of CA `name`'s own certificate in its parent's records, if revoked.
    pub async fn ca_revocation(
        &self,
        name: &str,
    ) -> Result<Option<ImportedRevocation>, IssuanceError> {
        let Some(config) = self.settings().cas.iter().find(|c| c.name == name) else {
            return Ok(None);
        };
        let Some(parent) = &config.parent else {
            return Ok(None);
        };
        // The loaded CA (serve) or its certificate file (the CLI loads no keys).
        let serial = match self.cas.get(name) {
            Some(ca) => Serial::from_bytes(
                ca.certificate()
                    .tbs_certificate()
                    .serial_number()
                    .as_bytes(),
            ),
            None => match self.ca_serial(name).map(|s| Serial::parse(&s)) {
                Some(Ok(serial)) => serial,
                _ => return Ok(None),
            },
        };
        Ok(self
            .store
            .imported_status(parent, serial.hex())
            .await?
            .and_then(|s| s.revocation))
    }

    /// Re-reads which configured CAs have a revoked certificate (at open, after a revocation
    /// here, and with the revoked officers every few seconds, so a revocation by the CLI or
    /// another node reaches this node too). Issuance then checks memory, not the database.
    pub async fn refresh_revoked_cas(&self) -> Result<usize, IssuanceError> {
        let mut revoked = std::collections::HashMap::new();
        for ca in self.settings().cas.iter().filter(|c| c.parent.is_some()) {
            if let Some(revocation) = self.ca_revocation(&ca.name).await? {
                revoked.insert(ca.name.clone(), revocation);
            }
        }
        let count = revoked.len();
        self.revoked_cas.store(std::sync::Arc::new(revoked));
        Ok(count)
    }

    /// `ca-revoked` when CA `name`'s certificate is revoked (checked before any key is made,
    /// against the set `refresh_revoked_cas` keeps: no database round trip per token).
    pub(crate) fn refuse_revoked_ca(&self, name: &str) -> Result<(), IssuanceError> {
        match self.revoked_cas.load().get(name) {
            None => Ok(()),
            Some(revocation) => Err(IssuanceError::CaRevoked {
                ca: name.to_string(),
                serial: self.ca_serial(name).unwrap_or_default(),
                reason: revocation
                    .reason
                    .clone()
                    .unwrap_or_else(|| "unspecified".into()),
            }),
        }
    }

    fn ca_serial(&self, name: &str) -> Option<String> {
        let config = self.settings().cas.iter().find(|c| c.name == name)?;
        let der = crate::ca::read_certificate_file(&config.certificate).ok()?;
        let cert = <x509_cert::Certificate as der::Decode>::from_der(&der).ok()?;
        Some(
            Serial::from_bytes(cert.tbs_certificate().serial_number().as_bytes())
                .hex()
                .to_string(),
        )
    }
}
