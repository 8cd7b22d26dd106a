//! OCSP (RFC 6960): answers built per request from the certificates table (and, for the
//! officers CA, the officer registry), signed by the CA that issued the first certificate asked
//! about.

use std::sync::Arc;
use std::time::SystemTime;

use super::{from_unix, unix};
use crate::ca::ocsp::{self, OcspFailure, OcspStatus};
use crate::ca::{Ca, Serial};
use crate::config::UnknownSerials;
use crate::issuance::Gateway;
use crate::store::CertificateStatus;

/// An OCSP answer for the HTTP layer.
#[derive(Debug, Clone)]
pub struct OcspAnswer {
    /// The DER OCSPResponse (`application/ocsp-response`).
    pub der: Vec<u8>,
    /// Seconds a cache may keep it (RFC 5019 §6.2), `None` for unsigned error answers.
    pub max_age: Option<u64>,
    /// thisUpdate of a signed answer (Last-Modified).
    pub this_update: Option<SystemTime>,
}

impl Gateway {
    /// Answers a DER OCSP request (RFC 6960). Never fails: problems become OCSP error statuses.
    pub async fn ocsp(&self, request_der: &[u8]) -> OcspAnswer {
        match self.ocsp_inner(request_der).await {
            Ok(answer) => answer,
            Err(why) => OcspAnswer {
                der: ocsp::failure_response(why),
                max_age: None,
                this_update: None,
            },
        }
    }

    async fn ocsp_inner(&self, request_der: &[u8]) -> Result<OcspAnswer, OcspFailure> {
        let request = ocsp::parse_request(request_der)?;
        let first = request
            .queries
            .first()
            .ok_or(OcspFailure::MalformedRequest)?;
        // Signed by the CA that issued the first certificate asked about; queries about other
        // issuers are answered `unknown`.
        let ca = self
            .cas
            .values()
            .find(|ca| first.is_issued_by(ca))
            .cloned()
            .ok_or(OcspFailure::Unauthorized)?;
        let mut statuses = Vec::with_capacity(request.queries.len());
        for query in &request.queries {
            let status = if query.is_issued_by(&ca) {
                self.ocsp_status(&ca, &query.serial).await.map_err(|e| {
                    tracing::error!(error = %e, "OCSP: the database is unavailable");
                    OcspFailure::TryLater
                })?
            } else {
                OcspStatus::Unknown
            };
            statuses.push(status);
        }
        let validity = self.settings().ocsp.validity;
        let this_update = from_unix(unix(SystemTime::now()));
        let next_update = this_update + validity;
        let der = tokio::task::spawn_blocking(move || {
            let answers: Vec<_> = request.queries.iter().zip(statuses).collect();
            ocsp::sign_response(
                &ca,
                &answers,
                request.nonce.as_deref(),
                this_update,
                next_update,
            )
        })
        .await
        .map_err(|_| OcspFailure::InternalError)?
        .map_err(|e| {
            tracing::error!(error = %e, "OCSP: signing failed");
            OcspFailure::InternalError
        })?;
        Ok(OcspAnswer {
            der,
            max_age: Some(validity.as_secs()),
            this_update: Some(this_update),
        })
    }

    /// The status of `serial` issued by `ca`: from the certificate table, or the officer
    /// registry (officer certificates `ca` issued), else from the CA's imported history or the configured CAs
    /// it issued; what `unknown_serials` says when none knows it.
    async fn ocsp_status(
        &self,
        ca: &Ca,
        serial: &Serial,
    ) -> Result<OcspStatus, crate::store::StoreError> {
        Ok(match self.store.certificate(serial).await? {
            Some(record) if record.ca == ca.name() => match record.status {
                CertificateStatus::Good => OcspStatus::Good,
                CertificateStatus::Revoked => OcspStatus::Revoked {
                    at: from_unix(record.revoked_at.unwrap_or(0)),
                    reason: record.revocation_reason,
                },
            },
            _ => match self.store.officer_revocation(ca.name(), serial).await? {
                Some(None) => OcspStatus::Good,
                Some(Some(at)) => OcspStatus::Revoked {
                    at: from_unix(at),
                    reason: None,
                },
                None => self.history_status(ca, serial).await?,
            },
        })
    }

    /// The status of a serial this gateway did not issue: the CA's imported history (and the
    /// revoked CA certificates it issued), then the configured CAs it issued (good), then the
    /// CA's `unknown_serials`.
    async fn history_status(
        &self,
        ca: &Ca,
        serial: &Serial,
    ) -> Result<OcspStatus, crate::store::StoreError> {
        if let Some(status) = self.store.imported_status(ca.name(), serial.hex()).await? {
            return Ok(match status.revocation {
                None => OcspStatus::Good,
                Some(r) => OcspStatus::Revoked {
                    at: from_unix(r.revoked_at),
                    reason: r.reason.as_deref().and_then(|s| s.parse().ok()),
                },
            });
        }
        if self.subordinate_ca(ca, serial).is_some() {
            return Ok(OcspStatus::Good);
        }
        let policy = self
            .settings()
            .cas
            .iter()
            .find(|c| c.name == ca.name())
            .map(|c| c.unknown_serials)
            .unwrap_or_default();
        Ok(match policy {
            UnknownSerials::Unknown => OcspStatus::Unknown,
            UnknownSerials::Good => OcspStatus::Good,
            UnknownSerials::Revoked => OcspStatus::NotIssued,
        })
    }

    /// The configured CA whose certificate `parent` issued with this serial.
    pub(crate) fn subordinate_ca(&self, parent: &Ca, serial: &Serial) -> Option<Arc<Ca>> {
        self.cas
            .values()
            .find(|c| {
                c.chain().get(1).map(Vec::as_slice) == Some(parent.certificate_der())
                    && Serial::from_bytes(
                        c.certificate().tbs_certificate().serial_number().as_bytes(),
                    ) == *serial
            })
            .cloned()
    }
}
