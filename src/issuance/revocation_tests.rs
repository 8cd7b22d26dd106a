//! Tests of `issuance/revocation.rs`.

use super::{CaState, ca_states};
use crate::config::Root;
use crate::store::CaUsage;

fn usage(ca: &str, unexpired: i64, total: i64, last: i64) -> CaUsage {
    CaUsage {
        ca: ca.into(),
        unexpired,
        total,
        last_not_after: last,
    }
}

#[test]
fn a_replaced_ca_retires_once_its_certificates_expire() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    crate::issuance::write_default(&root).unwrap();
    let mut config = crate::rules::load(&root).unwrap();
    let states = ca_states(&config.settings, &config.rules, &[]);
    assert_eq!(
        states["issuing"],
        CaState::Active("token procedure default".into())
    );
    assert_eq!(
        states["root"],
        CaState::Active("parent of issuing, officers".into())
    );
    assert_eq!(
        states["officers"],
        CaState::Active("officer certificates".into())
    );
    assert!(states.values().all(CaState::keeps_crl));

    // The procedures move to another CA: `issuing` keeps its CRL while certificates live.
    let mut replacement = config.settings.cas[1].clone();
    replacement.name = "issuing-2".into();
    config.settings.cas.push(replacement);
    for procedure in config.rules.procedures.values_mut() {
        for c in &mut procedure.certificates {
            c.ca = "issuing-2".into();
        }
    }
    let retiring = ca_states(
        &config.settings,
        &config.rules,
        &[usage("issuing", 2, 5, 1_900_000_000)],
    );
    assert_eq!(
        retiring["issuing"],
        CaState::Retiring {
            certificates: 2,
            until: 1_900_000_000
        }
    );
    assert!(retiring["issuing"].keeps_crl());
    assert_eq!(
        retiring["issuing"].to_string(),
        "retiring: 2 certificates until 2030-03-17T17:46:40Z"
    );
    assert_eq!(retiring["issuing-2"].name(), "active");
    assert_eq!(
        retiring["root"],
        CaState::Active("parent of issuing, officers, issuing-2".into())
    );

    let retired = ca_states(
        &config.settings,
        &config.rules,
        &[usage("issuing", 0, 5, 1_700_000_000)],
    );
    assert_eq!(
        retired["issuing"],
        CaState::Retired {
            last_not_after: 1_700_000_000
        }
    );
    assert!(!retired["issuing"].keeps_crl());
    let unused = ca_states(&config.settings, &config.rules, &[]);
    assert_eq!(unused["issuing"], CaState::Unused);
}
