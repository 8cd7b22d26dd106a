//! Every EST operation with curl and openssl, and every refusal with its status, code and
//! audit row (and no certificate issued).

use std::path::{Path, PathBuf};

use ast_gateway::ca::RevocationReason;
use ast_gateway::identity::Caller;
use base64::Engine;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::{SECRET, base, configure, key_matches, listed_serials, root_pem, serial_and_subject};
use super::{canonical, verify_chain};
use crate::api::{Answer, Api};
use crate::kit::{run_ok, skipped, tool};

/// curl and openssl against one gateway.
struct Tools {
    curl: PathBuf,
    openssl: PathBuf,
    dir: PathBuf,
}

impl Tools {
    fn new(api: &Api) -> Option<Tools> {
        let dir = api.dir.path().join("curl");
        std::fs::create_dir_all(&dir).unwrap();
        Some(Tools {
            curl: tool("curl")?,
            openssl: tool("openssl")?,
            dir,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Runs curl on `https://localhost:<port><path>` with `extra` arguments; the answer whole.
    async fn curl(&self, api: &Api, path: &str, extra: &[&str]) -> Answer {
        let url = format!("{}{path}", base(api));
        let port = url
            .rsplit(':')
            .next()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let head = self.path("head.txt");
        let body = self.path("body.bin");
        let mut args: Vec<String> = [
            "-sS",
            "--cacert",
            root_pem(api).to_str().unwrap(),
            "--resolve",
            &format!("localhost:{port}:127.0.0.1"),
            "-D",
            head.to_str().unwrap(),
            "-o",
            body.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(url);
        let curl = self.curl.clone();
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(curl)
                .args(&args)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            output.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let head = std::fs::read_to_string(&head).unwrap();
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .parse()
            .unwrap();
        let mut headers = HeaderMap::new();
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                headers.append(
                    HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                    HeaderValue::from_str(value.trim()).unwrap(),
                );
            }
        }
        Answer {
            status,
            headers,
            body: std::fs::read(&body).unwrap(),
        }
    }

    /// A new EC P-256 key (`<name>.key`) and a base64 DER CSR for it (`<name>.b64`), made by
    /// openssl; `extra` adds `req` options (e.g. `-addext`).
    fn csr(&self, name: &str, subject: &str, extra: &[&str]) -> PathBuf {
        let key = self.path(&format!("{name}.key"));
        let der = self.path(&format!("{name}.der"));
        let mut args = vec![
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            key.to_str().unwrap(),
            "-subj",
            subject,
            "-outform",
            "DER",
            "-out",
            der.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run_ok(&self.openssl, &args);
        self.base64_file(name, &std::fs::read(&der).unwrap())
    }

    /// A CSR for the key `<key_of>.key`, as `<name>.b64`.
    fn csr_for_key(&self, name: &str, key_of: &str, subject: &str, extra: &[&str]) -> PathBuf {
        let key = self.path(&format!("{key_of}.key"));
        let der = self.path(&format!("{name}.der"));
        let mut args = vec![
            "req",
            "-new",
            "-key",
            key.to_str().unwrap(),
            "-subj",
            subject,
            "-outform",
            "DER",
            "-out",
            der.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run_ok(&self.openssl, &args);
        self.base64_file(name, &std::fs::read(&der).unwrap())
    }

    /// `bytes` as base64 in lines of 64, as `<name>.b64`.
    fn base64_file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        let lines: Vec<&str> = text
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let path = self.path(&format!("{name}.b64"));
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    }

    /// POSTs a CSR file to an operation.
    async fn post(&self, api: &Api, path: &str, csr: &Path, extra: &[&str]) -> Answer {
        let data = format!("@{}", csr.display());
        let mut args = vec![
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            data.as_str(),
        ];
        args.extend_from_slice(extra);
        self.curl(api, path, &args).await
    }

    /// The certificates of a base64 certs-only body, as PEM (`<name>.pem`), via openssl pkcs7.
    fn certs_only(&self, name: &str, base64_body: &[u8]) -> (PathBuf, String) {
        let der = decode(base64_body);
        let der_file = self.path(&format!("{name}.p7"));
        std::fs::write(&der_file, der).unwrap();
        let pem = self.path(&format!("{name}.pem"));
        let text = run_ok(
            &self.openssl,
            &[
                "pkcs7",
                "-inform",
                "DER",
                "-in",
                der_file.to_str().unwrap(),
                "-print_certs",
                "-out",
                pem.to_str().unwrap(),
            ],
        );
        (pem, text)
    }
}

/// The refusal with this request id is in the audit trail with this code.
async fn audited(api: &Api, request_id: &str, code: &str) {
    api.gateway.store().flush_refusals().await.unwrap();
    let found = api.audit().await.into_iter().any(|(event, _, id, detail)| {
        let listed = detail["requestIds"]
            .as_array()
            .is_some_and(|ids| ids.iter().any(|i| i == request_id));
        event.contains("refused") && detail["code"] == code && (id == request_id || listed)
    });
    assert!(
        found,
        "refusal {code} ({request_id}) is not in the audit trail"
    );
}

fn decode(text: &[u8]) -> Vec<u8> {
    let compact: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .unwrap()
}

/// The parts of a multipart/mixed body: (content type, body) each.
fn parts(answer: &Answer) -> Vec<(String, Vec<u8>)> {
    let content_type = answer.header("content-type");
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"');
    let body = String::from_utf8(answer.body.clone()).unwrap();
    body.split(&format!("--{boundary}"))
        .filter(|p| !p.trim().is_empty() && !p.starts_with("--"))
        .map(|part| {
            let (head, content) = part.split_once("\r\n\r\n").unwrap();
            let kind = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Type:"))
                .unwrap()
                .trim()
                .to_string();
            (kind, content.as_bytes().to_vec())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_and_openssl_do_every_est_operation() {
    let api = Api::start(configure).await;
    let Some(t) = Tools::new(&api) else {
        return skipped(
            "curl_and_openssl_do_every_est_operation",
            "curl or openssl missing",
        );
    };
    let basic = format!("device:{SECRET}");

    // cacerts: the issuing CA, then the root, as PKCS#7 certs-only.
    let answer = t.curl(&api, "/.well-known/est/devices/cacerts", &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), "application/pkcs7-mime");
    let (_, text) = t.certs_only("cacerts", &answer.body);
    let cacerts = std::fs::read_to_string(t.path("cacerts.pem")).unwrap();
    assert_eq!(cacerts.matches("BEGIN CERTIFICATE").count(), 2, "{text}");
    let root = std::fs::read_to_string(root_pem(&api)).unwrap();
    assert!(cacerts.contains(root.trim()), "cacerts holds our root");

    // csrattrs: the subject attribute the format reads, the SAN request, the key and signature.
    let answer = t.curl(&api, "/.well-known/est/devices/csrattrs", &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), "application/csrattrs");
    std::fs::write(t.path("csrattrs.der"), decode(&answer.body)).unwrap();
    let parsed = run_ok(
        &t.openssl,
        &[
            "asn1parse",
            "-inform",
            "DER",
            "-in",
            t.path("csrattrs.der").to_str().unwrap(),
        ],
    );
    for name in [
        "commonName",
        "Extension Request",
        "id-ecPublicKey",
        "prime256v1",
        "ecdsa-with-SHA256",
    ] {
        assert!(parsed.contains(name), "{name}: {parsed}");
    }

    // simpleenroll: the CSR's subject and DNS name, the CSR's key.
    let csr = t.csr(
        "enrol",
        "/CN=dev-curl-1",
        &["-addext", "subjectAltName=DNS:dev-curl-1.devices.example"],
    );
    let answer = t
        .post(
            &api,
            "/.well-known/est/devices/simpleenroll",
            &csr,
            &["-u", &basic],
        )
        .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert!(
        answer
            .header("content-type")
            .starts_with("application/pkcs7-mime")
    );
    let (enrolled, _) = t.certs_only("enrolled", &answer.body);
    key_matches(&t.openssl, &enrolled, &t.path("enrol.key"));
    verify_chain(&t.openssl, &api, &enrolled);
    let (serial, subject) = serial_and_subject(&t.openssl, &enrolled);
    assert_eq!(subject, "CN=dev-curl-1");

    // serverkeygen: the key (PKCS#8) and its certificate in one multipart/mixed answer.
    let csr = t.csr("keygen", "/CN=dev-curl-2", &[]);
    let answer = t
        .post(
            &api,
            "/.well-known/est/devices/serverkeygen",
            &csr,
            &["-u", &basic],
        )
        .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.header("cache-control"), "no-store");
    let parts = parts(&answer);
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert_eq!(parts[0].0, "application/pkcs8");
    std::fs::write(t.path("server.key.der"), decode(&parts[0].1)).unwrap();
    run_ok(
        &t.openssl,
        &[
            "pkey",
            "-inform",
            "DER",
            "-in",
            t.path("server.key.der").to_str().unwrap(),
            "-out",
            t.path("server.key").to_str().unwrap(),
        ],
    );
    assert!(parts[1].0.starts_with("application/pkcs7-mime"));
    let (generated, _) = t.certs_only("generated", &parts[1].1);
    key_matches(&t.openssl, &generated, &t.path("server.key"));
    verify_chain(&t.openssl, &api, &generated);
    let (generated_serial, subject) = serial_and_subject(&t.openssl, &generated);
    assert_eq!(subject, "CN=dev-curl-2");

    // simplereenroll: mTLS with the enrolled certificate, a new key, the same subject and SAN.
    let csr = t.csr(
        "renew",
        "/CN=dev-curl-1",
        &["-addext", "subjectAltName=DNS:dev-curl-1.devices.example"],
    );
    let (cert, key) = (enrolled.to_str().unwrap(), t.path("enrol.key"));
    let answer = t
        .post(
            &api,
            "/.well-known/est/devices/simplereenroll",
            &csr,
            &["--cert", cert, "--key", key.to_str().unwrap()],
        )
        .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let (renewed, _) = t.certs_only("renewed", &answer.body);
    key_matches(&t.openssl, &renewed, &t.path("renew.key"));
    let (renewed_serial, subject) = serial_and_subject(&t.openssl, &renewed);
    assert_eq!(subject, "CN=dev-curl-1");
    assert_ne!(renewed_serial, serial);

    // The front's identity headers (no label: est.default), the subject from them.
    let csr = t.csr("front", "/CN=ignored", &[]);
    let answer = t
        .post(
            &api,
            "/.well-known/est/simpleenroll",
            &csr,
            &["-H", "commonname: Front Device", "-H", "country: SE"],
        )
        .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let (front, _) = t.certs_only("front-cert", &answer.body);
    let (front_serial, subject) = serial_and_subject(&t.openssl, &front);
    assert_eq!(subject, "CN=Front Device,C=SE");

    // An officer with the role est-enrol over mTLS.
    let officer = api.officer("Olof EST", &["est-enrol"]).await;
    let csr = t.csr("officer", "/CN=printer-7", &[]);
    let file = officer.file.to_str().unwrap();
    let answer = t
        .post(
            &api,
            "/.well-known/est/officers/simpleenroll",
            &csr,
            &["--cert", file],
        )
        .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let (officer_cert, _) = t.certs_only("officer-cert", &answer.body);
    let (officer_serial, subject) = serial_and_subject(&t.openssl, &officer_cert);
    assert_eq!(subject, "CN=printer-7");

    let listed = listed_serials(&api);
    for s in [
        &serial,
        &generated_serial,
        &renewed_serial,
        &front_serial,
        &officer_serial,
    ] {
        assert!(
            listed.iter().any(|l| canonical(l) == canonical(s)),
            "{s}: {listed:?}"
        );
    }
    let audit = api.audit().await;
    let actors: Vec<&str> = audit
        .iter()
        .filter(|(event, ..)| event == "issued")
        .map(|(_, actor, ..)| actor.as_str())
        .collect();
    assert!(actors.contains(&"device:device@handler.2"), "{actors:?}");
    assert!(
        actors.iter().any(|a| a.starts_with("device:certificate:")),
        "{actors:?}"
    );
    assert!(actors.contains(&"proxy:127.0.0.1"), "{actors:?}");
    assert!(
        actors.contains(&format!("officer:{}", officer.serial).as_str()),
        "{actors:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_est_refusal_has_its_status_code_and_audit_row() {
    let api = Api::start(configure).await;
    let Some(t) = Tools::new(&api) else {
        return skipped("every_est_refusal", "curl or openssl missing");
    };
    let basic = format!("device:{SECRET}");
    let enrol = "/.well-known/est/devices/simpleenroll";
    let good = t.csr("good", "/CN=dev-ok", &[]);
    // A certificate to renew, then revoked.
    let answer = t.post(&api, enrol, &good, &["-u", &basic]).await;
    assert_eq!(answer.status, 200);
    let (enrolled, _) = t.certs_only("enrolled", &answer.body);
    let (serial, _) = serial_and_subject(&t.openssl, &enrolled);
    let before = api.certificates().await;

    // No credentials: a bare 401 challenge for the label's realm (audited all the same).
    let answer = t.post(&api, enrol, &good, &[]).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (401, "unauthenticated")
    );
    assert_eq!(
        answer.header("www-authenticate"),
        "Basic realm=\"est/devices\""
    );
    assert!(answer.body.is_empty());
    audited(&api, &answer.header("x-request-id"), "unauthenticated").await;
    // The wrong secret, and the wrong user.
    let answer = t
        .post(&api, enrol, &good, &["-u", "device:not-the-secret"])
        .await;
    let message = api.refused(&answer, 401, "unauthenticated").await;
    assert!(message.contains("wrong"), "{message}");
    let answer = t
        .post(&api, enrol, &good, &["-u", &format!("other:{SECRET}")])
        .await;
    api.refused(&answer, 401, "unauthenticated").await;
    // A subject the handler's format does not allow.
    let evil = t.csr("evil", "/CN=evil", &[]);
    let answer = t.post(&api, enrol, &evil, &["-u", &basic]).await;
    api.refused(&answer, 400, "field-invalid").await;
    // A key the token procedure does not name (RSA for an ec-p256 template).
    let rsa_key = t.path("rsa.key");
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
    let rsa = t.csr_for_key("rsa", "rsa", "/CN=dev-rsa", &[]);
    let answer = t.post(&api, enrol, &rsa, &["-u", &basic]).await;
    let message = api.refused(&answer, 400, "bad-request").await;
    assert!(message.contains("ec-p256"), "{message}");
    // A CSR changed after it was signed: no proof of possession.
    let mut der = std::fs::read(t.path("good.der")).unwrap();
    let at = der.windows(6).position(|w| w == b"dev-ok").unwrap();
    der[at + 5] = b'x';
    let tampered = t.base64_file("tampered", &der);
    let answer = t.post(&api, enrol, &tampered, &["-u", &basic]).await;
    let message = api.refused(&answer, 400, "bad-request").await;
    assert!(message.contains("proof of possession"), "{message}");
    // Not base64; not application/pkcs10.
    std::fs::write(t.path("junk.b64"), "this is not base64!").unwrap();
    let answer = t
        .post(&api, enrol, &t.path("junk.b64"), &["-u", &basic])
        .await;
    api.refused(&answer, 400, "bad-request").await;
    let data = format!("@{}", good.display());
    let answer = t
        .curl(
            &api,
            enrol,
            &[
                "-u",
                &basic,
                "-H",
                "Content-Type: text/plain",
                "--data-binary",
                &data,
            ],
        )
        .await;
    api.refused(&answer, 415, "unsupported-media-type").await;

    // Re-enrolment without a certificate, with a changed subject, then with a revoked one.
    let renew = "/.well-known/est/devices/simplereenroll";
    let same = t.csr("same", "/CN=dev-ok", &[]);
    let answer = t.post(&api, renew, &same, &[]).await;
    api.refused(&answer, 401, "unauthenticated").await;
    let tls = ["--cert", enrolled.to_str().unwrap(), "--key"];
    let key = t.path("good.key");
    let mut with_cert: Vec<&str> = tls.to_vec();
    with_cert.push(key.to_str().unwrap());
    let other = t.csr("other", "/CN=dev-other", &[]);
    let answer = t.post(&api, renew, &other, &with_cert).await;
    let message = api.refused(&answer, 400, "bad-request").await;
    assert!(message.contains("subject"), "{message}");
    api.gateway
        .revoke(
            &crate::kit::ser(&serial),
            RevocationReason::KeyCompromise,
            &Caller::Cli,
            "est-test",
        )
        .await
        .unwrap();
    let answer = t.post(&api, renew, &same, &with_cert).await;
    let message = api.refused(&answer, 403, "untrusted-caller").await;
    assert!(message.contains("revoked"), "{message}");

    // An officer without the role; an unknown label, an unknown operation, a wrong method.
    let officer = api.officer("Olle No-Role", &["api-read"]).await;
    let file = officer.file.to_str().unwrap();
    let answer = t
        .post(
            &api,
            "/.well-known/est/officers/simpleenroll",
            &good,
            &["--cert", file],
        )
        .await;
    api.refused(&answer, 403, "missing-role").await;
    let answer = t.curl(&api, "/.well-known/est/nosuch/cacerts", &[]).await;
    api.refused(&answer, 404, "not-found").await;
    let answer = t.curl(&api, "/.well-known/est/devices/fullcmc", &[]).await;
    api.refused(&answer, 404, "not-found").await;
    let answer = t.curl(&api, enrol, &["-u", &basic]).await;
    api.refused(&answer, 405, "method-not-allowed").await;
    assert_eq!(answer.header("allow"), "POST");

    // No refusal issued anything.
    assert_eq!(api.certificates().await, before);
}
