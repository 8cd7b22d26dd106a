//! The demo CA hierarchy written by `init` / first `serve`: `root` → `issuing` (user tokens)
//! and `root` → `officers` (officer client certificates), plus a TLS server certificate. Keys
//! are written with mode 0600. For evaluation only: a production deployment brings its own CA
//! (docs in README). With a public URL, every certificate below the root carries the root's
//! CRL distribution point and AIA caIssuers, so whole-chain revocation checking works.

use std::path::{Path, PathBuf};
use std::time::Duration;

use der::Decode;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{KeyUsage, KeyUsages};
use x509_cert::name::Name;

use super::hierarchy::{CaSubject, Hierarchy};
use super::{
    CaError, CertificateProfile, FileSigner, PublishedUrls, Signer, issue_certificate,
    write_private_key_pem,
};
use crate::token::{KeyType, generate_key};

const YEAR: u64 = 365 * 24 * 3600;

/// The organisation (O) in the subject of every demo CA certificate. It is how a demo CA is
/// recognised later (`serve` warns on every start while one is configured): it travels with
/// the certificate, so a copied or renamed demo CA is still recognised, and no CA of an
/// operator's own is named like this.
pub const DEMO_ORGANIZATION: &str = "ast-gateway demo";

/// True when the certificate (DER) is a demo CA's: its subject's organisation is
/// [`DEMO_ORGANIZATION`].
pub fn is_demo_certificate(der: &[u8]) -> bool {
    use der::{Decode, Tag, Tagged};
    x509_cert::Certificate::from_der(der).is_ok_and(|certificate| {
        certificate.tbs_certificate().subject().iter().any(|a| {
            a.oid == const_oid::db::rfc4519::O
                && matches!(
                    a.value.tag(),
                    Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::NumericString
                )
                && a.value.value() == DEMO_ORGANIZATION.as_bytes()
        })
    })
}

/// True when a TLS certificate chain file (PEM) holds a demo CA certificate or a certificate a
/// demo CA issued (the `localhost` certificate `init` writes): `serve` warns while it is served.
pub fn is_demo_tls_chain(pem: &[u8]) -> bool {
    let demo = |name: &x509_cert::name::Name| {
        name.iter().any(|a| {
            a.oid == const_oid::db::rfc4519::O && a.value.value() == DEMO_ORGANIZATION.as_bytes()
        })
    };
    x509_cert::Certificate::load_pem_chain(pem).is_ok_and(|chain| {
        chain.iter().any(|c| {
            let tbs = c.tbs_certificate();
            demo(tbs.subject()) || demo(tbs.issuer())
        })
    })
}

/// Where the demo files went (paths relative to the root's parent are not used: all absolute).
#[derive(Debug, Clone)]
pub struct DemoCa {
    pub root_cert: PathBuf,
    pub issuing_cert: PathBuf,
    pub officers_cert: PathBuf,
}

struct Made {
    /// The CA's configured name (`root`, …): the URLs of what it issues name it.
    ca_name: String,
    name: Name,
    key_id: Vec<u8>,
    signer: FileSigner,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> CaError + '_ {
    move |e| CaError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn make_ca(
    dir: &Path,
    file: &str,
    names: &CaSubject,
    key_type: KeyType,
    parent: Option<(&Made, Option<&str>)>,
    years: u64,
) -> Result<Made, CaError> {
    let key = generate_key(key_type).map_err(|e| CaError::Encoding(e.to_string()))?;
    let signer = FileSigner::from_pkcs8(file, key.pkcs8_der()).map_err(CaError::Encoding)?;
    let (subject, order) = (&names.subject, names.order.as_slice());
    let key_usage =
        KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign | KeyUsages::DigitalSignature);
    let profile = CertificateProfile {
        subject,
        subject_order: order,
        spki_der: key.spki_der(),
        validity: Duration::from_secs(years * YEAR),
        key_usage,
        extended_key_usage: &[],
        policies: &[],
        ip_addresses: &[],
        ca: Some(if parent.is_some() { Some(0) } else { None }),
        published: parent.and_then(|(p, public_url)| {
            // The embedded configuration has the OCSP responder on.
            public_url.map(|url| PublishedUrls::for_parent_ca(url, &p.ca_name, true))
        }),
    };
    // Self-signed: issuer = own subject, AKI = own key identifier.
    let issued = match parent {
        Some((p, _)) => issue_certificate(&p.name, &p.key_id, &p.signer, &profile)?,
        None => {
            let own_id = sha1_key_id(key.spki_der())?;
            let name = super::certificate::encode_subject(subject, order)?;
            issue_certificate(&name, &own_id, &signer, &profile)?
        }
    };
    let cert = Certificate::from_der(&issued.der)?;
    let key_path = dir.join(format!("{file}.key"));
    write_private_key_pem(&key_path, key.pkcs8_der()).map_err(io(&key_path))?;
    let cert_path = dir.join(format!("{file}.pem"));
    std::fs::write(&cert_path, super::pem_certificate(&issued.der)).map_err(io(&cert_path))?;
    Ok(Made {
        ca_name: file.to_string(),
        name: cert.tbs_certificate().subject().clone(),
        key_id: super::certificate::subject_key_identifier(&cert)?,
        signer,
    })
}

