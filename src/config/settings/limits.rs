//! `[limits]`: request sizes and timeouts, connection and queue bounds, the database writer's
//! batch, and per-caller rate limits.

use std::time::Duration;

use super::super::Diagnostics;
use super::super::toml_file::{LimitsFile, TomlText};
use super::{Limits, MAX_WRITE_BATCH, RateLimits};

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
    if *file.write_queue.get_ref() == 0 {
        diagnostics.push(toml.error(
            file.write_queue.span(),
            "limits.write_queue",
            "must be at least 1 (it is the bound of the database writer's queue)",
        ));
    }
}
