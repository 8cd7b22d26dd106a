//! PKCS#12 soft tokens: the profiles, which key comes first, and the entries; the encoding is
//! in `pfx.rs` (same algorithms and layout as p12-keystore, which we used before; why our own
//! is explained there).

use std::fmt;
use std::str::FromStr;

use const_oid::ObjectIdentifier;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use super::{GeneratedKey, Pin, TokenError, pfx};

/// PKCS#12 profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pkcs12Profile {
    /// PBES2 / PBKDF2-HMAC-SHA256 / AES-256-CBC for both bags, HMAC-SHA256 MAC.
    Modern,
    /// pbeWithSHAAnd3-KeyTripleDES-CBC for both bags, HMAC-SHA1 MAC. Never RC2: OpenSSL 3
    /// reads it only with its legacy provider.
    Legacy,
    /// The encryption of `Modern`, with a PBMAC1 MAC (RFC 9579: PBKDF2-HMAC-SHA256 key,
    /// HMAC-SHA256): no PKCS#12 KDF in the file, for FIPS-minded relying parties. Needs a
    /// reader that knows PBMAC1 (OpenSSL 3.4 and later).
    Pbmac1,
}

impl Pkcs12Profile {
    /// The name used in configuration and in the form field `profile`.
    pub fn name(self) -> &'static str {
        match self {
            Pkcs12Profile::Modern => "modern",
            Pkcs12Profile::Legacy => "legacy",
            Pkcs12Profile::Pbmac1 => "pbmac1",
        }
    }
}

impl fmt::Display for Pkcs12Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Pkcs12Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "modern" => Ok(Pkcs12Profile::Modern),
            "legacy" => Ok(Pkcs12Profile::Legacy),
            "pbmac1" => Ok(Pkcs12Profile::Pbmac1),
            other => Err(format!(
                "unknown PKCS#12 profile `{other}`; expected `modern`, `legacy` or `pbmac1`"
            )),
        }
    }
}

/// One key with its certificate and the CA chain above it.
pub struct TokenEntry<'a> {
    /// `friendlyName` of the key bag and of its certificate bag: `<commonname> <purpose>`.
    /// Any Unicode text (characters outside the BMP are written as UTF-16 surrogate pairs).
    pub friendly_name: String,
    pub key: &'a GeneratedKey,
    /// The leaf certificate, DER.
    pub certificate_der: &'a [u8],
    /// The issuing CA first, up to the root, DER.
    pub chain: &'a [Vec<u8>],
}

