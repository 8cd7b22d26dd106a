//! TLS server certificates for the gateway's own HTTPS listener: `init` writes one for
//! `localhost` from the new root, `ast-gateway tls issue --dns … [--ip …] --ca NAME` one from
//! any configured CA. A fresh EC P-256 key, serverAuth, the DNS names and IP addresses as SANs
//! and the first DNS name (else the first address) as CN.

use std::net::IpAddr;
use std::time::Duration;

use x509_cert::ext::pkix::{KeyUsage, KeyUsages};
use x509_cert::name::Name;

use super::{
    Attribute, CaError, CertificateProfile, IssuedCertificate, PublishedUrls, Signer, Subject,
    issue_certificate,
};
use crate::token::{KeyType, generate_key};

/// The names a TLS server certificate is for.
#[derive(Debug, Clone, Default)]
pub struct TlsServerNames {
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
}

/// An issued TLS server certificate and its key (PKCS#8 DER; zeroised by the caller's type).
pub struct TlsServerCertificate {
    pub issued: IssuedCertificate,
    pub pkcs8_der: zeroize::Zeroizing<Vec<u8>>,
}

/// Issues a TLS server certificate for `names` (at least one), signed by the CA with subject
/// `issuer` and key identifier `issuer_key_id`, valid for `validity`.
pub fn issue_tls_server_certificate(
    issuer: &Name,
    issuer_key_id: &[u8],
    signer: &dyn Signer,
    names: &TlsServerNames,
    validity: Duration,
    published: Option<PublishedUrls>,
) -> Result<TlsServerCertificate, CaError> {
    let common_name = names
        .dns
        .first()
        .cloned()
        .or_else(|| names.ips.first().map(ToString::to_string))
        .ok_or_else(|| CaError::Encoding("a TLS server certificate needs a name".into()))?;
    let mut values = vec![(Attribute::CommonName, common_name)];
    values.extend(names.dns.iter().map(|d| (Attribute::DnsName, d.clone())));
    let subject = Subject { values };
    let key = generate_key(KeyType::EcP256).map_err(|e| CaError::Encoding(e.to_string()))?;
    let eku = [const_oid::db::rfc5280::ID_KP_SERVER_AUTH];
    let profile = CertificateProfile {
        subject: &subject,
        subject_order: &[],
        spki_der: key.spki_der(),
        validity,
        key_usage: KeyUsage(KeyUsages::DigitalSignature.into()),
        extended_key_usage: &eku,
        policies: &[],
        ip_addresses: &names.ips,
        ca: None,
        published,
    };
    let issued = issue_certificate(issuer, issuer_key_id, signer, &profile)?;
    Ok(TlsServerCertificate {
        issued,
        pkcs8_der: zeroize::Zeroizing::new(key.pkcs8_der().to_vec()),
    })
}
