//! Tests of `issuance/recipe.rs`.

use super::{Attempt, IssuanceError, plan_subjects, with_fresh_serials};
use crate::ca::{Attribute, Subject};
use crate::issuance::{Code, Unavailable};
use crate::policy::EvaluatedFields;
use crate::rules::{CertificateTemplate, TokenProcedure};

fn procedure() -> TokenProcedure {
    TokenProcedure {
        name: "p".into(),
        layout: crate::rules::Layout::Combined,
        certificates: vec![CertificateTemplate {
            purpose: "authentication".into(),
            ca: "issuing".into(),
            key: crate::token::KeyType::EcP256,
            validity: std::time::Duration::from_secs(86_400),
            key_usage: x509_cert::ext::pkix::KeyUsage(
                x509_cert::ext::pkix::KeyUsages::DigitalSignature.into(),
            ),
            extended_key_usage: Vec::new(),
            policies: Vec::new(),
            subject_order: Vec::new(),
            leaf_not_after: crate::rules::LeafNotAfter::Cap,
        }],
    }
}

fn plan(values: &[(Attribute, &str)]) -> Result<(), IssuanceError> {
    let fields = EvaluatedFields {
        common: Subject {
            values: values.iter().map(|(a, v)| (*a, v.to_string())).collect(),
        },
        ..EvaluatedFields::default()
    };
    plan_subjects(&procedure(), &fields).map(|_| ())
}

#[test]
fn planning_refuses_what_signing_or_packaging_would() {
    assert!(plan(&[(Attribute::CommonName, "Hanna Ström")]).is_ok());
    // Outside the Basic Multilingual Plane: the friendlyName takes surrogate pairs.
    assert!(plan(&[(Attribute::CommonName, "𠮷田 太郎")]).is_ok());
    for values in [
        // PrintableString cannot hold `_` (signing would fail).
        vec![
            (Attribute::CommonName, "A"),
            (Attribute::SerialNumber, "ABC_123"),
        ],
        vec![
            (Attribute::CommonName, "A"),
            (Attribute::CountryName, "Sweden"),
        ],
        // rfc822Name is an IA5String.
        vec![
            (Attribute::CommonName, "A"),
            (Attribute::Rfc822Name, "å@x.se"),
        ],
    ] {
        let error = plan(&values).unwrap_err();
        assert_eq!(error.code(), Code::FieldInvalid, "{values:?}: {error}");
    }
}

mod leaf_not_after {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use super::super::{Planned, Publication, TokenRecipe, ca_not_after, with_cas};
    use crate::ca::{Attribute, Ca, FileSigner, Subject, issue_ca_certificate};
    use crate::issuance::{Code, IssuanceError};
    use crate::rules::{CertificateTemplate, LeafNotAfter};
    use crate::token::{KeyPool, KeyType, Pin, Pkcs12Profile, generate_key};

    const DAY: Duration = Duration::from_secs(86_400);

    /// A self-signed CA valid for `days`.
    fn ca(days: u64) -> Arc<Ca> {
        let key = generate_key(KeyType::EcP256).unwrap();
        let signer = FileSigner::from_pkcs8("test", key.pkcs8_der()).unwrap();
        let issued =
            issue_ca_certificate(None, &signer, "Short CA", None, DAY * days as u32, None).unwrap();
        Arc::new(Ca::new("short", issued.der, Vec::new(), Arc::new(signer)).unwrap())
    }

    fn template(days: u32, leaf_not_after: LeafNotAfter) -> CertificateTemplate {
        CertificateTemplate {
            purpose: "authentication".into(),
            ca: "short".into(),
            key: KeyType::EcP256,
            validity: DAY * days,
            key_usage: crate::ca::parse_key_usage(&["digitalSignature".into()]).unwrap(),
            extended_key_usage: Vec::new(),
            policies: Vec::new(),
            subject_order: Vec::new(),
            leaf_not_after,
        }
    }

