//! The gateway's own TLS server certificates, accounted for like every certificate a CA of ours
//! signs: `tls issue` signs one from a configured CA and commits it (a token row of procedure
//! `tls-server`, its certificate row and the chained `issued` event) before the files are
//! written; the `localhost` certificate `init` writes from the new root is recorded the same
//! way once the database exists. `certs list` shows them and `certs revoke` revokes them.

use std::time::{Duration, SystemTime};

use serde_json::json;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use super::{Gateway, IssuanceError};
use crate::ca::{
    Ca, PublishedUrls, Serial, TlsServerCertificate, TlsServerNames, display_name,
    issue_tls_server_certificate,
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
    let parsed = <x509_cert::Certificate as der::Decode>::from_der(der)
        .map_err(|_| IssuanceError::invariant("a TLS server certificate does not parse"))?;
    let tbs = parsed.tbs_certificate();
    let serial = Serial::from_bytes(tbs.serial_number().as_bytes())
        .hex()
        .to_string();
    let mut sans = Vec::new();
    if let Ok(Some((_, san))) = tbs.get_extension::<SubjectAltName>() {
        for name in &san.0 {
            match name {
                GeneralName::DnsName(d) => sans.push(format!("DNS:{d}")),
                GeneralName::IpAddress(bytes) => {
                    sans.push(format!("IP:{}", ip_text(bytes.as_bytes())))
                }
                _ => {}
            }
        }
    }
    let seconds = |t: x509_cert::time::Time| t.to_unix_duration().as_secs() as i64;
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
        serial: Serial::from_bytes(tbs.serial_number().as_bytes()),
        ca: ca.name().to_string(),
        issuer: display_name(ca.certificate().tbs_certificate().subject()),
        subject: display_name(tbs.subject()),
        sans,
        not_before: seconds(tbs.validity().not_before),
        not_after: seconds(tbs.validity().not_after),
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
