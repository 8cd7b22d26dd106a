//! What `audit verify` reports: the problems found (in the order found, listed up to a bound
//! and counted beyond it), the anchors seen, and what was checked. Filled in by `audit_verify`
//! and `audit_crosscheck`.

use serde::Serialize;

/// Problems listed in full; beyond that they are only counted.
const MAX_PROBLEMS: usize = 1000;

/// One thing `audit verify` found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditProblem {
    /// Stable kind: `row-changed`, `row-missing`, `mac-mismatch`, `unkeyed-row`,
    /// `head-mismatch`, `no-key`, `anchor-forged`, `anchor-unreadable`, `anchor-mismatch`,
    /// `truncated`, `beyond-head`, `status-mismatch`, `unexpected-status`, `field-mismatch`,
    /// `roles-mismatch`, `missing-event`, `missing-row`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    pub message: String,
}

/// The anchor that proves how far the chain reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnchorSeen {
    pub seq: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub reason: String,
    /// `anchor file line N` or `audit_anchor row N`.
    pub source: String,
}

/// Result of `audit verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AuditVerification {
    /// Rows up to the head.
    pub rows: i64,
    /// The first sequence number whose row is changed or missing, if any.
    pub first_bad: Option<i64>,
    /// The head's sequence number.
    pub head_seq: i64,
    /// Rows with a MAC, and whether the MACs were checked (the store had the key).
    pub keyed_rows: i64,
    pub macs_checked: bool,
    /// Rows without a MAC (before the keyed chain began).
    pub legacy_rows: i64,
    /// Anchors read from this node's anchor file and from the database, and the furthest one.
    pub file_anchors: usize,
    pub database_anchors: usize,
    pub latest_anchor: Option<AnchorSeen>,
    /// Set when an anchor names a sequence number beyond the head: rows were deleted.
    pub truncated: Option<AnchorSeen>,
    /// Certificates and officers compared with the chain (0 when the chain is broken).
    pub certificates_checked: i64,
    pub officers_checked: i64,
    /// Everything wrong, in the order found (at most 1000 listed; see `problem_count`).
    pub problems: Vec<AuditProblem>,
    pub problem_count: usize,
}

impl AuditVerification {
    /// True when nothing is wrong.
    pub fn is_intact(&self) -> bool {
        self.first_bad.is_none() && self.truncated.is_none() && self.problem_count == 0
    }

    pub(super) fn problem(
        &mut self,
        kind: &str,
        seq: Option<i64>,
        serial: Option<&str>,
        message: String,
    ) {
        self.problem_count += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(AuditProblem {
                kind: kind.into(),
                seq,
                serial: serial.map(str::to_string),
                message,
            });
        }
    }

    pub(super) fn broken(&mut self, seq: i64, kind: &str, message: String) {
        self.first_bad.get_or_insert(seq);
        self.problem(kind, Some(seq), None, message);
    }
}
