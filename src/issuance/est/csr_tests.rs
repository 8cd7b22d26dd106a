//! CSR reading: test vectors made once with `openssl req` (EC P-256 with a DNS SAN, RSA-2048,
//! EC P-521).
#![allow(clippy::unwrap_used, clippy::panic)]

use base64::Engine;

use super::*;

const EC: &str = "MIIBDDCBswIBADAiMQ4wDAYDVQQDDAVkZXYtMTEQMA4GA1UECgwHRXhhbXBsZTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABJ2G6brCU1DaiaRO3GnSD0XjKIW7JW6HP3k1PofErqe4nPjK/Enavz9P4thizqQnPYR7ihq1ArXQcWP+8FBdqm2gLzAtBgkqhkiG9w0BCQ4xIDAeMBwGA1UdEQQVMBOCEWRldi0xLmV4YW1wbGUuY29tMAoGCCqGSM49BAMCA0gAMEUCIQDwyHKL88bSJF7Q59PX3Y8Bk6xJamvDKgR8qs0s1W4UBQIgaKdLjgNckJclfSkhd5mQxxdOoMLHSM7j/Pdj7sGtnOs=";
const RSA: &str = "MIICVzCCAT8CAQAwEjEQMA4GA1UEAwwHcnNhLWRldjCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAMx7MW5zdfm6HpPej9NdWzpzo3L6u6bGQGarMDYIIjylBXhrfK+iF80bLBDq25GEDVuSKzNlfsTG9rjvReRxaiKOiEnciuKgmX/IdTD5A5OWj7OMeA5vQtukHMZ5fNfKQmly+bmOM+ynofWloviPpfSfzw8G2lSrBqY+9rdtAY6r1KDg6huTEwCsEtdxvHw7d9XESgR3b/F9HsucOKeblI/q2quItrj3aggiY1vL2jGv3/xY42TKv+7xafLUSjQCQ5bfaYOXAlyjAWyuUajoRbhcUTxJXfC6Ee3Y1TqeHItdM+wK6CYK2w73JBSRr56TV6D1tPPJYly/3T2PvBZeBc8CAwEAAaAAMA0GCSqGSIb3DQEBCwUAA4IBAQAnDqiQjoTMaj4ZiYpLzCycLqHd+puSmGQ4Hgw4LSr7fMspkJqsJBHItWZ9k148Gl1I4HqWExDUcjJQh9ixDEmd5QMCf2Y57Lc7f1/GmscevnNmohCofU4PycG01qzt8lAsK80XCyThny9Y2HI5PMuD69i83syKQ1iIEpaGpCViaakWwmbxhFDtyPdS9MF2hyGSszz+UCQjMzpDOLl1xBnbJwEcB5frfvw8372uu5Z5eyUFI0tMvs+hzsDIq7E+NHMGAjUyRUNgi1os9fyHFw84amFJ8MC23Nj/77tVZbyx9ozjMdjrZ2wSiovShmh9h10QraovqRUYWs1Pa0U2q8EO";
const P521: &str = "MIIBUjCBtAIBADAPMQ0wCwYDVQQDDARwNTIxMIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQBmS9s6NpDK4YoZev4nvoCD9HhlPhNMUhHQE3RIGw5i05AfBEB54AE1NEOB6YCMT6Nf5yrr2Pf+Nx8NrWUaDr0mggAy04m2oASO8ee8eiahXXq7/0+XyxlOZcsLuWOUzzkemXGPnGIUPOYPwcDMGine1LNTTuPkMSGwEqxkrzlFcp9iTmgADAKBggqhkjOPQQDAgOBjAAwgYgCQgFe1Jy6CNy0VujedjsFQzNcKjuJFk45uTDZjhyQha7MhQUYK9zTIULqfeLu1Vm/VRX7/1M/+wtXRcl7q6hw4y8DnQJCAR0fMdS28cwXXXjTIli4QOMxHG2b7RLBBOyLfEEvsgt1hjmkJhUFZv8YErozzWU2BgV5HPOYJNsDk4L/iOlLfJ+O";

