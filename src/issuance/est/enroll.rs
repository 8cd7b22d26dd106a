//! simpleenroll, simplereenroll and serverkeygen: who is calling → which handler → the CSR →
//! the subject (the handler's format over the trusted headers and the CSR, or for a renewal
//! the subject of the certificate being renewed) → rate limits → make and record (`make`).
//! Every refusal is audited by `est_enroll`; nothing is issued on refusal.

mod delivery;
mod make;

use std::sync::Arc;

use x509_cert::Certificate;

use super::csr::{self, Csr};
use super::secret::verify_secret;
use super::{
    BasicCredentials, EstCall, EstIssued, EstOperation, EstRefusal, EstRequest, est_select,
};
use crate::ca::Subject;
use crate::identity::{Caller, Connection};
use crate::issuance::recipe::{
    Planned, Publication, SERIAL_ATTEMPTS, plan_subjects, with_cas, with_fresh_serials,
};
use crate::issuance::soft_token::procedure_of;
use crate::issuance::{Gateway, IssuanceError, Unavailable};
use crate::policy::{CertificateFacts, IdentityHeaders, evaluate};
use crate::rules::{CertificateTemplate, EstAuth, Handler, Rules};
use crate::store::CertificateStatus;
use crate::timestamp::Timestamp;
use make::{EstKey, EstOrder};

/// The one certificate template of an EST handler's token procedure (`config check` refuses
/// an EST handler whose procedure has another number).
pub(super) fn template_of<'r>(
    rules: &'r Rules,
    handler: &Handler,
) -> Result<&'r CertificateTemplate, IssuanceError> {
    match procedure_of(rules, handler)?.certificates.as_slice() {
        [one] => Ok(one),
        _ => Err(IssuanceError::invariant(format!(
            "EST handler.{} has a token procedure without exactly one certificate",
            handler.number
        ))),
    }
}

/// Identity headers that nobody vouches for: none.
fn no_headers() -> IdentityHeaders {
    IdentityHeaders::new(std::iter::empty::<(&str, &[u8])>())
}

impl Gateway {
    /// simpleenroll, simplereenroll or serverkeygen: a certificate (and for serverkeygen its
    /// key), committed to the database before it is returned, or an audited refusal.
    pub async fn est_enroll(&self, request: EstRequest) -> Result<EstIssued, IssuanceError> {
        let call = request.call.clone();
        let operation = request.operation;
        // `[limits] request_timeout_secs` bounds the whole pipeline, as for the form.
        let timeout = self.settings.limits.request_timeout;
        let result = tokio::time::timeout(timeout, self.est_inner(request))
            .await
            .unwrap_or_else(|_| Err(IssuanceError::Unavailable(Unavailable::TimedOut)));
        match result {
            Ok(issued) => Ok(issued),
            Err(error) => Err(self.refuse_est(&call, operation.name(), error).await),
        }
    }

    async fn est_inner(&self, request: EstRequest) -> Result<EstIssued, IssuanceError> {
        let EstRequest {
            call,
            operation,
            headers,
            basic,
            csr,
        } = request;
        // Every request of a peer counts, refused or not, before any other work.
        self.admission.rates.peer(call.connection.peer.ip())?;
        // The same rules throughout, even if a reload swaps them meanwhile.
        let rules = self.rules();
        let handler = est_select(&rules, call.label.as_deref())?;
        let template = template_of(&rules, handler)?;
        let renewed = match operation {
            EstOperation::Reenroll => Some(self.renewed(&call.connection, template).await?),
            _ => None,
        };
        let (caller, headers) = match &renewed {
            Some(renewed) => (
                Caller::Device(format!("certificate:{}", renewed.serial)),
                no_headers(),
            ),
            None => self.est_caller(handler, &call, basic?, headers).await?,
        };
        let csr = csr::parse(&csr?)?;
        let key = key_to_certify(operation, &csr, template)?;
        let recipient = match operation {
            EstOperation::ServerKeygen => {
                let ca = self
                    .cas
                    .get(&template.ca)
                    .ok_or_else(|| Unavailable::CaNotLoaded(template.ca.clone()))?;
                delivery::key_recipient(&csr, handler, &call.connection, ca)?
            }
            _ => None,
        };
        let (planned, identity) = match &renewed {
            Some(renewed) => self.plan_renewal(template, &csr, renewed)?,
            None => self.plan_enrolment(&rules, handler, &headers, &csr)?,
        };
        // Rate limits count certificates about to be made: after every check that needs no CPU.
        if let Caller::Officer { .. } = caller {
            self.admission.rates.officer(&caller.to_string())?;
        }
        self.admission.rates.identity(&identity)?;
        let order = EstOrder {
            handler,
            caller: &caller,
            call: &call,
            operation,
            recipe: Arc::new(make::EstRecipe {
                planned,
                publication: Publication::of(&self.settings),
                key,
                recipient,
            }),
            renewed: renewed.as_ref().map(|r| r.serial.to_string()),
        };
        with_fresh_serials(SERIAL_ATTEMPTS, |attempt| self.est_attempt(attempt, &order)).await
    }

