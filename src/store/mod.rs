//! Storage: tokens, certificates and the audit trail in SQLite or PostgreSQL.
//!
//! Owns: the schema, migrations, and every SQL statement. Must not: know HTTP, sign, or hold
//! private keys or PINs (there are no columns for them). Invariants: an issuance (token row,
//! its certificate rows and its audit row) is committed whole, by the node's one writer task,
//! possibly together with other issuances (group commit, see `writer`); the audit chain is linear
//! because every audit write first updates the single `audit_head` row (on PostgreSQL its row
//! lock queues writers of every node; on SQLite the write lock does); methods speak domain
//! types, never rows. Availability: acquiring a connection is bounded by a short timeout, so a
//! request fails fast with `unavailable` while the database is away (shorter still once an
//! outage has been noticed), and the pool reconnects by itself when it returns (idle
//! connections are tested before use).

mod audit;
mod officers;
mod records;
mod revocation;
mod writer;

use crate::ca::Serial;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Row};

pub use audit::{AuditEvent, AuditVerification};
pub use officers::{OfficerRecord, OfficerStatus};
pub use records::{CertificateFilter, CertificateRecord, CertificateStatus, TokenRecord};
pub use revocation::{CrlState, HOLD, RevocationOutcome, RevokedEntry, StoredCrl};
pub use writer::{
    BATCH_SIZE, COMMIT_SECONDS, IssuanceRecord, WriteSlot, WriterOptions, WriterStats,
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
    /// A certificate with this serial is already recorded (random serials: astronomically
    /// unlikely). Nothing of the transaction was written; the caller re-signs with a new serial.
    #[error("a certificate with serial {0} is already recorded")]
    DuplicateSerial(String),
    /// A write did not finish within the operation timeout; its outcome is unknown.
    #[error("the database did not finish a write within {0:?}")]
    TimedOut(Duration),
    /// The writer's queue is full: the node is writing as fast as the database commits.
    #[error("the database writer's queue is full")]
    QueueFull { retry_after: Duration },
    /// The writer task has stopped (the node is shutting down).
    #[error("the database writer has stopped")]
    WriterStopped,
    /// The batch this write was part of failed as a whole.
    #[error("{0}")]
    Batch(Arc<StoreError>),
}

/// Connection-pool settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Largest number of open connections.
    pub max_connections: u32,
    /// How long a write waits for a connection while the database looks healthy (all
    /// connections may be busy under load) before it fails with `unavailable`.
    pub acquire_timeout: Duration,
    /// The same while the database looks unreachable (the last attempt to get a connection
    /// failed): short, so that during an outage requests fail fast instead of piling up.
    pub unreachable_timeout: Duration,
    /// How long a write may take once it has its connection (including waiting for the audit
    /// chain's lock). Bounds a database that stops answering mid-transaction (a network
    /// partition, a stuck writer); the transaction's outcome is then unknown, so the request
    /// fails and its token is not delivered.
    pub operation_timeout: Duration,
}

impl StoreOptions {
    /// `max_connections` with the default timeouts.
    pub fn new(max_connections: u32) -> StoreOptions {
        StoreOptions {
            max_connections,
            acquire_timeout: Duration::from_secs(5),
            unreachable_timeout: Duration::from_secs(1),
            operation_timeout: Duration::from_secs(10),
        }
    }
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
    health: Arc<Health>,
    /// The group-commit writer (`None` only in the writer task's own handle).
    writer: Option<Arc<writer::Writer>>,
}

/// Whether the database looked unreachable at the last attempt to get a connection, shared by
/// the clones of a store.
struct Health {
    unreachable: AtomicBool,
    acquire_timeout: Duration,
    unreachable_timeout: Duration,
    operation_timeout: Duration,
    /// For the reachability probe.
    url: String,
}

