//! `ast-gateway audit verify`: checks the audit trail and says what it found.

use std::process::ExitCode;

use crate::config::{Root, SecretKey};
use crate::store::{AUDIT_KEY_LABEL, AuditSeal, AuditVerification, Store};

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
    let store = Store::open(&config.settings.database_url, 2)
        .await?
        .with_audit(seal);
    let result = store.verify_audit().await?;
    store.close().await;
    if json {
        println!("{}", serde_json::to_string_pretty(&result)?);
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
}
