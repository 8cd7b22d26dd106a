//! Certificate authorities: signers, certificate building, the demo hierarchy.
//!
//! Owns: CA certificates and their signing keys, the encoding of every certificate we issue.
//! Must not: generate user keys (that is `token`), decide what goes into a subject (that is
//! `policy`), touch HTTP or the database. Invariants: a CA key never leaves its `Signer`; every
//! value is encoded attribute by attribute in DER, never spliced into a DN string; a CA key
//! file readable by group or others is refused at load.

mod certificate;
mod create;
mod crl;
mod demo;
mod hierarchy;
pub mod history;
pub mod ocsp;
pub mod oids;
mod pkcs11;
mod published;
mod serial;
mod signer;
mod subject;
mod subject_order;
mod tls_server;
mod verify;

use std::path::Path;
use std::sync::Arc;

pub use certificate::{
    CertificatePolicy, CertificateProfile, IssuedCertificate, check_subject, issue_certificate,
    parse_cps_uri, parse_extended_key_usage, parse_key_usage, parse_oid, random_serial,
    subject_key_identifier, subject_preview,
};
pub use create::{issue_ca_certificate, issue_ca_certificate_for};
pub use crl::{CrlEntry, CrlParameters, RevocationReason, issue_crl};
pub use demo::{
    DEMO_ORGANIZATION, DemoCa, is_demo_certificate, is_demo_tls_chain, write_demo_hierarchy,
    write_hierarchy, write_published_demo_hierarchy, write_self_signed_tls,
};
pub use hierarchy::{CaNames, CaSubject, Hierarchy, is_ca_name, parse_dn};
pub use pkcs11::{Pkcs11KeyKind, Pkcs11Signer, Pkcs11Uri};
pub use published::PublishedUrls;
pub use serial::{Serial, SerialError};
pub use signer::{
    FileSigner, SignatureAlgorithm, Signer, check_private_key_file, write_private_key_pem,
};
pub use subject::{Attribute, Subject, display_name};
pub use subject_order::{
    certificate_subject_attributes, complete_subject_order, kept_subject_order, parse_subject_order,
};
pub use tls_server::{TlsServerCertificate, TlsServerNames, issue_tls_server_certificate};
pub use verify::CaPublicKey;

use der::{Decode, DecodePem};
use x509_cert::Certificate;

/// Errors of this module. Messages name files and CAs, never key material.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("CA `{0}` is not configured")]
    UnknownCa(String),
    #[error("signing failed with the key of CA `{0}`")]
    Signing(String),
    #[error("certificate encoding failed: {0}")]
    Encoding(String),
    #[error("field `{attribute}`: {message}")]
    Value {
        attribute: &'static str,
        message: String,
    },
}

impl From<der::Error> for CaError {
    fn from(e: der::Error) -> Self {
        CaError::Encoding(e.to_string())
    }
}

/// One CA: its certificate, its chain and its signer.
pub struct Ca {
    name: String,
    certificate: Certificate,
    certificate_der: Vec<u8>,
    /// This CA's certificate first, then its parents up to the root (DER).
    chain: Vec<Vec<u8>>,
    key_identifier: Vec<u8>,
    signer: Arc<dyn Signer>,
    ocsp_delegate: Option<OcspDelegate>,
}

/// A delegated OCSP responder of a CA (RFC 6960 §4.2.2.2): a certificate issued by the CA
/// with the OCSPSigning extended key usage, and its key.
#[derive(Clone)]
pub struct OcspDelegate {
    pub certificate_der: Vec<u8>,
    pub signer: Arc<dyn Signer>,
}

