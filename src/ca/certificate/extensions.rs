//! The extensions of every certificate we issue, built by our own profile: which ones, in which
//! order, with which criticality, and how each value is encoded (certificate policies with their
//! CPS qualifier, subject alternative names, CRL distribution point and authority information
//! access).

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280;
use der::asn1::{Ia5String, OctetString};
use der::{Any, Encode, Tag};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName, OtherName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CertificatePolicies, CrlDistributionPoints, ExtendedKeyUsage, SubjectAltName,
    SubjectKeyIdentifier,
    certpolicy::{PolicyInformation, PolicyQualifierInfo},
};

use super::{CertificateProfile, key_identifier};
use crate::ca::{Attribute, CaError, PublishedUrls, Subject};

/// One certificate policy (RFC 5280 §4.2.1.4): its OID and, optionally, where its
/// certification practice statement is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificatePolicy {
    pub oid: ObjectIdentifier,
    /// The CPS URI (checked ASCII http:// or https://: it is written as an IA5String).
    pub cps: Option<String>,
}

impl CertificatePolicy {
    /// A policy without qualifiers.
    pub fn oid(oid: ObjectIdentifier) -> CertificatePolicy {
        CertificatePolicy { oid, cps: None }
    }

    pub(super) fn encode(&self) -> Result<PolicyInformation, CaError> {
        let qualifiers = match &self.cps {
            None => None,
            Some(uri) => {
                let uri = Ia5String::new(uri).map_err(|e| CaError::Encoding(e.to_string()))?;
                Some(vec![PolicyQualifierInfo {
                    policy_qualifier_id: rfc5280::ID_QT_CPS,
                    qualifier: Some(Any::encode_from(&uri)?),
                }])
            }
        };
        Ok(PolicyInformation {
            policy_identifier: self.oid,
            policy_qualifiers: qualifiers,
        })
    }
}

/// One extension: `value` DER-encoded into the OCTET STRING (certificates and CRLs).
pub(in crate::ca) fn extension<T: Encode>(
    oid: ObjectIdentifier,
    critical: bool,
    value: &T,
) -> Result<Extension, CaError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

pub(super) fn ia5(attribute: Attribute, value: &str) -> Result<Ia5String, CaError> {
    Ia5String::new(value).map_err(|_| CaError::Value {
        attribute: attribute.name(),
        message: "must be ASCII".into(),
    })
}

