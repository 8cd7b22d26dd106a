//! `[database]`: the URL (resolved against the root), the pool size and whether synchronous
//! replication is required. A PostgreSQL URL may name several servers
//! (`postgres://u@h1:5432,h2:5432/db?target_session_attrs=read-write`); the store splits it.

use super::super::toml_file::{GatewayFile, TomlText};
use super::super::{Diagnostics, Root};

/// `database.url`, resolved against the root; only SQLite and PostgreSQL URLs are accepted.
pub(super) fn url(
    root: &Root,
    file: &GatewayFile,
    toml: &TomlText,
    diagnostics: &mut Diagnostics,
) -> String {
    let database_url = resolve_database_url(root, file.database.url.get_ref());
    if !(database_url.starts_with("sqlite:")
        || database_url.starts_with("postgres://")
        || database_url.starts_with("postgresql://"))
    {
        diagnostics.push(toml.error(
            file.database.url.span(),
            "database.url",
            format!(
                "`{}` is not a sqlite:// or postgres:// URL",
                file.database.url.get_ref()
            ),
        ));
    }
    database_url
}

/// `database.max_connections`: at least 1, default 8.
pub(super) fn max_connections(
    file: &GatewayFile,
    toml: &TomlText,
    diagnostics: &mut Diagnostics,
) -> u32 {
    let Some(value) = &file.database.max_connections else {
        return 8;
    };
    if *value.get_ref() == 0 {
        diagnostics.push(toml.error(
            value.span(),
            "database.max_connections",
            "must be at least 1 (the size of the database connection pool)",
        ));
    }
    (*value.get_ref()).max(1)
}

/// `database.require_synchronous_replication` (default false): only for PostgreSQL, since a
/// SQLite file has no standby to wait for.
pub(super) fn require_synchronous(
    file: &GatewayFile,
    url: &str,
    toml: &TomlText,
    diagnostics: &mut Diagnostics,
) -> bool {
    let Some(value) = &file.database.require_synchronous_replication else {
        return false;
    };
    if *value.get_ref() && url.starts_with("sqlite:") {
        diagnostics.push(toml.error(
            value.span(),
            "database.require_synchronous_replication",
            "needs a PostgreSQL database with a synchronous standby; a SQLite file is never replicated",
        ));
    }
    *value.get_ref()
}

/// `sqlite://relative/path` is taken relative to the root; `mode=rwc` creates the file.
fn resolve_database_url(root: &Root, url: &str) -> String {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return url.to_string();
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = root.resolve(path);
    let query = if query.is_empty() {
        "mode=rwc".to_string()
    } else {
        query.to_string()
    };
    format!("sqlite://{}?{}", path.display(), query)
}
