//! The gateway's own TLS server certificates, accounted for like every certificate a CA of ours
//! signs: `tls issue` signs one from a configured CA and commits it (a token row of procedure
//! `tls-server`, its certificate row and the chained `issued` event) before the files are
//! written; the `localhost` certificate `init` writes from the new root is recorded the same
//! way once the database exists. `certs list` shows them and `certs revoke` revokes them.

use std::time::{Duration, SystemTime};

use serde_json::json;

use super::{Gateway, IssuanceError};
use crate::ca::{
    Ca, PublishedUrls, Serial, TlsServerCertificate, TlsServerNames, issue_tls_server_certificate,
};
use crate::identity::Caller;
use crate::store::{AuditEvent, CertificateRecord, CertificateStatus, Store, TokenRecord};

/// The token procedure (and certificate purpose) these certificates are recorded under.
pub const TLS_SERVER_PROCEDURE: &str = "tls-server";

impl Gateway {
    /// Issues a TLS server certificate for `names` from CA `ca` (its URLs under `public_url`),
    /// valid for `validity`, and records it, audited, before it is returned: the caller
    /// writes the files only after the commit. A revoked CA refuses (`ca-revoked`, audited).
    pub async fn issue_tls_server_certificate(
        &self,
        caller: &Caller,
        ca: &str,
        names: &TlsServerNames,
        validity: Duration,
    ) -> Result<TlsServerCertificate, IssuanceError> {
        let Some(signing) = self.cas.get(ca).cloned() else {
            return Err(IssuanceError::BadRequest(format!(
                "no CA named `{ca}` is configured ({})",
                self.cas.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        };
        if let Err(refusal) = self.refuse_revoked_ca(ca) {
            let event = AuditEvent::now(
                "tls-server-refused",
                &caller.to_string(),
                "",
                json!({"code": refusal.code(), "reason": refusal.to_string(), "ca": ca}),
            );
            self.store.record_audit(&event).await?;
            return Err(refusal);
        }
        let published = PublishedUrls::for_ca(
            &self.settings.server.public_url,
            ca,
            self.settings.ocsp.enabled,
        );
        let names = names.clone();
        let made = tokio::task::spawn_blocking(move || {
            let tbs = signing.certificate().tbs_certificate();
            issue_tls_server_certificate(
                tbs.subject(),
                signing.key_identifier(),
                signing.signer(),
                &names,
                validity,
                Some(published),
            )
        })
        .await??;
        record_tls_server_certificate(&self.store, &self.cas[ca], &made.issued.der, caller).await?;
        Ok(made)
    }
}

/// Records a TLS server certificate `ca` signed: a token row (procedure `tls-server`), the
/// certificate row and the chained `issued` event, committed together. Returns the serial.
pub async fn record_tls_server_certificate(
    store: &Store,
    ca: &Ca,
    der: &[u8],
    caller: &Caller,
) -> Result<String, IssuanceError> {
    let parsed = x509_parser::parse_x509_certificate(der)
        .map_err(|_| IssuanceError::invariant("a TLS server certificate does not parse"))?
        .1;
    let serial = Serial::from_bytes(parsed.raw_serial()).hex().to_string();
    let mut sans = Vec::new();
    if let Ok(Some(extension)) = parsed.subject_alternative_name() {
        for name in &extension.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => sans.push(format!("DNS:{d}")),
                x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                    sans.push(format!("IP:{}", ip_text(bytes)))
                }
                _ => {}
            }
        }
    }
    let created_at = super::unix(SystemTime::now());
    let token = TokenRecord {
        id: uuid::Uuid::new_v4().to_string(),
        created_at,
        handler: "cli".into(),
        token_procedure: TLS_SERVER_PROCEDURE.into(),
        caller: caller.to_string(),
        request_id: String::new(),
        profile: "pem".into(),
    };
    let certificate = CertificateRecord {
        serial: serial.clone(),
        ca: ca.name().to_string(),
        issuer: ca.certificate().tbs_certificate().subject().to_string(),
        subject: parsed.subject().to_string(),
        sans,
        not_before: parsed.validity().not_before.timestamp(),
        not_after: parsed.validity().not_after.timestamp(),
        purpose: TLS_SERVER_PROCEDURE.into(),
        token_id: token.id.clone(),
        status: CertificateStatus::Good,
        revoked_at: None,
        revocation_reason: None,
        der: der.to_vec(),
    };
    let event = AuditEvent::now(
        "issued",
        &caller.to_string(),
        "",
        json!({
            "token": token.id,
            "handler": token.handler,
            "tokenProcedure": token.token_procedure,
            "profile": token.profile,
            "ca": ca.name(),
        }),
    );
    store
        .record_issuance(&token, std::slice::from_ref(&certificate), &event)
        .await?;
    Ok(serial)
}

/// An IPv4 or IPv6 address from its SAN octets.
fn ip_text(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).map_or_else(
            |_| hex::encode(bytes),
            |b| std::net::IpAddr::from(b).to_string(),
        ),
        16 => <[u8; 16]>::try_from(bytes).map_or_else(
            |_| hex::encode(bytes),
            |b| std::net::IpAddr::from(b).to_string(),
        ),
        _ => hex::encode(bytes),
    }
}
