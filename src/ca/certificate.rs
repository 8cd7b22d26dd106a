//! Building and signing X.509 certificates with x509-cert's builder and our own profile.
//!
//! x509-cert rather than rcgen: rcgen loses repeated DN attributes, also in the issuer it copies
//! from an existing CA certificate, which silently breaks chains under AD CS-style CA names.
//! The built-in `cabf` profiles reject repeated attributes, so the
//! profile here sets issuer, subject and every extension itself: the subject here, the
//! extensions in `extensions`; `parse` reads what the configuration says a certificate holds.

mod extensions;
mod parse;

use std::time::{Duration, SystemTime};

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280;
use der::asn1::{BitString, SetOfVec};
use der::{Any, Decode, Encode, Tag};
use sha1::{Digest, Sha1};
use signature::Keypair;
use spki::{AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, EncodePublicKey};
use x509_cert::Certificate;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{KeyUsage, SubjectKeyIdentifier};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

pub use extensions::CertificatePolicy;
pub(super) use extensions::extension;
use extensions::{extensions, subject_alt_names};
pub use parse::{parse_cps_uri, parse_extended_key_usage, parse_key_usage, parse_oid};

use super::{Attribute, CaError, PublishedUrls, Signer, Subject};

/// What a certificate should contain, apart from issuer and signature.
pub struct CertificateProfile<'a> {
    pub subject: &'a Subject,
    /// RDN order; empty means the default order (`Attribute::CONVENTIONAL_ORDER`).
    pub subject_order: &'a [Attribute],
    /// The subject's public key, DER SubjectPublicKeyInfo.
    pub spki_der: &'a [u8],
    pub validity: Duration,
    pub key_usage: KeyUsage,
    pub extended_key_usage: &'a [ObjectIdentifier],
    /// Certificate policies, in order (none: no extension).
    pub policies: &'a [CertificatePolicy],
    /// iPAddress subject alternative names, after the subject's SAN values (TLS servers).
    pub ip_addresses: &'a [std::net::IpAddr],
    /// `Some(path_len)` for a CA certificate.
    pub ca: Option<Option<u8>>,
    /// The issuing CA's CRL, certificate and OCSP URLs (CRL distribution point and Authority
    /// Information Access); `None` for a self-signed root.
    pub published: Option<PublishedUrls>,
}

/// A signed certificate and the facts the database records about it.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    pub der: Vec<u8>,
    /// Serial number, big-endian bytes as in the certificate.
    pub serial: Vec<u8>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

/// A random positive 20-byte serial (RFC 5280 §4.1.2.2 allows 20 octets; the first bit is
/// cleared so that the INTEGER stays positive and exactly 20 bytes long).
pub fn random_serial() -> Result<[u8; 20], CaError> {
    let mut bytes = [0u8; 20];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| CaError::Encoding("no randomness".into()))?;
    bytes[0] &= 0x7f;
    if bytes[0] == 0 {
        bytes[0] = 0x01;
    }
    Ok(bytes)
}

/// Issues a certificate signed by `signer` under `issuer` (the CA's subject) with
/// `issuer_key_id` as authority key identifier. For a self-signed certificate pass the
/// subject's own name and key identifier.
pub fn issue_certificate(
    issuer: &Name,
    issuer_key_id: &[u8],
    signer: &dyn Signer,
    profile: &CertificateProfile<'_>,
) -> Result<IssuedCertificate, CaError> {
    let subject = encode_subject(profile.subject, profile.subject_order)?;
    let spki = spki::SubjectPublicKeyInfoOwned::from_der(profile.spki_der)?;
    let serial = random_serial()?;
    // One minute of back-dating absorbs clock skew between us and relying parties.
    let not_before = SystemTime::now() - Duration::from_secs(60);
    let not_after = not_before + profile.validity + Duration::from_secs(60);
    let validity = Validity::new(Time::try_from(not_before)?, Time::try_from(not_after)?);
    let extensions = extensions(profile, &spki, issuer_key_id, subject.is_empty())?;
    let fixed = FixedProfile {
        issuer: issuer.clone(),
        subject,
        extensions,
    };
    let serial_number = SerialNumber::new(&serial).map_err(|e| CaError::Encoding(e.to_string()))?;
    let mut builder = CertificateBuilder::new(fixed, serial_number, validity, spki)
        .map_err(|e| CaError::Encoding(e.to_string()))?;
    let adapter = SignerAdapter {
        spki: signer.public_key_der().to_vec(),
        algorithm: signer.algorithm().identifier(),
    };
    let tbs = builder
        .finalize(&adapter)
        .map_err(|e| CaError::Encoding(e.to_string()))?;
    let signature = signer.sign(&tbs)?;
    let signature = BitString::from_bytes(&signature)?;
    let certificate = builder
        .assemble(signature, &adapter)
        .map_err(|e| CaError::Encoding(e.to_string()))?;
    // Re-read the validity as encoded (UTCTime has whole seconds).
    let validity = certificate.tbs_certificate().validity();
    Ok(IssuedCertificate {
        der: certificate.to_der()?,
        serial: serial.to_vec(),
        not_before: validity.not_before.to_system_time(),
        not_after: validity.not_after.to_system_time(),
    })
}

