//! Where each configured CA stands (active, retiring, retired, unused): what `ca list` shows and
//! which CRLs the background refresher keeps fresh.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::GatewayConfig;
use crate::rules::Rules;
use crate::store::CaUsage;

/// Where a configured CA stands (`ca list`; which CRLs `serve` keeps fresh).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaState {
    /// Signs now: the CA of a token procedure, the parent of a configured CA, or the officers
    /// CA. The text says which.
    Active(String),
    /// Signs nothing new (e.g. replaced by `ca create --replaces`), but certificates it issued
    /// have not expired: it keeps signing CRLs and answering OCSP until `until`.
    Retiring { certificates: i64, until: i64 },
    /// Nothing uses it and every certificate it issued has expired (the last on
    /// `last_not_after`): its `[[ca]]` block may be removed.
    Retired { last_not_after: i64 },
    /// Nothing uses it and it never issued a certificate.
    Unused,
}

impl CaState {
    /// `active`, `retiring`, `retired` or `unused`.
    pub fn name(&self) -> &'static str {
        match self {
            CaState::Active(_) => "active",
            CaState::Retiring { .. } => "retiring",
            CaState::Retired { .. } => "retired",
            CaState::Unused => "unused",
        }
    }

    /// True while relying parties may still ask for the CA's CRL (it is in unexpired
    /// certificates).
    pub fn keeps_crl(&self) -> bool {
        matches!(self, CaState::Active(_) | CaState::Retiring { .. })
    }
}

impl std::fmt::Display for CaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let date = |t: i64| crate::timestamp::Timestamp::from_unix(t).to_string();
        match self {
            CaState::Active(why) => write!(f, "active ({why})"),
            CaState::Retiring {
                certificates,
                until,
            } => write!(
                f,
                "retiring: {certificates} certificate{} until {}",
                if *certificates == 1 { "" } else { "s" },
                date(*until)
            ),
            CaState::Retired { last_not_after } => write!(
                f,
                "retired (its last certificate expired on {})",
                date(*last_not_after)
            ),
            CaState::Unused => f.write_str("unused (no token procedure, no certificates)"),
        }
    }
}

/// The state of every configured CA, from the configuration and the per-CA certificate counts
/// of the store (`Store::ca_usage`).
pub fn ca_states(
    settings: &GatewayConfig,
    rules: &Rules,
    usage: &[CaUsage],
) -> BTreeMap<String, CaState> {
    settings
        .cas
        .iter()
        .map(|ca| {
            let name = &ca.name;
            let mut why = Vec::new();
            let procedures: BTreeSet<&str> = rules
                .procedures
                .values()
                .filter(|p| p.certificates.iter().any(|c| &c.ca == name))
                .map(|p| p.name.as_str())
                .collect();
            if !procedures.is_empty() {
                why.push(format!(
                    "token procedure {}",
                    procedures.into_iter().collect::<Vec<_>>().join(", ")
                ));
            }
            let children: Vec<&str> = settings
                .cas
                .iter()
                .filter(|c| c.parent.as_ref() == Some(name))
                .map(|c| c.name.as_str())
                .collect();
            if !children.is_empty() {
                why.push(format!("parent of {}", children.join(", ")));
            }
            if settings.officers_ca() == Some(name.as_str()) {
                why.push("officer certificates".into());
            }
            let used = usage.iter().find(|u| &u.ca == name);
            let state = match used {
                _ if !why.is_empty() => CaState::Active(why.join("; ")),
                Some(u) if u.unexpired > 0 => CaState::Retiring {
                    certificates: u.unexpired,
                    until: u.last_not_after,
                },
                Some(u) => CaState::Retired {
                    last_not_after: u.last_not_after,
                },
                None => CaState::Unused,
            };
            (name.clone(), state)
        })
        .collect()
}
