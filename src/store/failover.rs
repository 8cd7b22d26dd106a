//! Staying on a writable server through a database failover: which of the URL's servers the
//! pool connects to (the first writable one, in the URL's order, found again when the current
//! one is lost), the writability check on every connection, and dropping connections that saw
//! their server go away or turn read-only.
//!
//! How, with sqlx's pool: the pool connects with the options of the current target (sqlx has
//! one host per pool), switched with `Pool::set_connect_options` when another server is found
//! writable. `after_connect` refuses a connection to a read-only server (a standby, a demoted
//! primary, `default_transaction_read_only`); `before_acquire` runs the same check on every idle
//! connection before use (it replaces sqlx's ping: one round trip either way) and refuses every
//! connection opened before a connection was last lost. "Lost" is an error of SQLSTATE class 08
//! (connection exception), 57P01–57P03 (the server shuts down or cannot take connections),
//! 25006 (read-only transaction: the server was demoted), an I/O error, or a write whose outcome
//! is unknown (timed out): such a connection is never used again, and neither is any other
//! connection opened before it, since they lead to the same server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection, Row};

use super::StoreError;
use super::targets::Targets;

/// Counter: database connections refused or dropped because their server was lost or is
/// read-only (label `reason` = `lost` | `read_only`).
pub const CONNECTIONS_DROPPED: &str = "ast_store_connections_dropped_total";
/// Counter: times this node moved its connections to another server of the URL.
pub const SERVER_SWITCHES: &str = "ast_store_server_switches_total";

/// The targets and which one is in use, shared by the store, its pool's hooks and its clones.
pub(super) struct Failover {
    pub(super) targets: Targets,
    postgres: bool,
    current: AtomicUsize,
    born: Instant,
    /// Milliseconds after `born` (plus one; 0: never) when a connection was last lost.
    lost_at: AtomicU64,
    /// One server selection at a time; callers that waited for a running one use its result.
    selecting: tokio::sync::Mutex<()>,
    selections: AtomicU64,
    /// Whether the last search found a writable server.
    found: AtomicBool,
}

impl std::fmt::Debug for Failover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Failover")
            .field("targets", &self.targets.labels())
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

/// Is this error one after which the connection must not be used again?
pub(super) fn connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "25006")
        }),
        _ => false,
    }
}

/// The same for a store error: a lost connection, or a write whose outcome is unknown.
pub(super) fn store_error_loses_connection(error: &StoreError) -> bool {
    match error {
        StoreError::Database(e) => connection_lost(e),
        StoreError::TimedOut(_) => true,
        StoreError::Batch(inner) => store_error_loses_connection(inner),
        _ => false,
    }
}

impl Failover {
    pub(super) fn new(targets: Targets, postgres: bool, current: usize) -> Failover {
        Failover {
            targets,
            postgres,
            current: AtomicUsize::new(current),
            born: Instant::now(),
            lost_at: AtomicU64::new(0),
            selecting: tokio::sync::Mutex::new(()),
            selections: AtomicU64::new(0),
            found: AtomicBool::new(true),
        }
    }

    /// The options of the server in use.
    pub(super) fn current_options(&self) -> &AnyConnectOptions {
        let index = self.current.load(Ordering::Relaxed);
        &self.targets.list[index.min(self.targets.list.len() - 1)].options
    }

    /// The server in use, for logs (`host:port`).
    pub(super) fn current_label(&self) -> &str {
        let index = self.current.load(Ordering::Relaxed);
        &self.targets.list[index.min(self.targets.list.len() - 1)].label
    }

    /// Records that a connection was lost now: every connection opened until now is dropped at
    /// its next use.
    pub(super) fn note_lost(&self) {
        let millis = self.born.elapsed().as_millis() as u64 + 1;
        self.lost_at.fetch_max(millis, Ordering::Relaxed);
    }

    /// Was a connection of this age opened before a connection was last lost?
    fn stale(&self, age: Duration) -> bool {
        let lost = self.lost_at.load(Ordering::Relaxed);
        if lost == 0 {
            return false;
        }
        let opened = self.born.elapsed().saturating_sub(age).as_millis() as u64 + 1;
        opened <= lost
    }

