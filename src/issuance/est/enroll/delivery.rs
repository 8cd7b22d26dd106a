//! How serverkeygen delivers the key it makes (RFC 7030 §4.4.1): as PKCS#8 protected by TLS
//! only, or — when the CSR names a key with AsymmetricDecryptKeyIdentifier or
//! DecryptKeyIdentifier — encrypted to that key. Decided before anything is made, so that an
//! identifier we cannot honour is refused (and audited) with nothing issued.

use x509_cert::Certificate;
use x509_cert::ext::pkix::KeyUsage;

use super::super::EstRefusal;
use super::super::csr::{Csr, DecryptKey};
use super::super::sealed_key::{KeyRecipient, Unusable};
use crate::ca::Ca;
use crate::identity::Connection;
use crate::issuance::IssuanceError;
use crate::rules::Handler;

/// The recipient of the encrypted key, or `None` for a key protected by TLS only.
pub(super) fn key_recipient(
    csr: &Csr,
    handler: &Handler,
    connection: &Connection,
    ca: &Ca,
) -> Result<Option<KeyRecipient>, IssuanceError> {
    let wanted = csr.decrypt_key.clone().map_err(EstRefusal::Csr)?;
    let recipient = match wanted {
        None => return Ok(None),
        Some(DecryptKey::Asymmetric(id)) => {
            let presented = connection
                .client_certificate
                .as_ref()
                .ok_or_else(|| EstRefusal::NoRecipientCertificate { id: id.shown() })?;
            let recipient = KeyRecipient::of_certificate(presented.der()).map_err(|e| match e {
                Unusable::KeyType(what) => EstRefusal::RecipientKeyType(what),
                Unusable::Malformed => {
                    EstRefusal::RecipientKeyType("a certificate that does not parse".into())
                }
            })?;
            if !id.names(recipient.key_id()) {
                return Err(EstRefusal::RecipientMismatch {
                    id: id.shown(),
                    presented: hex::encode(recipient.key_id()),
                }
                .into());
            }
            recipient
        }
        Some(DecryptKey::Symmetric(id)) => {
            let kek = handler
                .est
                .as_ref()
                .and_then(|est| est.keks.iter().find(|k| k.id.as_bytes() == id.bytes))
                .ok_or_else(|| EstRefusal::UnknownKek(id.shown()))?;
            KeyRecipient::Kek {
                key_id: id.bytes.clone(),
                name: kek.id.clone(),
                key: kek.key.clone(),
            }
        }
    };
    if !may_sign(ca.certificate()) {
        return Err(EstRefusal::SignerKeyUsage(ca.name().to_string()).into());
    }
    Ok(Some(recipient))
}

/// Whether a CA certificate allows its key to sign the answer: no key usage extension, or one
/// with digitalSignature.
fn may_sign(certificate: &Certificate) -> bool {
    match certificate.tbs_certificate().get_extension::<KeyUsage>() {
        Ok(Some((_, usage))) => usage.digital_signature(),
        Ok(None) => true,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use base64::Engine;
    use der::{Decode, DecodePem};

    use super::*;

    /// `openssl req -x509` with `keyUsage = critical,keyCertSign,cRLSign`.
    const NO_DIGITAL_SIGNATURE: &str = "MIIBZTCCAQqgAwIBAgIUWr2/BB8F6bNUabtZ/EYpVt2AE2cwCgYIKoZIzj0EAwIwEDEOMAwGA1UEAwwFa3UtY2EwHhcNMjYxMjA3MDY1ODU1WhcNMjYxMjA4MDY1ODU1WjAQMQ4wDAYDVQQDDAVrdS1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIEczN6CNZy+jdZJrGwIjh5xpGglkfCyOgYz/f1CjjJWIy5248c2njn1eS8HrxHiDrreMFUlI+8X/zOyo0H1iA6jQjBAMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBQu+CghP748/ruatFONvR6Kct7vRjAKBggqhkjOPQQDAgNJADBGAiEAtputEbNrVXPUlPnvm65S5tH+x6CDjgkvxF/6q2n+Go8CIQD3bvIHUp6BLyVuDH/alq/e5pgvI2NeYIfeNh7CdbHZmw==";

    #[test]
    fn a_ca_without_digital_signature_may_not_sign_the_answer() {
        let der = base64::engine::general_purpose::STANDARD
            .decode(NO_DIGITAL_SIGNATURE)
            .unwrap();
        assert!(!may_sign(&Certificate::from_der(&der).unwrap()));
        // The issuing CA this service makes has digitalSignature.
        let dir = tempfile::tempdir().unwrap();
        let demo = crate::ca::write_demo_hierarchy(&dir.path().join("ca")).unwrap();
        let pem = std::fs::read(demo.issuing_cert).unwrap();
        assert!(may_sign(&Certificate::from_pem(&pem).unwrap()));
    }
}