/// Every extension of a certificate, in the order it carries them: basic constraints and key
/// usage (both critical), extended key usage, subject and authority key identifiers, subject
/// alternative names, certificate policies, then the CRL distribution point and authority
/// information access of the issuing CA.
pub(super) fn extensions(
    profile: &CertificateProfile<'_>,
    spki: &spki::SubjectPublicKeyInfoOwned,
    issuer_key_id: &[u8],
    empty_subject: bool,
) -> Result<Vec<Extension>, CaError> {
    let mut out = Vec::with_capacity(9);
    push_key_extensions(&mut out, profile, spki, issuer_key_id)?;
    let mut sans = subject_alt_names(profile.subject)?;
    for ip in profile.ip_addresses {
        let octets = match ip {
            std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
            std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        sans.push(GeneralName::IpAddress(der::asn1::OctetString::new(octets)?));
    }
    if !sans.is_empty() {
        // RFC 5280 §4.2.1.6: critical when the subject is empty.
        out.push(extension(
            rfc5280::ID_CE_SUBJECT_ALT_NAME,
            empty_subject,
            &SubjectAltName(sans),
        )?);
    }
    if !profile.policies.is_empty() {
        out.push(policies_extension(profile.policies)?);
    }
    if let Some(urls) = &profile.published {
        push_published(&mut out, urls)?;
    }
    Ok(out)
}

/// Basic constraints, key usage, extended key usage (when there is one), subject and authority
/// key identifiers.
fn push_key_extensions(
    out: &mut Vec<Extension>,
    profile: &CertificateProfile<'_>,
    spki: &spki::SubjectPublicKeyInfoOwned,
    issuer_key_id: &[u8],
) -> Result<(), CaError> {
    let basic = BasicConstraints {
        ca: profile.ca.is_some(),
        path_len_constraint: profile.ca.flatten(),
    };
    out.push(extension(rfc5280::ID_CE_BASIC_CONSTRAINTS, true, &basic)?);
    out.push(extension(
        rfc5280::ID_CE_KEY_USAGE,
        true,
        &profile.key_usage,
    )?);
    if !profile.extended_key_usage.is_empty() {
        let eku = ExtendedKeyUsage(profile.extended_key_usage.to_vec());
        out.push(extension(rfc5280::ID_CE_EXT_KEY_USAGE, false, &eku)?);
    }
    let ski = SubjectKeyIdentifier(OctetString::new(key_identifier(spki))?);
    out.push(extension(
        rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER,
        false,
        &ski,
    )?);
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(issuer_key_id)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    out.push(extension(
        rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER,
        false,
        &aki,
    )?);
    Ok(())
}

/// The subject alternative names of the subject's SAN values, in order: rfc822Name, dNSName
/// and URI as IA5Strings, UPN as a Microsoft otherName.
pub(super) fn subject_alt_names(subject: &Subject) -> Result<Vec<GeneralName>, CaError> {
    let mut sans = Vec::new();
    for (attribute, value) in subject.san_values() {
        if value.is_empty() {
            return Err(CaError::Value {
                attribute: attribute.name(),
                message: "the value is empty".into(),
            });
        }
        sans.push(match attribute {
            Attribute::Rfc822Name => GeneralName::Rfc822Name(ia5(attribute, value)?),
            Attribute::DnsName => GeneralName::DnsName(ia5(attribute, value)?),
            Attribute::Uri => GeneralName::UniformResourceIdentifier(ia5(attribute, value)?),
            // `san_values` yields only SAN attributes: the fourth is the UPN.
            _ => GeneralName::OtherName(OtherName {
                type_id: crate::ca::oids::UPN,
                value: Any::new(Tag::Utf8String, value.as_bytes())?,
            }),
        });
    }
    Ok(sans)
}

/// The certificate policies extension, the policies in order.
fn policies_extension(policies: &[CertificatePolicy]) -> Result<Extension, CaError> {
    let policies = CertificatePolicies(
        policies
            .iter()
            .map(CertificatePolicy::encode)
            .collect::<Result<_, _>>()?,
    );
    extension(rfc5280::ID_CE_CERTIFICATE_POLICIES, false, &policies)
}

/// Where the issuing CA publishes: the CRL distribution point, then authority information
/// access (OCSP when the responder is on, then caIssuers).
fn push_published(out: &mut Vec<Extension>, urls: &PublishedUrls) -> Result<(), CaError> {
    let uri = |url: &str| -> Result<GeneralName, CaError> {
        Ok(GeneralName::UniformResourceIdentifier(
            Ia5String::new(url).map_err(|e| CaError::Encoding(e.to_string()))?,
        ))
    };
    let dp = CrlDistributionPoints(vec![DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![uri(&urls.crl)?])),
        reasons: None,
        crl_issuer: None,
    }]);
    out.push(extension(
        rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS,
        false,
        &dp,
    )?);
    let mut access = Vec::with_capacity(2);
    if let Some(ocsp) = &urls.ocsp {
        access.push(AccessDescription {
            access_method: rfc5280::ID_AD_OCSP,
            access_location: uri(ocsp)?,
        });
    }
    access.push(AccessDescription {
        access_method: rfc5280::ID_AD_CA_ISSUERS,
        access_location: uri(&urls.ca_issuers)?,
    });
    out.push(extension(
        rfc5280::ID_PE_AUTHORITY_INFO_ACCESS,
        false,
        &AuthorityInfoAccessSyntax(access),
    )?);
    Ok(())
}
