//! `csrattrs` (RFC 7030 §4.5): what a CSR for this EST service should hold, from the handler's
//! format and its token procedure — the subject attributes the format reads from the CSR
//! (`cert:subject.<attr>`), an extensionRequest when it reads SANs (`cert:san.<type>`), the key
//! type the certificate template names and the matching signature algorithm.

use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5912, rfc8410};
use der::Encode;
use der::asn1::{Any, SetOfVec};
use x509_cert::attr::Attribute;

use crate::issuance::IssuanceError;
use crate::policy::Source;
use crate::rules::{CertificateTemplate, Handler};
use crate::token::KeyType;

/// One `AttrOrOID` (RFC 7030 §4.5.2): an OID alone, or an attribute with values.
enum AttrOrOid {
    Oid(ObjectIdentifier),
    Attribute(ObjectIdentifier, Any),
}

impl AttrOrOid {
    fn to_any(&self) -> der::Result<Any> {
        match self {
            AttrOrOid::Oid(oid) => Any::encode_from(oid),
            AttrOrOid::Attribute(oid, value) => {
                let mut values = SetOfVec::new();
                values.insert(value.clone())?;
                Any::encode_from(&Attribute { oid: *oid, values })
            }
        }
    }
}

/// The DER `CsrAttrs` (SEQUENCE OF AttrOrOID) for `handler`, whose one certificate is
/// `template`.
pub(super) fn csr_attributes(
    handler: &Handler,
    template: &CertificateTemplate,
) -> Result<Vec<u8>, IssuanceError> {
    let encoding = |e: der::Error| IssuanceError::invariant(format!("csrattrs: {e}"));
    let mut items: Vec<AttrOrOid> = Vec::new();
    let mut push = |item: AttrOrOid| {
        let oid = match &item {
            AttrOrOid::Oid(o) | AttrOrOid::Attribute(o, _) => *o,
        };
        if !items.iter().any(|i| match i {
            AttrOrOid::Oid(o) | AttrOrOid::Attribute(o, _) => *o == oid,
        }) {
            items.push(item);
        }
    };
    let mut reads_sans = false;
    for field in &handler.fields {
        match &field.source {
            Some(Source::CertSubject(attribute)) => {
                if let Some(oid) = attribute.oid() {
                    push(AttrOrOid::Oid(oid));
                }
            }
            Some(Source::CertSan(_)) => reads_sans = true,
            _ => {}
        }
    }
    if reads_sans {
        push(AttrOrOid::Oid(rfc5912::ID_EXTENSION_REQ));
    }
    let (key, signature) = match template.key {
        KeyType::EcP256 | KeyType::EcP384 => {
            let (curve, signature) = if template.key == KeyType::EcP256 {
                (rfc5912::SECP_256_R_1, rfc5912::ECDSA_WITH_SHA_256)
            } else {
                (rfc5912::SECP_384_R_1, rfc5912::ECDSA_WITH_SHA_384)
            };
            let curve = Any::encode_from(&curve).map_err(encoding)?;
            (
                AttrOrOid::Attribute(rfc5912::ID_EC_PUBLIC_KEY, curve),
                signature,
            )
        }
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
            let bits: u32 = match template.key {
                KeyType::Rsa2048 => 2048,
                KeyType::Rsa3072 => 3072,
                _ => 4096,
            };
            let size = Any::encode_from(&bits).map_err(encoding)?;
            (
                AttrOrOid::Attribute(rfc5912::RSA_ENCRYPTION, size),
                rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            )
        }
        KeyType::Ed25519 => (AttrOrOid::Oid(rfc8410::ID_ED_25519), rfc8410::ID_ED_25519),
    };
    push(key);
    push(AttrOrOid::Oid(signature));
    let sequence: Vec<Any> = items
        .iter()
        .map(AttrOrOid::to_any)
        .collect::<der::Result<_>>()
        .map_err(encoding)?;
    sequence.to_der().map_err(encoding)
}
