//! Making and recording one EST certificate: a CPU slot and a place in the database writer's
//! queue, the key (serverkeygen: from the key pool, else made inline; encrypted to the client
//! when it asked, `sealed_key`) and the signature on an issuance worker, then the token and
//! certificate rows and the `issued` audit record committed before the certificate (and key)
//! leave.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use zeroize::Zeroizing;

use super::super::sealed_key::{self, KeyRecipient};
use super::super::{DeliveredKey, EstCall, EstIssued, EstOperation};
use crate::ca::IssuedCertificate;
use crate::identity::Caller;
use crate::issuance::recipe::{Attempt, Planned, Publication, sign_planned};
use crate::issuance::{Gateway, IssuanceError, StageTimes};
use crate::rules::Handler;
use crate::store::{
    AuditEvent, CertificateRecord, CertificateStatus, IssuanceRecord, StoreError, TokenRecord,
};
use crate::token::{GeneratedKey, KeyPool, KeySource, KeyType};

/// The key a certificate is made for.
pub(super) enum EstKey {
    /// The client's, DER SubjectPublicKeyInfo from its CSR.
    Client(Vec<u8>),
    /// One made here, of this type.
    Server(KeyType),
}

/// What the issuance worker needs.
pub(super) struct EstRecipe {
    pub(super) planned: Planned,
    pub(super) publication: Publication,
    pub(super) key: EstKey,
    /// serverkeygen: whom the key is encrypted to (`None`: PKCS#8, protected by TLS only).
    pub(super) recipient: Option<KeyRecipient>,
}

/// Everything one attempt needs; the same for every attempt of a request.
pub(super) struct EstOrder<'a> {
    pub(super) handler: &'a Handler,
    pub(super) caller: &'a Caller,
    pub(super) call: &'a EstCall,
    pub(super) operation: EstOperation,
    pub(super) recipe: Arc<EstRecipe>,
    /// simplereenroll: the serial of the certificate renewed.
    pub(super) renewed: Option<String>,
}

impl EstRecipe {
    /// The certificate and the key (if made here) as delivered. CPU-bound: run it on an
    /// issuance worker.
    fn make(
        &self,
        pool: &KeyPool,
    ) -> Result<(IssuedCertificate, Option<DeliveredKey>, StageTimes), IssuanceError> {
        let mut stages = StageTimes::default();
        let started = Instant::now();
        let key = match &self.key {
            EstKey::Client(_) => None,
            EstKey::Server(key_type) => {
                let (key, source) = pool.key(*key_type)?;
                match source {
                    KeySource::Pool => stages.pooled_keys += 1,
                    KeySource::Inline => stages.inline_keys += 1,
                }
                Some(key)
            }
        };
        let spki = match (&self.key, &key) {
            (EstKey::Client(spki), _) => spki.as_slice(),
            (EstKey::Server(_), Some(key)) => key.spki_der(),
            (EstKey::Server(_), None) => {
                return Err(IssuanceError::invariant("serverkeygen made no key"));
            }
        };
        let signing = Instant::now();
        stages.keygen = signing - started;
        let certificate = sign_planned(&self.publication, &self.planned, spki)?;
        let delivered = key.map(|key| self.deliver(&key)).transpose()?;
        stages.sign = signing.elapsed();
        Ok((certificate, delivered, stages))
    }

    /// The key as the client asked for it: encrypted to its recipient and signed by the CA, or
    /// PKCS#8.
    fn deliver(&self, key: &GeneratedKey) -> Result<DeliveredKey, IssuanceError> {
        Ok(match &self.recipient {
            Some(recipient) => DeliveredKey::Encrypted(sealed_key::seal(
                key.pkcs8_der(),
                recipient,
                &self.planned.ca,
            )?),
            None => DeliveredKey::Pkcs8(Zeroizing::new(key.pkcs8_der().to_vec())),
        })
    }
}