impl std::fmt::Debug for Health {
    // Without the URL: it may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("unreachable", &self.unreachable)
            .field("unreachable_timeout", &self.unreachable_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects (creating a SQLite file if needed) and runs the embedded migrations. On
    /// PostgreSQL the migrator holds an advisory lock, so nodes starting together do not race.
    pub async fn open(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        Store::open_with(url, StoreOptions::new(max_connections)).await
    }

    /// As [`Store::open`], with explicit pool settings.
    pub async fn open_with(url: &str, options: StoreOptions) -> Result<Store, StoreError> {
        Store::open_tuned(url, options, WriterOptions::default()).await
    }

    /// As [`Store::open_with`], with explicit settings of the group-commit writer. Starts the
    /// writer task: call inside a Tokio runtime.
    pub async fn open_tuned(
        url: &str,
        options: StoreOptions,
        writer: WriterOptions,
    ) -> Result<Store, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            // A connection cut while idle (database restart, failover, network) is detected
            // here and replaced, so the node recovers without a restart.
            .test_before_acquire(true)
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
        let health = Arc::new(Health {
            unreachable: AtomicBool::new(false),
            acquire_timeout: options.acquire_timeout,
            unreachable_timeout: options.unreachable_timeout.min(options.acquire_timeout),
            operation_timeout: options.operation_timeout,
            url: url.to_string(),
        });
        let mut store = Store {
            pool,
            backend,
            health,
            writer: None,
        };
        store.writer = Some(Arc::new(writer::Writer::start(store.clone(), writer)));
        Ok(store)
    }

    /// True for PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// Connection-pool occupancy, for metrics.
    pub fn pool_status(&self) -> PoolStatus {
        PoolStatus {
            size: self.pool.size(),
            idle: self.pool.num_idle() as u32,
            max: self.pool.options().get_max_connections(),
        }
    }

    /// A connection for a write. While the database looks healthy this waits up to the acquire
    /// timeout (the pool may be busy); once it looks unreachable, only up to the short
    /// unreachable timeout, until a connection is obtained again. Connections are tested
    /// before use, so a database that returns is noticed on the next call.
    async fn connection(&self) -> Result<PoolConnection<Any>, StoreError> {
        let acquired = if self.health.unreachable.load(Ordering::Relaxed) {
            tokio::time::timeout(self.health.unreachable_timeout, self.pool.acquire())
                .await
                .unwrap_or(Err(sqlx::Error::PoolTimedOut))
        } else {
            self.pool.acquire().await
        };
        match &acquired {
            Ok(_) => self.set_unreachable(false),
            Err(_) => self.check_reachable().await,
        }
        Ok(acquired?)
    }

    /// After a failure: is the database unreachable, or only busy (every pooled connection in
    /// use, a lock held)? A fresh connection outside the pool tells, within the unreachable
    /// timeout. Only unreachability shortens later waits, so load does not turn into refusals.
    async fn check_reachable(&self) {
        let probe = tokio::time::timeout(
            self.health.unreachable_timeout,
            AnyConnection::connect(&self.health.url),
        )
        .await;
        let reachable = match probe {
            Ok(Ok(connection)) => {
                let _ = connection.close().await;
                true
            }
            _ => false,
        };
        self.set_unreachable(!reachable);
    }

    fn set_unreachable(&self, unreachable: bool) {
        if self.health.unreachable.swap(unreachable, Ordering::Relaxed) != unreachable {
            if unreachable {
                tracing::error!(
                    "the database is unreachable: requests that need it fail with `unavailable`"
                );
            } else {
                tracing::info!("the database is reachable again");
            }
        }
    }

