//! Signed API writes (`[api] signed_writes = "required"`): signatures made by the openssl CLI,
//! kept whole in the audit trail up to the largest accepted size, each signed body accepted
//! once (`signedAt` near the gateway's clock, a replay refused), and one signature header only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use serde_json::{Value, json};

use crate::api::{Api, Officer, answer, token_request};
use crate::kit::{Anchored, run_ok, skipped, tool};

/// `body` with `signedAt` = now (RFC 3339), as a signing client writes it.
fn fresh(mut body: Value) -> Value {
    body["signedAt"] = now_rfc3339(0).into();
    body
}

/// Now plus `offset` seconds, RFC 3339 UTC.
fn now_rfc3339(offset: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::seconds(offset))
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// The gateway with signed writes required.
async fn signed_api() -> Api {
    Api::start(|root| {
        let toml = std::fs::read_to_string(root.gateway_toml()).unwrap();
        let toml = toml.replacing("# signed_writes = \"off\"", "signed_writes = \"required\"");
        assert!(toml.contains("\nsigned_writes = \"required\""));
        std::fs::write(root.gateway_toml(), toml).unwrap();
    })
    .await
}

/// Signs `body` with the officer's key by `openssl cms` (detached, no attributes), base64.
pub(crate) fn openssl_signature(
    openssl: &std::path::Path,
    api: &Api,
    signer: &Officer,
    body: &[u8],
) -> String {
    sign_with(openssl, api, signer, body, None)
}

