//! EST's wire formats (RFC 7030 with the clarifications of RFC 8951): bodies are base64 of
//! DER; certificates travel as a CMS SignedData with no signers (PKCS#7 "certs-only", built on
//! the RustCrypto `cms` types); serverkeygen answers `multipart/mixed` with the key (PKCS#8, or
//! encrypted to the client) and the certificate; HTTP Basic credentials are read here, bounded.

#[cfg(test)]
use axum::http::HeaderValue;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{CertificateSet, EncapsulatedContentInfo, SignedData, SignerInfos};
use const_oid::db::rfc5911::{ID_DATA, ID_SIGNED_DATA};
use der::asn1::{Any, SetOfVec};
use der::{Decode, Encode};
use zeroize::Zeroizing;

use crate::issuance::{BasicCredentials, EstRefusal, IssuanceError};

/// The media type of a certs-only answer.
pub(super) const CERTS_ONLY: &str = "application/pkcs7-mime; smime-type=certs-only";

/// The media type of a server-generated key protected by TLS only.
pub(super) const PKCS8: &str = "application/pkcs8";

/// The media type of a server-generated key encrypted to the client (RFC 7030 §4.4.2).
pub(super) const SERVER_GENERATED_KEY: &str =
    "application/pkcs7-mime; smime-type=server-generated-key";

/// The largest `Authorization` header value read (a user name and a secret of a few hundred
/// characters fit easily).
const MAX_AUTHORIZATION: usize = 1024;

/// A degenerate SignedData (no content, no signers) holding `certificates`, DER.
pub(super) fn certs_only(certificates: &[Vec<u8>]) -> Result<Vec<u8>, IssuanceError> {
    let fail = |e: der::Error| IssuanceError::invariant(format!("certs-only: {e}"));
    let mut set = SetOfVec::new();
    for der in certificates {
        let certificate = x509_cert::Certificate::from_der(der).map_err(fail)?;
        set.insert(CertificateChoices::Certificate(certificate))
            .map_err(fail)?;
    }
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet(set)),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(&signed).map_err(fail)?,
    }
    .to_der()
    .map_err(fail)
}

/// Base64 in lines of 64 characters, each ending in CRLF.
fn base64_lines(der: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(text.len() + text.len() / 32 + 2);
    for chunk in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push_str("\r\n");
    }
    out
}

/// A 200 answer of `content_type` with `der` as base64 (`Content-Transfer-Encoding: base64`,
/// as RFC 7030 clients expect); never stored by caches.
pub(super) fn base64_body(content_type: &'static str, der: &[u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::HeaderName::from_static("content-transfer-encoding"),
                "base64",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        base64_lines(der),
    )
        .into_response()
}

/// serverkeygen's answer (RFC 7030 §4.4.2): `multipart/mixed` with the private key (of type
/// `key_type`: [`PKCS8`] or [`SERVER_GENERATED_KEY`]) and the certificate (certs-only), both
/// base64. The body may hold the key: it is built in a zeroised buffer up to the copy the
/// response takes.
pub(super) fn key_and_certificate(key_type: &str, key: &[u8], certs_only: &[u8]) -> Response {
    let boundary = format!("est-{}", uuid::Uuid::new_v4().simple());
    let key = Zeroizing::new(base64_lines(key));
    let mut body = Zeroizing::new(String::new());
    body.push_str(&format!(
        "--{boundary}\r\nContent-Type: {key_type}\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    ));
    body.push_str(&key);
    body.push_str(&format!(
        "--{boundary}\r\nContent-Type: {CERTS_ONLY}\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    ));
    body.push_str(&base64_lines(certs_only));
    body.push_str(&format!("--{boundary}--\r\n"));
    let content_type = format!("multipart/mixed; boundary={boundary}");
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body.as_bytes().to_vec(),
    )
        .into_response()
}

/// Base64 with any whitespace (line breaks) in it; `None` when it is not base64.
pub(super) fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    let compact: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .ok()
        .filter(|der| !der.is_empty())
}

/// `Authorization: Basic <base64 of user:secret>`, if sent: one header, at most
/// [`MAX_AUTHORIZATION`] bytes, UTF-8. The decoded buffer is zeroised.
pub(super) fn basic_credentials(
    headers: &HeaderMap,
) -> Result<Option<BasicCredentials>, EstRefusal> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() || value.len() > MAX_AUTHORIZATION {
        return Err(EstRefusal::MalformedCredentials);
    }
    let text = value
        .to_str()
        .map_err(|_| EstRefusal::MalformedCredentials)?;
    let (scheme, encoded) = text
        .trim()
        .split_once(' ')
        .ok_or(EstRefusal::MalformedCredentials)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(EstRefusal::MalformedCredentials);
    }
    let decoded = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| EstRefusal::MalformedCredentials)?,
    );
    let text = std::str::from_utf8(&decoded).map_err(|_| EstRefusal::MalformedCredentials)?;
    let (user, password) = text
        .split_once(':')
        .ok_or(EstRefusal::MalformedCredentials)?;
    Ok(Some(BasicCredentials {
        user: user.to_string(),
        password: Zeroizing::new(password.to_string()),
    }))
}

/// An `Authorization` header value, for tests.
#[cfg(test)]
fn basic(user: &str, secret: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let value = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Basic {value}")).unwrap_or(HeaderValue::from_static("")),
    );
    headers
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn basic_credentials_are_read_and_bounded() {
        let read = basic_credentials(&basic("dev", "s3cret:with:colons"))
            .unwrap()
            .unwrap();
        assert_eq!(read.user, "dev");
        assert_eq!(read.password.as_str(), "s3cret:with:colons");
        assert!(!format!("{read:?}").contains("s3cret"));
        assert!(basic_credentials(&HeaderMap::new()).unwrap().is_none());
        let mut bearer = HeaderMap::new();
        bearer.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert!(basic_credentials(&bearer).is_err());
        let mut junk = HeaderMap::new();
        junk.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert!(basic_credentials(&junk).is_err());
        assert!(basic_credentials(&basic("dev", &"x".repeat(2000))).is_err());
    }

    #[test]
    fn base64_with_line_breaks() {
        assert_eq!(decode_base64(b"AAEC\r\nAw==\n").unwrap(), vec![0, 1, 2, 3]);
        assert!(decode_base64(b"not base64!").is_none());
        assert!(decode_base64(b"").is_none());
        let lines = base64_lines(&[7u8; 100]);
        assert!(lines.lines().all(|l| l.len() <= 64));
        assert_eq!(decode_base64(lines.as_bytes()).unwrap(), vec![7u8; 100]);
    }
}