    fn plan(template: &CertificateTemplate, ca: &Arc<Ca>) -> Result<Vec<Planned>, IssuanceError> {
        let subject = Subject {
            values: vec![(Attribute::CommonName, "Alice".into())],
        };
        let cas = BTreeMap::from([("short".to_string(), ca.clone())]);
        with_cas(vec![(template, subject)], &cas)
    }

    fn not_after_of(plan: Vec<Planned>) -> SystemTime {
        let recipe = TokenRecipe {
            plan,
            pin: Arc::new(Pin::new("Str0ng-Pass!".into())),
            profile: Pkcs12Profile::Modern,
            iterations: 1,
            publication: Publication {
                public_url: None,
                ocsp: false,
            },
            layout: crate::rules::Layout::Combined,
        };
        let made = recipe
            .make(&KeyPool::without_refill(BTreeMap::new()))
            .unwrap();
        made.issued[0].1.not_after
    }

    #[test]
    fn cap_ends_the_certificate_with_its_ca() {
        let ca = ca(2);
        let planned = plan(&template(365, LeafNotAfter::Cap), &ca).unwrap();
        assert_eq!(not_after_of(planned), ca_not_after(&ca));
    }

    #[test]
    fn a_certificate_inside_the_ca_life_is_not_cut() {
        let ca = ca(30);
        let before = SystemTime::now();
        let planned = plan(&template(10, LeafNotAfter::Refuse), &ca).unwrap();
        let not_after = not_after_of(planned);
        assert!(not_after >= before + DAY * 10 - Duration::from_secs(2));
        assert!(not_after < ca_not_after(&ca) - DAY * 19);
    }

    #[test]
    fn refuse_refuses_in_planning() {
        let ca = ca(2);
        let error = plan(&template(365, LeafNotAfter::Refuse), &ca)
            .err()
            .unwrap();
        assert_eq!(error.code(), Code::CaExpiring);
        let message = error.to_string();
        assert!(
            message.contains("certificate `authentication` would be valid for 365 days"),
            "{message}"
        );
        assert!(message.contains("CA `short` expires on"), "{message}");
        assert!(message.contains("leaf_not_after = \"refuse\""), "{message}");
        assert!(message.contains("ca create --replaces short"), "{message}");
    }

    #[test]
    fn an_expired_ca_is_refused_even_with_cap() {
        // Validity 0: notAfter is now, in whole seconds, so already past.
        let ca = ca(0);
        std::thread::sleep(Duration::from_millis(10));
        let error = plan(&template(1, LeafNotAfter::Cap), &ca).err().unwrap();
        assert_eq!(error.code(), Code::CaExpiring);
        assert!(error.to_string().contains("expired on"), "{error}");
    }
}

#[tokio::test]
async fn collision_is_retried_with_fresh_serials() {
    let mut calls = Vec::new();
    let result = with_fresh_serials(3, |n| {
        calls.push(n);
        std::future::ready(Ok(if n < 3 {
            Attempt::Collision(format!("{n:02x}"))
        } else {
            Attempt::Done("token")
        }))
    })
    .await;
    assert_eq!(result.ok(), Some("token"));
    assert_eq!(calls, [1, 2, 3]);
}

#[tokio::test]
async fn endless_collisions_are_an_internal_error() {
    let mut calls = 0;
    let result: Result<(), _> = with_fresh_serials(3, |_| {
        calls += 1;
        std::future::ready(Ok(Attempt::Collision("01".into())))
    })
    .await;
    assert!(
        matches!(result, Err(IssuanceError::Internal(ref m)) if m.to_string().contains("3 serial collisions"))
    );
    assert_eq!(calls, 3);
}

#[tokio::test]
async fn other_errors_are_not_retried() {
    let mut calls = 0;
    let result: Result<(), _> = with_fresh_serials(3, |_| {
        calls += 1;
        std::future::ready(Err(IssuanceError::Unavailable(Unavailable::ShuttingDown)))
    })
    .await;
    assert_eq!(result.err().map(|e| e.code()), Some(Code::Unavailable));
    assert_eq!(calls, 1);
}
