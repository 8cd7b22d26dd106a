//! Moving in (issue 21): a "legacy" CA made here by `openssl ca` (index.txt with a good, a
//! revoked (keyCompromise) and a held certificate; CRL number 0x42) is taken over with
//! `ca import`, `certs import --openssl-index` and `ca import-crl`; then `openssl verify
//! -crl_check` with our CRL and `openssl ocsp` against our responder judge the result.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::kit::{Serve, skipped, tool};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ast-gateway")
}

/// Makes the legacy CA with `openssl ca` in `dir`.
const LEGACY: &str = r#"set -e
mkdir -p new; touch index.txt; echo 1000 > serial; echo 42 > crlnumber
cat > ca.cnf <<CNF
[ ca ]
default_ca = legacy
[ legacy ]
database = ./index.txt
new_certs_dir = ./new
serial = ./serial
crlnumber = ./crlnumber
certificate = ./ca.pem
private_key = ./ca.key
default_md = sha256
default_days = 365
default_crl_days = 7
policy = any
unique_subject = no
[ any ]
commonName = supplied
[ usr ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature
CNF
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
  -subj "/C=SE/O=Legacy/CN=Legacy Issuing CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
chmod 600 ca.key
for u in good revoked held; do
  openssl req -newkey rsa:2048 -nodes -keyout $u.key -out $u.csr -subj "/CN=$u user"
  openssl ca -batch -config ca.cnf -extensions usr -in $u.csr -out $u.pem
done
openssl ca -config ca.cnf -revoke revoked.pem -crl_compromise 20240102030405Z
openssl ca -config ca.cnf -revoke held.pem -crl_reason certificateHold -crl_hold holdInstructionReject
openssl ca -config ca.cnf -gencrl -out crl.pem
"#;

struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new() -> Root {
        let root = Root {
            dir: tempfile::tempdir().unwrap(),
        };
        let out = root.cli(&["init"]);
        assert!(out.status.success(), "init: {}", text(&out));
        root
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn file(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }
    fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .arg("--root")
            .arg(self.path())
            .env("RUST_LOG", "warn")
            .env_remove("AST_GATEWAY_ROOT")
            .args(args)
            .output()
            .unwrap()
    }
    fn serve(&self) -> Serve {
        Serve::start(self.path())
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `openssl ocsp` about the legacy good, revoked and held certificates and a never-seen serial.
fn ocsp(legacy: &Path, server: &Serve) -> String {
    let out = Command::new("openssl")
        .current_dir(legacy)
        .args([
            "ocsp",
            "-issuer",
            "ca.pem",
            "-CAfile",
            "ca.pem",
            "-url",
            &server.url("/pgwy/ocsp"),
        ])
        .args([
            "-cert",
            "good.pem",
            "-cert",
            "revoked.pem",
            "-cert",
            "held.pem",
        ])
        .args(["-serial", "0x7777"])
        .output()
        .unwrap();
    text(&out)
}

/// `openssl verify -crl_check` of a legacy certificate with our CRL.
fn verify(legacy: &Path, crl: &Path, cert: &str) -> bool {
    Command::new("openssl")
        .current_dir(legacy)
        .args(["verify", "-crl_check", "-CAfile", "ca.pem", "-CRLfile"])
        .arg(crl)
        .arg(cert)
        .output()
        .unwrap()
        .status
        .success()
}

fn crl_number(crl: &Path) -> u64 {
    let out = Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-crlnumber", "-in"])
        .arg(crl)
        .output()
        .unwrap();
    let t = text(&out);
    let hex = t.trim().trim_start_matches("crlNumber=0x");
    u64::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("crl number: {t}"))
}

#[test]
fn a_legacy_openssl_ca_is_taken_over_with_its_revocations_and_crl_numbers() {
    if tool("openssl").is_none() {
        return skipped("legacy openssl CA", "openssl not installed");
    }
    let root = Root::new();
    let legacy = root.file("legacy");
    std::fs::create_dir(&legacy).unwrap();
    let made = Command::new("sh")
        .arg("-c")
        .arg(LEGACY)
        .current_dir(&legacy)
        .output()
        .unwrap();
    assert!(made.status.success(), "legacy CA: {}", text(&made));
    let l = |name: &str| legacy.join(name).to_str().unwrap().to_string();
    let out = root.cli(&[
        "ca",
        "import",
        "legacy",
        "--certificate",
        &l("ca.pem"),
        "--key",
        &l("ca.key"),
    ]);
    assert!(out.status.success(), "{}", text(&out));

    // The openssl database and its CRL; both verified against the legacy CA's key.
    let index = [
        "certs",
        "import",
        "--ca",
        "legacy",
        "--openssl-index",
        &l("index.txt"),
        "--certs-dir",
        &l("new"),
    ];
    let out = root.cli(&index);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("imported 3, updated 0, already there 0, refused 0"),
        "{}",
        text(&out)
    );
    let out = root.cli(&["ca", "import-crl", "--ca", "legacy", &l("crl.pem")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("highest CRL number read 66"),
        "{}",
        text(&out)
    );

    // A second run changes nothing.
    let out = root.cli(&index);
    assert!(
        text(&out).contains("imported 0, updated 0, already there 3, refused 0"),
        "{}",
        text(&out)
    );
    let out = root.cli(&["ca", "import-crl", "--ca", "legacy", &l("crl.pem")]);
    assert!(
        text(&out).contains("imported 0, updated 0, already there 2"),
        "{}",
        text(&out)
    );

    // Another CA's certificate is refused by file name and serial; nothing of it is kept.
    let demo_root = root.file("data/ca/root.pem");
    let out = root.cli(&[
        "certs",
        "import",
        "--ca",
        "legacy",
        demo_root.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(
        t.contains("refused (other-ca)") && t.contains("data/ca/root.pem: certificate serial"),
        "{t}"
    );
    assert!(t.contains("imported 0") && t.contains("other-ca: 1"), "{t}");

    // Our CRL: numbered above the legacy one, refusing the revoked certificate.
    let crl = root.file("legacy.crl");
    let out = root.cli(&["crl", "--ca", "legacy", "--out", crl.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(crl_number(&crl) > 0x42, "CRL number {}", crl_number(&crl));
    let pem_crl = root.file("legacy-crl.pem");
    let out = Command::new("openssl")
        .args(["crl", "-inform", "DER", "-in"])
        .arg(&crl)
        .arg("-out")
        .arg(&pem_crl)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        verify(&legacy, &pem_crl, "good.pem"),
        "the legacy good certificate is accepted"
    );
    assert!(
        !verify(&legacy, &pem_crl, "revoked.pem"),
        "the legacy revoked certificate is refused"
    );
    assert!(
        !verify(&legacy, &pem_crl, "held.pem"),
        "the legacy held certificate is refused"
    );
    // The compromise time of the legacy revocation is on our CRL (RFC 5280 invalidityDate).
    let out = Command::new("openssl")
        .args(["crl", "-noout", "-text", "-in"])
        .arg(&pem_crl)
        .output()
        .unwrap();
    let crl_text = text(&out);
    assert!(
        crl_text.contains("Invalidity Date") && crl_text.contains("Jan  2 03:04:05 2024 GMT"),
        "{crl_text}"
    );
    let out = root.cli(&["ca", "list", "--json"]);
    assert!(text(&out).contains("\"nextCrlNumber\""), "{}", text(&out));

    // OCSP: good / revoked / unknown by default ...
    let server = root.serve();
    let answer = ocsp(&legacy, &server);
    assert!(answer.contains("Response verify OK"), "{answer}");
    assert!(answer.contains("good.pem: good"), "{answer}");
    assert!(
        answer.contains("revoked.pem: revoked") && answer.contains("Reason: keyCompromise"),
        "{answer}"
    );
    assert!(
        answer.contains("held.pem: revoked") && answer.contains("Reason: certificateHold"),
        "{answer}"
    );
    assert!(answer.contains("0x7777: unknown"), "{answer}");
    drop(server);

    // ... and `revoked` for a never-seen serial once unknown_serials says so.
    let toml = root.file("conf/gateway.toml");
    let config = std::fs::read_to_string(&toml).unwrap();
    let config = config.replacen(
        "name = \"legacy\"",
        "name = \"legacy\"\nunknown_serials = \"revoked\"",
        1,
    );
    std::fs::write(&toml, config).unwrap();
    let server = root.serve();
    let answer = ocsp(&legacy, &server);
    assert!(answer.contains("good.pem: good"), "{answer}");
    assert!(answer.contains("0x7777: revoked"), "{answer}");
}
