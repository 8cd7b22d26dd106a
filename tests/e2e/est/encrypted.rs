//! serverkeygen with the key encrypted to the client (RFC 7030 §4.4.2), checked with openssl
//! only: to an RSA and an EC client certificate (AsymmetricDecryptKeyIdentifier) and under a
//! pre-shared key-encryption key (DecryptKeyIdentifier), each answer verifies with
//! `openssl cms -verify` against the chain `cacerts` gives, decrypts with
//! `openssl cms -decrypt`, and holds the key of the certificate beside it, which `certs list`
//! lists; BouncyCastle's CMS (`EstDecrypt.java`) opens the same answers, and the curl + openssl
//! walk of docs/est.md runs as written. The refusals of an identifier we cannot honour are
//! audited and issue nothing.

use ast_gateway::config::Root;
use base64::Engine;

use super::cms::{
    ASYMMETRIC_DECRYPT_KEY_ID, DECRYPT_KEY_ID, bouncycastle, bouncycastle_opens, csr_with_octets,
    csr_with_text, docs_walk, key_identifier, open_answer,
};
use super::tools::Tools;
use super::{SECRET, base, canonical, configure, listed_serials, root_pem};
use crate::api::Api;
use crate::kit::{run_ok, skipped, tool};

/// The key-encryption key `kek-1` of the `devices` label (32 bytes).
const KEK: [u8; 32] = [0x5a; 32];

