//! `ast-gateway db …`: the database itself. `db copy --to postgres://…` moves a root from its
//! SQLite file to an empty PostgreSQL database (every table, the audit chain verified on the
//! copy with the root's key and anchor file); `db durability` reports whether commits wait for
//! a synchronous standby (also printed by `config check`).

use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

use super::database_url::redact_database_url;
use super::output::outln;
use super::store::{Access, open_store};
use crate::config::{GatewayConfig, Root};
use crate::store::Durability;

/// `db …`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy this root's SQLite database into an EMPTY PostgreSQL database: tokens,
    /// certificates, officers, revocation and CRL state, idempotency keys and the audit chain
    /// with its anchors. Refuses a target that holds any row. Stop the gateway first. The
    /// audit chain is verified on the copy (with data/secret.key and data/audit-anchors.log);
    /// then set [database] url to the new URL.
    Copy {
        /// The PostgreSQL database to fill (libpq URL; several hosts allowed).
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// Report whether the database replicates synchronously (synchronous_standby_names,
    /// synchronous_commit). Exit code 1 when [database] require_synchronous_replication is set
    /// and it does not.
    Durability,
}

pub(super) async fn run(root: &Root, command: DbCommand) -> anyhow::Result<ExitCode> {
    match command {
        DbCommand::Copy { to } => copy(root, &to).await,
        DbCommand::Durability => {
            let config = super::load_config(root)?;
            let lines = durability_report(&config.settings).await;
            let failed = lines.iter().any(|l| l.starts_with("REFUSING"));
            for line in lines {
                outln!("{line}");
            }
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

async fn copy(root: &Root, to: &str) -> anyhow::Result<ExitCode> {
    let config = super::load_config(root)?;
    let from = &config.settings.database_url;
    if !from.starts_with("sqlite:") {
        anyhow::bail!(
            "[database] url is not a SQLite database; db copy moves a SQLite root to PostgreSQL \
             (between PostgreSQL databases use pg_dump and pg_restore)"
        );
    }
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        anyhow::bail!("--to must be a postgres:// URL");
    }
    let seal = crate::issuance::audit_seal(root)?;
    let source = open_store(from, Access::Read).await?;
    let target = open_store(to, Access::Read).await?;
    let report = source.copy_to(&target).await;
    source.close().await;
    let report = report?;
    for (table, rows) in &report.tables {
        outln!("{table}: {rows} row(s)");
    }
    let target = target.with_audit(seal);
    let verification = target.verify_audit().await?;
    target.close().await;
    outln!(
        "copied to {}; audit trail on the copy: {} ({} rows)",
        redact_database_url(to),
        if verification.is_intact() {
            "intact"
        } else {
            "PROBLEMS (run `audit verify` after switching)"
        },
        verification.rows
    );
    if !verification.is_intact() {
        return Ok(ExitCode::FAILURE);
    }
    outln!(
        "next: set [database] url in conf/gateway.toml to this URL, then `ast-gateway config \
         check` and start the gateway; keep the SQLite file as a backup"
    );
    Ok(ExitCode::SUCCESS)
}

/// The durability lines of `config check` and `db durability`: what the database does, and a
/// line starting with `REFUSING` when issuance would be refused.
pub(super) async fn durability_report(settings: &GatewayConfig) -> Vec<String> {
    let within = Duration::from_secs(5);
    match Durability::probe(&settings.database_url, within).await {
        Ok(d) => {
            let mut lines = vec![format!("database durability: {}", d.describe())];
            if settings.database_require_synchronous && !d.synchronous() {
                lines.push(
                    "REFUSING to issue: [database] require_synchronous_replication is set and \
                     the database has no synchronous standby (503 replication-required)"
                        .into(),
                );
            } else if !d.synchronous() && d != Durability::Sqlite {
                lines.push(
                    "warning: with asynchronous replication a failover can lose tokens already \
                     delivered; see docs/high-availability.md"
                        .into(),
                );
            }
            lines
        }
        Err(e) => vec![format!(
            "warning: database durability could not be read: {e}"
        )],
    }
}
