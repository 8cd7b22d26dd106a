//! Reading a token's public key object into a SubjectPublicKeyInfo, and the DER encodings the
//! token does not give us (`CKM_ECDSA` returns raw `r‖s`).

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectHandle};
use cryptoki::session::Session;
use der::asn1::{BitString, Null, OctetString, UintRef};
use der::{Any, Decode, Encode, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::Kind;
use crate::ca::SignatureAlgorithm;

/// RSAPublicKey (RFC 8017 A.1.1).
#[derive(Sequence)]
pub(crate) struct RsaPublicKey<'a> {
    pub(crate) modulus: UintRef<'a>,
    pub(crate) public_exponent: UintRef<'a>,
}

fn attribute_bytes(
    session: &Session,
    object: ObjectHandle,
    kind: AttributeType,
) -> Result<Vec<u8>, String> {
    let attrs = session
        .get_attributes(object, &[kind])
        .map_err(|e| format!("cannot read {kind:?}: {e}"))?;
    for a in attrs {
        match a {
            Attribute::Modulus(v)
            | Attribute::PublicExponent(v)
            | Attribute::EcParams(v)
            | Attribute::EcPoint(v) => return Ok(v),
            _ => {}
        }
    }
    Err(format!("the public key object has no {kind:?}"))
}

/// Builds the SubjectPublicKeyInfo from the public key object.
pub(super) fn public_key_info(
    session: &Session,
    public: ObjectHandle,
) -> Result<(Kind, Vec<u8>), String> {
    let attrs = session
        .get_attributes(public, &[AttributeType::KeyType])
        .map_err(|e| format!("cannot read the key type: {e}"))?;
    let key_type = attrs.iter().find_map(|a| {
        if let Attribute::KeyType(k) = a {
            Some(*k)
        } else {
            None
        }
    });
    let enc = |e: der::Error| e.to_string();
    match key_type {
        Some(k) if k == KeyType::RSA => {
            let n = attribute_bytes(session, public, AttributeType::Modulus)?;
            let e = attribute_bytes(session, public, AttributeType::PublicExponent)?;
            let key = RsaPublicKey {
                modulus: UintRef::new(&n).map_err(enc)?,
                public_exponent: UintRef::new(&e).map_err(enc)?,
            };
            let spki = SubjectPublicKeyInfoOwned {
                algorithm: AlgorithmIdentifierOwned {
                    oid: rfc5912::RSA_ENCRYPTION,
                    parameters: Some(Null.into()),
                },
                subject_public_key: BitString::from_bytes(&key.to_der().map_err(enc)?)
                    .map_err(enc)?,
            };
            Ok((Kind::Rsa, spki.to_der().map_err(enc)?))
        }
        Some(k) if k == KeyType::EC => {
            let params = attribute_bytes(session, public, AttributeType::EcParams)?;
            let curve = ObjectIdentifier::from_der(&params)
                .map_err(|_| "EC parameters are not a named curve".to_string())?;
            let algorithm = match curve {
                c if c == rfc5912::SECP_256_R_1 => SignatureAlgorithm::EcdsaSha256,
                c if c == rfc5912::SECP_384_R_1 => SignatureAlgorithm::EcdsaSha384,
                other => return Err(format!("unsupported curve {other}; use P-256 or P-384")),
            };
            let point_der = attribute_bytes(session, public, AttributeType::EcPoint)?;
            // CKA_EC_POINT is DER OCTET STRING(point); some modules return the bare point.
            let point = OctetString::from_der(&point_der)
                .map(|o| o.as_bytes().to_vec())
                .unwrap_or(point_der);
            let spki = SubjectPublicKeyInfoOwned {
                algorithm: AlgorithmIdentifierOwned {
                    oid: rfc5912::ID_EC_PUBLIC_KEY,
                    parameters: Some(Any::from(&curve)),
                },
                subject_public_key: BitString::from_bytes(&point).map_err(enc)?,
            };
            Ok((Kind::Ec(algorithm), spki.to_der().map_err(enc)?))
        }
        _ => Err("the key is neither RSA nor EC".into()),
    }
}

/// DER INTEGER of an unsigned big-endian value.
fn der_integer(bytes: &[u8], out: &mut Vec<u8>) {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let mut value = bytes[start..].to_vec();
    if value.first().is_none_or(|b| b & 0x80 != 0) {
        value.insert(0, 0);
    }
    out.push(0x02);
    der_length(value.len(), out);
    out.extend(value);
}

fn der_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

/// Raw `r‖s` (CKM_ECDSA) → DER `ECDSA-Sig-Value` (RFC 3279 §2.2.3).
pub(super) fn ecdsa_der(raw: &[u8]) -> Vec<u8> {
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = Vec::with_capacity(raw.len() + 8);
    der_integer(r, &mut body);
    der_integer(s, &mut body);
    let mut out = vec![0x30];
    der_length(body.len(), &mut out);
    out.extend(body);
    out
}
