//! `[database]`: the URL (resolved against the root) and the pool size.

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
