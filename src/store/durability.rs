//! Durability of a commit: whether the database replicates synchronously, reported at start
//! and by `config check`, and required of every issuance's transaction when `[database]
//! require_synchronous_replication` is set.
//!
//! Why it matters: the gateway delivers a token only after its commit is acknowledged. With
//! asynchronous replication the primary acknowledges before any standby has the WAL, so a
//! failover can promote a standby that never received rows of tokens already delivered:
//! certificates in users' hands that the database (CRLs, OCSP, audit) does not know. With
//! `synchronous_standby_names` set and `synchronous_commit` at `on`, `remote_apply` or
//! `remote_write`, the acknowledgement waits for a standby, and a failover manager that promotes
//! only a synchronous standby (Patroni's `synchronous_mode`) loses nothing acknowledged.
//!
//! The requirement is checked inside each issuing transaction, on the session that commits it:
//! settings change at run time (Patroni empties `synchronous_standby_names` when
//! its synchronous standby is gone and `synchronous_mode_strict` is off), and a session may have
//! its own `synchronous_commit`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use sqlx::{AnyConnection, Connection, Row};

use super::failover::Failover;
use super::targets::Targets;
use super::{Store, StoreError};

/// What the database says about replication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Durability {
    /// A SQLite file: one machine, no replication.
    Sqlite,
    PostgreSql {
        /// The server asked (`host:port`).
        server: String,
        synchronous_standby_names: String,
        synchronous_commit: String,
        /// Standbys connected as `sync` or `quorum`, when this role may see them
        /// (`pg_read_all_stats` or superuser); `None` otherwise.
        synchronous_standbys: Option<i64>,
    },
}

impl Durability {
    /// Does an acknowledged commit wait for a standby?
    pub fn synchronous(&self) -> bool {
        match self {
            Durability::Sqlite => false,
            Durability::PostgreSql {
                synchronous_standby_names,
                synchronous_commit,
                ..
            } => waits_for_standby(synchronous_standby_names, synchronous_commit),
        }
    }

    /// One line for the log and `config check`.
    pub fn describe(&self) -> String {
        match self {
            Durability::Sqlite => "SQLite (one file on this machine, no replication)".into(),
            Durability::PostgreSql {
                server,
                synchronous_standby_names,
                synchronous_commit,
                synchronous_standbys,
            } => {
                let verdict = if self.synchronous() {
                    "synchronous replication: a commit is acknowledged after a standby has it"
                } else {
                    "NO synchronous replication: a failover can lose tokens already delivered"
                };
                let standbys = match synchronous_standbys {
                    Some(n) => format!(", {n} synchronous standby(s) connected"),
                    None => String::new(),
                };
                format!(
                    "PostgreSQL at {server}: {verdict} (synchronous_standby_names = '{synchronous_standby_names}', \
                     synchronous_commit = {synchronous_commit}{standbys})"
                )
            }
        }
    }

    /// Asks the first writable server of `url` (no migrations, nothing written), each server
    /// within `within`. For `config check`.
    pub async fn probe(url: &str, within: Duration) -> Result<Durability, StoreError> {
        sqlx::any::install_default_drivers();
        if url.starts_with("sqlite:") {
            return Ok(Durability::Sqlite);
        }
        let targets = Targets::parse(url)?;
        let failover = Failover::new(targets, true, 0);
        let index = failover.search(within).await.map_err(|reasons| {
            StoreError::ReadOnly(format!("no writable PostgreSQL server: {reasons}"))
        })?;
        let target = &failover.targets.list[index];
        let mut connection = AnyConnection::connect_with(&target.options).await?;
        let durability = read(&mut connection, &target.label).await;
        let _ = connection.close().await;
        durability
    }
}

/// `synchronous_standby_names` names a standby and `synchronous_commit` waits for it.
fn waits_for_standby(names: &str, commit: &str) -> bool {
    !names.trim().is_empty() && matches!(commit, "on" | "remote_apply" | "remote_write")
}

async fn read(connection: &mut AnyConnection, server: &str) -> Result<Durability, StoreError> {
    let row = sqlx::query(
        "SELECT current_setting('synchronous_standby_names'), current_setting('synchronous_commit'), \
         (SELECT count(*) FILTER (WHERE sync_state IN ('sync', 'quorum')) FROM pg_stat_replication), \
         (SELECT count(*) FILTER (WHERE sync_state IS NULL) FROM pg_stat_replication)",
    )
    .fetch_one(&mut *connection)
    .await?;
    let hidden: i64 = row.try_get(3)?;
    Ok(Durability::PostgreSql {
        server: server.to_string(),
        synchronous_standby_names: row.try_get(0)?,
        synchronous_commit: row.try_get(1)?,
        synchronous_standbys: if hidden > 0 {
            None
        } else {
            Some(row.try_get(2)?)
        },
    })
}

/// Inside an issuing transaction, before its commit: [`StoreError::NotReplicated`] when the
/// session would commit without waiting for a synchronous standby.
pub(super) async fn require_synchronous(connection: &mut AnyConnection) -> Result<(), StoreError> {
    let row = sqlx::query(
        "SELECT current_setting('synchronous_standby_names'), current_setting('synchronous_commit')",
    )
    .fetch_one(&mut *connection)
    .await?;
    let names: String = row.try_get(0)?;
    let commit: String = row.try_get(1)?;
    if waits_for_standby(&names, &commit) {
        return Ok(());
    }
    Err(StoreError::NotReplicated(format!(
        "synchronous_standby_names = '{names}', synchronous_commit = {commit}"
    )))
}

impl Store {
    /// Refuse every issuance whose transaction would commit without a synchronous standby
    /// (`[database] require_synchronous_replication`). Applies to every clone of the store.
    pub fn require_synchronous_replication(&self, required: bool) {
        self.health
            .require_synchronous
            .store(required && self.is_postgres(), Ordering::Relaxed);
    }

    /// Whether issuances require synchronous replication.
    pub(super) fn requires_synchronous(&self) -> bool {
        self.health.require_synchronous.load(Ordering::Relaxed)
    }

    /// What this database says about replication now (start-up summary, `/readyz` detail).
    pub async fn durability(&self) -> Result<Durability, StoreError> {
        if !self.is_postgres() {
            return Ok(Durability::Sqlite);
        }
        let mut connection = self.connection().await?;
        let label = self.health.failover.current_label().to_string();
        read(&mut connection, &label).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn synchronous_needs_a_standby_name_and_a_waiting_commit() {
        assert!(waits_for_standby("ANY 1 (node2)", "on"));
        assert!(waits_for_standby("*", "remote_write"));
        assert!(waits_for_standby("node2", "remote_apply"));
        assert!(!waits_for_standby("", "on"));
        assert!(!waits_for_standby("node2", "local"));
        assert!(!waits_for_standby("node2", "off"));
        assert!(!Durability::Sqlite.synchronous());
        let asynchronous = Durability::PostgreSql {
            server: "db:5432".into(),
            synchronous_standby_names: String::new(),
            synchronous_commit: "on".into(),
            synchronous_standbys: None,
        };
        assert!(
            asynchronous
                .describe()
                .contains("NO synchronous replication")
        );
    }
}
