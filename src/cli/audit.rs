//! `ast-gateway audit verify` (checks the audit trail and says what it found) and
//! `audit export [--since RFC3339|DURATION]` (the audit table as JSON lines, for a SIEM or an
//! archive: one object per row, in chain order — `{"seq", "at" (RFC 3339, milliseconds),
//! "event", "actor", "requestId", "detail" (the stored JSON, as an object), "prevHash",
//! "hash"}`; `hash` of one row is `prevHash` of the next).

use std::process::ExitCode;

use clap::Args;

use super::output::outln;
use super::store::{Access, open_configured};

use crate::config::{Root, SecretKey, parse_duration};
use crate::store::{AUDIT_KEY_LABEL, AuditRow, AuditSeal, AuditVerification};

/// Verifies with the root's key (read, never created: a missing key is reported) and its
/// anchor file. Exit code 1 on any problem.
pub(super) async fn verify(root: &Root, json: bool) -> anyhow::Result<ExitCode> {
    let config = super::load_config(root)?;
    let (key, key_problem) = match SecretKey::load(root) {
        Ok(secret) => (
            Some(
                secret
                    .derive_hmac_key(AUDIT_KEY_LABEL)
                    .map_err(|e| anyhow::anyhow!(e))?,
            ),
            None,
        ),
        Err(e) => (None, Some(e)),
    };
    let seal = AuditSeal::new(key, Some(root.audit_anchors()));
    let store = open_configured(&config, Access::Sealed(Box::new(seal))).await?;
    let result = store.verify_audit().await?;
    store.close().await;
    if json {
        outln!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print!("{}", render(&result, key_problem.as_deref(), root));
    }
    Ok(if result.is_intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn render(r: &AuditVerification, key_problem: Option<&str>, root: &Root) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    match r.first_bad {
        Some(seq) => line(format!(
            "audit trail BROKEN at row {seq} (of {} rows)",
            r.rows
        )),
        None if r.is_intact() => line(format!("audit trail intact: {} rows", r.rows)),
        None => line(format!(
            "audit trail has PROBLEMS: {} (of {} rows)",
            r.problem_count, r.rows
        )),
    }
    let macs = if r.macs_checked {
        "MACs checked with the key derived from data/secret.key".to_string()
    } else {
        format!(
            "MACs NOT checked: {}",
            key_problem.unwrap_or("no audit key")
        )
    };
    line(format!(
        "  rows checked up to head {}: {} keyed, {} legacy (before the keyed chain); {macs}",
        r.head_seq, r.keyed_rows, r.legacy_rows
    ));
    let latest = match &r.latest_anchor {
        Some(a) => format!("; furthest: seq {} ({}, {})", a.seq, a.reason, a.source),
        None => String::new(),
    };
    line(format!(
        "  anchors: {} in {}, {} in the database{latest}",
        r.file_anchors,
        root.audit_anchors().display(),
        r.database_anchors
    ));
    if r.file_anchors + r.database_anchors == 0 {
        line("  (no anchors yet: deleting the newest rows could not be detected)".into());
    }
    match &r.truncated {
        Some(a) => line(format!(
            "  TRUNCATED: the chain ends at seq {} but {} says seq {} existed",
            r.head_seq, a.source, a.seq
        )),
        None => line("  truncation: none detected".into()),
    }
    line(format!(
        "  cross-check: {} certificates, {} officers compared with the chain",
        r.certificates_checked, r.officers_checked
    ));
    for p in &r.problems {
        line(format!("PROBLEM [{}] {}", p.kind, p.message));
    }
    if r.problem_count > r.problems.len() {
        line(format!(
            "… and {} more problems",
            r.problem_count - r.problems.len()
        ));
    }
    out
}

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
    if let Some(at) = crate::timestamp::Timestamp::parse_rfc3339(since) {
        return Ok(at.unix_millis());
    }
    let back = parse_duration(since).map_err(|_| {
        format!(
            "--since `{since}` is neither an RFC 3339 time (2026-05-01T00:00:00Z) nor a duration (24h, 7d)"
        )
    })?;
    Ok((now.unix_timestamp_nanos() / 1_000_000) as i64 - back.as_millis() as i64)
}

fn to_json(row: &AuditRow) -> serde_json::Value {
    let at = crate::timestamp::Timestamp::from_unix_millis(row.at).to_string();
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
    let store = open_configured(&config, Access::Read).await?;
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
    fn report_names_every_finding() {
        let root = Root::new("/r");
        let ok = AuditVerification {
            rows: 3,
            head_seq: 3,
            keyed_rows: 2,
            legacy_rows: 1,
            macs_checked: true,
            ..AuditVerification::default()
        };
        let text = render(&ok, None, &root);
        assert!(text.starts_with("audit trail intact: 3 rows\n"), "{text}");
        assert!(text.contains("2 keyed, 1 legacy") && text.contains("no anchors yet"));

        let mut bad = ok.clone();
        bad.first_bad = Some(2);
        bad.problem_count = 1;
        bad.problems.push(crate::store::AuditProblem {
            kind: "mac-mismatch".into(),
            seq: Some(2),
            serial: None,
            message: "row 2 differs".into(),
        });
        let text = render(&bad, Some("cannot read the secret key"), &root);
        assert!(text.contains("BROKEN at row 2"), "{text}");
        assert!(text.contains("PROBLEM [mac-mismatch] row 2 differs"));

        let mut truncated = ok;
        truncated.macs_checked = false;
        truncated.problem_count = 1;
        truncated.truncated = Some(crate::store::AnchorSeen {
            seq: 9,
            at: 0,
            reason: "checkpoint".into(),
            source: "anchor file line 4".into(),
        });
        let text = render(&truncated, Some("cannot read the secret key"), &root);
        assert!(text.contains("has PROBLEMS"), "{text}");
        assert!(
            text.contains("TRUNCATED: the chain ends at seq 3 but anchor file line 4 says seq 9")
        );
        assert!(text.contains("MACs NOT checked: cannot read the secret key"));
    }

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
