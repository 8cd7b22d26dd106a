//! The database's health as the store sees it: connections for writes (bounded waits, shorter
//! once the database looks unreachable), the reachability probe, the operation timeout on
//! writes, and the `/readyz` checks ([`Store::ping`], [`Store::writable`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, Connection};

use super::failover::{Failover, check_writable, store_error_loses_connection};
use super::{Backend, Store, StoreError};

/// Whether the database looked unreachable at the last attempt to get a connection, shared by
/// the clones of a store.
pub(super) struct Health {
    pub(super) unreachable: AtomicBool,
    pub(super) acquire_timeout: Duration,
    pub(super) unreachable_timeout: Duration,
    pub(super) operation_timeout: Duration,
    /// The servers of the URL and the one in use (the reachability probe looks for a
    /// writable one).
    pub(super) failover: Arc<Failover>,
    /// `[database] require_synchronous_replication` (see `durability`).
    pub(super) require_synchronous: AtomicBool,
}

impl std::fmt::Debug for Health {
    // Without the URL: it may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("unreachable", &self.unreachable)
            .field("unreachable_timeout", &self.unreachable_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("failover", &self.failover)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Every connection of the pool is open and in use: a probe must not queue behind them.
    fn pool_exhausted(&self) -> bool {
        self.pool.num_idle() == 0 && self.pool.size() >= self.pool.options().get_max_connections()
    }

    /// A connection for a write. While the database looks healthy this waits up to the acquire
    /// timeout (the pool may be busy); once it looks unreachable, only up to the short
    /// unreachable timeout, until a connection is obtained again. Connections are tested
    /// before use, so a database that returns is noticed on the next call.
    pub(super) async fn connection(&self) -> Result<PoolConnection<Any>, StoreError> {
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
    /// use, a lock held)? A fresh connection outside the pool to each server of the URL in
    /// turn, each within the unreachable timeout, tells; the first writable one becomes the
    /// pool's target (after a failover, the promoted server). "Unreachable" means no writable
    /// server answers. Only unreachability shortens later waits, so load does not turn into
    /// refusals.
    pub(super) async fn check_reachable(&self) {
        let found = self
            .health
            .failover
            .select(Some(&self.pool), self.health.unreachable_timeout)
            .await;
        self.set_unreachable(found.is_none());
    }

    /// After a failed statement: when its error means the connection is lost (or its server
    /// read-only, or the outcome unknown), no connection opened before now is used again, and
    /// a writable server is looked for in the background.
    pub(super) fn observe(&self, error: &StoreError) {
        if !store_error_loses_connection(error) {
            return;
        }
        self.health.failover.note_lost();
        let store = self.clone_without_writer();
        tokio::spawn(async move { store.check_reachable().await });
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
        if self.pool_exhausted() {
            let probe = async {
                let options = self.health.failover.current_options();
                let mut connection = AnyConnection::connect_with(options).await?;
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
                    let options = self.health.failover.current_options();
                    let mut connection = AnyConnection::connect_with(options).await?;
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
                    if self.pool_exhausted() {
                        return Ok(());
                    }
                    let mut connection = self.connection().await?;
                    check_writable(&mut connection).await.map_err(|e| match e {
                        sqlx::Error::Protocol(message) => StoreError::ReadOnly(message),
                        e => StoreError::Database(e),
                    })
                }
            }
        };
        match tokio::time::timeout(limit, probe).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::TimedOut(limit)),
        }
    }

    /// Runs a write under the operation timeout.
    pub(super) async fn bounded<T>(
        &self,
        work: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let limit = self.health.operation_timeout;
        let result = match tokio::time::timeout(limit, work).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::TimedOut(limit)),
        };
        if let Err(e) = &result {
            self.observe(e);
        }
        result
    }
}
