//! `audit export [--since RFC3339|DURATION]`: the audit table as JSON lines, for a SIEM or an
//! archive. One object per row, in chain order:
//! `{"seq", "at" (RFC 3339, milliseconds), "event", "actor", "requestId", "detail" (the stored
//! JSON, as an object), "prevHash", "hash"}`. `prevHash`/`hash` let the receiver check the chain
//! (`hash` of one row is `prevHash` of the next).

use std::process::ExitCode;

use clap::Args;

use super::output::outln;
use crate::config::{Root, parse_duration};
use crate::store::{AuditRow, Store};

/// Rows per query: the export streams in bounded memory.
const PAGE: i64 = 1000;

/// `audit export` options.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only rows written at or after this time: an RFC 3339 time (2026-05-01T00:00:00Z) or a
    /// duration back from now (24h, 7d, 30m, 1y). Default: the whole trail.
    #[arg(long)]
    pub since: Option<String>,
}

/// `--since` in Unix milliseconds.
fn since_millis(since: &str, now: time::OffsetDateTime) -> Result<i64, String> {
    if let Ok(at) =
        time::OffsetDateTime::parse(since, &time::format_description::well_known::Rfc3339)
    {
        return Ok((at.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let back = parse_duration(since).map_err(|_| {
        format!(
            "--since `{since}` is neither an RFC 3339 time (2026-05-01T00:00:00Z) nor a duration (24h, 7d)"
        )
    })?;
    Ok((now.unix_timestamp_nanos() / 1_000_000) as i64 - back.as_millis() as i64)
}

fn to_json(row: &AuditRow) -> serde_json::Value {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(row.at) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| row.at.to_string());
    // The detail is stored as JSON text; a row that is not JSON (never written by us) is
    // exported as a string rather than dropped.
    let detail = serde_json::from_str(&row.detail)
        .unwrap_or_else(|_| serde_json::Value::String(row.detail.clone()));
    serde_json::json!({
        "seq": row.seq,
        "at": at,
        "event": row.event,
        "actor": row.actor,
        "requestId": row.request_id,
        "detail": detail,
        "prevHash": row.prev_hash,
        "hash": row.hash,
    })
}

pub(super) async fn export(root: &Root, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let since = match &args.since {
        None => i64::MIN,
        Some(s) => since_millis(s, time::OffsetDateTime::now_utc()).map_err(anyhow::Error::msg)?,
    };
    let config = super::load_config(root)?;
    let store = Store::open(&config.gateway.database_url, 2).await?;
    let mut after = 0;
    loop {
        let page = store.audit_page(since, after, PAGE).await?;
        for row in &page {
            outln!("{}", to_json(row));
        }
        match page.last() {
            Some(last) if page.len() as i64 == PAGE => after = last.seq,
            _ => break,
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_times_and_durations() {
        let now = time::macros::datetime!(2026-05-10 12:00:00 UTC);
        assert_eq!(
            since_millis("2026-05-10T11:00:00Z", now).unwrap(),
            now.unix_timestamp() * 1000 - 3_600_000
        );
        assert_eq!(
            since_millis("1h", now).unwrap(),
            now.unix_timestamp() * 1000 - 3_600_000
        );
        assert_eq!(
            since_millis("7d", now).unwrap(),
            now.unix_timestamp() * 1000 - 7 * 86_400_000
        );
        let e = since_millis("yesterday", now).unwrap_err();
        assert!(e.contains("RFC 3339"), "{e}");
    }

    #[test]
    fn rows_become_objects_with_parsed_detail() {
        let row = AuditRow {
            seq: 7,
            at: 1_778_414_400_123,
            event: "issued".into(),
            actor: "127.0.0.1".into(),
            request_id: "r-1".into(),
            detail: r#"{"serials":["0a"]}"#.into(),
            prev_hash: "00".into(),
            hash: "ab".into(),
        };
        let v = to_json(&row);
        assert_eq!(v["seq"], 7);
        assert_eq!(v["at"], "2026-05-10T12:00:00.123Z");
        assert_eq!(v["requestId"], "r-1");
        assert_eq!(v["detail"]["serials"][0], "0a");
        assert_eq!(v["prevHash"], "00");
        let line = v.to_string();
        assert!(!line.contains('\n'));
    }
}
