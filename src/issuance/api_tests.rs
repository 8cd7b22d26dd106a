//! Tests of `issuance/api.rs`.

use super::*;

#[test]
fn idempotency_keys() {
    assert_eq!(
        IdempotencyKey::parse(b" order-17 ").unwrap().as_str(),
        "order-17"
    );
    assert!(IdempotencyKey::parse(b"").is_err());
    assert!(IdempotencyKey::parse(b"a\x01b").is_err());
    assert!(IdempotencyKey::parse("é".as_bytes()).is_err());
    assert!(IdempotencyKey::parse(&[b'k'; 256]).is_err());
    assert!(IdempotencyKey::parse(&[b'k'; 255]).is_ok());
}

#[test]
fn cursors_round_trip_and_refuse_forgeries() {
    let cursor = PageCursor {
        created_at: 1_700_000_000,
        serial: "0abc01".into(),
    };
    assert_eq!(decode_cursor(&encode_cursor(&cursor)).unwrap(), cursor);
    for bad in ["", "!!", "MTIz", &"A".repeat(300)] {
        assert!(decode_cursor(bad).is_err(), "{bad}");
    }
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("1.zz");
    assert!(decode_cursor(&forged).is_err());
}

#[test]
fn request_hash_ignores_the_password_and_field_order() {
    let request = |pin: &str, fields: &[(&str, &str)]| ApiTokenRequest {
        handler: None,
        token_procedure: Some("default".into()),
        password: Pin::new(pin.into()),
        profile: None,
        fields: fields
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    };
    let a = request_hash(&request("one-pin", &[("cn", "A"), ("email", "a@x")]));
    let b = request_hash(&request("other-pin", &[("email", "a@x"), ("CN", "A")]));
    let c = request_hash(&request("one-pin", &[("cn", "B"), ("email", "a@x")]));
    assert_eq!(a, b);
    assert_ne!(a, c);
}
