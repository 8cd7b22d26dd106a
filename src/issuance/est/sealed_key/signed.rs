//! The SignedData around the EnvelopedData (RFC 7030 §4.4.2: the encrypted key is signed by
//! whoever made it). The signer is the CA that issues the handler's certificates: this service
//! made the key, the client already has that CA's certificate (`cacerts` answers it with its
//! chain, and it issued the certificate in the same answer), and the CA certificates this
//! service makes carry digitalSignature in their key usage. A client verifies the answer
//! against the chain `cacerts` gave it; the SignedData carries that chain too.
//!
//! One SignerInfo, named by issuer and serial number, with the signed attributes contentType
//! (id-envelopedData) and messageDigest; the digest is the one the CA's signature algorithm
//! uses (SHA-512 for Ed25519, RFC 8419).

use aws_lc_rs::digest;
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::db::{rfc5911, rfc5912};
use der::asn1::{Any, OctetString, SetOfVec};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::{Attribute, AttributeValue};

use super::{der_failed, failed};
use crate::ca::{Ca, SignatureAlgorithm};
use crate::issuance::IssuanceError;

/// ContentInfo(SignedData) over `enveloped` (DER EnvelopedData), signed by `ca`.
pub(super) fn sign(enveloped: &[u8], ca: &Ca) -> Result<Vec<u8>, IssuanceError> {
    let signer = ca.signer();
    let (digest_oid, digest_algorithm) = match signer.algorithm() {
        SignatureAlgorithm::RsaPkcs1Sha256 | SignatureAlgorithm::EcdsaSha256 => {
            (rfc5912::ID_SHA_256, &digest::SHA256)
        }
        SignatureAlgorithm::EcdsaSha384 => (rfc5912::ID_SHA_384, &digest::SHA384),
        SignatureAlgorithm::Ed25519 => (rfc5912::ID_SHA_512, &digest::SHA512),
    };
    let digest_id = AlgorithmIdentifierOwned {
        oid: digest_oid,
        parameters: None,
    };
    let message_digest = digest::digest(digest_algorithm, enveloped);
    let signed_attrs = attributes(message_digest.as_ref())?;
    // RFC 5652 §5.4: the signature covers the DER of the attributes as a SET OF.
    let signature = signer
        .sign(&signed_attrs.to_der().map_err(der_failed)?)
        .map_err(|e| failed(&e.to_string()))?;
    let certificate = ca.certificate();
    let tbs = certificate.tbs_certificate();
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer().clone(),
            serial_number: tbs.serial_number().clone(),
        }),
        digest_alg: digest_id.clone(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: signer.algorithm().identifier(),
        signature: OctetString::new(signature).map_err(der_failed)?,
        unsigned_attrs: None,
    };
    let mut certificates = SetOfVec::new();
    for der in ca.chain() {
        let certificate = Certificate::from_der(der).map_err(der_failed)?;
        certificates
            .insert(CertificateChoices::Certificate(certificate))
            .map_err(der_failed)?;
    }
    let mut digests = SetOfVec::new();
    digests.insert(digest_id).map_err(der_failed)?;
    let mut signers = SetOfVec::new();
    signers.insert(signer_info).map_err(der_failed)?;
    let signed = SignedData {
        // Version 3: the content type is not id-data (RFC 5652 §5.1).
        version: CmsVersion::V3,
        digest_algorithms: digests,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: rfc5911::ID_ENVELOPED_DATA,
            econtent: Some(
                Any::encode_from(&OctetString::new(enveloped).map_err(der_failed)?)
                    .map_err(der_failed)?,
            ),
        },
        certificates: Some(CertificateSet(certificates)),
        crls: None,
        signer_infos: SignerInfos(signers),
    };
    ContentInfo {
        content_type: rfc5911::ID_SIGNED_DATA,
        content: Any::encode_from(&signed).map_err(der_failed)?,
    }
    .to_der()
    .map_err(der_failed)
}

/// The signed attributes: contentType id-envelopedData and the messageDigest.
fn attributes(message_digest: &[u8]) -> Result<SetOfVec<Attribute>, IssuanceError> {
    let one = |value: Any| -> Result<SetOfVec<AttributeValue>, IssuanceError> {
        let mut values = SetOfVec::new();
        values.insert(value).map_err(der_failed)?;
        Ok(values)
    };
    let content_type = Attribute {
        oid: rfc5911::ID_CONTENT_TYPE,
        values: one(Any::encode_from(&rfc5911::ID_ENVELOPED_DATA).map_err(der_failed)?)?,
    };
    let digest = Attribute {
        oid: rfc5911::ID_MESSAGE_DIGEST,
        values: one(
            Any::encode_from(&OctetString::new(message_digest).map_err(der_failed)?)
                .map_err(der_failed)?,
        )?,
    };
    let mut attributes = SetOfVec::new();
    attributes.insert(content_type).map_err(der_failed)?;
    attributes.insert(digest).map_err(der_failed)?;
    Ok(attributes)
}