impl Gateway {
    /// Makes the certificate (and key) and records it; a serial the database already holds is
    /// a collision (nothing recorded, nothing delivered).
    pub(super) async fn est_attempt(
        &self,
        attempt: u32,
        order: &EstOrder<'_>,
    ) -> Result<Attempt<EstIssued>, IssuanceError> {
        if attempt > 1 {
            tracing::warn!(
                request_id = order.call.request_id,
                attempt,
                "serial collision: making the EST certificate again with a new serial"
            );
        }
        self.refuse_revoked_ca(order.recipe.planned.ca.name())?;
        let slot = self.write_slot()?;
        let recipe = order.recipe.clone();
        let pool = self.key_pool.clone();
        let (certificate, key, stages) =
            self.admission.cpu.run(move || recipe.make(&pool)).await??;
        let store_started = Instant::now();
        let token_id = uuid::Uuid::now_v7().to_string();
        let created_at = crate::issuance::unix(std::time::SystemTime::now());
        let record = certificate_record(&order.recipe.planned, &certificate, &token_id);
        let token = TokenRecord {
            id: token_id,
            created_at,
            handler: format!("handler.{}", order.handler.number),
            token_procedure: order.handler.token_procedure.clone(),
            caller: order.caller.to_string(),
            request_id: order.call.request_id.clone(),
            profile: "none".into(),
        };
        let event = issued_event(order, &token, &record);
        let written = slot
            .record(IssuanceRecord {
                token,
                certificates: vec![record],
                event,
            })
            .await;
        match written {
            Ok(()) => {}
            Err(StoreError::DuplicateSerial(serial)) => return Ok(Attempt::Collision(serial)),
            Err(e) => return Err(e.into()),
        }
        crate::issuance::metrics::issued(
            &format!("handler.{}", order.handler.number),
            &order.handler.token_procedure,
            &stages,
            store_started.elapsed(),
        );
        Ok(Attempt::Done(EstIssued {
            certificate: certificate.der,
            private_key: key,
        }))
    }
}

/// The certificate's row.
fn certificate_record(
    planned: &Planned,
    certificate: &IssuedCertificate,
    token_id: &str,
) -> CertificateRecord {
    CertificateRecord {
        serial: crate::ca::Serial::from_bytes(&certificate.serial),
        ca: planned.ca.name().to_string(),
        issuer: crate::ca::display_name(planned.ca.certificate().tbs_certificate().subject()),
        subject: planned.subject.display_dn(&planned.template.subject_order),
        sans: planned
            .subject
            .san_values()
            .map(|(a, v)| format!("{}:{v}", a.label()))
            .collect(),
        not_before: crate::issuance::unix(certificate.not_before),
        not_after: crate::issuance::unix(certificate.not_after),
        purpose: planned.template.purpose.clone(),
        token_id: token_id.to_string(),
        status: CertificateStatus::Good,
        revoked_at: None,
        revocation_reason: None,
        der: certificate.der.clone(),
    }
}

/// The `issued` audit record of an EST certificate: the door, the operation, the label and,
/// for a renewal, the certificate renewed.
fn issued_event(
    order: &EstOrder<'_>,
    token: &TokenRecord,
    record: &CertificateRecord,
) -> AuditEvent {
    let mut detail = json!({
        "token": token.id,
        "handler": token.handler,
        "tokenProcedure": token.token_procedure,
        "profile": token.profile,
        "door": "est",
        "operation": order.operation.name(),
        "path": order.call.path(order.operation.name()),
        "serials": [record.serial],
    });
    if let Some(renewed) = &order.renewed {
        detail["renewed"] = renewed.clone().into();
    }
    if order.operation == EstOperation::ServerKeygen {
        // How the key left: protected by TLS only, or encrypted to which key (never the key).
        detail["keyDelivery"] = match &order.recipe.recipient {
            None => json!({ "encrypted": false }),
            Some(recipient) => json!({
                "encrypted": true,
                "form": recipient.form(),
                "method": recipient.method(),
                "keyId": hex::encode(recipient.key_id()),
                "kek": match recipient {
                    KeyRecipient::Kek { name, .. } => Some(name.as_str()),
                    _ => None,
                },
            }),
        };
    }
    AuditEvent::now(
        "issued",
        &order.caller.to_string(),
        &order.call.request_id,
        detail,
    )
}