impl Ca {
    /// Builds a CA from its certificate (DER), the chain above it (DER, parent first) and a signer.
    /// Checks that the signer's public key is the certificate's.
    pub fn new(
        name: &str,
        certificate_der: Vec<u8>,
        parents: Vec<Vec<u8>>,
        signer: Arc<dyn Signer>,
    ) -> Result<Self, CaError> {
        let certificate = Certificate::from_der(&certificate_der)?;
        let spki = der::Encode::to_der(certificate.tbs_certificate().subject_public_key_info())?;
        if spki != signer.public_key_der() {
            return Err(CaError::File {
                path: name.to_string(),
                message: "the CA key does not match the CA certificate (different public keys)"
                    .into(),
            });
        }
        let key_identifier = certificate::subject_key_identifier(&certificate)?;
        let mut chain = vec![certificate_der.clone()];
        chain.extend(parents);
        Ok(Ca {
            name: name.to_string(),
            certificate,
            certificate_der,
            chain,
            key_identifier,
            signer,
            ocsp_delegate: None,
        })
    }

    /// Lets a delegated responder sign this CA's OCSP answers. Checks that the certificate
    /// was issued by this CA (issuer name and signature key), carries OCSPSigning, and
    /// matches the signer's key.
    pub fn with_ocsp_delegate(
        mut self,
        certificate_der: Vec<u8>,
        signer: Arc<dyn Signer>,
    ) -> Result<Self, CaError> {
        let bad = |message: &str| CaError::File {
            path: format!("{} (ocsp_certificate)", self.name),
            message: message.to_string(),
        };
        let certificate = Certificate::from_der(&certificate_der)?;
        let tbs = certificate.tbs_certificate();
        if tbs.issuer() != self.certificate.tbs_certificate().subject() {
            return Err(bad(
                "the OCSP signing certificate was not issued by this CA (issuer differs)",
            ));
        }
        let spki = der::Encode::to_der(tbs.subject_public_key_info())?;
        if spki != signer.public_key_der() {
            return Err(bad(
                "the OCSP signing key does not match the OCSP signing certificate",
            ));
        }
        let ocsp_signing = const_oid::db::rfc5280::ID_KP_OCSP_SIGNING;
        let has_eku = tbs.extensions().is_some_and(|exts| {
            exts.iter().any(|e| {
                e.extn_id == const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE
                    && x509_cert::ext::pkix::ExtendedKeyUsage::from_der(e.extn_value.as_bytes())
                        .is_ok_and(|eku| eku.0.contains(&ocsp_signing))
            })
        });
        if !has_eku {
            return Err(bad(
                "the OCSP signing certificate lacks extendedKeyUsage OCSPSigning (1.3.6.1.5.5.7.3.9)",
            ));
        }
        self.ocsp_delegate = Some(OcspDelegate {
            certificate_der,
            signer,
        });
        Ok(self)
    }

    /// The delegated OCSP responder, if configured.
    pub fn ocsp_delegate(&self) -> Option<&OcspDelegate> {
        self.ocsp_delegate.as_ref()
    }

    /// The configured name (`issuing`, …).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The CA certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }
    /// The parsed CA certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }
    /// This CA's certificate first, then its parents up to the root.
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }
    /// The subject key identifier of the CA certificate (the AKI of what it issues).
    pub fn key_identifier(&self) -> &[u8] {
        &self.key_identifier
    }
    /// The signer.
    pub fn signer(&self) -> &dyn Signer {
        self.signer.as_ref()
    }
    /// The chain as PEM, this CA first.
    pub fn chain_pem(&self) -> String {
        self.chain.iter().map(|der| pem_certificate(der)).collect()
    }
}

/// PEM-encodes one DER certificate.
pub fn pem_certificate(der: &[u8]) -> String {
    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).unwrap_or_default()
}

/// Reads a certificate from a PEM or DER file.
pub fn read_certificate_file(path: &Path) -> Result<Vec<u8>, CaError> {
    let bytes = std::fs::read(path).map_err(|e| CaError::File {
        path: path.display().to_string(),
        message: format!("cannot read the certificate: {e}"),
    })?;
    let cert = if bytes.starts_with(b"-----") {
        Certificate::from_pem(&bytes)
    } else {
        Certificate::from_der(&bytes)
    };
    let cert = cert.map_err(|e| CaError::File {
        path: path.display().to_string(),
        message: format!("not an X.509 certificate in PEM or DER: {e}"),
    })?;
    Ok(der::Encode::to_der(&cert)?)
}
