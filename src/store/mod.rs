//! Storage: tokens, certificates and the audit trail in SQLite or PostgreSQL.
//!
//! Owns: the schema, migrations, and every SQL statement. Must not: know HTTP, sign, or hold
//! private keys or PINs (there are no columns for them). Invariants: an issuance (token row,
//! its certificate rows and its audit row) is committed whole, by the node's one writer task,
//! possibly together with other issuances (group commit, see `writer`; the entry points are in
//! `recording`); the audit chain is linear because every audit write first updates the single
//! `audit_head` row (on PostgreSQL its row lock queues writers of every node; on SQLite the write
//! lock does); methods speak domain types, never rows. Availability (`health`): acquiring a
//! connection is bounded by a short timeout, so a request fails fast with `unavailable` while
//! the database is away (shorter still once an outage has been noticed), and the pool
//! reconnects by itself when it returns (idle connections are tested before use). Failover
//! (`targets`, `failover`): the URL may name several PostgreSQL servers; the pool keeps
//! connections to a writable one only and drops those whose server went away or turned
//! read-only. Durability (`durability`): whether commits wait for a synchronous standby.
//!
//! This file holds the store handle, its errors and settings, and opening a database; reads are
//! in `reads`, the officer registry's methods in `officers`.

mod anchor;
mod api;
mod audit;
mod audit_certificates;
mod audit_crosscheck;
mod audit_report;
mod audit_verify;
mod copy;
mod durability;
mod failover;
mod files;
mod health;
mod import;
mod officers;
mod reads;
mod recording;
mod records;
mod refusals;
mod revocation;
mod targets;
mod upkeep;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, install_default_drivers};

use failover::Failover;
use health::Health;

pub use anchor::Anchor;
pub use api::{CertificatePage, CertificateQuery, IdempotencyKey, IdempotentToken, PageCursor};
pub use audit::{
    AUDIT_KEY_LABEL, AuditEvent, AuditRow, AuditSeal, PATH_LIMIT, SIGNATURE_LIMIT, TEXT_LIMIT,
};
pub use audit_report::{AnchorSeen, AuditProblem, AuditVerification};
pub use copy::CopyReport;
pub use durability::Durability;
pub use failover::{CONNECTIONS_DROPPED, SERVER_SWITCHES};
pub use files::make_private_directory;
pub use import::{
    ImportOutcome, ImportRow, ImportedCertificate, ImportedRevocation, ImportedStatus,
};
pub use officers::{OfficerRecord, OfficerStatus};
pub use records::{CaUsage, CertificateFilter, CertificateRecord, CertificateStatus, TokenRecord};
pub use refusals::ROWS_PER_MINUTE as REFUSAL_ROWS_PER_MINUTE;
pub use revocation::{CrlState, HOLD, RevocationOutcome, RevokedEntry, StoredCrl};
pub use upkeep::AuditUpkeep;
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
    /// The caller already used this idempotency key (an earlier or a concurrent request).
    /// Nothing of the transaction was written.
    #[error("the idempotency key was already used")]
    DuplicateIdempotencyKey,
    /// A write did not finish within the operation timeout; its outcome is unknown.
    #[error("the database did not finish a write within {0:?}")]
    TimedOut(Duration),
    /// The operation does not exist for this database kind.
    #[error("{0}")]
    Unsupported(&'static str),
    /// The SQLite database file could not be created or made private.
    #[error("{0}")]
    File(String),
    /// The database answers but refuses writes (read-only replica, locked SQLite file).
    #[error("the database does not accept writes: {0}")]
    ReadOnly(String),
    /// The writer's queue is full: the node is writing as fast as the database commits.
    #[error("the database writer's queue is full")]
    QueueFull { retry_after: Duration },
    /// The writer task has stopped (the node is shutting down).
    #[error("the database writer has stopped")]
    WriterStopped,
    /// The batch this write was part of failed as a whole.
    #[error("{0}")]
    Batch(Arc<StoreError>),
    /// `[database] require_synchronous_replication` is set and the transaction would have
    /// committed without waiting for a synchronous standby (the settings it saw are given).
    /// Nothing of it was written.
    #[error(
        "synchronous replication is required ([database] require_synchronous_replication) and the database has none: {0}"
    )]
    NotReplicated(String),
}