/// [`configure`], plus the key-encryption key file of `devices` (`est.keks`, mode 0600) and a
/// label `rsa-devices` (HTTP Basic) whose certificates have RSA-2048 keys.
fn configure_encrypted(root: &Root) {
    configure(root);
    let toml = std::fs::read_to_string(root.gateway_toml()).unwrap()
        + r#"
[[token_procedure]]
name = "device-rsa"

[[token_procedure.certificate]]
purpose = "device"
ca = "issuing"
key = "rsa-2048"
validity = "30d"
key_usage = ["digitalSignature", "keyEncipherment"]
extended_key_usage = ["clientAuth"]
"#;
    std::fs::write(root.gateway_toml(), toml).unwrap();
    let dir = root.conf().join("est");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("devices.keks");
    let b64 = base64::engine::general_purpose::STANDARD;
    std::fs::write(&file, format!("# devices\nkek-1 = {}\n", b64.encode(KEK))).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let hash = ast_gateway::issuance::hash_secret(SECRET).unwrap();
    let mut ast = std::fs::read_to_string(root.ast_properties()).unwrap();
    ast.push_str(&format!(
        r#"
handler.2.est.keks = conf/est/devices.keks
handler.5.est.label = rsa-devices
handler.5.est.user = device
handler.5.est.secret = {hash}
handler.5.tokenprocedure = device-rsa
handler.5.defaultFormat = off
handler.5.formatFields.1 = ast.valuetarget.commonname.value = cert:subject.commonname | required
"#
    ));
    std::fs::write(root.ast_properties(), ast).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serverkeygen_encrypts_the_key_to_rsa_ec_and_kek_recipients() {
    let api = Api::start(configure_encrypted).await;
    let (Some(t), Some(_)) = (Tools::new(&api), tool("perl")) else {
        return skipped("serverkeygen_encrypts", "curl, openssl or perl missing");
    };
    let basic = format!("device:{SECRET}");
    let answer = t.curl(&api, "/.well-known/est/devices/cacerts", &[]).await;
    t.certs_only("cacerts", &answer.body);
    let keygen = "/.well-known/est/devices/serverkeygen";

    // Client certificates to encrypt to: EC P-256 (devices) and RSA-2048 (rsa-devices).
    let csr = t.csr("ec-client", "/CN=dev-ec-client", &[]);
    let answer = t
        .post_ok(
            &api,
            "/.well-known/est/devices/simpleenroll",
            &csr,
            &["-u", &basic],
        )
        .await;
    let (ec_cert, _) = t.certs_only("ec-client-cert", &answer.body);
    let rsa_key = t.path("rsa-client.key");
    run_ok(
        &t.openssl,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            rsa_key.to_str().unwrap(),
        ],
    );
    let csr = t.csr_for_key("rsa-client", "rsa-client", "/CN=rsa-client", &[]);
    let answer = t
        .post_ok(
            &api,
            "/.well-known/est/rsa-devices/simpleenroll",
            &csr,
            &["-u", &basic],
        )
        .await;
    let (rsa_cert, _) = t.certs_only("rsa-client-cert", &answer.body);

    // EC: the identifier as openssl req writes it (hex text, colons), mTLS with that key.
    let ec_id = key_identifier(&t.openssl, &ec_cert);
    let text_id: Vec<String> = ec_id.iter().map(|b| format!("{b:02X}")).collect();
    let csr = csr_with_text(
        &t,
        "to-ec",
        "dev-to-ec",
        ASYMMETRIC_DECRYPT_KEY_ID,
        &text_id.join(":"),
    );
    let (cert, key) = (ec_cert.to_str().unwrap(), t.path("ec-client.key"));
    let tls = ["-u", &basic, "--cert", cert, "--key", key.to_str().unwrap()];
    let answer = t.post_ok(&api, keygen, &csr, &tls).await;
    assert_eq!(answer.header("cache-control"), "no-store");
    let ec_serial = open_answer(
        &t,
        "to-ec",
        &answer,
        &["-recip", cert, "-inkey", key.to_str().unwrap()],
    );

    // RSA: the identifier as an OCTET STRING (RFC 7030).
    let rsa_id = key_identifier(&t.openssl, &rsa_cert);
    let csr = csr_with_octets(&t, "to-rsa", "dev-to-rsa", &rsa_id);
    let cert = rsa_cert.to_str().unwrap();
    let tls = [
        "-u",
        &basic,
        "--cert",
        cert,
        "--key",
        rsa_key.to_str().unwrap(),
    ];
    let answer = t.post_ok(&api, keygen, &csr, &tls).await;
    let rsa_serial = open_answer(
        &t,
        "to-rsa",
        &answer,
        &["-recip", cert, "-inkey", rsa_key.to_str().unwrap()],
    );

    // A pre-shared key-encryption key, named by DecryptKeyIdentifier; no client certificate.
    let csr = csr_with_text(&t, "to-kek", "dev-to-kek", DECRYPT_KEY_ID, "kek-1");
    let answer = t.post_ok(&api, keygen, &csr, &["-u", &basic]).await;
    let kek_serial = open_answer(
        &t,
        "to-kek",
        &answer,
        &[
            "-secretkey",
            &hex::encode(KEK),
            "-secretkeyid",
            &hex::encode("kek-1"),
        ],
    );

    // BouncyCastle's CMS opens the same three answers, as a Java client would.
    if bouncycastle() {
        let ec_key = t.path("ec-client.key");
        let (kek, kek_id) = (hex::encode(KEK), hex::encode("kek-1"));
        for (name, recipient) in [
            (
                "to-ec",
                ["cert", ec_cert.to_str().unwrap(), ec_key.to_str().unwrap()],
            ),
            (
                "to-rsa",
                [
                    "cert",
                    rsa_cert.to_str().unwrap(),
                    rsa_key.to_str().unwrap(),
                ],
            ),
            ("to-kek", ["kek", &kek, &kek_id]),
        ] {
            bouncycastle_opens(&t, name, &recipient);
        }
    } else {
        skipped(
            "serverkeygen_encrypts (BouncyCastle CMS)",
            "java or the BouncyCastle jars missing",
        );
    }

    // The walk of docs/est.md, as written, with the EC client certificate as dev-1.
    let est = format!("{}/.well-known/est/devices", base(&api));
    let ec_key = t.path("ec-client.key");
    docs_walk(&t, &est, &root_pem(&api), SECRET, &ec_cert, &ec_key);

    let listed = listed_serials(&api);
    for serial in [&ec_serial, &rsa_serial, &kek_serial] {
        assert!(
            listed.iter().any(|l| canonical(l) == canonical(serial)),
            "{serial}: {listed:?}"
        );
    }
    // The audit says how each key left and to which key identifier, never a key.
    let audit = api.audit().await;
    let deliveries: Vec<&serde_json::Value> = audit
        .iter()
        .filter(|(event, ..)| event == "issued")
        .filter_map(|(_, _, _, d)| d.get("keyDelivery"))
        .collect();
    // EC, RSA, KEK, then the docs walk's (to the EC certificate again).
    assert_eq!(deliveries.len(), 4, "{deliveries:?}");
    let ec = (
        "asymmetric",
        hex::encode(&ec_id),
        "ECDH P-256, AES-256 key wrap",
    );
    let expected = [
        ec.clone(),
        ("asymmetric", hex::encode(&rsa_id), "RSAES-OAEP"),
        ("symmetric", hex::encode("kek-1"), "AES-256 key wrap"),
        ec,
    ];
    for (delivery, (form, key_id, method)) in deliveries.iter().zip(expected) {
        assert_eq!(delivery["encrypted"], true, "{delivery}");
        assert_eq!(delivery["form"], form, "{delivery}");
        assert_eq!(delivery["keyId"], key_id.as_str(), "{delivery}");
        assert_eq!(delivery["method"], method, "{delivery}");
    }
    assert_eq!(deliveries[2]["kek"], "kek-1");
    let rows = format!("{audit:?}");
    let b64 = base64::engine::general_purpose::STANDARD;
    assert!(!rows.contains(&hex::encode(KEK)) && !rows.contains(&b64.encode(KEK)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_serverkeygen_refusals_are_audited_and_issue_nothing() {
    let api = Api::start(configure_encrypted).await;
    let Some(t) = Tools::new(&api) else {
        return skipped("encrypted_serverkeygen_refusals", "curl or openssl missing");
    };
    let basic = format!("device:{SECRET}");
    let keygen = "/.well-known/est/devices/serverkeygen";
    let csr = t.csr("client", "/CN=dev-client", &[]);
    let answer = t
        .post_ok(
            &api,
            "/.well-known/est/devices/simpleenroll",
            &csr,
            &["-u", &basic],
        )
        .await;
    let (client, _) = t.certs_only("client-cert", &answer.body);
    let before = api.certificates().await;

    // A KEK identifier no configured key has.
    let csr = csr_with_text(&t, "unknown-kek", "dev-x", DECRYPT_KEY_ID, "kek-9");
    let answer = t.post(&api, keygen, &csr, &["-u", &basic]).await;
    let message = api.refused(&answer, 400, "bad-request").await;
    assert!(
        message.contains("`kek-9`") && message.contains("est.keks"),
        "{message}"
    );
    // An asymmetric identifier that is not the presented certificate's key …
    let (cert, key) = (client.to_str().unwrap(), t.path("client.key"));
    let tls = ["-u", &basic, "--cert", cert, "--key", key.to_str().unwrap()];
    let csr = csr_with_octets(&t, "other-key", "dev-y", &[0xde, 0xad, 0xbe, 0xef]);
    let answer = t.post(&api, keygen, &csr, &tls).await;
    let message = api.refused(&answer, 400, "bad-request").await;
    assert!(message.contains("deadbeef"), "{message}");
    let presented = hex::encode(key_identifier(&t.openssl, &client));
    assert!(message.contains(&presented), "{message}");
    // … or with no client certificate at all.
    let answer = t.post(&api, keygen, &csr, &["-u", &basic]).await;
    let message = api.refused(&answer, 400, "bad-request").await;
    assert!(message.contains("no TLS client certificate"), "{message}");

    assert_eq!(api.certificates().await, before);
}
