//! Database URLs without their secrets: masked for the logs (`serve`), left out for a command
//! an operator runs (`backup` prints a `pg_dump`).

/// The database URL without secrets, for logs: the password of `user:password@` and every
/// query parameter whose name contains `password` become `***`.
pub(super) fn redact_database_url(url: &str) -> String {
    hide_secrets(url, Some("***"))
}

/// The database URL with its secrets left out (for a command an operator runs, with the
/// password from PGPASSWORD or ~/.pgpass).
pub(super) fn database_url_without_secrets(url: &str) -> String {
    hide_secrets(url, None)
}

/// Replaces (`Some(mask)`) or removes (`None`) the password of the userinfo and every query
/// parameter whose name contains `password`.
fn hide_secrets(url: &str, mask: Option<&str>) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match (userinfo.split_once(':'), mask) {
            (Some((user, _password)), Some(mask)) => format!("{user}:{mask}@{host}"),
            (Some((user, _password)), None) => format!("{user}@{host}"),
            (None, _) => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .filter_map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                        mask.map(|mask| format!("{key}={mask}"))
                    }
                    _ => Some(pair.to_string()),
                })
                .collect();
            if query.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{}", query.join("&"))
            }
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
#[path = "database_url_tests.rs"]
mod tests;
