//! The one way a command opens the database: `open_store`, read-only use unsealed, and every
//! command that writes with the audit seal the service uses (chained, HMAC'd under the root's
//! secret key), so what the command line records verifies like what `serve` records.

use crate::config::Root;
use crate::store::{AuditSeal, Store};

/// Connections a command holds: one for the work, one for the audit writes beside it.
const CONNECTIONS: u32 = 2;

/// What a command does with the database.
pub(super) enum Access<'a> {
    /// Reads only (listings, exports, snapshots): no audit seal.
    Read,
    /// Writes, audited with the seal of this root (`secret.key`, `data/audit-anchors.log`).
    Write(&'a Root),
    /// Verifies or writes with a seal the command made itself (`audit verify`).
    Sealed(Box<AuditSeal>),
}

/// Opens the database at `url` (migrating it as `serve` would) for `access`.
pub(super) async fn open_store(url: &str, access: Access<'_>) -> anyhow::Result<Store> {
    let seal = match access {
        Access::Read => None,
        Access::Write(root) => {
            Some(crate::issuance::audit_seal(root).map_err(|e| anyhow::anyhow!("{e}"))?)
        }
        Access::Sealed(seal) => Some(*seal),
    };
    let store = Store::open(url, CONNECTIONS).await?;
    Ok(match seal {
        Some(seal) => store.with_audit(seal),
        None => store,
    })
}

/// The configured database of `root`'s gateway.toml, for `access`.
pub(super) async fn open_configured(
    config: &crate::rules::Configuration,
    access: Access<'_>,
) -> anyhow::Result<Store> {
    open_store(&config.settings.database_url, access).await
}
