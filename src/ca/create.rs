//! Making a new CA certificate for a key (file or PKCS#11), signed by a parent CA or
//! self-signed (`ast-gateway ca create`).

use std::time::Duration;

use der::Decode;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{KeyUsage, KeyUsages};

use super::{
    Attribute, Ca, CaError, CaSubject, CertificateProfile, IssuedCertificate, PublishedUrls,
    Signer, issue_certificate,
};

/// Issues a CA certificate (basicConstraints CA, pathLen 0 under a parent; keyCertSign,
/// cRLSign) for `signer`'s public key with subject `CN=<common_name>[, O=<organization>]`.
/// With a parent, the certificate carries the parent's published URLs (CRL distribution point
/// and AIA caIssuers, see [`PublishedUrls::for_parent_ca`]); a self-signed root carries none.
pub fn issue_ca_certificate(
    parent: Option<&Ca>,
    signer: &dyn Signer,
    common_name: &str,
    organization: Option<&str>,
    validity: Duration,
    published: Option<PublishedUrls>,
) -> Result<IssuedCertificate, CaError> {
    let mut values = Vec::new();
    if let Some(o) = organization {
        values.push((Attribute::OrganizationName, o));
    }
    values.push((Attribute::CommonName, common_name));
    let subject = CaSubject::of(&values);
    issue_ca_certificate_for(parent, signer, &subject, validity, published)
}

/// As [`issue_ca_certificate`], for any subject (`ca create --subject "C=SE, O=…, OU=…, CN=…"`
/// or --country/--organizational-unit), encoded in its order.
pub fn issue_ca_certificate_for(
    parent: Option<&Ca>,
    signer: &dyn Signer,
    names: &CaSubject,
    validity: Duration,
    published: Option<PublishedUrls>,
) -> Result<IssuedCertificate, CaError> {
    let (subject, order) = (&names.subject, names.order.as_slice());
    let profile = CertificateProfile {
        subject,
        subject_order: order,
        spki_der: signer.public_key_der(),
        validity,
        key_usage: KeyUsage(
            KeyUsages::KeyCertSign | KeyUsages::CRLSign | KeyUsages::DigitalSignature,
        ),
        extended_key_usage: &[],
        policies: &[],
        ip_addresses: &[],
        ca: Some(parent.map(|_| 0)),
        published: parent.and(published),
    };
    match parent {
        Some(p) => issue_certificate(
            p.certificate().tbs_certificate().subject(),
            p.key_identifier(),
            p.signer(),
            &profile,
        ),
        None => {
            let name = super::certificate::encode_subject(subject, order)?;
            let spki = spki::SubjectPublicKeyInfoOwned::from_der(signer.public_key_der())?;
            let own_id = {
                use sha1::Digest;
                sha1::Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec()
            };
            let issued = issue_certificate(&name, &own_id, signer, &profile)?;
            Certificate::from_der(&issued.der)?;
            Ok(issued)
        }
    }
}