fn der(b64: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

#[test]
fn ec_request_with_san_verifies() {
    let csr = parse(&der(EC)).unwrap();
    assert!(csr.possession.is_ok());
    assert_eq!(csr.key_type, Some(KeyType::EcP256));
    assert_eq!(csr.decrypt_key, Ok(None));
    let cn = csr
        .facts
        .subject
        .iter()
        .find(|(a, _)| a.name() == "commonname");
    assert_eq!(cn.map(|(_, v)| v.as_str()), Some("dev-1"));
    assert_eq!(csr.facts.sans.len(), 1);
    assert_eq!(csr.facts.sans[0].1, "dev-1.example.com");
}

#[test]
fn rsa_request_verifies_and_has_its_size() {
    let csr = parse(&der(RSA)).unwrap();
    assert!(csr.possession.is_ok());
    assert_eq!(csr.key_type, Some(KeyType::Rsa2048));
}

#[test]
fn other_curves_are_named_and_not_verified() {
    let csr = parse(&der(P521)).unwrap();
    assert_eq!(csr.key_type, None);
    assert!(
        describe_key(&csr).contains("1.3.132.0.35"),
        "{}",
        describe_key(&csr)
    );
    assert!(csr.possession.is_err());
}

#[test]
fn a_changed_request_has_no_proof_of_possession() {
    let mut bytes = der(EC);
    // The subject's last letter: still DER, no longer what was signed.
    let at = bytes.windows(5).position(|w| w == b"dev-1").unwrap();
    bytes[at + 4] = b'2';
    let csr = parse(&bytes).unwrap();
    assert!(csr.possession.unwrap_err().contains("proof of possession"));
}

#[test]
fn junk_and_oversize_are_refused() {
    assert!(parse(b"junk").is_err());
    assert!(parse(&vec![0x30; MAX_CSR_BYTES + 1]).is_err());
}

/// `openssl req` with `1.2.840.113549.1.9.16.2.54 = 0A:1B:2C` in its attributes section (a
/// UTF8String), and with that and `1.2.840.113549.1.9.16.2.37 = key-1` both.
const ASYMMETRIC_TEXT: &str = "MIHoMIGPAgEAMBIxEDAOBgNVBAMMB2Rldi1lbmMwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAT1tTHIpv95/2x3PNEfT5PzervXtL54DOpvGYLhIu+jnEJt0hgPQir2v0gabc4z7o/yLVnH6LsXAWsrKBa2cSz4oBswGQYLKoZIhvcNAQkQAjYxCgwIMEE6MUI6MkMwCgYIKoZIzj0EAwIDSAAwRQIhAMZXPqSFlVdoLAfJdi2wY5nnCoYf0oH2xbuWdtID0ls4AiBDUHOcxd85khnhW8qmHNTgJ8yUcyZwy4QEDrlZ+nLw+g==";
const BOTH: &str = "MIH/MIGnAgEAMBIxEDAOBgNVBAMMB2Rldi1lbmMwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAT1tTHIpv95/2x3PNEfT5PzervXtL54DOpvGYLhIu+jnEJt0hgPQir2v0gabc4z7o/yLVnH6LsXAWsrKBa2cSz4oDMwFgYLKoZIhvcNAQkQAiUxBwwFa2V5LTEwGQYLKoZIhvcNAQkQAjYxCgwIMEE6MUI6MkMwCgYIKoZIzj0EAwIDRwAwRAIgUTo85pyNqFkKCaCyUKm/pJvHUDaWdPJdBU5Y0GBpoksCID3QTCinYskfqWcgPNEby1YUKknKoTr+5uK/xuN9sHJR";

#[test]
fn decrypt_key_identifiers_are_read() {
    let csr = parse(&der(ASYMMETRIC_TEXT)).unwrap();
    let Ok(Some(DecryptKey::Asymmetric(id))) = &csr.decrypt_key else {
        panic!("{:?}", csr.decrypt_key);
    };
    assert!(id.text);
    assert_eq!(id.shown(), "0A:1B:2C");
    // Text is matched as the hex of the key identifier (colons and case aside) …
    assert!(id.names(&[0x0a, 0x1b, 0x2c]));
    assert!(!id.names(&[0x0a, 0x1b]));
    // … an OCTET STRING by its bytes.
    let raw = KeyId {
        bytes: vec![0x0a, 0x1b, 0x2c],
        text: false,
    };
    assert!(raw.names(&[0x0a, 0x1b, 0x2c]));
    assert_eq!(raw.shown(), "0a1b2c");
    let hex_bytes = KeyId {
        bytes: b"0a1b2c".to_vec(),
        text: false,
    };
    assert!(!hex_bytes.names(&[0x0a, 0x1b, 0x2c]));
    // Both forms at once: refused, naming the rule.
    let csr = parse(&der(BOTH)).unwrap();
    assert!(csr.decrypt_key.unwrap_err().contains("more than once"));
}
