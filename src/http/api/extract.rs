//! What the API's handlers extract: the call (connection, path, request id), JSON bodies and
//! query strings parsed into domain requests. A request that cannot be read becomes an
//! `IssuanceError` handed to the domain, so that its refusal is audited like every other.
//! Parse errors name the field and the rule, never the value sent (a password may be in it).

use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::extract::rejection::BytesRejection;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use super::super::routes::{Peer, RequestId};
use crate::issuance::{ApiCall, IdempotencyKey, IssuanceError, SignedBody};

/// The prefix of every API path.
pub const PREFIX: &str = "/pgwy/api/";

/// The API call of a request: connection, the path after `/pgwy/api/`, request id.
pub struct Call(pub ApiCall);

impl<S: Send + Sync> FromRequestParts<S> for Call {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Peer(connection) = Peer::from_request_parts(parts, state).await?;
        let Ok(RequestId(request_id)) = RequestId::from_request_parts(parts, state).await;
        let path = parts
            .uri
            .path()
            .strip_prefix(PREFIX)
            .unwrap_or_default()
            .to_string();
        Ok(Call(ApiCall {
            connection,
            path,
            request_id,
        }))
    }
}

/// The body of a write, as received, with its `X-Officer-Signature`; or why it cannot be read.
fn signed_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> (SignedBody, Result<(), IssuanceError>) {
    let mut values = headers.get_all("x-officer-signature").iter();
    let signature = values
        .next()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    // A second header is refused by the domain, never "first wins".
    let duplicate_signature = values.next().is_some();
    match body {
        Ok(bytes) => (
            SignedBody {
                bytes: Zeroizing::new(Vec::from(bytes)),
                signature,
                duplicate_signature,
            },
            Ok(()),
        ),
        Err(rejection) => {
            let error = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                IssuanceError::TooLarge
            } else {
                IssuanceError::BadRequest("the request body could not be read".into())
            };
            (
                SignedBody {
                    bytes: Zeroizing::new(Vec::new()),
                    signature,
                    duplicate_signature,
                },
                Err(error),
            )
        }
    }
}

/// A signed write's body read and parsed as JSON: the body with its signature (for the domain to
/// verify and audit), and the request or why it is refused.
pub fn signed_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> (SignedBody, Result<T, IssuanceError>) {
    let (signed, read) = signed_body(headers, body);
    let request = read.and_then(|()| json::<T>(headers, &signed.bytes));
    (signed, request)
}

/// Parses a JSON body into `T`: the content type must be JSON (else 415), unknown fields, wrong
/// types and malformed JSON are 400 naming the field.
fn json<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, IssuanceError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "application/json" {
        return Err(IssuanceError::UnsupportedMediaType(
            "send the request body as application/json".into(),
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| bad_body(e.path().to_string(), e.inner()))?;
    deserializer.end().map_err(|e| bad_body(".".into(), &e))?;
    Ok(value)
}

fn bad_body(path: String, error: &serde_json::Error) -> IssuanceError {
    let what = describe(&error.to_string());
    if path == "." || path.is_empty() {
        IssuanceError::BadRequest(format!("the JSON body is not acceptable: {what}"))
    } else {
        IssuanceError::BadRequest(format!("`{path}`: {what}"))
    }
}

/// serde's message without the value it quotes (`invalid type: string "…", expected u32` →
/// `wrong type, expected u32`), shortened.
fn describe(message: &str) -> String {
    let message = if message.starts_with("invalid type") || message.starts_with("invalid value") {
        match message.rsplit_once(", expected ") {
            Some((_, expected)) => format!("wrong type or value, expected {expected}"),
            None => "wrong type or value".to_string(),
        }
    } else {
        message.to_string()
    };
    message.chars().take(300).collect()
}

/// Parses a query string into `T` (unknown parameters and bad values are 400 naming them).
pub fn query<T: DeserializeOwned + Default>(raw: Option<&str>) -> Result<T, IssuanceError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(T::default());
    };
    let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let what = describe(&e.inner().to_string());
        let path = e.path().to_string();
        if path == "." || path.is_empty() {
            IssuanceError::BadRequest(format!("the query string is not acceptable: {what}"))
        } else {
            IssuanceError::BadRequest(format!("query parameter `{path}`: {what}"))
        }
    })
}

/// The `Idempotency-Key` header, if sent.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, IssuanceError> {
    let mut values = headers.get_all("idempotency-key").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(IssuanceError::BadRequest(
            "the header Idempotency-Key was sent twice".into(),
        ));
    }
    IdempotencyKey::parse(value.as_bytes()).map(Some)
}

/// The media type of `offered` the client's `Accept` prefers (RFC 9110 §12.5.1): the highest
/// quality, the most specific range deciding a type's quality (`type/subtype` over `type/*` over
/// `*/*`), ties to the earlier one in `offered`. Without `Accept`, or when it accepts none of
/// them, the first of `offered` (the default answer; 406 is never sent). At most 64 ranges are
/// read.
pub fn negotiate<'a>(headers: &HeaderMap, offered: &[&'a str]) -> &'a str {
    let default = offered.first().copied().unwrap_or("application/json");
    let ranges: Vec<(String, u16)> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .take(64)
        .filter_map(media_range)
        .collect();
    if ranges.is_empty() {
        return default;
    }
    let mut best: Option<(&str, u16)> = None;
    for media in offered {
        let quality = quality_of(media, &ranges);
        if quality > 0 && best.is_none_or(|(_, q)| quality > q) {
            best = Some((media, quality));
        }
    }
    best.map_or(default, |(media, _)| media)
}

