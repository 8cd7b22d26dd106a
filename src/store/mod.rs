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

mod anchor;
mod api;
mod audit;
mod audit_crosscheck;
mod audit_verify;
mod files;
mod officers;
mod records;
mod refusals;
mod revocation;
mod writer;

use crate::ca::Serial;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Row};

pub use anchor::Anchor;
pub use api::{CertificatePage, CertificateQuery, IdempotencyKey, IdempotentToken, PageCursor};
pub use audit::{AUDIT_KEY_LABEL, AuditEvent, AuditRow, AuditSeal, PATH_LIMIT, TEXT_LIMIT};
pub use audit_verify::{AnchorSeen, AuditProblem, AuditVerification};
pub use files::make_private_directory;
pub use officers::{OfficerRecord, OfficerStatus};
pub use records::{CaUsage, CertificateFilter, CertificateRecord, CertificateStatus, TokenRecord};
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
        if backend == Backend::Sqlite {
            files::prepare_sqlite_file(url)?;
        }
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

    /// Can this node write? `/readyz` asks after [`Store::ping`]: a SQLite file another
    /// process holds locked, or a PostgreSQL standby (or `transaction_read_only`), answers
    /// reads but would fail every issuance. SQLite: `BEGIN IMMEDIATE` on a fresh connection
    /// with a short busy timeout, then `ROLLBACK` (nothing is written). PostgreSQL: the
    /// server's read-only state, asked on a pooled connection; skipped while every pooled
    /// connection is busy, which means the node is writing.
    pub async fn writable(&self) -> Result<(), StoreError> {
        let limit = self.pool.options().get_acquire_timeout();
        let probe = async {
            match self.backend {
                Backend::Sqlite => {
                    let mut connection = AnyConnection::connect(&self.health.url).await?;
                    sqlx::query("PRAGMA busy_timeout = 250")
                        .fetch_optional(&mut connection)
                        .await?;
                    let began = sqlx::query("BEGIN IMMEDIATE")
                        .execute(&mut connection)
                        .await;
                    if began.is_ok() {
                        sqlx::query("ROLLBACK").execute(&mut connection).await?;
                    }
                    let _ = connection.close().await;
                    began
                        .map(|_| ())
                        .map_err(|e| StoreError::ReadOnly(format!("SQLite: {e}")))
                }
                Backend::Postgres => {
                    let exhausted = self.pool.num_idle() == 0
                        && self.pool.size() >= self.pool.options().get_max_connections();
                    if exhausted {
                        return Ok(());
                    }
                    let mut connection = self.connection().await?;
                    let row = sqlx::query(
                        "SELECT CASE WHEN pg_is_in_recovery() \
                         OR current_setting('transaction_read_only') = 'on' THEN 1 ELSE 0 END",
                    )
                    .fetch_one(&mut *connection)
                    .await?;
                    if row.try_get::<i32, _>(0)? == 1 {
                        Err(StoreError::ReadOnly(
                            "PostgreSQL is read-only here (a standby, or transaction_read_only)"
                                .into(),
                        ))
                    } else {
                        Ok(())
                    }
                }
            }
        };
        match tokio::time::timeout(limit, probe).await {
            Ok(result) => result,
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
        // The chain lists the serials actually inserted, so `audit verify` can cross-check them.
        let serials: Vec<&str> = certificates.iter().map(|c| c.serial.as_str()).collect();
        let event = event.with_fields(&[("serials", serde_json::json!(serials))]);
        self.reserve_write()?
            .record(IssuanceRecord {
                token: token.clone(),
                certificates: certificates.to_vec(),
                event,
            })
            .await
    }

    /// As [`Store::record_issuance`], and when `key` is given, records it for the token in the
    /// same transaction: a key the caller used before fails the whole transaction with
    /// [`StoreError::DuplicateIdempotencyKey`] (nothing is written). With a key the issuance is
    /// its own transaction, outside the group-commit writer (API retries are rare; the audit
    /// chain stays linear because both paths take the chain head's row first).
    pub async fn record_issuance_once(
        &self,
        token: &TokenRecord,
        certificates: &[CertificateRecord],
        event: &AuditEvent,
        key: Option<&IdempotencyKey<'_>>,
    ) -> Result<(), StoreError> {
        if key.is_none() {
            return self.record_issuance(token, certificates, event).await;
        }
        // The chain lists the serials actually inserted, so `audit verify` can cross-check them.
        let serials: Vec<&str> = certificates.iter().map(|c| c.serial.as_str()).collect();
        let event = event.with_fields(&[("serials", serde_json::json!(serials))]);
        let mut connection = self.connection().await?;
        self.bounded(async {
            let mut tx = connection.begin().await?;
            audit::append(&mut tx, &self.audit, &event).await?;
            records::insert_issuance(&mut tx, token, certificates).await?;
            if let Some(key) = key {
                api::insert_key(&mut tx, key, &token.id, token.created_at).await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Appends an audit event on its own (refusals, CLI actions).
    pub async fn record_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        self.bounded(async {
            let mut tx = connection.begin().await?;
            audit::append(&mut tx, &self.audit, event).await?;
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

    /// Registers an officer certificate and records the audit event, in one transaction.
    pub async fn register_officer(
        &self,
        officer: &OfficerRecord,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        officers::insert(&self.pool, &self.audit, officer, event).await
    }

    /// The officer holding the certificate with this issuer (RFC 4514 text) and serial: how a
    /// client certificate is looked up on every request.
    pub async fn officer_by_certificate(
        &self,
        issuer: &str,
        serial: &Serial,
    ) -> Result<Option<OfficerRecord>, StoreError> {
        officers::by_certificate(&self.pool, issuer, serial.hex()).await
    }

    /// (issuer, serial) of every revoked officer certificate, for the TLS client verifier.
    pub async fn revoked_officer_certificates(&self) -> Result<Vec<(String, Serial)>, StoreError> {
        officers::revoked(&self.pool)
            .await?
            .into_iter()
            .map(|(issuer, serial)| {
                Serial::parse(&serial)
                    .map(|s| (issuer, s))
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }

    /// Records `issuer` on officer rows registered before issuers were stored (migration
    /// 0006); returns how many rows it updated.
    pub async fn adopt_legacy_officers(&self, issuer: &str) -> Result<u64, StoreError> {
        officers::adopt_legacy(&self.pool, issuer).await
    }

    /// The officer whose certificate, as issued, has this SHA-256 fingerprint (lower-case
    /// hex). For operators' look-ups only: a certificate can be re-encoded with another
    /// fingerprint, so identity checks use [`Store::officer_by_certificate`].
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
        officers::revoke(&self.pool, &self.audit, serial.hex(), at, event).await
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