/// The subject key identifier of a certificate: its SKI extension, else the RFC 5280
/// §4.2.1.2 method (1) hash of its public key.
pub fn subject_key_identifier(certificate: &Certificate) -> Result<Vec<u8>, CaError> {
    if let Some(extensions) = certificate.tbs_certificate().extensions() {
        for ext in extensions.iter() {
            if ext.extn_id == rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER {
                let ski = SubjectKeyIdentifier::from_der(ext.extn_value.as_bytes())?;
                return Ok(ski.0.as_bytes().to_vec());
            }
        }
    }
    Ok(key_identifier(
        certificate.tbs_certificate().subject_public_key_info(),
    ))
}

fn key_identifier(spki: &spki::SubjectPublicKeyInfoOwned) -> Vec<u8> {
    Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec()
}

/// Encodes the DN attribute by attribute: never through a DN string, so `Alice, O=Evil` stays
/// one CN. PrintableString for C and serialNumber, IA5String for emailAddress (RFC 5280
/// Appendix A), UTF8String otherwise (RFC 5280 §4.1.2.6).
pub(super) fn encode_subject(subject: &Subject, order: &[Attribute]) -> Result<Name, CaError> {
    let mut rdns: Vec<SetOfVec<AttributeTypeAndValue>> = Vec::new();
    for (attribute, value) in subject.dn_values(order) {
        let bad = |message: String| CaError::Value {
            attribute: attribute.name(),
            message,
        };
        if value.is_empty() {
            return Err(bad("the value is empty".into()));
        }
        let (tag, value) = match attribute {
            Attribute::CountryName => {
                if value.len() != 2 || !value.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(bad(
                        "must be two upper-case letters (ISO 3166 alpha-2)".into()
                    ));
                }
                (Tag::PrintableString, value)
            }
            Attribute::SerialNumber => {
                if !value.bytes().all(is_printable) {
                    return Err(bad(
                        "may contain only letters, digits, space and ' ( ) + , - . / : = ?".into(),
                    ));
                }
                (Tag::PrintableString, value)
            }
            Attribute::EmailAddress => {
                if !value.is_ascii() {
                    return Err(bad("must be ASCII".into()));
                }
                (Tag::Ia5String, value)
            }
            _ => (Tag::Utf8String, value),
        };
        let oid = attribute
            .oid()
            .ok_or_else(|| bad("not a DN attribute".into()))?;
        let atv = AttributeTypeAndValue {
            oid,
            value: Any::new(tag, value.as_bytes())?,
        };
        let mut set = SetOfVec::new();
        set.insert(atv)?;
        rdns.push(set);
    }
    Ok(Name::from_der(&rdns.to_der()?)?)
}

/// What issuance would write as the subject, as RFC 4514 text (most significant RDN last),
/// without a key or a signature. Fails exactly where issuing would fail on a value: the DN
/// encoding rules of [`encode_subject`] and the IA5String rule of rfc822Name, dNSName and URI.
pub fn subject_preview(subject: &Subject, order: &[Attribute]) -> Result<String, CaError> {
    let name = encode_subject(subject, order)?;
    // The same encoding as in a certificate, so a preview never passes what issuance refuses.
    subject_alt_names(subject)?;
    Ok(name.to_string())
}

/// Fails exactly where [`subject_preview`] fails, without writing the text (issuance checks
/// every subject before it makes a key; naming the attributes costs more than encoding them).
pub fn check_subject(subject: &Subject, order: &[Attribute]) -> Result<(), CaError> {
    encode_subject(subject, order)?;
    subject_alt_names(subject)?;
    Ok(())
}

fn is_printable(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b)
}

/// A profile that hands the builder exactly what we computed.
struct FixedProfile {
    issuer: Name,
    subject: Name,
    extensions: Vec<Extension>,
}

impl BuilderProfile for FixedProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }
    fn get_subject(&self) -> Name {
        self.subject.clone()
    }
    fn build_extensions(
        &self,
        _spk: spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.extensions.clone())
    }
}

/// Lets x509-cert's builder produce the to-be-signed bytes for any of our `Signer`s (file or
/// HSM) without requiring them to implement the RustCrypto signer traits.
struct SignerAdapter {
    spki: Vec<u8>,
    algorithm: AlgorithmIdentifierOwned,
}

#[derive(Clone)]
struct SpkiBytes(Vec<u8>);

impl EncodePublicKey for SpkiBytes {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        Ok(der::Document::try_from(self.0.as_slice())?)
    }
}

impl Keypair for SignerAdapter {
    type VerifyingKey = SpkiBytes;
    fn verifying_key(&self) -> SpkiBytes {
        SpkiBytes(self.spki.clone())
    }
}

impl DynSignatureAlgorithmIdentifier for SignerAdapter {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(self.algorithm.clone())
    }
}

#[cfg(test)]
#[path = "certificate_tests.rs"]
mod tests;
