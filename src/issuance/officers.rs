//! Officers: client certificates from the officers CA (the `[[ca]]` with `role = "officers"`,
//! else the one named `officers`), registered with their roles and the CA that issued them,
//! and their revocation. Used by the CLI; every change is audited.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};
use x509_cert::ext::pkix::{KeyUsage, KeyUsages};

use super::recipe::{TokenRecipe, with_cas};
use super::{Gateway, IssuanceError};
use crate::ca::{Attribute, Serial, Subject, parse_extended_key_usage};
use crate::identity::{Caller, CertificateId};
use crate::rules::{CertificateTemplate, PasswordPolicy};
use crate::store::{AuditEvent, OfficerRecord, OfficerStatus};
use crate::token::{KeyType, Pin, Pkcs12Profile};

/// Lifetime of an officer certificate.
const OFFICER_VALIDITY: Duration = Duration::from_secs(2 * 365 * 86_400);

/// A freshly issued, registered officer certificate and its PKCS#12.
#[derive(Debug)]
pub struct IssuedOfficer {
    pub record: OfficerRecord,
    /// The PKCS#12 (key, certificate, officers CA chain), encrypted under the given password.
    pub pkcs12: Vec<u8>,
}

/// Checks a role list: names of letters, digits, `.`, `_`, `-`; `none` is reserved (it means
/// "any certificate" in `requiredRoRoles`).
pub fn parse_roles(text: &str) -> Result<Vec<String>, String> {
    let mut roles: Vec<String> = Vec::new();
    for role in text
        .split([',', ' '])
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        if role.eq_ignore_ascii_case("none") {
            return Err(
                "`none` is not a role (in requiredRoRoles it means: any officer certificate)"
                    .into(),
            );
        }
        if !role
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(format!(
                "role `{role}`: use letters, digits, `.`, `_` and `-` only"
            ));
        }
        if !roles.iter().any(|r| r == role) {
            roles.push(role.to_string());
        }
    }
    if roles.is_empty() {
        return Err("give at least one role, e.g. --roles ast-requester".into());
    }
    Ok(roles)
}

/// The template of an officer certificate: P-256, clientAuth, two years, from CA `ca`.
fn officer_template(ca: &str) -> Result<CertificateTemplate, IssuanceError> {
    Ok(CertificateTemplate {
        purpose: "officer".into(),
        ca: ca.into(),
        key: KeyType::EcP256,
        validity: OFFICER_VALIDITY,
        key_usage: KeyUsage(KeyUsages::DigitalSignature.into()),
        extended_key_usage: vec![
            parse_extended_key_usage("clientAuth").map_err(IssuanceError::invariant)?,
        ],
        policies: Vec::new(),
        subject_order: vec![Attribute::CommonName],
        leaf_not_after: crate::rules::LeafNotAfter::Cap,
    })
}

impl Gateway {
    /// The CA that issues officer certificates now: the `[[ca]]` with `role = "officers"`, else
    /// the one named `officers` (which then need not be configured: issuing refuses).
    pub fn officers_ca(&self) -> &str {
        self.settings
            .officers_ca()
            .unwrap_or(crate::config::OFFICERS_CA_NAME)
    }

    /// Issues an officer client certificate (CN = `name`, clientAuth) from the officers CA,
    /// registers it with `roles` (committed, and audited, before the PKCS#12 is returned) and
    /// seals key and chain in a PKCS#12 under `password`. The same recipe as a user token.
    /// A refusal issues nothing and is audited (`officer-refused`, with its code and reason;
    /// never the password); a revoked officers CA refuses with `ca-revoked`.
    pub async fn issue_officer(
        &self,
        caller: &Caller,
        name: &str,
        roles: Vec<String>,
        password: Pin,
    ) -> Result<IssuedOfficer, IssuanceError> {
        let result = self.issue_officer_once(caller, name, roles, password).await;
        if let Err(error) = &result {
            let event = AuditEvent::now(
                "officer-refused",
                &caller.to_string(),
                "",
                json!({"code": error.code(), "reason": error.to_string(), "ca": self.officers_ca()}),
            );
            if let Err(e) = self.store.record_audit(&event).await {
                tracing::error!(target: "audit", error = %e, "could not record an officer refusal");
            }
        }
        result
    }