    /// Cheap reachability check for `/readyz`: a round trip, bounded by the acquire timeout.
    /// When every pooled connection is busy (a node under load), it uses a fresh connection
    /// instead of queueing behind the requests, so a busy node does not report itself unready
    /// and get taken out of the load balancer exactly when it is needed.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let limit = self.pool.options().get_acquire_timeout();
        let exhausted = self.pool.num_idle() == 0
            && self.pool.size() >= self.pool.options().get_max_connections();
        if exhausted {
            let probe = async {
                let mut connection = AnyConnection::connect(&self.health.url).await?;
                sqlx::query("SELECT 1").fetch_one(&mut connection).await?;
                let _ = connection.close().await;
                Ok::<(), sqlx::Error>(())
            };
            return match tokio::time::timeout(limit, probe).await {
                Ok(result) => result.map_err(StoreError::from),
                Err(_) => Err(StoreError::TimedOut(limit)),
            };
        }
        // The wait for a pooled connection is bounded by `connection` itself, which also notices
        // an outage; the round trip gets the acquire timeout on top.
        let mut connection = self.connection().await?;
        let round_trip = sqlx::query("SELECT 1").fetch_one(&mut *connection);
        match tokio::time::timeout(limit, round_trip).await {
            Ok(result) => result.map(|_| ()).map_err(StoreError::from),
            Err(_) => Err(StoreError::TimedOut(limit)),
        }
    }

    /// Records a token, its certificates and the audit event, committed whole (possibly in one
    /// transaction with other issuances). Returns only after the commit: the caller may then
    /// deliver the token. [`StoreError::QueueFull`] at once when the writer's queue is full.
    pub async fn record_issuance(
        &self,
        token: &TokenRecord,
        certificates: &[CertificateRecord],
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        self.reserve_write()?
            .record(IssuanceRecord {
                token: token.clone(),
                certificates: certificates.to_vec(),
                event: event.clone(),
            })
            .await
    }

    /// Appends an audit event on its own (refusals, CLI actions).
    pub async fn record_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        self.bounded(async {
            let mut tx = connection.begin().await?;
            audit::append(&mut tx, event).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Runs a write under the operation timeout.
    async fn bounded<T>(
        &self,
        work: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let limit = self.health.operation_timeout;
        match tokio::time::timeout(limit, work).await {
            Ok(result) => result,
            Err(_) => {
                self.check_reachable().await;
                Err(StoreError::TimedOut(limit))
            }
        }
    }

    /// Walks the audit chain from the first row to the head as it is now (other nodes may keep
    /// appending meanwhile) and reports the first break: a changed or missing row.
    pub async fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        audit::verify(&self.pool).await
    }

    /// Certificates matching a filter, newest first. The subject filter is a case-insensitive
    /// substring match on both backends (ASCII case only on SQLite).
    pub async fn certificates(
        &self,
        filter: &CertificateFilter,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        records::list(&self.pool, self.backend == Backend::Postgres, filter).await
    }

    /// One certificate by serial.
    pub async fn certificate(
        &self,
        serial: &Serial,
    ) -> Result<Option<CertificateRecord>, StoreError> {
        records::get(&self.pool, serial.hex()).await
    }

    /// Number of certificate rows (tests and metrics).
    pub async fn count_certificates(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM certificates")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Registers an officer certificate and records the audit event, in one transaction.
    pub async fn register_officer(
        &self,
        officer: &OfficerRecord,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        officers::insert(&self.pool, officer, event).await
    }

    /// The officer holding the certificate with this SHA-256 fingerprint (lower-case hex).
    pub async fn officer_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<OfficerRecord>, StoreError> {
        officers::by_fingerprint(&self.pool, fingerprint).await
    }

    /// Every registered officer, oldest first.
    pub async fn officers(&self) -> Result<Vec<OfficerRecord>, StoreError> {
        officers::list(&self.pool).await
    }

    /// Revokes an officer by certificate serial. `Ok(None)`: no such officer. The audit event
    /// is recorded only when the status changes.
    pub async fn revoke_officer(
        &self,
        serial: &Serial,
        at: i64,
        event: &AuditEvent,
    ) -> Result<Option<OfficerRecord>, StoreError> {
        officers::revoke(&self.pool, serial.hex(), at, event).await
    }

    /// Number of token rows.
    pub async fn count_tokens(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM tokens")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Closes every connection (tests; a node shutting down).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Number of audit rows.
    pub async fn count_audit(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM audit")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }
}

/// Maps a unique violation on the certificate's serial to [`StoreError::DuplicateSerial`];
/// every other error passes through. PostgreSQL names the constraint, SQLite the column.
fn duplicate_serial(error: sqlx::Error, serial: &str) -> StoreError {
    if let sqlx::Error::Database(db) = &error
        && db.is_unique_violation()
        && (db.constraint() == Some("certificates_pkey")
            || db.message().contains("certificates.serial"))
    {
        return StoreError::DuplicateSerial(serial.to_string());
    }
    StoreError::Database(error)
}

/// Connection-pool occupancy (open connections, idle ones, the configured maximum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}
