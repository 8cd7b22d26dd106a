//! The one issuance recipe shared by user tokens, officer certificates and `bench`: plan the
//! subjects → keys (pool, else inline) → sign → package as PKCS#12. Storing is the caller's
//! step (each records its own rows), and always happens before the token leaves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{IssuanceError, Unavailable};
use crate::ca::{
    Attribute, Ca, CertificateProfile, IssuedCertificate, PublishedUrls, Subject,
    issue_certificate, subject_preview,
};
use crate::policy::{EvaluatedFields, PolicyError};
use crate::rules::{CertificateTemplate, Layout, LeafNotAfter, TokenProcedure};
use crate::token::{
    GeneratedKey, KeyPool, KeySource, Pin, Pkcs12Profile, TokenEntry, write_pkcs12,
};

/// One certificate to make: its template, its CA and its subject.
#[derive(Clone)]
pub(crate) struct Planned {
    pub(crate) template: CertificateTemplate,
    pub(crate) ca: Arc<Ca>,
    pub(crate) subject: Subject,
}

/// The subject of each certificate of `procedure`, in procedure order, from evaluated fields.
/// Pure (no CA, no key): shared by issuance, `config explain` and `bench`. Everything about a
/// value that could make the recipe fail later is checked here, before any key is taken or
/// made: an empty subject, the DN and SAN encodings (the same code that signs) and the PKCS#12
/// friendlyName.
pub(crate) fn plan_subjects<'p>(
    procedure: &'p TokenProcedure,
    fields: &EvaluatedFields,
) -> Result<Vec<(&'p CertificateTemplate, Subject)>, IssuanceError> {
    let mut plan = Vec::with_capacity(procedure.certificates.len());
    for (index, template) in procedure.certificates.iter().enumerate() {
        let subject = fields.subject_for(index);
        if subject.dn_values(&template.subject_order).is_empty() {
            return Err(IssuanceError::Policy(PolicyError::FieldMissing {
                field: "subject".into(),
                index: 0,
                source_name: format!(
                    "certificate {index} ({}) would have an empty subject",
                    template.purpose
                ),
            }));
        }
        subject_preview(&subject, &template.subject_order)?;
        plan.push((template, subject));
    }
    Ok(plan)
}

/// Pairs each planned subject with its loaded CA. Refuses, before any key is generated, a
/// certificate its CA cannot sign: the CA has expired, or the certificate would outlive it and
/// the template says `leaf_not_after = "refuse"`.
pub(crate) fn with_cas(
    subjects: Vec<(&CertificateTemplate, Subject)>,
    cas: &BTreeMap<String, Arc<Ca>>,
) -> Result<Vec<Planned>, IssuanceError> {
    let now = SystemTime::now();
    subjects
        .into_iter()
        .map(|(template, subject)| {
            let ca = cas
                .get(&template.ca)
                .cloned()
                .ok_or_else(|| Unavailable::CaNotLoaded(template.ca.clone()))?;
            check_ca_lifetime(template, &ca, now)?;
            Ok(Planned {
                template: template.clone(),
                ca,
                subject,
            })
        })
        .collect()
}

/// The CA certificate's notAfter.
pub(crate) fn ca_not_after(ca: &Ca) -> SystemTime {
    ca.certificate()
        .tbs_certificate()
        .validity()
        .not_after
        .to_system_time()
}

/// The refusal for a certificate its CA cannot sign at `now` (see `with_cas`).
fn check_ca_lifetime(
    template: &CertificateTemplate,
    ca: &Ca,
    now: SystemTime,
) -> Result<(), IssuanceError> {
    let not_after = ca_not_after(ca);
    let ends = match not_after.duration_since(now) {
        Err(_) => format!("expired on {}", rfc3339(not_after)),
        Ok(left) if left < template.validity && template.leaf_not_after == LeafNotAfter::Refuse => {
            format!(
                "expires on {} (leaf_not_after = \"refuse\")",
                rfc3339(not_after)
            )
        }
        Ok(_) => return Ok(()),
    };
    Err(IssuanceError::CaLifetime {
        purpose: template.purpose.clone(),
        ca: ca.name().to_string(),
        validity_days: template.validity.as_secs().div_ceil(86_400),
        ends,
    })
}