    /// Who may enrol through this handler: its front (trusted proxy, identity headers), an
    /// officer with its roles, or HTTP Basic against its secret (checked on a blocking thread
    /// in a CPU slot). Returns the caller and the headers believed (none for a device).
    async fn est_caller(
        &self,
        handler: &Handler,
        call: &EstCall,
        basic: Option<BasicCredentials>,
        headers: IdentityHeaders,
    ) -> Result<(Caller, IdentityHeaders), IssuanceError> {
        let connection = &call.connection;
        let Some(est) = &handler.est else {
            return Err(IssuanceError::invariant("an EST handler without EST"));
        };
        match &est.auth {
            EstAuth::Front => Ok((self.trust.authorize(None, connection, None)?, headers)),
            EstAuth::Officer => {
                // Looked up per request: a revoked officer is refused from the next request on.
                let officer = self.officer_of(connection).await?;
                let caller = self.trust.authorize(
                    handler.required_roles.as_ref(),
                    connection,
                    officer.as_ref(),
                )?;
                Ok((caller, headers))
            }
            EstAuth::Basic { user, secret } => {
                if !call.over_tls && !self.trust.is_trusted_proxy(connection.peer.ip()) {
                    return Err(EstRefusal::PlainHttp.into());
                }
                let credentials = basic.ok_or(EstRefusal::NoCredentials)?;
                let secret = secret.clone();
                let matches = self
                    .admission
                    .cpu
                    .run(move || {
                        // The hash is checked whatever the user name, so that a wrong name takes
                        // as long as a wrong secret.
                        let good = verify_secret(&secret, credentials.password.as_bytes());
                        (good, credentials.user)
                    })
                    .await?;
                match matches {
                    (true, sent) if sent == *user => Ok((
                        Caller::Device(format!("{user}@handler.{}", handler.number)),
                        no_headers(),
                    )),
                    _ => Err(EstRefusal::BadCredentials.into()),
                }
            }
        }
    }

    /// The certificate being renewed: the verified TLS client certificate, issued by this
    /// service (looked up by serial, its issuer compared), by this handler's CA, good and
    /// unexpired.
    async fn renewed(
        &self,
        connection: &Connection,
        template: &CertificateTemplate,
    ) -> Result<crate::store::CertificateRecord, IssuanceError> {
        let presented = connection
            .client_certificate
            .as_ref()
            .ok_or(EstRefusal::NoCertificate)?;
        let id = presented.id().ok_or(EstRefusal::NoCertificate)?;
        let serial = id.serial.hex().to_string();
        // The certificate we stored under that serial, and the same one: its signed content
        // (issuer, serial, subject, key, validity) byte for byte.
        let record = self
            .store
            .certificate(&id.serial)
            .await?
            .filter(|r| same_certificate(&r.der, presented.der()))
            .ok_or_else(|| EstRefusal::UnknownCertificate(serial.clone()))?;
        if record.status == CertificateStatus::Revoked {
            return Err(EstRefusal::Revoked(serial).into());
        }
        let now = crate::issuance::unix(std::time::SystemTime::now());
        if record.not_after <= now {
            return Err(EstRefusal::Expired {
                serial,
                date: Timestamp::from_unix(record.not_after).to_string(),
            }
            .into());
        }
        if record.ca != template.ca {
            return Err(EstRefusal::OtherCa {
                serial,
                ca: record.ca,
                expected: template.ca.clone(),
            }
            .into());
        }
        Ok(record)
    }

