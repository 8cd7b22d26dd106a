//! The store's reads: certificates (by filter, by page, by serial), idempotency keys, counts,
//! CA usage, pages of the audit trail, and the SQLite snapshot.

use sqlx::Row;

use super::{
    AuditRow, Backend, CaUsage, CertificateFilter, CertificatePage, CertificateQuery,
    CertificateRecord, IdempotentToken, Store, StoreError, api, audit, records,
};
use crate::ca::Serial;

impl Store {
    /// Certificates matching a filter, newest first. The subject filter is a case-insensitive
    /// substring match on both backends (ASCII case only on SQLite).
    pub async fn certificates(
        &self,
        filter: &CertificateFilter,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        records::list(&self.pool, self.backend == Backend::Postgres, filter).await
    }

    /// One page of certificates matching `query`, newest first (then by serial): a stable
    /// order, so a cursor taken from one page continues exactly after it.
    pub async fn certificate_page(
        &self,
        query: &CertificateQuery,
    ) -> Result<CertificatePage, StoreError> {
        api::page(&self.pool, self.backend == Backend::Postgres, query).await
    }

    /// The token a caller's idempotency key was used for, with its certificates' serials.
    pub async fn idempotent_token(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotentToken>, StoreError> {
        api::idempotent_token(&self.pool, scope, key).await
    }

    /// One certificate by serial.
    pub async fn certificate(
        &self,
        serial: &Serial,
    ) -> Result<Option<CertificateRecord>, StoreError> {
        records::get(&self.pool, serial.hex()).await
    }

    /// Number of good certificates whose notAfter lies in `(from, until]` (Unix seconds): the
    /// `ast_certificates_expiring` gauge.
    pub async fn count_expiring(&self, from: i64, until: i64) -> Result<i64, StoreError> {
        records::count_expiring(&self.pool, from, until).await
    }

    /// Per CA: certificates not yet expired at `now` (Unix seconds), all certificates, and the
    /// latest notAfter. CAs without certificates are absent.
    pub async fn ca_usage(&self, now: i64) -> Result<Vec<CaUsage>, StoreError> {
        records::ca_usage(&self.pool, now).await
    }

    /// Audit rows after sequence number `after_seq` written at or after `since_ms` (Unix
    /// milliseconds), in chain order, at most `limit`: one page of `audit export`.
    pub async fn audit_page(
        &self,
        since_ms: i64,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        audit::page(&self.pool, since_ms, after_seq, limit).await
    }

    /// Writes a consistent copy of a SQLite database to `dest` with `VACUUM INTO` (a read
    /// transaction: safe while the service runs; WAL content is included). `dest` must not
    /// exist or be empty; create it with the mode it should keep. Refused on PostgreSQL (use
    /// pg_dump).
    pub async fn snapshot_sqlite(&self, dest: &std::path::Path) -> Result<(), StoreError> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Unsupported(
                "a snapshot is for SQLite only; back up PostgreSQL with pg_dump",
            ));
        }
        let dest = dest
            .to_str()
            .ok_or(StoreError::Unsupported("the snapshot path is not UTF-8"))?;
        sqlx::query("VACUUM INTO $1")
            .bind(dest)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Number of certificate rows (tests and metrics).
    pub async fn count_certificates(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM certificates")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Number of token rows.
    pub async fn count_tokens(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM tokens")
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
