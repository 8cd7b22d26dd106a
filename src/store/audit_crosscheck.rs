//! `audit verify`'s cross-check: every certificate's and officer's row must be the one implied
//! by the chained events about it (`issued` → good, `revoked` → revoked with that reason and
//! time, `reinstated` → good; `officer-issued` with its roles, `officer-revoked`), and every
//! certificate or officer the chain records must still have its row. Here: reading the chain
//! into [`Statuses`] and the officers table; the certificates table is `audit_certificates`.

use std::collections::HashMap;

use serde_json::Value;
use sqlx::{Any, Row, Transaction};

use super::audit_certificates::{Facts, Implied, cross_check_certificates, normalise_serial};
use super::audit_report::AuditVerification;
use super::{Store, StoreError};

/// What the chain says about one officer certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OfficerFacts {
    revoked: bool,
    seq: i64,
    /// The roles registered (sorted), when the event recorded them.
    roles: Option<Vec<String>>,
}

/// Last status-changing event per certificate and per officer, with its seq.
#[derive(Default)]
pub(super) struct Statuses {
    certificates: HashMap<String, Facts>,
    officers: HashMap<String, OfficerFacts>,
}

fn sorted_roles(value: &Value) -> Option<Vec<String>> {
    let mut roles: Vec<String> = value
        .as_array()?
        .iter()
        .map(|r| r.as_str().map(str::to_string))
        .collect::<Option<_>>()?;
    roles.sort();
    roles.dedup();
    Some(roles)
}

impl Statuses {
    pub(super) fn observe(&mut self, seq: i64, event: &str, detail: &str) {
        if !matches!(
            event,
            "issued" | "revoked" | "reinstated" | "officer-issued" | "officer-revoked"
        ) {
            return;
        }
        let Ok(detail) = serde_json::from_str::<Value>(detail) else {
            return;
        };
        let serial = || detail["serial"].as_str().and_then(normalise_serial);
        match event {
            "issued" => self.issued(seq, &detail),
            "revoked" | "reinstated" => {
                let Some(s) = serial() else { return };
                let facts = self.certificates.entry(s).or_default();
                facts.seq = seq;
                if let Some(ca) = detail["ca"].as_str() {
                    facts.ca = Some(ca.to_string());
                }
                if event == "revoked" {
                    facts.status = Implied::Revoked(detail["reason"].as_str().map(str::to_string));
                    facts.revoked_at = detail["revokedAt"].as_i64();
                } else {
                    facts.status = Implied::Good;
                    facts.revoked_at = None;
                }
            }
            "officer-issued" => {
                if let Some(s) = serial() {
                    let revoked = detail["status"].as_str() == Some("revoked");
                    let roles = sorted_roles(&detail["roles"]);
                    self.officers.insert(
                        s,
                        OfficerFacts {
                            revoked,
                            seq,
                            roles,
                        },
                    );
                }
            }
            _ => {
                if let Some(s) = serial() {
                    let facts = self.officers.entry(s).or_insert(OfficerFacts {
                        revoked: true,
                        seq,
                        roles: None,
                    });
                    facts.revoked = true;
                    facts.seq = seq;
                }
            }
        }
    }

    /// An `issued` event: its certificates in full when it recorded them, else their serials.
    fn issued(&mut self, seq: i64, detail: &Value) {
        if let Some(list) = detail["certificates"].as_array() {
            for c in list {
                if let Some(s) = c["serial"].as_str().and_then(normalise_serial) {
                    self.certificates.insert(
                        s,
                        Facts {
                            seq,
                            ca: c["ca"].as_str().map(str::to_string),
                            not_after: c["notAfter"].as_i64(),
                            digest: c["digest"].as_str().map(str::to_string),
                            ..Facts::default()
                        },
                    );
                }
            }
            return;
        }
        for s in detail["serials"].as_array().into_iter().flatten() {
            if let Some(s) = s.as_str().and_then(normalise_serial) {
                self.certificates.insert(
                    s,
                    Facts {
                        seq,
                        ..Facts::default()
                    },
                );
            }
        }
    }
}

impl Store {
    /// Each certificate's and officer's status must be the one its last chained event implies.
    pub(super) async fn cross_check(
        &self,
        tx: &mut Transaction<'_, Any>,
        statuses: Statuses,
        report: &mut AuditVerification,
    ) -> Result<(), StoreError> {
        cross_check_certificates(tx, statuses.certificates, report).await?;
        cross_check_officers(tx, statuses.officers, report).await
    }
}