impl StoreError {
    /// This error, or the batch failure it is part of, is [`StoreError::NotReplicated`].
    pub fn is_not_replicated(&self) -> bool {
        match self {
            StoreError::NotReplicated(_) => true,
            StoreError::Batch(inner) => inner.is_not_replicated(),
            _ => false,
        }
    }
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
    /// The audit chain's key and anchor file (none until [`Store::with_audit`]).
    audit: AuditSeal,
    refusals: Arc<refusals::Refusals>,
    upkeep: Arc<Upkeep>,
    /// The group-commit writer (`None` only in the writer task's own handle).
    writer: Option<Arc<writer::Writer>>,
}

/// Audit bookkeeping shared by the clones of a store.
#[derive(Debug, Default)]
struct Upkeep {
    /// The last head this store anchored (0: none).
    last_anchor: AtomicI64,
    /// The minute up to which refusal counts were flushed.
    flushed_minute: AtomicI64,
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
        if backend == Backend::Sqlite {
            files::prepare_sqlite_file(url)?;
        }
        let targets = targets::Targets::parse(url)?;
        let postgres = backend == Backend::Postgres;
        // The first writable server of the URL, in order (one server: that one, if writable).
        let first = if postgres {
            let failover = Failover::new(targets.clone(), true, 0);
            failover
                .search(options.acquire_timeout)
                .await
                .map_err(|reasons| {
                    StoreError::ReadOnly(format!(
                        "no writable PostgreSQL server among {}: {reasons}",
                        targets.labels()
                    ))
                })?
        } else {
            0
        };
        let failover = Arc::new(Failover::new(targets, postgres, first));
        let pool = failover
            .hooks(AnyPoolOptions::new())
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(failover.current_options().clone())
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
        if failover.targets.is_multi_host() {
            tracing::info!(
                servers = %failover.targets.labels(),
                target_session_attrs = ?failover.targets.attrs,
                "database: writing to {} (the first writable server of the URL)",
                failover.current_label()
            );
        }
        let health = Arc::new(Health {
            unreachable: AtomicBool::new(false),
            acquire_timeout: options.acquire_timeout,
            unreachable_timeout: options.unreachable_timeout.min(options.acquire_timeout),
            operation_timeout: options.operation_timeout,
            failover,
            require_synchronous: AtomicBool::new(false),
        });
        let mut store = Store {
            pool,
            backend,
            health,
            audit: AuditSeal::default(),
            refusals: Arc::default(),
            upkeep: Arc::default(),
            writer: None,
        };
        store.writer = Some(Arc::new(writer::Writer::start(store.clone(), writer)));
        Ok(store)
    }

    /// The same store, sealing the audit trail with `seal`: rows get MACs, anchors are taken,
    /// and `verify_audit` checks both. Every writer of a database must use the same key (all
    /// nodes share `data/secret.key`); a store without it writes legacy rows, which a keyed
    /// verification reports once keyed rows exist.
    pub fn with_audit(mut self, seal: AuditSeal) -> Store {
        self.audit = seal;
        // The writer task holds its own clone of the store: start it again with the seal (the
        // old one ends when its queue's last sender, the dropped `Writer`, is gone).
        if let Some(old) = self.writer.take() {
            let options = old.options();
            let mut plain = self.clone();
            plain.writer = None;
            self.writer = Some(Arc::new(writer::Writer::start(plain, options)));
        }
        self
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

    /// A clone without the writer, for background tasks that must not keep it alive.
    fn clone_without_writer(&self) -> Store {
        let mut store = self.clone();
        store.writer = None;
        store
    }

    /// Closes every connection (tests; a node shutting down).
    pub async fn close(&self) {
        self.pool.close().await;
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