/// `2026-01-31T12:00:00Z`.
fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| format!("{t:?}"))
}

/// Where relying parties find revocation information, written into leaf certificates.
#[derive(Debug, Clone)]
pub(crate) struct Publication {
    /// `[server] public_url`, without a trailing slash; `None`: no URLs at all.
    pub(crate) public_url: Option<String>,
    /// Write the AIA OCSP URL (`[ocsp] enabled`).
    pub(crate) ocsp: bool,
}

/// Everything needed to make one token; no knowledge of who asked for it.
pub(crate) struct TokenRecipe {
    pub(crate) plan: Vec<Planned>,
    pub(crate) pin: Arc<Pin>,
    pub(crate) profile: Pkcs12Profile,
    pub(crate) iterations: u32,
    pub(crate) publication: Publication,
    /// One PKCS#12 with every key, or one per certificate.
    pub(crate) layout: Layout,
}

/// Where the time of one token went (metrics, `bench`).
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimes {
    /// Taking keys from the pool or generating them inline.
    pub keygen: Duration,
    /// Building and signing the certificates.
    pub sign: Duration,
    /// Writing the PKCS#12 (PBKDF2 dominates).
    pub pkcs12: Duration,
    /// Keys taken from the pool.
    pub pooled_keys: u32,
    /// Keys generated inline because the pool was empty.
    pub inline_keys: u32,
}

/// The certificates of a token (with what they were made from), its PKCS#12 files and the
/// time each stage took.
pub(crate) struct MadeToken {
    pub(crate) issued: Vec<(Planned, IssuedCertificate)>,
    /// One file (combined layout) or one per certificate, in the order of `issued`.
    pub(crate) files: Vec<MadeFile>,
    pub(crate) stages: StageTimes,
}

/// One PKCS#12 of a made token.
pub(crate) struct MadeFile {
    /// The index in `issued` of the one certificate this file holds; `None`: every one.
    pub(crate) certificate: Option<usize>,
    pub(crate) pkcs12: Vec<u8>,
}

impl TokenRecipe {
    /// The recipe for `plan` under `settings` (PKCS#12 iterations, published URLs).
    pub(crate) fn new(
        plan: Vec<Planned>,
        pin: Pin,
        profile: Pkcs12Profile,
        settings: &crate::config::GatewayConfig,
    ) -> TokenRecipe {
        TokenRecipe {
            plan,
            pin: Arc::new(pin),
            profile,
            iterations: settings.pkcs12_iterations,
            publication: Publication {
                public_url: Some(settings.server.public_url.clone()),
                ocsp: settings.ocsp.enabled,
            },
            layout: Layout::Combined,
        }
    }

    /// The same recipe delivering its keys in `layout`.
    pub(crate) fn with_layout(mut self, layout: Layout) -> TokenRecipe {
        self.layout = layout;
        self
    }

    /// Keys (from the pool, else inline), certificates and the PKCS#12. CPU-bound: call on a
    /// blocking thread.
    pub(crate) fn make(&self, pool: &KeyPool) -> Result<MadeToken, IssuanceError> {
        let mut stages = StageTimes::default();
        let mut keys: Vec<GeneratedKey> = Vec::with_capacity(self.plan.len());
        let mut issued = Vec::with_capacity(self.plan.len());
        for planned in &self.plan {
            let started = Instant::now();
            let (key, source) = pool.key(planned.template.key)?;
            match source {
                KeySource::Pool => stages.pooled_keys += 1,
                KeySource::Inline => stages.inline_keys += 1,
            }
            let signing = Instant::now();
            stages.keygen += signing - started;
            let certificate = self.sign(planned, &key)?;
            stages.sign += signing.elapsed();
            keys.push(key);
            issued.push((planned.clone(), certificate));
        }
        let writing = Instant::now();
        let entries: Vec<TokenEntry<'_>> = issued
            .iter()
            .zip(&keys)
            .map(|((planned, certificate), key)| TokenEntry {
                friendly_name: friendly_name(&planned.subject, &planned.template),
                key,
                certificate_der: &certificate.der,
                chain: planned.ca.chain(),
            })
            .collect();
        let write = |entries: &[TokenEntry<'_>]| {
            write_pkcs12(entries, &self.pin, self.profile, self.iterations)
        };
        let files = match self.layout {
            Layout::Combined => vec![MadeFile {
                certificate: None,
                pkcs12: write(&entries)?,
            }],
            Layout::PerPurpose => entries
                .iter()
                .enumerate()
                .map(|(index, entry)| {
                    Ok(MadeFile {
                        certificate: Some(index),
                        pkcs12: write(std::slice::from_ref(entry))?,
                    })
                })
                .collect::<Result<_, IssuanceError>>()?,
        };
        stages.pkcs12 = writing.elapsed();
        Ok(MadeToken {
            issued,
            files,
            stages,
        })
    }

