//! Importing a CA's history (`certs import`, `ca import-crl`): every certificate and CRL is
//! checked against the CA's public key before it is kept, rows go to the store a batch at a
//! time (one transaction and one chained audit row per batch, with the counts and a SHA-256 of
//! what the batch read), and the report counts what was imported, already there, or refused.
//! Only the CA's certificate is read, never its key: a CA in an HSM is imported without a PIN.

use std::collections::BTreeMap;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::ca::history::{HistoricRevocation, HistoryIssuer, IndexEntry, IndexStatus};
use crate::config::GatewayConfig;
use crate::store::{
    AuditEvent, ImportOutcome, ImportRow, ImportedCertificate, ImportedRevocation, Store,
    StoreError,
};

/// Rows written per transaction.
pub const IMPORT_BATCH: usize = 1000;
/// Refusal messages kept for the report (all are counted).
const KEPT_MESSAGES: usize = 200;

/// What an import did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportReport {
    /// Items read (certificates, index lines, CRL entries).
    pub read: u64,
    pub imported: u64,
    /// Known rows completed (a certificate for a revocation-only row, a new revocation).
    pub updated: u64,
    pub already_there: u64,
    /// Refused items by reason code.
    pub refused: BTreeMap<String, u64>,
    /// The first refusals, each naming its file (and serial where known).
    pub messages: Vec<String>,
    /// The highest CRL number read (`ca import-crl`).
    pub highest_crl_number: Option<i64>,
}

impl ImportReport {
    /// Number of refused items.
    pub fn refused_total(&self) -> u64 {
        self.refused.values().sum()
    }
}

/// One import in progress for one CA.
pub struct HistoryImport {
    store: Store,
    ca: String,
    issuer: HistoryIssuer,
    source: &'static str,
    actor: String,
    batch: Vec<ImportRow>,
    /// Refusals of this batch before anything reached the store (for its audit row).
    batch_refusals: Vec<serde_json::Value>,
    digest: Sha256,
    crl_number: Option<i64>,
    report: ImportReport,
}

