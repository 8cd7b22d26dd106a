//! The one issuance recipe shared by user tokens, officer certificates and `bench`: plan the
//! subjects → keys (pool, else inline) → sign → package as PKCS#12. Storing is the caller's
//! step (each records its own rows), and always happens before the token leaves.

use crate::timestamp::Timestamp;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{IssuanceError, Unavailable};
use crate::ca::{
    Attribute, Ca, CertificateProfile, IssuedCertificate, PublishedUrls, Subject, check_subject,
    issue_certificate,
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
        check_subject(&subject, &template.subject_order)?;
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
        Err(_) => format!("expired on {}", Timestamp::from(not_after)),
        Ok(left) if left < template.validity && template.leaf_not_after == LeafNotAfter::Refuse => {
            format!(
                "expires on {} (leaf_not_after = \"refuse\")",
                Timestamp::from(not_after)
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

/// Where relying parties find revocation information, written into leaf certificates.
#[derive(Debug, Clone)]
pub(crate) struct Publication {
    /// `[server] public_url`, without a trailing slash; `None`: no URLs at all.
    pub(crate) public_url: Option<String>,
    /// Write the AIA OCSP URL (`[ocsp] enabled`).
    pub(crate) ocsp: bool,
}

impl Publication {
    /// What `settings` publish: `[server] public_url` and `[ocsp] enabled`.
    pub(crate) fn of(settings: &crate::config::GatewayConfig) -> Publication {
        Publication {
            public_url: Some(settings.server.public_url.clone()),
            ocsp: settings.ocsp.enabled,
        }
    }
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
            publication: Publication::of(settings),
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
        sign_planned(&self.publication, planned, key.spki_der())
    }
}

/// One certificate for the public key `spki_der`, signed by the planned CA (shared with EST,
/// which certifies a client's own key).
pub(crate) fn sign_planned(
    publication: &Publication,
    planned: &Planned,
    spki_der: &[u8],
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
            ends: format!("expired on {}", Timestamp::from(ca_not_after(ca))),
        })?;
    let profile = CertificateProfile {
        subject: &planned.subject,
        subject_order: &template.subject_order,
        spki_der,
        validity: template.validity.min(left),
        key_usage: template.key_usage,
        extended_key_usage: &template.extended_key_usage,
        policies: &template.policies,
        ip_addresses: &[],
        ca: None,
        published: publication
            .public_url
            .as_deref()
            .map(|url| PublishedUrls::for_ca(url, ca.name(), publication.ocsp)),
    };
    Ok(issue_certificate(
        ca.certificate().tbs_certificate().subject(),
        ca.key_identifier(),
        ca.signer(),
        &profile,
    )?)
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
#[path = "recipe_tests.rs"]
mod tests;