    /// One certificate for `key`, signed by the planned CA.
    fn sign(
        &self,
        planned: &Planned,
        key: &GeneratedKey,
    ) -> Result<IssuedCertificate, IssuanceError> {
        let template = &planned.template;
        let ca = &planned.ca;
        // A certificate never outlives its CA: its notAfter (now + validity) is cut to the
        // CA's. `refuse` templates were refused in planning; this catches the seconds since.
        let left = ca_not_after(ca)
            .duration_since(SystemTime::now())
            .map_err(|_| IssuanceError::CaLifetime {
                purpose: template.purpose.clone(),
                ca: ca.name().to_string(),
                validity_days: template.validity.as_secs().div_ceil(86_400),
                ends: format!("expired on {}", rfc3339(ca_not_after(ca))),
            })?;
        let profile = CertificateProfile {
            subject: &planned.subject,
            subject_order: &template.subject_order,
            spki_der: key.spki_der(),
            validity: template.validity.min(left),
            key_usage: template.key_usage,
            extended_key_usage: &template.extended_key_usage,
            policies: &template.policies,
            ca: None,
            published: self
                .publication
                .public_url
                .as_deref()
                .map(|url| PublishedUrls::for_ca(url, ca.name(), self.publication.ocsp)),
        };
        Ok(issue_certificate(
            ca.certificate().tbs_certificate().subject(),
            ca.key_identifier(),
            ca.signer(),
            &profile,
        )?)
    }
}

/// `<commonname> <purpose>`: what wallets show for the key.
fn friendly_name(subject: &Subject, template: &CertificateTemplate) -> String {
    format!(
        "{} {}",
        subject.first(Attribute::CommonName).unwrap_or("token"),
        template.purpose
    )
}

/// How often a token is made again after a serial collision before giving up.
pub(crate) const SERIAL_ATTEMPTS: u32 = 3;

/// The outcome of one issuance attempt.
#[derive(Debug)]
pub(crate) enum Attempt<T> {
    Done(T),
    /// The database already holds a certificate with this serial; nothing was recorded.
    Collision(String),
}

/// Runs `attempt` (numbered from 1) until it is done, at most `attempts` times. Repeated
/// collisions mean the random number generator is broken: that is an internal error.
pub(crate) async fn with_fresh_serials<T, F, Fut>(
    attempts: u32,
    mut attempt: F,
) -> Result<T, IssuanceError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<Attempt<T>, IssuanceError>>,
{
    let mut last = String::new();
    for n in 1..=attempts {
        match attempt(n).await? {
            Attempt::Done(value) => return Ok(value),
            Attempt::Collision(serial) => last = serial,
        }
    }
    Err(IssuanceError::invariant(format!(
        "{attempts} serial collisions in a row (last {last}): is the random number generator broken?"
    )))
}

#[cfg(test)]
mod tests {
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
                issue_ca_certificate(None, &signer, "Short CA", None, DAY * days as u32, None)
                    .unwrap();
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

        fn plan(
            template: &CertificateTemplate,
            ca: &Arc<Ca>,
        ) -> Result<Vec<Planned>, IssuanceError> {
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
}
