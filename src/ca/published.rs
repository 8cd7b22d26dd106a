//! Where a CA publishes what relying parties fetch while they validate a certificate it issued:
//! its CRL (CRL distribution point), its own certificate (AIA caIssuers) and the OCSP responder
//! (AIA OCSP). The one place these URLs are built; the HTTP routes serve exactly these paths.

/// The URLs written into a certificate issued by one CA: they point at the *issuing* CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedUrls {
    /// `<public_url>/pgwy/crl/<ca>.crl` (DER CRL).
    pub crl: String,
    /// `<public_url>/pgwy/ca/<ca>.cer` (the CA certificate, DER).
    pub ca_issuers: String,
    /// `<public_url>/pgwy/ocsp`, when the OCSP responder is on (it answers for user, officer
    /// and subordinate CA certificates).
    pub ocsp: Option<String>,
}

impl PublishedUrls {
    /// The URLs of CA `ca_name` under `public_url` (trailing `/` ignored). The CA name is
    /// percent-encoded as a path segment, so any configured name gives a valid URI.
    pub fn for_ca(public_url: &str, ca_name: &str, ocsp: bool) -> Self {
        let base = public_url.trim_end_matches('/');
        let name = percent_encoding::utf8_percent_encode(ca_name, SEGMENT).to_string();
        PublishedUrls {
            crl: format!("{base}/pgwy/crl/{name}.crl"),
            ca_issuers: format!("{base}/pgwy/ca/{name}.cer"),
            ocsp: ocsp.then(|| format!("{base}/pgwy/ocsp")),
        }
    }

    /// The URLs a CA certificate below a parent carries: the parent's CRL and caIssuers, and
    /// the OCSP responder when it is on (it answers for subordinate CA certificates, so a
    /// whole-chain OCSP check such as nginx `ssl_ocsp on` finds a URL in every certificate).
    pub fn for_parent_ca(public_url: &str, parent_name: &str, ocsp: bool) -> Self {
        Self::for_ca(public_url, parent_name, ocsp)
    }
}

/// Everything but RFC 3986 unreserved characters is encoded in a path segment.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::PublishedUrls;

    #[test]
    fn urls_point_at_the_issuing_ca() {
        let urls = PublishedUrls::for_ca("https://pki.example.com/", "issuing", true);
        assert_eq!(urls.crl, "https://pki.example.com/pgwy/crl/issuing.crl");
        assert_eq!(
            urls.ca_issuers,
            "https://pki.example.com/pgwy/ca/issuing.cer"
        );
        assert_eq!(
            urls.ocsp.as_deref(),
            Some("https://pki.example.com/pgwy/ocsp")
        );
        let parent = PublishedUrls::for_parent_ca("http://10.1.2.3:8080", "root", true);
        assert_eq!(parent.crl, "http://10.1.2.3:8080/pgwy/crl/root.crl");
        assert_eq!(
            parent.ocsp.as_deref(),
            Some("http://10.1.2.3:8080/pgwy/ocsp")
        );
        let off = PublishedUrls::for_parent_ca("http://10.1.2.3:8080", "root", false);
        assert_eq!(off.ocsp, None);
    }

    #[test]
    fn odd_ca_names_stay_one_ascii_path_segment() {
        let urls = PublishedUrls::for_ca("http://h", "Sub CA/2 ö", false);
        assert_eq!(urls.crl, "http://h/pgwy/crl/Sub%20CA%2F2%20%C3%B6.crl");
        assert!(urls.ca_issuers.is_ascii());
    }
}
