//! `[limits]`: request sizes and timeouts, connection and queue bounds, the database writer's
//! batch, and per-caller rate limits.

use std::time::Duration;

use super::super::Diagnostics;
use super::super::toml_file::{LimitsFile, TomlText};

/// Request limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// The request header section must arrive within this (from connection ready, or from a
    /// kept-alive request's first byte).
    pub header_timeout: Duration,
    /// The request body must arrive within this after the header.
    pub body_timeout: Duration,
    /// A kept-alive connection without a request is closed after this.
    pub idle_timeout: Duration,
    /// Largest request header section in bytes.
    pub max_header_bytes: usize,
    /// Connections held at once; `None`: derived from the open-file limit at start.
    pub max_connections: Option<usize>,
    /// How long in-flight requests may run on after SIGTERM.
    pub shutdown_grace: Duration,
    /// A response that makes no progress for this long closes its connection.
    pub send_timeout: Duration,
    /// Concurrent HTTP/2 streams per connection.
    pub max_streams_per_connection: u32,
    /// Requests per connection before it is closed gracefully.
    pub max_requests_per_connection: u64,
    /// Requests that may wait for a CPU slot; beyond it, 503 + `Retry-After`.
    pub issuance_queue: usize,
    /// Made tokens that may wait for the database writer; beyond it, 503 + `Retry-After`.
    pub write_queue: usize,
    /// The most issuances committed in one transaction.
    pub write_batch: usize,
    /// How long the writer waits for tokens still being made before it commits.
    pub write_delay: Duration,
    /// `Retry-After` of an overload refusal.
    pub retry_after: Duration,
    /// Per-caller rate limits.
    pub rates: RateLimits,
}

/// Tokens per minute per caller; 0 turns a limit off. Each allows a burst of its whole
/// minute's worth, then one token every `60 / n` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Per TCP peer (IPv6 per /64).
    pub per_peer: u32,
    /// Per proxy-asserted identity (the subject the headers make).
    pub per_identity: u32,
    /// Per officer (client certificate).
    pub per_officer: u32,
}

/// Upper bound of `[limits] write_batch`.
pub const MAX_WRITE_BATCH: usize = 1000;
/// Upper bound of `[limits] write_delay_ms`.
pub const MAX_WRITE_DELAY_MS: u64 = 100;

/// `[limits]`, every value checked; a value out of range is reported (and clamped where the
/// limit needs a usable value).
pub(super) fn limits(file: &LimitsFile, toml: &TomlText, diagnostics: &mut Diagnostics) -> Limits {
    if *file.max_body_bytes.get_ref() < 256 {
        diagnostics.push(toml.error(
            file.max_body_bytes.span(),
            "limits.max_body_bytes",
            "must be at least 256 bytes",
        ));
    }
    let max_header_bytes = max_header_bytes(file, toml, diagnostics);
    let mut timeout = |key: &str, value: &Option<toml::Spanned<u64>>, default: u64| {
        seconds(key, value, default, toml, diagnostics)
    };
    let header_timeout = timeout("header_timeout_secs", &file.header_timeout_secs, 10);
    let body_timeout = timeout("body_timeout_secs", &file.body_timeout_secs, 20);
    let idle_timeout = timeout("idle_timeout_secs", &file.idle_timeout_secs, 15);
    let shutdown_grace = timeout("shutdown_grace_secs", &file.shutdown_grace_secs, 30);
    let send_timeout = timeout("send_timeout_secs", &file.send_timeout_secs, 20);
    let max_streams_per_connection = count(
        "limits.max_streams_per_connection",
        &file.max_streams_per_connection,
        (1, 32, 256),
        toml,
        diagnostics,
    );
    let max_requests_per_connection = count(
        "limits.max_requests_per_connection",
        &file.max_requests_per_connection,
        (1, 1000, 1_000_000),
        toml,
        diagnostics,
    );
    check_writer(file, toml, diagnostics);
    Limits {
        max_body_bytes: *file.max_body_bytes.get_ref(),
        request_timeout: within(
            "limits.request_timeout_secs",
            &file.request_timeout_secs,
            3600,
            toml,
            diagnostics,
        ),
        header_timeout,
        body_timeout,
        idle_timeout,
        max_header_bytes,
        max_connections: file.max_connections.filter(|n| *n > 0),
        shutdown_grace,
        send_timeout,
        max_streams_per_connection,
        max_requests_per_connection,
        issuance_queue: file.issuance_queue,
        write_queue: *file.write_queue.get_ref(),
        write_batch: *file.write_batch.get_ref(),
        write_delay: Duration::from_millis(
            (*file.write_delay_ms.get_ref()).min(MAX_WRITE_DELAY_MS),
        ),
        retry_after: within(
            "limits.retry_after_secs",
            &file.retry_after_secs,
            3600,
            toml,
            diagnostics,
        ),
        rates: RateLimits {
            per_peer: file.peer_per_minute,
            per_identity: file.identity_per_minute,
            per_officer: file.officer_per_minute,
        },
    }
}