/// Writes a PKCS#12 holding every entry (key, certificate) and the CA certificates of all
/// chains, each once, encrypted under the PIN. The key and certificate fit for TLS client
/// authentication come first (see [`client_auth_rank`]): Java's SunX509 key manager,
/// OpenSSL's `PKCS12_parse` and pyca's `load_key_and_certificates` take the first key. The
/// certificate bag of each key carries the key's friendlyName and localKeyId (SHA-1 of the
/// certificate, as OpenSSL and Windows write it). CPU-bound (PBKDF2): call from a blocking
/// thread. The encoder is ours (`pfx.rs` says why).
pub fn write_pkcs12(
    entries: &[TokenEntry<'_>],
    pin: &Pin,
    profile: Pkcs12Profile,
    iterations: u32,
) -> Result<Vec<u8>, TokenError> {
    let mut ordered: Vec<&TokenEntry<'_>> = entries.iter().collect();
    // Stable: equal ranks keep the token procedure's order.
    ordered.sort_by_key(|entry| client_auth_rank(entry.certificate_der));
    let local_key_ids: Vec<Vec<u8>> = ordered
        .iter()
        .map(|entry| Sha1::digest(entry.certificate_der).to_vec())
        .collect();
    let keys: Vec<pfx::KeyAndCertificate<'_>> = ordered
        .iter()
        .zip(&local_key_ids)
        .map(|(entry, id)| pfx::KeyAndCertificate {
            friendly_name: &entry.friendly_name,
            local_key_id: id,
            pkcs8: entry.key.pkcs8_der(),
            certificate: entry.certificate_der,
        })
        .collect();
    // Every CA certificate once, in chain order (issuing CA before the root).
    let mut cas: Vec<&[u8]> = Vec::new();
    for entry in &ordered {
        for ca in entry.chain {
            let ca = ca.as_slice();
            if !cas.contains(&ca) && !ordered.iter().any(|e| e.certificate_der == ca) {
                cas.push(ca);
            }
        }
    }
    let protection = match profile {
        Pkcs12Profile::Modern => pfx::Protection::Modern,
        Pkcs12Profile::Legacy => pfx::Protection::Legacy,
        Pkcs12Profile::Pbmac1 => pfx::Protection::Pbmac1,
    };
    Ok(pfx::encode(
        &keys,
        &cas,
        pin.expose(),
        protection,
        iterations,
    )?)
}

/// How fit a certificate is for TLS client authentication, lower first: 0 with
/// extendedKeyUsage clientAuth (or anyExtendedKeyUsage), 1 without extendedKeyUsage but with
/// keyUsage digitalSignature (or no keyUsage), 2 otherwise (e.g. a nonRepudiation-only signing
/// certificate, or one restricted to other purposes).
pub fn client_auth_rank(certificate_der: &[u8]) -> u8 {
    use const_oid::db::rfc5280::{
        ANY_EXTENDED_KEY_USAGE as ANY_EKU, ID_KP_CLIENT_AUTH as CLIENT_AUTH,
    };
    use der::Decode;
    use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, KeyUsages};
    let Ok(certificate) = x509_cert::Certificate::from_der(certificate_der) else {
        return 2;
    };
    let extensions = certificate.tbs_certificate().extensions();
    let find = |oid: ObjectIdentifier| {
        extensions
            .into_iter()
            .flatten()
            .find(|e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes().to_vec())
    };
    let digital_signature = match find(const_oid::db::rfc5280::ID_CE_KEY_USAGE) {
        None => true,
        Some(bytes) => {
            KeyUsage::from_der(&bytes).is_ok_and(|ku| ku.0.contains(KeyUsages::DigitalSignature))
        }
    };
    if !digital_signature {
        return 2;
    }
    match find(const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE) {
        None => 1,
        Some(bytes) => match ExtendedKeyUsage::from_der(&bytes) {
            Ok(eku) if eku.0.iter().any(|o| *o == CLIENT_AUTH || *o == ANY_EKU) => 0,
            _ => 2,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use p12_keystore::Pkcs12Archive;
    use x509_cert::ext::pkix::{KeyUsage, KeyUsages};

    use super::*;
    use crate::ca::{
        Attribute, CertificateProfile, FileSigner, Subject, issue_certificate,
        parse_extended_key_usage,
    };
    use crate::token::{KeyType, generate_key};

    /// A self-signed CA, an intermediate below it, and two leaves below that: `authentication`
    /// (digitalSignature, clientAuth) and `signing` (nonRepudiation).
    struct Fixture {
        root: Vec<u8>,
        intermediate: Vec<u8>,
        keys: Vec<GeneratedKey>,
        leaves: Vec<Vec<u8>>,
    }

    fn certificate(
        issuer: Option<(&[u8], &FileSigner)>,
        own: &GeneratedKey,
        cn: &str,
        ca: bool,
        key_usage: KeyUsage,
        eku: &[ObjectIdentifier],
    ) -> Vec<u8> {
        use der::Decode;
        let subject = Subject {
            values: vec![(Attribute::CommonName, cn.into())],
        };
        let profile = CertificateProfile {
            subject: &subject,
            subject_order: &[Attribute::CommonName],
            spki_der: own.spki_der(),
            validity: Duration::from_secs(86_400),
            key_usage,
            extended_key_usage: eku,
            policies: &[],
            ip_addresses: &[],
            ca: ca.then_some(None),
            published: None,
        };
        let self_signer = FileSigner::from_pkcs8("test", own.pkcs8_der()).unwrap();
        let (issuer_name, issuer_id, signer) = match issuer {
            Some((der, signer)) => {
                let c = x509_cert::Certificate::from_der(der).unwrap();
                let spki = c.tbs_certificate().subject_public_key_info();
                let id = Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec();
                (c.tbs_certificate().subject().clone(), id, signer)
            }
            None => {
                let spki = spki::SubjectPublicKeyInfoOwned::from_der(own.spki_der()).unwrap();
                let id = Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec();
                let name: x509_cert::name::Name = format!("CN={cn}").parse().unwrap();
                (name, id, &self_signer)
            }
        };
        issue_certificate(&issuer_name, &issuer_id, signer, &profile)
            .unwrap()
            .der
    }

    fn fixture() -> Fixture {
        let ca_usage = KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign);
        let root_key = generate_key(KeyType::EcP256).unwrap();
        let root_signer = FileSigner::from_pkcs8("root", root_key.pkcs8_der()).unwrap();
        let root = certificate(None, &root_key, "Root", true, ca_usage, &[]);
        let mid_key = generate_key(KeyType::EcP256).unwrap();
        let mid_signer = FileSigner::from_pkcs8("mid", mid_key.pkcs8_der()).unwrap();
        let intermediate = certificate(
            Some((&root, &root_signer)),
            &mid_key,
            "Issuing",
            true,
            ca_usage,
            &[],
        );
        let auth_key = generate_key(KeyType::EcP256).unwrap();
        let sign_key = generate_key(KeyType::EcP256).unwrap();
        let client_auth = [parse_extended_key_usage("clientAuth").unwrap()];
        let auth = certificate(
            Some((&intermediate, &mid_signer)),
            &auth_key,
            "Alice",
            false,
            KeyUsage(KeyUsages::DigitalSignature.into()),
            &client_auth,
        );
        let signing = certificate(
            Some((&intermediate, &mid_signer)),
            &sign_key,
            "Alice",
            false,
            KeyUsage(KeyUsages::NonRepudiation.into()),
            &[],
        );
        Fixture {
            root,
            intermediate,
            keys: vec![sign_key, auth_key],
            leaves: vec![signing, auth],
        }
    }

    /// Entries in the order signing, authentication (the writer must reorder them).
    fn entries<'a>(f: &'a Fixture, chain: &'a [Vec<u8>], cn: &str) -> Vec<TokenEntry<'a>> {
        ["signing", "authentication"]
            .iter()
            .zip(f.keys.iter().zip(&f.leaves))
            .map(|(purpose, (key, leaf))| TokenEntry {
                friendly_name: format!("{cn} {purpose}"),
                key,
                certificate_der: leaf,
                chain,
            })
            .collect()
    }

    #[test]
    fn chain_once_named_certificate_bags_authentication_first() {
        let f = fixture();
        let chain = vec![f.intermediate.clone(), f.root.clone()];
        let entries = entries(&f, &chain, "Alice");
        for profile in [Pkcs12Profile::Modern, Pkcs12Profile::Legacy] {
            let pin = Pin::new("Secret-123".into());
            let p12 = write_pkcs12(&entries, &pin, profile, 2048).unwrap();
            let archive = Pkcs12Archive::from_pkcs12(&p12, "Secret-123").unwrap();

            let key_names: Vec<_> = archive
                .keys
                .iter()
                .map(|k| k.friendly_name.clone().unwrap())
                .collect();
            assert_eq!(
                key_names,
                ["Alice authentication", "Alice signing"],
                "{profile}"
            );
            assert_eq!(archive.keys[0].key.as_der(), f.keys[1].pkcs8_der());

            // Two leaves and each CA once: 4 certificate bags, no duplicates.
            let ders: Vec<&[u8]> = archive.certs.iter().map(|c| c.cert.as_der()).collect();
            assert_eq!(
                ders,
                [
                    f.leaves[1].as_slice(),
                    f.leaves[0].as_slice(),
                    f.intermediate.as_slice(),
                    f.root.as_slice()
                ]
            );
            // Certificate bags carry their key's friendlyName and localKeyId.
            for (key, cert) in archive.keys.iter().zip(&archive.certs) {
                assert_eq!(cert.friendly_name, key.friendly_name);
                let id = key.local_key_id.as_ref().unwrap();
                assert_eq!(cert.local_key_id.as_deref(), Some(id.as_ref()));
                assert_eq!(id.as_ref(), Sha1::digest(cert.cert.as_der()).as_slice());
            }
            assert!(
                archive.certs[2..]
                    .iter()
                    .all(|c| c.friendly_name.is_none() && c.local_key_id.is_none())
            );
            // A wrong PIN fails the MAC.
            assert!(Pkcs12Archive::from_pkcs12(&p12, "Secret-124").is_err());
        }
    }

    #[test]
    fn names_outside_the_bmp_and_non_ascii_pins() {
        let f = fixture();
        let chain = vec![f.intermediate.clone(), f.root.clone()];
        let entries = entries(&f, &chain, "𠮷田 太郎");
        let pin = Pin::new("Pässwörd€1".into());
        let p12 = write_pkcs12(&entries, &pin, Pkcs12Profile::Modern, 2048).unwrap();
        // An independent reader verifies the MAC and decrypts both safes with that PIN.
        let archive = Pkcs12Archive::from_pkcs12(&p12, "Pässwörd€1").unwrap();
        assert_eq!(archive.keys.len(), 2);
        assert_eq!(archive.certs.len(), 4);
        // The key bags are in the clear: the name is there as UTF-16 with a surrogate pair.
        let expected: Vec<u8> = "𠮷田 太郎 authentication"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert!(expected.starts_with(&[0xD8, 0x42, 0xDF, 0xB7]));
        assert!(p12.windows(expected.len()).any(|w| w == expected));
    }

    /// The vendored OpenSSL of the `openssl-rsa` feature (3.4 or later) reads PBMAC1: the PIN
    /// opens the file with the authentication key first and the chain; a wrong PIN fails the
    /// MAC. (pyca/cryptography and Debian's OpenSSL 3.0 are tried by the end-to-end tests.)
    #[cfg(feature = "openssl-rsa")]
    #[test]
    fn pbmac1_opens_in_openssl_3_4_and_later() {
        use openssl::pkcs12::Pkcs12;
        let version = openssl::version::number();
        assert!(version >= 0x3040_0000, "{}", openssl::version::version());
        let f = fixture();
        let chain = vec![f.intermediate.clone(), f.root.clone()];
        let entries = entries(&f, &chain, "Alice");
        let pin = Pin::new("Secret-123".into());
        let p12 = write_pkcs12(&entries, &pin, Pkcs12Profile::Pbmac1, 2048).unwrap();
        let parsed = Pkcs12::from_der(&p12)
            .unwrap()
            .parse2("Secret-123")
            .unwrap();
        assert_eq!(parsed.cert.unwrap().to_der().unwrap(), f.leaves[1]);
        let key = parsed.pkey.unwrap();
        assert_eq!(key.public_key_to_der().unwrap(), f.keys[1].spki_der());
        assert_eq!(parsed.ca.unwrap().len(), 3);
        let Err(wrong) = Pkcs12::from_der(&p12).unwrap().parse2("Secret-124") else {
            panic!("a wrong PIN opened the file");
        };
        assert!(wrong.to_string().contains("mac verify failure"), "{wrong}");
    }

    #[test]
    fn client_auth_ranks() {
        let f = fixture();
        assert_eq!(client_auth_rank(&f.leaves[1]), 0, "clientAuth");
        assert_eq!(client_auth_rank(&f.leaves[0]), 2, "nonRepudiation only");
        assert_eq!(client_auth_rank(b"not a certificate"), 2);
    }
}
