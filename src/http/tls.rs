//! The HTTPS listener's TLS: rustls server configuration with optional client certificates
//! verified against `client_ca`, and the step that turns a verified client certificate into
//! the connection's `VerifiedClientCertificate`.
//!
//! Why this is safe: with a `client_ca`, rustls runs `WebPkiClientVerifier` (chain to
//! `client_ca`, validity, clientAuth EKU) during the handshake and aborts the handshake when a
//! presented certificate does not verify; `allow_unauthenticated` only lets clients that
//! present *no* certificate through (they are then refused by `requiredRoRoles` handlers).
//! Without a `client_ca` the server never asks for a certificate. So a peer certificate on a
//! completed handshake of this listener is a verified one, and `VerifiedClientCertificate` is
//! built here alone, once per connection (`server::per_connection::serve_connection`).
//!
//! Revoked officers are refused in the handshake too: `RevocationAwareVerifier` wraps the
//! WebPKI verifier and, after it accepted a chain, refuses a leaf whose issuer and serial are
//! in the gateway's revoked officer set (kept current on revoke and re-read from the database
//! every few seconds). Why not rustls' CRL support (`with_crls`): the CRLs would be frozen into
//! the `ServerConfig` (every refresh means rebuilding it), a CRL past its nextUpdate or a CA
//! without a published CRL makes the verifier refuse every officer, and a revocation would
//! wait for the next CRL to be signed. The set has none of these failure modes, and the
//! per-request registry lookup stays the authority behind it.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::UnixTime;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConnection, WebPkiClientVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::identity::{CertificateId, RevokedOfficers, VerifiedClientCertificate};

/// Why the TLS configuration could not be built. Messages name files, never key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn file_error(path: &Path, message: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Builds the rustls server configuration: `cert` is the chain (PEM, leaf first), `key` its
/// PKCS#8/PKCS#1/SEC1 key (PEM, readable by its owner only), `client_ca` the CA(s) client
/// certificates must chain to, `revoked` the officer certificates refused in the handshake.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    revoked: Arc<RevokedOfficers>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error(cert, format!("cannot read the server certificate: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(cert, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(file_error(cert, "no certificate in the file"));
    }
    crate::ca::check_private_key_file(key).map_err(|m| file_error(key, m))?;
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| file_error(key, format!("cannot read the server key (PEM): {e}")))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = match client_ca {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            let cas = CertificateDer::pem_file_iter(path)
                .map_err(|e| file_error(path, format!("cannot read client_ca: {e}")))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| file_error(path, format!("client_ca is not PEM: {e}")))?;
            for ca in cas {
                roots.add(ca).map_err(|e| {
                    file_error(
                        path,
                        format!("client_ca holds an unusable certificate: {e}"),
                    )
                })?;
            }
            if roots.is_empty() {
                return Err(file_error(path, "client_ca holds no certificate"));
            }
            let webpki =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| TlsError::Config(e.to_string()))?;
            Arc::new(RevocationAwareVerifier {
                inner: webpki,
                revoked,
            })
        }
        None => WebPkiClientVerifier::no_client_auth(),
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key_der)
        .map_err(|e| TlsError::Config(format!("server certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The client certificate rustls verified during this completed handshake (the leaf, as sent
/// first), if the client presented one.
pub fn verified_client_certificate(
    connection: &ServerConnection,
) -> Option<VerifiedClientCertificate> {
    connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| VerifiedClientCertificate::from_verified_handshake(leaf.to_vec()))
}

/// The WebPKI client verifier, plus a refusal of revoked officer certificates (see the module
/// documentation). Everything else is the inner verifier's.
#[derive(Debug)]
struct RevocationAwareVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    revoked: Arc<RevokedOfficers>,
}

impl ClientCertVerifier for RevocationAwareVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        match CertificateId::from_der(end_entity) {
            Some(id) if self.revoked.contains(&id) => {
                tracing::info!(certificate = %id, "TLS: refused a revoked officer certificate");
                Err(rustls::Error::InvalidCertificate(CertificateError::Revoked))
            }
            Some(_) => Ok(verified),
            None => Err(rustls::Error::InvalidCertificate(
                CertificateError::BadEncoding,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