/// The officers table against the chain (status, roles); then the officers the chain records
/// whose rows are gone.
async fn cross_check_officers(
    tx: &mut Transaction<'_, Any>,
    mut officers: HashMap<String, OfficerFacts>,
    report: &mut AuditVerification,
) -> Result<(), StoreError> {
    let rows = sqlx::query("SELECT serial, status, roles FROM officers ORDER BY serial")
        .fetch_all(&mut **tx)
        .await?;
    for row in &rows {
        let serial: String = row.try_get(0)?;
        let status: String = row.try_get(1)?;
        let roles: String = row.try_get(2)?;
        report.officers_checked += 1;
        let key = normalise_serial(&serial).unwrap_or_else(|| serial.clone());
        check_officer(&serial, &status, &roles, officers.remove(&key), report);
    }
    let mut missing: Vec<_> = officers.into_iter().collect();
    missing.sort_by_key(|(_, facts)| facts.seq);
    for (serial, facts) in missing {
        let seq = facts.seq;
        report.problem(
            "missing-row",
            Some(seq),
            Some(&serial),
            format!("officer certificate {serial} is in the chain (row {seq}) but not in the officers table: its row was deleted"),
        );
    }
    Ok(())
}

/// One officer row against the chain's facts about it.
fn check_officer(
    serial: &str,
    status: &str,
    roles: &str,
    facts: Option<OfficerFacts>,
    report: &mut AuditVerification,
) {
    let name = |r: bool| if r { "revoked" } else { "active" };
    let revoked = match status {
        "active" => false,
        "revoked" => true,
        other => {
            report.problem(
                "unexpected-status",
                facts.map(|f| f.seq),
                Some(serial),
                format!("officer certificate {serial}: the table's status `{}` is neither active nor revoked", other.chars().take(40).collect::<String>()),
            );
            return;
        }
    };
    let Some(facts) = facts else {
        report.problem(
            "missing-event",
            None,
            Some(serial),
            format!("officer certificate {serial} is registered ({}) but no `officer-issued` event in the chain names it", name(revoked)),
        );
        return;
    };
    let seq = facts.seq;
    if facts.revoked != revoked {
        report.problem(
            "status-mismatch",
            Some(seq),
            Some(serial),
            format!(
                "officer certificate {serial}: the table says {}, the chain says {} (row {seq})",
                name(revoked),
                name(facts.revoked)
            ),
        );
    }
    let table_roles = serde_json::from_str::<Value>(roles)
        .ok()
        .as_ref()
        .and_then(sorted_roles);
    if let Some(chain) = &facts.roles
        && table_roles.as_ref() != Some(chain)
    {
        report.problem(
            "roles-mismatch",
            Some(seq),
            Some(serial),
            format!("officer certificate {serial}: the table grants roles {}, the chain registered {chain:?} (row {seq})", roles.chars().take(200).collect::<String>()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_event_about_a_serial_wins() {
        let mut s = Statuses::default();
        s.observe(1, "issued", r#"{"serials":["0A","0b"]}"#);
        s.observe(
            2,
            "revoked",
            r#"{"serial":"0a","reason":"certificateHold","ca":"issuing","revokedAt":5}"#,
        );
        s.observe(3, "reinstated", r#"{"serial":"0A"}"#);
        s.observe(4, "revoked", r#"{"serial":"0b","reason":"keyCompromise"}"#);
        s.observe(5, "refused", r#"{"serial":"0b"}"#);
        s.observe(6, "revoked", "not json");
        s.observe(
            7,
            "officer-issued",
            r#"{"serial":"0c","status":"active","roles":["ra","admin","ra"]}"#,
        );
        s.observe(8, "officer-revoked", r#"{"serial":"0C"}"#);
        s.observe(
            9,
            "issued",
            r#"{"serials":["0d"],"certificates":[{"serial":"0D","ca":"issuing","notAfter":7,"digest":"ab"}]}"#,
        );
        let a = &s.certificates["0a"];
        assert_eq!(
            (a.status.clone(), a.seq, a.revoked_at),
            (Implied::Good, 3, None)
        );
        assert_eq!(a.ca.as_deref(), Some("issuing"));
        let b = &s.certificates["0b"];
        assert_eq!(b.status, Implied::Revoked(Some("keyCompromise".into())));
        assert_eq!((b.seq, b.revoked_at, b.ca.clone()), (4, None, None));
        let d = &s.certificates["0d"];
        assert_eq!((d.not_after, d.digest.as_deref()), (Some(7), Some("ab")));
        let c = &s.officers["0c"];
        assert_eq!((c.revoked, c.seq), (true, 8));
        assert_eq!(c.roles, Some(vec!["admin".to_string(), "ra".to_string()]));
        assert_eq!(
            Implied::Revoked(Some("keyCompromise".into())).to_string(),
            "revoked (keyCompromise)"
        );
    }
}
