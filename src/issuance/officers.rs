//! Officers (SPEC §2, §4): client certificates from the `officers` CA, registered with their
//! roles, and their revocation. Used by the CLI; every change is audited.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;
use sha2::{Digest, Sha256};
use x509_cert::ext::pkix::{KeyUsage, KeyUsages};

use super::{Gateway, IssuanceError};
use crate::ca::{
    Attribute, CertificateProfile, Subject, issue_certificate, parse_extended_key_usage,
};
use crate::store::{AuditEvent, OfficerRecord, OfficerStatus};
use crate::token::{KeyType, Pin, Pkcs12Profile, TokenEntry, generate_key, write_pkcs12};

/// The CA that issues officer certificates (the demo writes it; `client_ca` points at it).
pub const OFFICERS_CA: &str = "officers";
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

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Gateway {
    /// Issues an officer client certificate (CN = `name`, clientAuth) from the `officers` CA,
    /// registers it with `roles` (committed, and audited, before the PKCS#12 is returned) and
    /// seals key and chain in a PKCS#12 under `password`.
    pub async fn issue_officer(
        &self,
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
        crate::token::PasswordPolicy::new(6, 128, crate::token::DEFAULT_PIN_PATTERN)
            .map_err(|e| IssuanceError::Internal(e.to_string()))?
            .check(&password)?;
        let ca = self.ca(OFFICERS_CA).cloned().ok_or_else(|| {
            IssuanceError::Unavailable(format!("no CA named `{OFFICERS_CA}` is configured"))
        })?;
        let iterations = self.config().gateway.pkcs12_iterations;
        let published = crate::ca::PublishedUrls::for_ca(
            &self.config().gateway.server.public_url,
            OFFICERS_CA,
            self.config().gateway.ocsp.enabled,
        );
        let subject_name = name.to_string();
        let (der, serial, pkcs12) = tokio::task::spawn_blocking(move || {
            let key = generate_key(KeyType::EcP256)
                .map_err(|e| IssuanceError::Internal(e.to_string()))?;
            // The name is one CN value, DER-encoded on its own: `Alice, O=Evil` stays one CN.
            let subject = Subject {
                values: vec![(Attribute::CommonName, subject_name.clone())],
            };
            let eku = [parse_extended_key_usage("clientAuth").map_err(IssuanceError::Internal)?];
            let profile = CertificateProfile {
                subject: &subject,
                subject_order: &[Attribute::CommonName],
                spki_der: key.spki_der(),
                validity: OFFICER_VALIDITY,
                key_usage: KeyUsage(KeyUsages::DigitalSignature.into()),
                extended_key_usage: &eku,
                policies: &[],
                ca: None,
                published: Some(published),
            };
            let certificate = issue_certificate(
                ca.certificate().tbs_certificate().subject(),
                ca.key_identifier(),
                ca.signer(),
                &profile,
            )
            .map_err(|e| IssuanceError::Unavailable(e.to_string()))?;
            let entry = TokenEntry {
                friendly_name: format!("{subject_name} officer"),
                key: &key,
                certificate_der: &certificate.der,
                chain: ca.chain(),
            };
            let pkcs12 = write_pkcs12(&[entry], &password, Pkcs12Profile::Modern, iterations)
                .map_err(|e| IssuanceError::Internal(e.to_string()))?;
            Ok::<_, IssuanceError>((certificate.der, certificate.serial, pkcs12))
        })
        .await
        .map_err(|e| IssuanceError::Internal(format!("officer issuance task failed: {e}")))??;
        let record = OfficerRecord {
            serial: hex::encode(&serial),
            fingerprint: hex::encode(Sha256::digest(&der)),
            name: name.to_string(),
            roles,
            status: OfficerStatus::Active,
            created: now(),
            revoked: None,
        };
        let event = AuditEvent::now(
            "officer-issued",
            "cli",
            "",
            json!({"serial": record.serial, "fingerprint": record.fingerprint, "name": record.name, "roles": record.roles}),
        );
        self.store
            .register_officer(&record, &event)
            .await
            .map_err(|e| IssuanceError::Unavailable(e.to_string()))?;
        Ok(IssuedOfficer { record, pkcs12 })
    }

    /// Revokes an officer certificate by serial; new requests with it are refused from now on.
    /// `Ok(None)`: no officer has this serial.
    pub async fn revoke_officer(
        &self,
        serial: &str,
    ) -> Result<Option<OfficerRecord>, IssuanceError> {
        let event = AuditEvent::now("officer-revoked", "cli", "", json!({"serial": serial}));
        self.store
            .revoke_officer(serial, now(), &event)
            .await
            .map_err(|e| IssuanceError::Unavailable(e.to_string()))
    }

    /// Every registered officer.
    pub async fn officers(&self) -> Result<Vec<OfficerRecord>, IssuanceError> {
        self.store
            .officers()
            .await
            .map_err(|e| IssuanceError::Unavailable(e.to_string()))
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
