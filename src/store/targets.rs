//! Connection targets: the servers a database URL names, in order, and which of them may be
//! used. `[database] url` accepts libpq's multi-host form
//! (`postgres://user@h1:5432,h2:5432/db?target_session_attrs=read-write`), the way operators of a
//! replicated PostgreSQL (Patroni, repmgr, a cloud's failover pair) name their primary without a
//! proxy in front.
//!
//! Why our own parser: sqlx parses a URL with the `url` crate, which has one host and one port
//! per URL, so `h1:5432,h2:5432` is an invalid port there; sqlx's connect options have one host
//! too. So the URL is split here into one single-host URL per server (same user, password,
//! database and parameters), each parsed by sqlx, and the store tries them in order (`failover`).
//! `target_session_attrs` is understood here and removed from the per-host URLs.

use sqlx::any::AnyConnectOptions;

use super::StoreError;

/// Which servers libpq's `target_session_attrs` lets us use. The gateway writes on every
/// issuance, so it keeps a connection only to a writable server whatever is asked; the values
/// that ask for a standby are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAttrs {
    /// Absent or `any`: libpq would take the first server that answers; the gateway still
    /// skips read-only ones (it cannot work on them).
    Any,
    /// `read-write`: the server's `transaction_read_only` is off.
    ReadWrite,
    /// `primary`: the server is not in recovery.
    Primary,
}

/// One server of the URL.
#[derive(Debug, Clone)]
pub(super) struct Target {
    /// `host:port`, for logs (no user, no password).
    pub(super) label: String,
    pub(super) options: AnyConnectOptions,
}

/// The servers of a database URL, in the URL's order.
#[derive(Debug, Clone)]
pub(super) struct Targets {
    pub(super) list: Vec<Target>,
    pub(super) attrs: SessionAttrs,
}

impl Targets {
    /// Parses a `sqlite:` URL (one target) or a `postgres://` URL with one or more hosts.
    pub(super) fn parse(url: &str) -> Result<Targets, StoreError> {
        if url.starts_with("sqlite:") {
            return Ok(Targets {
                list: vec![Target {
                    label: "SQLite".into(),
                    options: options(url)?,
                }],
                attrs: SessionAttrs::Any,
            });
        }
        let (hosts, attrs) = split_hosts(url)?;
        let list = hosts
            .into_iter()
            .map(|(label, url)| {
                Ok(Target {
                    label,
                    options: options(&url)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Targets { list, attrs })
    }

    /// More than one server: a failover pair or cluster named without a proxy.
    pub(super) fn is_multi_host(&self) -> bool {
        self.list.len() > 1
    }

    /// The servers' labels, comma-separated (logs, start-up summary).
    pub(super) fn labels(&self) -> String {
        self.list
            .iter()
            .map(|t| t.label.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn options(url: &str) -> Result<AnyConnectOptions, StoreError> {
    url.parse::<AnyConnectOptions>().map_err(StoreError::from)
}

fn invalid(message: String) -> StoreError {
    StoreError::Database(sqlx::Error::Configuration(message.into()))
}

/// One `(label, single-host URL)` per host of a `postgres://` URL, and its session attributes.
/// Messages never repeat the URL (it may hold a password).
pub(super) fn split_hosts(url: &str) -> Result<(Vec<(String, String)>, SessionAttrs), StoreError> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(invalid("the database URL has no scheme".into()));
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
        None => (String::new(), authority),
    };
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    let mut attrs = SessionAttrs::Any;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "target_session_attrs" => attrs = session_attrs(value)?,
            "host" | "hostaddr" | "port" if value.contains(',') || value.contains("%2C") => {
                return Err(invalid(format!(
                    "the database URL's `{key}` parameter lists several values; name the servers \
                     in the URL itself: postgres://user@host1:5432,host2:5432/database"
                )));
            }
            _ => kept.push(pair),
        }
    }
    let query = if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    };
    let mut list = Vec::new();
    if hosts.contains(',') && hosts.split(',').any(str::is_empty) {
        return Err(invalid(
            "the database URL's host list has an empty entry (two commas, or a leading one)".into(),
        ));
    }
    for host in hosts.split(',') {
        let label = host_label(host)?;
        list.push((label, format!("{scheme}://{userinfo}{host}{path}{query}")));
    }
    Ok((list, attrs))
}

fn session_attrs(value: &str) -> Result<SessionAttrs, StoreError> {
    match value {
        "" | "any" => Ok(SessionAttrs::Any),
        "read-write" => Ok(SessionAttrs::ReadWrite),
        "primary" => Ok(SessionAttrs::Primary),
        other => Err(invalid(format!(
            "target_session_attrs={other} is not supported: the gateway writes on every \
             issuance, so it needs `read-write` or `primary` (or none)"
        ))),
    }
}

/// `host:port` of one entry of the host list (port 5432 when absent); empty entries refused.
fn host_label(host: &str) -> Result<String, StoreError> {
    if host.is_empty() {
        // `postgres:///db?host=/run/postgresql` (a socket in the parameters) is one server.
        return Ok("(from the URL's parameters)".into());
    }
    let (name, port) = if let Some(bracketed) = host.strip_prefix('[') {
        let Some((name, after)) = bracketed.split_once(']') else {
            return Err(invalid(
                "an IPv6 address in the database URL lacks its `]`".into(),
            ));
        };
        (
            format!("[{name}]"),
            after.strip_prefix(':').unwrap_or(after),
        )
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name.to_string(), port),
            None => (host.to_string(), ""),
        }
    };
    if name.is_empty() || name == "[]" {
        return Err(invalid(
            "the database URL's host list has an empty entry (two commas, or a leading one)".into(),
        ));
    }
    if !port.is_empty() && port.parse::<u16>().is_err() {
        return Err(invalid(format!(
            "the database URL names the port `{port}` for {name}; ports are numbers"
        )));
    }
    let port = if port.is_empty() { "5432" } else { port };
    Ok(format!("{name}:{port}"))
}

#[cfg(test)]
#[path = "targets_tests.rs"]
mod tests;