/// `[api] signed_writes = "required"`: a signature made by the openssl CLI is accepted and kept
/// in the audit record; a missing signature, another officer's, and a changed body are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_writes_with_openssl_signatures() {
    let Some(openssl) = tool("openssl") else {
        skipped(
            "signed_writes_with_openssl_signatures",
            "openssl not installed",
        );
        return;
    };
    let api = signed_api().await;
    let officer = api
        .officer("Sigrid Signer", &["api-read", "api-issue", "api-revoke"])
        .await;
    let stranger = api.officer("Sven Stranger", &["api-read"]).await;
    let send_signed = |body: String, signature: Option<String>, path: &'static str| {
        let mut request = api
            .client(Some(&officer))
            .post(api.url(path))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(body);
        if let Some(signature) = signature {
            request = request.header("x-officer-signature", signature);
        }
        answer(request)
    };

    // A signed issuance: accepted, the signature kept with the audit record.
    let body = fresh(token_request("Signed Sam")).to_string();
    let signature = openssl_signature(&openssl, &api, &officer, body.as_bytes());
    let issued = send_signed(body.clone(), Some(signature.clone()), "softtokens").await;
    assert_eq!(
        issued.status,
        200,
        "{}",
        String::from_utf8_lossy(&issued.body)
    );
    let serial = issued.json()["certificates"][0]["serial"]
        .as_str()
        .unwrap()
        .to_string();
    let audit = api.audit().await;
    let (_, actor, _, detail) = audit.iter().rev().find(|(e, ..)| e == "issued").unwrap();
    assert!(actor.starts_with("officer:"));
    assert_eq!(detail["officerSignature"], signature.as_str());
    use sha2::Digest;
    assert_eq!(
        detail["signedBodySha256"],
        hex::encode(sha2::Sha256::digest(body.as_bytes()))
    );

    // A signed revocation; the signature verifies later with openssl against the body.
    let body = fresh(json!({"serial": serial, "reason": "keyCompromise"})).to_string();
    let signature = openssl_signature(&openssl, &api, &officer, body.as_bytes());
    let revoked = send_signed(body.clone(), Some(signature.clone()), "certificates/revoke").await;
    assert_eq!(
        revoked.status,
        200,
        "{}",
        String::from_utf8_lossy(&revoked.body)
    );
    let audit = api.audit().await;
    let (_, _, _, detail) = audit.iter().rev().find(|(e, ..)| e == "revoked").unwrap();
    assert_eq!(detail["officerSignature"], signature.as_str());
    let kept = api.dir().join("kept.der");
    std::fs::write(
        &kept,
        base64::engine::general_purpose::STANDARD
            .decode(detail["officerSignature"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let content = api.dir().join("kept-body");
    std::fs::write(&content, body.as_bytes()).unwrap();
    run_ok(
        &openssl,
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            kept.to_str().unwrap(),
            "-content",
            content.to_str().unwrap(),
            "-noverify",
            "-out",
            "/dev/null",
        ],
    );

    // Missing, by another officer, over a changed body: refused, nothing changes.
    let count = api.certificates().await;
    let body = fresh(token_request("Unsigned Ulla")).to_string();
    let r = send_signed(body.clone(), None, "softtokens").await;
    api.refused(&r, 403, "signature-required").await;
    let by_stranger = openssl_signature(&openssl, &api, &stranger, body.as_bytes());
    let r = send_signed(body.clone(), Some(by_stranger), "softtokens").await;
    api.refused(&r, 403, "bad-signature").await;
    let signature = openssl_signature(&openssl, &api, &officer, body.as_bytes());
    let changed = body.replace("Unsigned Ulla", "Changed Carl");
    let r = send_signed(changed, Some(signature), "softtokens").await;
    let message = api.refused(&r, 403, "bad-signature").await;
    assert!(message.contains("exact"), "{message}");
    let r = send_signed(
        body.clone(),
        Some("not base64 at all!".into()),
        "softtokens",
    )
    .await;
    api.refused(&r, 403, "bad-signature").await;
    assert_eq!(api.certificates().await, count);
    let reinstate = fresh(json!({"serial": serial})).to_string();
    let r = send_signed(reinstate, None, "certificates/reinstate").await;
    api.refused(&r, 403, "signature-required").await;
    // Reads need no signature.
    assert_eq!(api.get(&officer, "certificates").await.status, 200);
}

/// POSTs `body` to `path` as `officer` with each of `signatures` as an X-Officer-Signature.
async fn post_signed(
    api: &Api,
    officer: &Officer,
    path: &str,
    body: &str,
    signatures: &[&str],
) -> crate::api::Answer {
    let mut request = api
        .client(Some(officer))
        .post(api.url(path))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(body.to_string());
    for signature in signatures {
        request = request.header("x-officer-signature", *signature);
    }
    answer(request).await
}

/// A signed body is accepted once: the same body and signature again is refused
/// (`replayed-signature`, audited) even where it would change state again (a hold lifted and
/// then replayed); a body without `signedAt`, or signed too long ago, is refused; two signature
/// headers are refused (`duplicate-header`), never "the first wins".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_bodies_are_accepted_once_and_carry_their_time() {
    let Some(openssl) = tool("openssl") else {
        skipped("signed_bodies_are_accepted_once", "openssl not installed");
        return;
    };
    let api = signed_api().await;
    let officer = api
        .officer("Rita Replay", &["api-read", "api-issue", "api-revoke"])
        .await;
    let body = fresh(token_request("Replay Rolf")).to_string();
    let signature = openssl_signature(&openssl, &api, &officer, body.as_bytes());
    let issued = post_signed(&api, &officer, "softtokens", &body, &[&signature]).await;
    assert_eq!(
        issued.status,
        200,
        "{}",
        String::from_utf8_lossy(&issued.body)
    );
    let serial = issued.json()["certificates"][0]["serial"]
        .as_str()
        .unwrap()
        .to_string();
    let count = api.certificates().await;
    let again = post_signed(&api, &officer, "softtokens", &body, &[&signature]).await;
    let message = api.refused(&again, 403, "replayed-signature").await;
    assert!(message.contains("once"), "{message}");
    assert_eq!(api.certificates().await, count, "a replay issued nothing");

    // Hold, reinstate, then the hold replayed: refused, the certificate stays good.
    let hold = fresh(json!({"serial": serial, "reason": "certificateHold"})).to_string();
    let hold_signature = openssl_signature(&openssl, &api, &officer, hold.as_bytes());
    let r = post_signed(
        &api,
        &officer,
        "certificates/revoke",
        &hold,
        &[&hold_signature],
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let lift = fresh(json!({"serial": serial, "nonce": "lift-1"})).to_string();
    let lift_signature = openssl_signature(&openssl, &api, &officer, lift.as_bytes());
    let r = post_signed(
        &api,
        &officer,
        "certificates/reinstate",
        &lift,
        &[&lift_signature],
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = post_signed(
        &api,
        &officer,
        "certificates/revoke",
        &hold,
        &[&hold_signature],
    )
    .await;
    api.refused(&r, 403, "replayed-signature").await;
    let record = api
        .gateway
        .store()
        .certificate(&ast_gateway::ca::Serial::parse(&serial).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status.name(), "good");

    // No signedAt, or one outside the window: refused, naming signedAt.
    for stale in [
        json!({"serial": serial, "reason": "keyCompromise"}),
        json!({"serial": serial, "reason": "keyCompromise", "signedAt": now_rfc3339(-3600)}),
        json!({"serial": serial, "reason": "keyCompromise", "signedAt": "yesterday"}),
    ] {
        let body = stale.to_string();
        let signature = openssl_signature(&openssl, &api, &officer, body.as_bytes());
        let r = post_signed(&api, &officer, "certificates/revoke", &body, &[&signature]).await;
        let message = api.refused(&r, 403, "bad-signature").await;
        assert!(message.contains("signedAt"), "{message}");
    }

    // Two signature headers (each valid on its own): refused.
    let body = fresh(json!({"serial": serial, "reason": "keyCompromise"})).to_string();
    let signature = openssl_signature(&openssl, &api, &officer, body.as_bytes());
    let r = post_signed(
        &api,
        &officer,
        "certificates/revoke",
        &body,
        &[&signature, &signature],
    )
    .await;
    api.refused(&r, 400, "duplicate-header").await;
    assert_eq!(record.status.name(), "good");
    // The same body once, with one header: accepted (the refused attempts did not use it up).
    let r = post_signed(&api, &officer, "certificates/revoke", &body, &[&signature]).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

/// A signature of the largest accepted size (16 KiB of base64: the officer's signature with
/// extra certificates carried in the CMS) is accepted, kept whole in the audit row, and
/// verifies from that row with openssl against the body whose SHA-256 the row records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_of_the_largest_accepted_size_is_kept_whole() {
    let Some(openssl) = tool("openssl") else {
        skipped(
            "a_signature_of_the_largest_accepted_size",
            "openssl not installed",
        );
        return;
    };
    let api = signed_api().await;
    let officer = api
        .officer("Lars Large", &["api-read", "api-issue", "api-revoke"])
        .await;
    let body = fresh(token_request("Large Lena")).to_string();
    let max = ast_gateway::issuance::MAX_SIGNATURE_BASE64;
    let signature = padded_signature(&openssl, &api, &officer, body.as_bytes(), max);
    assert_eq!(
        signature.len(),
        max,
        "the signature is exactly the largest accepted size"
    );
    let issued = post_signed(&api, &officer, "softtokens", &body, &[&signature]).await;
    assert_eq!(
        issued.status,
        200,
        "{}",
        String::from_utf8_lossy(&issued.body)
    );
    let audit = api.audit().await;
    let (_, _, _, detail) = audit.iter().rev().find(|(e, ..)| e == "issued").unwrap();
    let kept = detail["officerSignature"].as_str().unwrap();
    assert_eq!(kept.len(), max, "cut in the audit row");
    assert_eq!(kept, signature);
    use sha2::Digest;
    assert_eq!(
        detail["signedBodySha256"],
        hex::encode(sha2::Sha256::digest(body.as_bytes()))
    );
    // From the row alone (and the body it names by digest): openssl verifies it.
    let der = api.dir().join("kept-large.der");
    std::fs::write(
        &der,
        base64::engine::general_purpose::STANDARD
            .decode(kept)
            .unwrap(),
    )
    .unwrap();
    let content = api.dir().join("kept-large-body");
    std::fs::write(&content, body.as_bytes()).unwrap();
    let (der, content) = (der.to_str().unwrap(), content.to_str().unwrap());
    run_ok(
        &openssl,
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            der,
            "-content",
            content,
            "-noverify",
            "-out",
            "/dev/null",
        ],
    );
    // One character more is refused.
    let body = fresh(token_request("Larger Lena")).to_string();
    let longer = padded_signature(&openssl, &api, &officer, body.as_bytes(), max + 4);
    assert!(longer.len() > max);
    let r = post_signed(&api, &officer, "softtokens", &body, &[&longer]).await;
    api.refused(&r, 403, "bad-signature").await;
}

/// A detached signature of `body` by `signer` whose base64 is `target` characters long (a
/// multiple of 4), padded by a filler certificate with a long comment carried in the CMS.
fn padded_signature(
    openssl: &std::path::Path,
    api: &Api,
    signer: &Officer,
    body: &[u8],
    target: usize,
) -> String {
    let dir = api.dir();
    let (key, filler) = (dir.join("filler.key"), dir.join("filler.pem"));
    let mut comment = 100usize;
    for _ in 0..8 {
        let ext = format!("nsComment={}", "x".repeat(comment));
        run_ok(
            openssl,
            &[
                "req",
                "-x509",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=filler",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-addext",
                &ext,
                "-keyout",
                key.to_str().unwrap(),
                "-out",
                filler.to_str().unwrap(),
            ],
        );
        let signature = sign_with(openssl, api, signer, body, Some(&filler));
        if signature.len() == target {
            return signature;
        }
        // base64: 4 characters per 3 bytes; the comment adds about one byte per byte.
        let missing = (target as i64 - signature.len() as i64) * 3 / 4;
        comment = (comment as i64 + missing).max(1) as usize;
    }
    panic!("could not make a signature of {target} characters");
}

/// As [`openssl_signature`], with `-certfile extra` (more certificates in the signature).
fn sign_with(
    openssl: &std::path::Path,
    api: &Api,
    signer: &Officer,
    body: &[u8],
    extra: Option<&std::path::Path>,
) -> String {
    let input = api.dir().join("padded-body");
    let output = api.dir().join("padded.der");
    std::fs::write(&input, body).unwrap();
    let signer_file = signer.file.to_str().unwrap();
    let mut args = vec![
        "cms",
        "-sign",
        "-binary",
        "-noattr",
        "-outform",
        "DER",
        "-in",
        input.to_str().unwrap(),
        "-signer",
        signer_file,
        "-inkey",
        signer_file,
        "-out",
        output.to_str().unwrap(),
    ];
    if let Some(extra) = extra {
        args.extend_from_slice(&["-certfile", extra.to_str().unwrap()]);
    }
    run_ok(openssl, &args);
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(&output).unwrap())
}
