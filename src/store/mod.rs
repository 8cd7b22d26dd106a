//! Storage: tokens, certificates and the audit trail in SQLite or PostgreSQL (SPEC §9).
//!
//! Owns: the schema, migrations, and every SQL statement. Must not: know HTTP, sign, or hold
//! private keys or PINs (there are no columns for them). Invariants: an issuance (token row,
//! its certificate rows and its audit row) is one transaction; the audit chain is linear
//! because every audit write first updates the single `audit_head` row; methods speak domain
//! types, never rows.

mod audit;
mod records;

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

pub use audit::{AuditEvent, AuditVerification};
pub use records::{
    CertificateFilter, CertificateRecord, CertificateStatus, TokenRecord, normalise_serial,
};

/// Errors of the store. Messages are for logs; clients only ever see `unavailable`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects (creating a SQLite file if needed) and runs the embedded migrations. On
    /// PostgreSQL the migrator holds an advisory lock, so nodes starting together do not race.
    pub async fn open(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        match backend {
            Backend::Sqlite => {
                sqlx::query("PRAGMA journal_mode=WAL")
                    .fetch_optional(&pool)
                    .await?;
                sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            }
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        Ok(Store { pool, backend })
    }

    /// True for PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// Cheap reachability check for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await?;
        Ok(())
    }

    /// Records a token, its certificates and the audit event in one transaction. Returns only
    /// after the commit: the caller may then deliver the token (SPEC §9 ordering).
    pub async fn record_issuance(
        &self,
        token: &TokenRecord,
        certificates: &[CertificateRecord],
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        audit::append(&mut tx, event).await?;
        sqlx::query(
            "INSERT INTO tokens (id, created_at, handler, token_procedure, caller, request_id, profile) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&token.id)
        .bind(token.created_at)
        .bind(&token.handler)
        .bind(&token.token_procedure)
        .bind(&token.caller)
        .bind(&token.request_id)
        .bind(&token.profile)
        .execute(&mut *tx)
        .await?;
        for c in certificates {
            sqlx::query(
                "INSERT INTO certificates (serial, ca, issuer, subject, sans, not_before, not_after, purpose, \
                 token_id, status, revoked_at, revocation_reason, der, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, $11, $12)",
            )
            .bind(&c.serial)
            .bind(&c.ca)
            .bind(&c.issuer)
            .bind(&c.subject)
            .bind(serde_json::to_string(&c.sans).unwrap_or_else(|_| "[]".into()))
            .bind(c.not_before)
            .bind(c.not_after)
            .bind(&c.purpose)
            .bind(&c.token_id)
            .bind(c.status.name())
            .bind(c.der.clone())
            .bind(token.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Appends an audit event on its own (refusals, CLI actions).
    pub async fn record_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        audit::append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Walks the audit chain from the first row and reports the first break.
    pub async fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        audit::verify(&self.pool).await
    }

    /// Certificates matching a filter, newest first.
    pub async fn certificates(
        &self,
        filter: &CertificateFilter,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        records::list(&self.pool, filter).await
    }

    /// One certificate by serial (hex in any case, with or without colons or leading zeros).
    pub async fn certificate(&self, serial: &str) -> Result<Option<CertificateRecord>, StoreError> {
        let Some(serial) = normalise_serial(serial) else {
            return Ok(None);
        };
        records::get(&self.pool, &serial).await
    }

    /// Number of certificate rows (tests and metrics).
    pub async fn count_certificates(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM certificates")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Number of audit rows.
    pub async fn count_audit(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM audit")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }
}