    async fn issue_officer_once(
        &self,
        caller: &Caller,
        name: &str,
        roles: Vec<String>,
        password: Pin,
    ) -> Result<IssuedOfficer, IssuanceError> {
        let name = name.trim();
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(IssuanceError::BadRequest(
                "the officer name must be non-empty, without control characters".into(),
            ));
        }
        PasswordPolicy::default().check(&password)?;
        let ca = self.officers_ca();
        self.refuse_revoked_ca(ca)?;
        // The name is one CN value, DER-encoded on its own: `Alice, O=Evil` stays one CN.
        let subject = Subject {
            values: vec![(Attribute::CommonName, name.to_string())],
        };
        let plan = with_cas(vec![(&officer_template(ca)?, subject)], &self.cas)?;
        // Officer certificates carry the officers CA's URLs like any leaf: a relying party
        // (nginx in front of the API, say) can check them too.
        let recipe = TokenRecipe::new(plan, password, Pkcs12Profile::Modern, &self.settings);
        let made = self.make(Arc::new(recipe)).await?;
        let Some((_, certificate)) = made.issued.first() else {
            return Err(IssuanceError::invariant(
                "an officer recipe made no certificate",
            ));
        };
        let id = CertificateId::from_der(&certificate.der).ok_or_else(|| {
            IssuanceError::invariant("an officer certificate we just issued does not parse")
        })?;
        let record = OfficerRecord {
            serial: id.serial.hex().to_string(),
            issuer: id.issuer,
            ca: ca.to_string(),
            fingerprint: hex::encode(Sha256::digest(&certificate.der)),
            name: name.to_string(),
            roles,
            status: OfficerStatus::Active,
            created: super::unix(std::time::SystemTime::now()),
            revoked: None,
            not_after: super::unix(certificate.not_after),
        };
        let event = AuditEvent::now(
            "officer-issued",
            &caller.to_string(),
            "",
            json!({"serial": record.serial, "fingerprint": record.fingerprint, "name": record.name, "roles": record.roles}),
        );
        self.store.register_officer(&record, &event).await?;
        // An officer recipe is combined: one file.
        let pkcs12 = made
            .files
            .into_iter()
            .next()
            .map(|file| file.pkcs12)
            .ok_or_else(|| IssuanceError::invariant("an officer recipe made no PKCS#12"))?;
        Ok(IssuedOfficer { record, pkcs12 })
    }

    /// Revokes an officer certificate by serial; new requests with it are refused from now on.
    /// `Ok(None)`: no officer has this serial.
    pub async fn revoke_officer(
        &self,
        caller: &Caller,
        serial: &Serial,
    ) -> Result<Option<OfficerRecord>, IssuanceError> {
        let event = AuditEvent::now(
            "officer-revoked",
            &caller.to_string(),
            "",
            json!({"serial": serial.hex()}),
        );
        let now = super::unix(std::time::SystemTime::now());
        let record = self.store.revoke_officer(serial, now, &event).await?;
        // This node's TLS verifier refuses the certificate from its next handshake on.
        if let Some(r) = record
            .as_ref()
            .filter(|r| r.status == OfficerStatus::Revoked)
        {
            self.revoked_officers.insert(CertificateId {
                issuer: r.issuer.clone(),
                serial: serial.clone(),
            });
        }
        Ok(record)
    }

    /// Reloads the revoked officer certificates the TLS client verifier refuses (revocations
    /// made by the CLI or another node reach this node's handshakes this way).
    pub async fn refresh_revoked_officers(&self) -> Result<usize, IssuanceError> {
        let revoked: std::collections::HashSet<CertificateId> = self
            .store
            .revoked_officer_certificates()
            .await?
            .into_iter()
            .map(|(issuer, serial)| CertificateId { issuer, serial })
            .collect();
        let count = revoked.len();
        self.revoked_officers.replace(revoked);
        Ok(count)
    }

    /// Refreshes the revoked officer set (and the revoked CAs) every `every` in the background,
    /// for as long as the gateway lives.
    pub fn spawn_officer_revocation_refresher(
        self: &Arc<Self>,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let gateway = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(gateway) = gateway.upgrade() else {
                    return;
                };
                if let Err(e) = gateway.refresh_revoked_officers().await {
                    tracing::warn!(error = %e, "could not refresh the revoked officer certificates");
                }
                if let Err(e) = gateway.refresh_revoked_cas().await {
                    tracing::warn!(error = %e, "could not refresh the revoked CA certificates");
                }
            }
        })
    }

    /// Every registered officer.
    pub async fn officers(&self) -> Result<Vec<OfficerRecord>, IssuanceError> {
        self.store.officers().await.map_err(IssuanceError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_roles;

    #[test]
    fn roles() {
        assert_eq!(parse_roles("a, b,a c").unwrap(), vec!["a", "b", "c"]);
        assert!(parse_roles("none").is_err());
        assert!(parse_roles(" , ").is_err());
        assert!(parse_roles("a;b").is_err());
    }
}