fn sha1_key_id(spki_der: &[u8]) -> Result<Vec<u8>, CaError> {
    use sha1::Digest;
    let spki = spki::SubjectPublicKeyInfoOwned::from_der(spki_der)?;
    Ok(sha1::Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec())
}

/// Writes the demo hierarchy into `dir` (created if missing), without published URLs (a
/// stand-alone hierarchy, e.g. a foreign CA in tests). Refuses to overwrite.
pub fn write_demo_hierarchy(dir: &Path) -> Result<DemoCa, CaError> {
    write_published_demo_hierarchy(dir, None)
}

/// Writes the demo hierarchy into `dir` (created if missing). With `public_url`, `issuing` and
/// `officers` carry the root's CRL distribution point and AIA caIssuers under it (the names
/// match the `[[ca]]` names of the default configuration). Refuses to overwrite.
pub fn write_published_demo_hierarchy(
    dir: &Path,
    public_url: Option<&str>,
) -> Result<DemoCa, CaError> {
    write_hierarchy(dir, public_url, &Hierarchy::demo())
}

/// Writes the three CAs of `hierarchy` into `dir` as the demo hierarchy is written (same key
/// types and lifetimes, the same published URLs; files `NAME.pem` and `NAME.key` by the CA
/// names): `init` with an operator's own names and DNs.
pub fn write_hierarchy(
    dir: &Path,
    public_url: Option<&str>,
    hierarchy: &Hierarchy,
) -> Result<DemoCa, CaError> {
    let names = &hierarchy.names;
    names.check().map_err(CaError::Encoding)?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let root = make_ca(dir, &names.root, &hierarchy.root, KeyType::EcP384, None, 20)?;
    let below = Some((&root, public_url));
    make_ca(
        dir,
        &names.issuing,
        &hierarchy.issuing,
        KeyType::EcP256,
        below,
        10,
    )?;
    make_ca(
        dir,
        &names.officers,
        &hierarchy.officers,
        KeyType::EcP256,
        below,
        10,
    )?;
    Ok(DemoCa {
        root_cert: dir.join(format!("{}.pem", names.root)),
        issuing_cert: dir.join(format!("{}.pem", names.issuing)),
        officers_cert: dir.join(format!("{}.pem", names.officers)),
    })
}

/// Writes a TLS server certificate for `localhost` signed by the root CA `root_name` of
/// `ca_dir` (`NAME.pem`, `NAME.key`), with the root in the chain file, and its key (0600). With
/// `public_url` it carries the root's CRL distribution point and AIA caIssuers. Returns the
/// certificate (DER), to be recorded once the database exists.
pub fn write_self_signed_tls(
    ca_dir: &Path,
    tls_dir: &Path,
    public_url: Option<&str>,
    root_name: &str,
) -> Result<Vec<u8>, CaError> {
    std::fs::create_dir_all(tls_dir).map_err(io(tls_dir))?;
    let root_pem_path = ca_dir.join(format!("{root_name}.pem"));
    let root_der = super::read_certificate_file(&root_pem_path)?;
    let root_cert = Certificate::from_der(&root_der)?;
    let root_signer = FileSigner::from_file(&ca_dir.join(format!("{root_name}.key")))?;
    let names = super::TlsServerNames {
        dns: vec!["localhost".into()],
        ips: Vec::new(),
    };
    let made = super::issue_tls_server_certificate(
        root_cert.tbs_certificate().subject(),
        &super::certificate::subject_key_identifier(&root_cert)?,
        &root_signer as &dyn Signer,
        &names,
        Duration::from_secs(2 * YEAR),
        public_url.map(|url| PublishedUrls::for_ca(url, root_name, false)),
    )?;
    let issued = made.issued;
    let key_path = tls_dir.join("server.key");
    write_private_key_pem(&key_path, &made.pkcs8_der).map_err(io(&key_path))?;
    let cert_path = tls_dir.join("server.pem");
    let chain = format!(
        "{}{}",
        super::pem_certificate(&issued.der),
        super::pem_certificate(&root_der)
    );
    std::fs::write(&cert_path, chain).map_err(io(&cert_path))?;
    Ok(issued.der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_certificates_are_recognised_by_their_organisation() {
        let dir = tempfile::tempdir().unwrap();
        let demo = write_demo_hierarchy(dir.path()).unwrap();
        for path in [&demo.root_cert, &demo.issuing_cert, &demo.officers_cert] {
            let der = super::super::read_certificate_file(path).unwrap();
            assert!(is_demo_certificate(&der), "{}", path.display());
        }
        let key = generate_key(KeyType::EcP256).unwrap();
        let signer = FileSigner::from_pkcs8("own", key.pkcs8_der()).unwrap();
        for organization in [Some("Example AB"), None, Some("ast-gateway demo (not)")] {
            let own = super::super::issue_ca_certificate(
                None,
                &signer,
                "Example Root CA",
                organization,
                Duration::from_secs(YEAR),
                None,
            )
            .unwrap();
            assert!(!is_demo_certificate(&own.der), "{organization:?}");
        }
        assert!(!is_demo_certificate(b"not a certificate"));
    }
}