/// An import that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("no CA named `{0}` is configured (see `ast-gateway ca list`)")]
    UnknownCa(String),
    #[error("CA `{0}`: {1}")]
    Certificate(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl HistoryImport {
    /// Starts an import into the history of the configured CA `ca`. `source` is `import`
    /// (certificates, index.txt) or `crl`.
    pub fn start(
        settings: &GatewayConfig,
        store: Store,
        ca: &str,
        source: &'static str,
        actor: &str,
    ) -> Result<HistoryImport, ImportError> {
        let config = settings
            .cas
            .iter()
            .find(|c| c.name == ca)
            .ok_or_else(|| ImportError::UnknownCa(ca.to_string()))?;
        let bad = |m: String| ImportError::Certificate(ca.to_string(), m);
        let der = crate::ca::read_certificate_file(&config.certificate)
            .map_err(|e| bad(e.to_string()))?;
        let certificate = <x509_cert::Certificate as der::Decode>::from_der(&der)
            .map_err(|e| bad(e.to_string()))?;
        let issuer = HistoryIssuer::of(&certificate).ok_or_else(|| {
            bad("its key type cannot check signatures (RSA, ECDSA P-256/P-384, Ed25519)".into())
        })?;
        Ok(HistoryImport {
            store,
            ca: ca.to_string(),
            issuer,
            source,
            actor: actor.to_string(),
            batch: Vec::with_capacity(IMPORT_BATCH),
            batch_refusals: Vec::new(),
            digest: Sha256::new(),
            crl_number: None,
            report: ImportReport::default(),
        })
    }

    /// The counts so far (progress).
    pub fn report(&self) -> &ImportReport {
        &self.report
    }

    /// Counts a refusal of `origin` (a file, with the serial where known).
    pub fn refuse(&mut self, origin: &str, code: &'static str, message: &str) {
        self.report.read += 1;
        *self.report.refused.entry(code.to_string()).or_default() += 1;
        let text = format!("{origin}: {message}");
        if self.batch_refusals.len() < 20 {
            self.batch_refusals
                .push(json!({"code": code, "message": text}));
        }
        if self.report.messages.len() < KEPT_MESSAGES {
            self.report
                .messages
                .push(format!("refused ({code}) {text}"));
        }
    }

    /// A certificate file or PEM block (DER).
    pub async fn certificate(&mut self, origin: &str, der: &[u8]) -> Result<(), StoreError> {
        self.digest.update(der);
        match self.issuer.certificate(der) {
            Ok(cert) => {
                self.report.read += 1;
                self.push(ImportRow {
                    serial: cert.serial.hex().to_string(),
                    certificate: Some(ImportedCertificate {
                        subject: cert.subject,
                        not_after: cert.not_after,
                        der: cert.der,
                        sha256: cert.sha256,
                    }),
                    revocation: None,
                })
                .await
            }
            Err(refusal) => {
                self.refuse(origin, refusal.code, &refusal.message);
                Ok(())
            }
        }
    }

    /// One line of index.txt with its certificate file's contents when there is one. A
    /// revoked line without its certificate is kept as a revocation-only row; a valid one is
    /// refused (nothing could check it).
    pub async fn index_entry(
        &mut self,
        origin: &str,
        entry: IndexEntry,
        certificate: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let serial = entry.serial.hex().to_string();
        let revocation = (entry.status == IndexStatus::Revoked).then(|| ImportedRevocation {
            revoked_at: entry.revoked_at.unwrap_or(0),
            reason: entry.reason.map(|r| r.name().to_string()),
            invalidity_date: entry.invalidity_date,
        });
        self.digest.update(serial.as_bytes());
        let Some(der) = certificate else {
            if revocation.is_none() {
                self.refuse(origin, "missing-file", &format!("serial {serial}: no certificate file in --certs-dir; a valid entry is only imported with its certificate"));
                return Ok(());
            }
            self.report.read += 1;
            return self
                .push(ImportRow {
                    serial,
                    certificate: None,
                    revocation,
                })
                .await;
        };
        self.digest.update(&der);
        let cert = match self.issuer.certificate(&der) {
            Ok(cert) if cert.serial == entry.serial => cert,
            Ok(cert) => {
                let message = format!(
                    "index serial {serial}, but the certificate file holds serial {}",
                    cert.serial
                );
                self.refuse(origin, "mismatch", &message);
                return Ok(());
            }
            Err(refusal) => {
                self.refuse(origin, refusal.code, &refusal.message);
                return Ok(());
            }
        };
        self.report.read += 1;
        self.push(ImportRow {
            serial,
            certificate: Some(ImportedCertificate {
                subject: cert.subject,
                not_after: cert.not_after,
                der: cert.der,
                sha256: cert.sha256,
            }),
            revocation,
        })
        .await
    }

    /// A CRL file (DER): its entries become revocations, its number the floor of ours.
    pub async fn crl(&mut self, origin: &str, der: &[u8]) -> Result<(), StoreError> {
        self.digest.update(der);
        let crl = match self.issuer.crl(der) {
            Ok(crl) => crl,
            Err(refusal) => {
                self.refuse(origin, refusal.code, &refusal.message);
                return Ok(());
            }
        };
        if let Some(number) = crl.number {
            self.crl_number = Some(self.crl_number.map_or(number, |n| n.max(number)));
            self.report.highest_crl_number = self.crl_number;
        }
        for HistoricRevocation {
            serial,
            revoked_at,
            reason,
            invalidity_date,
        } in crl.entries
        {
            self.report.read += 1;
            let row = ImportRow {
                serial: serial.hex().to_string(),
                certificate: None,
                revocation: Some(ImportedRevocation {
                    revoked_at,
                    reason: reason.map(|r| r.name().to_string()),
                    invalidity_date,
                }),
            };
            self.push(row).await?;
        }
        Ok(())
    }

    async fn push(&mut self, row: ImportRow) -> Result<(), StoreError> {
        self.batch.push(row);
        if self.batch.len() >= IMPORT_BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes the batch (also an empty one with refusals or a CRL number: it is audited).
    async fn flush(&mut self) -> Result<(), StoreError> {
        if self.batch.is_empty() && self.batch_refusals.is_empty() && self.crl_number.is_none() {
            return Ok(());
        }
        let digest = hex::encode(std::mem::take(&mut self.digest).finalize());
        let event = AuditEvent::now(
            "history-imported",
            &self.actor,
            "",
            json!({"source": self.source, "read": self.batch.len() + self.batch_refusals.len(),
                   "sha256": digest, "refusedBeforeWrite": std::mem::take(&mut self.batch_refusals)}),
        );
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let outcomes = self
            .store
            .import_batch(
                &self.ca,
                self.source,
                &self.batch,
                self.crl_number,
                &event,
                now,
            )
            .await?;
        self.batch.clear();
        for (outcome, _) in outcomes.iter().zip(0..) {
            match outcome {
                ImportOutcome::Imported => self.report.imported += 1,
                ImportOutcome::Updated => self.report.updated += 1,
                ImportOutcome::AlreadyThere => self.report.already_there += 1,
                ImportOutcome::Refused(code, message) => {
                    *self.report.refused.entry(code.to_string()).or_default() += 1;
                    if self.report.messages.len() < KEPT_MESSAGES {
                        self.report
                            .messages
                            .push(format!("refused ({code}) {message}"));
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes what is left and returns the report.
    pub async fn finish(mut self) -> Result<ImportReport, StoreError> {
        self.flush().await?;
        Ok(self.report)
    }
}