    /// The subject of a new enrolment: the handler's format over the trusted headers, with
    /// `cert:` sources reading the CSR. Also the identity the rate limit counts.
    fn plan_enrolment(
        &self,
        rules: &Rules,
        handler: &Handler,
        headers: &IdentityHeaders,
        csr: &Csr,
    ) -> Result<(Planned, String), IssuanceError> {
        let procedure = procedure_of(rules, handler)?;
        let headers = headers
            .clone()
            .decoded_as(rules.header_encoding_for(handler))
            .refusing_suspicious(handler.refuse_suspicious);
        let fields = evaluate(&handler.fields, &headers, Some(&csr.facts))?;
        let mut plan = with_cas(plan_subjects(procedure, &fields)?, &self.cas)?;
        let planned = plan
            .pop()
            .ok_or_else(|| IssuanceError::invariant("an EST plan without a certificate"))?;
        let dn = planned.subject.display_dn(&planned.template.subject_order);
        let identity =
            crate::policy::asserted_identity(&handler.fields, &headers, Some(&csr.facts))?
                .unwrap_or(dn);
        Ok((planned, identity))
    }

    /// The subject of a renewal: the renewed certificate's, which the CSR must repeat
    /// (RFC 7030 §4.2.2).
    fn plan_renewal(
        &self,
        template: &CertificateTemplate,
        csr: &Csr,
        renewed: &crate::store::CertificateRecord,
    ) -> Result<(Planned, String), IssuanceError> {
        use der::Decode;
        let old = Certificate::from_der(&renewed.der).map_err(|e| {
            IssuanceError::invariant(format!("a stored certificate does not parse: {e}"))
        })?;
        let facts = CertificateFacts::of(&old);
        // Compared as values in RDN order, not as DER: clients re-encode the strings
        // (PrintableString for UTF8String).
        let same_subject = facts.subject == csr.facts.subject
            && old.tbs_certificate().subject().iter().count()
                == csr.request.info.subject.iter().count();
        let mut old_sans = facts.sans.clone();
        let mut new_sans = csr.facts.sans.clone();
        old_sans.sort();
        new_sans.sort();
        if !same_subject || old_sans != new_sans {
            return Err(EstRefusal::SubjectChanged.into());
        }
        let subject = Subject {
            values: facts.subject.into_iter().chain(facts.sans).collect(),
        };
        let mut plan = with_cas(vec![(template, subject)], &self.cas)?;
        let planned = plan
            .pop()
            .ok_or_else(|| IssuanceError::invariant("an EST plan without a certificate"))?;
        Ok((planned, renewed.subject.clone()))
    }
}

/// Whether two DER certificates hold the same signed content (a signature may be re-encoded).
fn same_certificate(stored: &[u8], presented: &[u8]) -> bool {
    use der::{Decode, Encode};
    let tbs = |der: &[u8]| {
        Certificate::from_der(der)
            .ok()
            .and_then(|c| c.tbs_certificate().to_der().ok())
    };
    matches!((tbs(stored), tbs(presented)), (Some(a), Some(b)) if a == b)
}

/// The key the certificate is for: the CSR's (its proof of possession checked, its type the
/// template's), or for serverkeygen one made here of the template's type.
fn key_to_certify(
    operation: EstOperation,
    csr: &Csr,
    template: &CertificateTemplate,
) -> Result<EstKey, IssuanceError> {
    if operation == EstOperation::ServerKeygen {
        // The CSR only carries the subject (and how to deliver the key: `delivery`); the key
        // it is signed with is not certified.
        return Ok(EstKey::Server(template.key));
    }
    if let Err(why) = &csr.possession {
        return Err(EstRefusal::Csr(why.clone()).into());
    }
    if csr.key_type != Some(template.key) {
        return Err(EstRefusal::KeyType {
            found: csr::describe_key(csr),
            expected: template.key.name().to_string(),
        }
        .into());
    }
    Ok(EstKey::Client(csr.spki_der.clone()))
}