/// One `Accept` element: the range (lower case) and its quality in thousandths.
fn media_range(item: &str) -> Option<(String, u16)> {
    let mut parts = item.split(';');
    let range = parts.next()?.trim().to_ascii_lowercase();
    if !range.contains('/') {
        return None;
    }
    let mut quality = 1000;
    for parameter in parts {
        if let Some((name, value)) = parameter.split_once('=')
            && name.trim().eq_ignore_ascii_case("q")
        {
            quality = value
                .trim()
                .parse::<f32>()
                .ok()
                .filter(|q| (0.0..=1.0).contains(q))
                .map_or(0, |q| (q * 1000.0).round() as u16);
        }
    }
    Some((range, quality))
}

/// The quality `ranges` give `media`: that of the most specific range matching it, 0 if none.
fn quality_of(media: &str, ranges: &[(String, u16)]) -> u16 {
    let kind = media.split('/').next().unwrap_or_default();
    let specificity = |range: &str| {
        if range.eq_ignore_ascii_case(media) {
            Some(3)
        } else if range.strip_suffix("/*") == Some(kind) {
            Some(2)
        } else if range == "*/*" {
            Some(1)
        } else {
            None
        }
    };
    ranges
        .iter()
        .filter_map(|(range, q)| specificity(range).map(|s| (s, *q)))
        .max_by_key(|(s, q)| (*s, *q))
        .map_or(0, |(_, q)| q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        password: String,
        n: Option<u32>,
    }

    fn headers(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
        h
    }

    #[test]
    fn json_errors_name_the_field_never_the_value() {
        let h = headers("application/json; charset=utf-8");
        let e = json::<Sample>(&h, br#"{"password": 123456789}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("`password`: wrong type or value, expected a string"),
            "{e}"
        );
        assert!(!e.contains("123456789"), "{e}");
        let e = json::<Sample>(&h, br#"{"password": "s3cret-pin", "n": "s3cret-pin"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("`n`:"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        let e = json::<Sample>(&h, br#"{"password": "x", "extra": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `extra`"), "{e}");
        let e = json::<Sample>(&h, br#"{"password": "x""#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("EOF"), "{e}");
        let e = json::<Sample>(&h, br#"{"password": "x"} trailing"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("trailing"), "{e}");
        assert!(json::<Sample>(&h, br#"{"password": "x"}"#).is_ok());
    }

    #[test]
    fn content_type_must_be_json() {
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonx",
        ] {
            assert!(matches!(
                json::<Sample>(&headers(bad), b"{}"),
                Err(IssuanceError::UnsupportedMediaType(_))
            ));
        }
        assert!(matches!(
            json::<Sample>(&HeaderMap::new(), b"{}"),
            Err(IssuanceError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn queries_and_headers() {
        #[derive(serde::Deserialize, Default, Debug)]
        #[serde(deny_unknown_fields)]
        struct Q {
            limit: Option<u32>,
        }
        assert_eq!(query::<Q>(Some("limit=5")).unwrap().limit, Some(5));
        assert_eq!(query::<Q>(None).unwrap().limit, None);
        let e = query::<Q>(Some("limit=x")).unwrap_err().to_string();
        assert!(e.contains("`limit`"), "{e}");
        let e = query::<Q>(Some("other=1")).unwrap_err().to_string();
        assert!(e.contains("unknown field `other`"), "{e}");
        let mut h = HeaderMap::new();
        h.append("idempotency-key", HeaderValue::from_static("a"));
        assert_eq!(idempotency_key(&h).unwrap().unwrap().as_str(), "a");
        h.append("idempotency-key", HeaderValue::from_static("b"));
        assert!(idempotency_key(&h).is_err());
    }

    #[test]
    fn negotiation_prefers_quality_then_specificity_then_the_default() {
        const TOKEN: &[&str] = &["application/json", "application/x-pkcs12"];
        let with = |accept: &[&str]| {
            let mut h = HeaderMap::new();
            for a in accept {
                h.append(header::ACCEPT, HeaderValue::from_str(a).unwrap());
            }
            negotiate(&h, TOKEN)
        };
        // No Accept, anything, or nothing offered: the default (JSON).
        assert_eq!(with(&[]), "application/json");
        assert_eq!(with(&["*/*"]), "application/json");
        assert_eq!(with(&["application/*"]), "application/json");
        assert_eq!(with(&["text/html"]), "application/json");
        assert_eq!(with(&["garbage"]), "application/json");
        // The file when asked for, also among others.
        assert_eq!(with(&["application/x-pkcs12"]), "application/x-pkcs12");
        assert_eq!(with(&["APPLICATION/X-PKCS12; q=1"]), "application/x-pkcs12");
        assert_eq!(
            with(&["application/json;q=0.5, application/x-pkcs12"]),
            "application/x-pkcs12"
        );
        assert_eq!(
            with(&["application/json", "application/x-pkcs12"]),
            "application/json"
        );
        assert_eq!(
            with(&["*/*;q=0.1, application/x-pkcs12;q=0.2"]),
            "application/x-pkcs12"
        );
        // The most specific range decides: JSON refused outright.
        assert_eq!(with(&["application/json;q=0, */*"]), "application/x-pkcs12");
        assert_eq!(with(&["application/json;q=0"]), "application/json");
        assert_eq!(with(&["application/x-pkcs12;q=2"]), "application/json");
    }
}