/// `limits.max_header_bytes`: 4096 to 1048576, default 32768.
fn max_header_bytes(file: &LimitsFile, toml: &TomlText, diagnostics: &mut Diagnostics) -> usize {
    match &file.max_header_bytes {
        None => 32 * 1024,
        Some(value) => {
            if !(4096..=1024 * 1024).contains(value.get_ref()) {
                diagnostics.push(toml.error(
                    value.span(),
                    "limits.max_header_bytes",
                    "must be between 4096 and 1048576 bytes",
                ));
            }
            *value.get_ref()
        }
    }
}

/// A count with its `(min, default, max)`: a value outside the range is reported (and clamped).
fn count<T>(
    key: &str,
    value: &Option<toml::Spanned<T>>,
    (min, default, max): (T, T, T),
    toml: &TomlText,
    diagnostics: &mut Diagnostics,
) -> T
where
    T: Copy + Ord + std::fmt::Display,
{
    let Some(value) = value else {
        return default;
    };
    if !(min..=max).contains(value.get_ref()) {
        diagnostics.push(toml.error(
            value.span(),
            key,
            format!("must be between {min} and {max}"),
        ));
    }
    (*value.get_ref()).clamp(min, max)
}

/// A `limits.<key>` timeout in seconds: 1 to 3600 (clamped), `default` when not written.
fn seconds(
    key: &str,
    value: &Option<toml::Spanned<u64>>,
    default: u64,
    toml: &TomlText,
    diagnostics: &mut Diagnostics,
) -> Duration {
    match value {
        None => Duration::from_secs(default),
        Some(value) => within(&format!("limits.{key}"), value, 3600, toml, diagnostics),
    }
}

/// Seconds from 1 to `max`: a value outside is reported under `key` (and clamped, so the
/// checks after it see a usable value).
pub(in crate::config) fn within(
    key: &str,
    value: &toml::Spanned<u64>,
    max: u64,
    toml: &TomlText,
    diagnostics: &mut Diagnostics,
) -> Duration {
    if !(1..=max).contains(value.get_ref()) {
        diagnostics.push(toml.error(
            value.span(),
            key,
            format!("must be between 1 and {max} seconds"),
        ));
    }
    Duration::from_secs((*value.get_ref()).clamp(1, max))
}

/// `limits.write_batch` and `limits.write_queue`: the database writer's bounds.
fn check_writer(file: &LimitsFile, toml: &TomlText, diagnostics: &mut Diagnostics) {
    if !(1..=MAX_WRITE_BATCH).contains(file.write_batch.get_ref()) {
        diagnostics.push(toml.error(
            file.write_batch.span(),
            "limits.write_batch",
            format!("use 1 to {MAX_WRITE_BATCH} issuances per transaction"),
        ));
    }
    if *file.write_delay_ms.get_ref() > MAX_WRITE_DELAY_MS {
        diagnostics.push(toml.error(
            file.write_delay_ms.span(),
            "limits.write_delay_ms",
            format!("use 0 (commit at once) to {MAX_WRITE_DELAY_MS} ms"),
        ));
    }
    if *file.write_queue.get_ref() == 0 {
        diagnostics.push(toml.error(
            file.write_queue.span(),
            "limits.write_queue",
            "must be at least 1 (it is the bound of the database writer's queue)",
        ));
    }
}