    /// The pool's hooks: the writability check on new connections (PostgreSQL) and, before
    /// each use, the staleness check and the writability check again.
    pub(super) fn hooks(self: &Arc<Self>, options: AnyPoolOptions) -> AnyPoolOptions {
        let on_acquire = self.clone();
        let options = options
            // PostgreSQL: `before_acquire` checks writability, which also proves the
            // connection alive. SQLite: a local file, nothing to ping.
            .test_before_acquire(false)
            .before_acquire(move |connection, meta| {
                let failover = on_acquire.clone();
                Box::pin(async move {
                    if failover.stale(meta.age) {
                        metrics::counter!(CONNECTIONS_DROPPED, "reason" => "lost").increment(1);
                        return Err(sqlx::Error::Protocol(
                            "dropped a database connection opened before a connection to its \
                             server was lost"
                                .into(),
                        ));
                    }
                    if failover.postgres {
                        check_writable(connection).await?;
                    }
                    Ok(true)
                })
            });
        if !self.postgres {
            // SQLite: a multi-row INSERT keeps a statement journal, which spills to a temporary
            // file past 64 KiB — created, written and deleted at nearly every batch commit.
            // In memory it stays a buffer.
            return options.after_connect(|connection, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA temp_store = MEMORY")
                        .execute(connection)
                        .await
                        .map(|_| ())
                })
            });
        }
        options.after_connect(|connection, _| Box::pin(check_writable(connection)))
    }

    /// Finds the first writable server of the URL, in order, each within `within`, and points
    /// `pool` at it (when there is a pool). Concurrent callers share one search. `None` when no
    /// server is writable now; the reasons are logged once per search at `debug`.
    pub(super) async fn select(&self, pool: Option<&AnyPool>, within: Duration) -> Option<usize> {
        let seen = self.selections.load(Ordering::Acquire);
        let _turn = self.selecting.lock().await;
        if self.selections.load(Ordering::Acquire) != seen {
            // A search finished while this one waited: its answer is current enough.
            return Some(self.current.load(Ordering::Relaxed))
                .filter(|_| self.found.load(Ordering::Relaxed));
        }
        let found = self.search(within).await.ok();
        if let Some(index) = found {
            let previous = self.current.swap(index, Ordering::Relaxed);
            if let Some(pool) = pool
                && previous != index
            {
                pool.set_connect_options(self.targets.list[index].options.clone());
                metrics::counter!(SERVER_SWITCHES).increment(1);
                tracing::warn!(
                    from = %self.targets.list[previous].label,
                    to = %self.targets.list[index].label,
                    "database: the writable server is now {}; new connections go there",
                    self.targets.list[index].label
                );
            }
        }
        self.found.store(found.is_some(), Ordering::Relaxed);
        self.selections.fetch_add(1, Ordering::Release);
        found
    }

    /// Tries each server in order; the index of the first writable one, or why none is.
    pub(super) async fn search(&self, within: Duration) -> Result<usize, String> {
        let mut reasons = Vec::new();
        for (index, target) in self.targets.list.iter().enumerate() {
            let attempt = async {
                let mut connection = AnyConnection::connect_with(&target.options).await?;
                let writable = if self.postgres {
                    check_writable(&mut connection).await
                } else {
                    Ok(())
                };
                let _ = connection.close().await;
                writable
            };
            match tokio::time::timeout(within, attempt).await {
                Ok(Ok(())) => return Ok(index),
                Ok(Err(e)) => reasons.push(format!("{}: {e}", target.label)),
                Err(_) => reasons.push(format!("{}: no answer within {within:?}", target.label)),
            }
        }
        let reasons = reasons.join("; ");
        tracing::debug!(%reasons, "database: no writable server");
        Err(reasons)
    }
}

/// Refuses a connection whose server does not take writes: in recovery (a standby, or a
/// primary demoted and restarted as one) or with `transaction_read_only` on. This is libpq's
/// `target_session_attrs=primary` and `read-write` together: the gateway needs both.
pub(super) async fn check_writable(connection: &mut AnyConnection) -> Result<(), sqlx::Error> {
    let row = sqlx::query(
        "SELECT CASE WHEN pg_is_in_recovery() THEN 'a standby (in recovery)' \
         WHEN current_setting('transaction_read_only') = 'on' THEN 'read-only (transaction_read_only)' \
         ELSE '' END",
    )
    .fetch_one(&mut *connection)
    .await?;
    let state: String = row.try_get(0)?;
    if state.is_empty() {
        return Ok(());
    }
    metrics::counter!(CONNECTIONS_DROPPED, "reason" => "read_only").increment(1);
    Err(sqlx::Error::Protocol(format!(
        "the server is {state}: the gateway keeps connections to a writable server only"
    )))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn connections_seen_before_a_loss_are_stale() {
        let targets = Targets::parse("postgres://u@h1,h2/db").unwrap();
        let failover = Failover::new(targets, true, 0);
        assert!(!failover.stale(Duration::from_secs(3600)));
        std::thread::sleep(Duration::from_millis(5));
        failover.note_lost();
        // Opened before the loss: stale. Opened after it (age zero, later): not.
        assert!(failover.stale(Duration::from_millis(4)));
        std::thread::sleep(Duration::from_millis(5));
        assert!(!failover.stale(Duration::ZERO));
    }

    #[test]
    fn lost_connections_are_told_by_their_errors() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(connection_lost(&io));
        assert!(!connection_lost(&sqlx::Error::RowNotFound));
        assert!(store_error_loses_connection(&StoreError::TimedOut(
            Duration::from_secs(1)
        )));
        assert!(!store_error_loses_connection(&StoreError::DuplicateSerial(
            "01".into()
        )));
        let batch = StoreError::Batch(Arc::new(StoreError::Database(io)));
        assert!(store_error_loses_connection(&batch));
    }
}
