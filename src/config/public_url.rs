//! `[server] public_url`: what relying parties use to reach the published CRLs, OCSP responder
//! and CA certificates. Checked, derived from a listener when absent, and compared with the
//! listeners so that a URL nobody can reach is warned about.

use std::net::SocketAddr;

/// Checks a `public_url`: an http:// or https:// URL in ASCII (it is written into certificates
/// as an IA5String URI) with a host.
pub fn check_public_url(url: &str) -> Result<(), String> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url.is_ascii()
        && !url
            .chars()
            .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
        && UrlHost::parse(url).is_some_and(|h| !h.host.is_empty());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{url}` is not an http:// or https:// URL with a host (ASCII, no spaces)"
        ))
    }
}

/// The public URL a listener gives: `http://<address>` (`https://` for the HTTPS listener).
/// An unspecified address (0.0.0.0, ::) names no host anybody can reach; the machine's host
/// name takes its place, and without one this is an error.
pub fn public_url_from_listener(addr: SocketAddr, https: bool) -> Result<String, String> {
    let scheme = if https { "https" } else { "http" };
    if !addr.ip().is_unspecified() {
        return Ok(format!("{scheme}://{addr}"));
    }
    match host_name() {
        Some(host) => Ok(format!("{scheme}://{host}:{}", addr.port())),
        None => Err(format!(
            "the listener {addr} is on every interface and this machine's host name is unknown: \
             set [server] public_url to the URL relying parties use"
        )),
    }
}

/// This machine's host name (Linux: the kernel's; else $HOSTNAME), if it is a plain DNS name.
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())?;
    let name = name.trim().to_string();
    let plain = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    plain.then_some(name)
}

/// Host and port of an http(s) URL (the port defaults to the scheme's).
#[derive(Debug, PartialEq, Eq)]
struct UrlHost {
    host: String,
    port: u16,
}

impl UrlHost {
    fn parse(url: &str) -> Option<UrlHost> {
        let (scheme, rest) = url.split_once("://")?;
        let default_port = match scheme {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let authority = rest.split(['/', '?', '#']).next()?;
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(p) => p.parse().ok()?,
            None => default_port,
        };
        Some(UrlHost {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    fn ip(&self) -> Option<std::net::IpAddr> {
        self.host.parse().ok()
    }

    fn is_loopback(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_loopback())
            || self.host == "localhost"
            || self.host.ends_with(".localhost")
    }
}

/// What is wrong with `public_url` as relying parties will meet it, given the addresses this
/// node listens on: an unspecified host; a loopback host while a listener is reachable from
/// other machines (every relying party would ask its own machine for CRLs and OCSP); a loopback
/// URL on a port nobody listens on; a remote host while every listener is loopback (then a
/// front must forward the published paths). Empty when nothing is suspicious.
/// `via_front`: the operator said a front at `public_url` forwards the revocation paths here
/// (`[server] public_url_via_front`), so a `public_url` that is not this node's is expected.
pub fn public_url_warnings(
    public_url: &str,
    listeners: &[SocketAddr],
    via_front: bool,
) -> Vec<String> {
    let mut warnings = Vec::new();
    let Some(url) = UrlHost::parse(public_url) else {
        return warnings;
    };
    let shown = listeners
        .iter()
        .map(SocketAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let reachable = listeners.iter().any(|a| !a.ip().is_loopback());
    if url.ip().is_some_and(|ip| ip.is_unspecified()) {
        warnings.push(format!(
            "[server] public_url = `{public_url}` names no host (an unspecified address): relying \
             parties cannot fetch CRLs, OCSP answers or CA certificates from it. Set it to the URL \
             they use, e.g. https://pki.example.com"
        ));
    } else if url.is_loopback() && reachable {
        warnings.push(format!(
            "[server] public_url = `{public_url}` is a loopback address, but this node listens on \
             {shown}: certificates issued now send every relying party to its own machine for CRLs, \
             OCSP answers and CA certificates, and revocation checks fail there. Set \
             [server] public_url to the URL relying parties use"
        ));
    } else if url.is_loopback()
        && !listeners.is_empty()
        && !listeners
            .iter()
            .any(|a| a.port() == url.port || a.port() == 0)
    {
        warnings.push(format!(
            "[server] public_url = `{public_url}` points at port {} of this machine, but this node \
             listens on {shown}: CRL, OCSP and CA-certificate URLs in certificates lead nowhere",
            url.port
        ));
    } else if !url.is_loopback() && !listeners.is_empty() && !reachable && !via_front {
        warnings.push(format!(
            "[server] public_url = `{public_url}` is not an address of this node, which listens on \
             {shown} (loopback only): make sure the front at {} forwards /pgwy/crl/, /pgwy/ocsp \
             and /pgwy/ca/ to this node, or relying parties cannot check revocation (then set \
             [server] public_url_via_front = true to say so)",
            url.host
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_urls() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            public_url_from_listener(addr("10.0.0.5:8080"), false).unwrap(),
            "http://10.0.0.5:8080"
        );
        assert_eq!(
            public_url_from_listener(addr("[2001:db8::1]:443"), true).unwrap(),
            "https://[2001:db8::1]:443"
        );
        // 0.0.0.0 is never written into a certificate.
        if let Ok(url) = public_url_from_listener(addr("0.0.0.0:8080"), false) {
            assert!(!url.contains("0.0.0.0") && url.ends_with(":8080"), "{url}");
        }
    }

    #[test]
    fn url_hosts() {
        let h = UrlHost::parse("https://user@[::1]:8443/x").unwrap();
        assert_eq!((h.host.as_str(), h.port), ("::1", 8443));
        assert!(h.is_loopback());
        let h = UrlHost::parse("http://PKI.example.com").unwrap();
        assert_eq!((h.host.as_str(), h.port), ("pki.example.com", 80));
        assert!(!h.is_loopback());
        assert!(UrlHost::parse("http://localhost:1/").unwrap().is_loopback());
        assert_eq!(UrlHost::parse("http://h:notaport"), None);
        assert!(check_public_url("http://").is_err());
        assert!(check_public_url("https://pki.example.com/base").is_ok());
    }

    #[test]
    fn public_url_warnings_catch_mismatches() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        // The default: loopback URL, loopback listener on the same port. Fine.
        assert!(
            public_url_warnings("http://127.0.0.1:8080", &[addr("127.0.0.1:8080")], false)
                .is_empty()
        );
        // Loopback URL while the node is reachable from elsewhere.
        let w = public_url_warnings("http://127.0.0.1:8080", &[addr("0.0.0.0:8080")], false);
        assert!(w.len() == 1 && w[0].contains("loopback"), "{w:?}");
        let w = public_url_warnings("http://localhost:8080", &[addr("10.0.0.5:8080")], false);
        assert!(w.len() == 1 && w[0].contains("loopback"), "{w:?}");
        // Unspecified host.
        let w = public_url_warnings("http://0.0.0.0:8080", &[addr("0.0.0.0:8080")], false);
        assert!(w.len() == 1 && w[0].contains("names no host"), "{w:?}");
        // Loopback URL on a port nobody listens on.
        let w = public_url_warnings("http://127.0.0.1:8080", &[addr("127.0.0.1:9000")], false);
        assert!(w.len() == 1 && w[0].contains("port 8080"), "{w:?}");
        // The other way round: a remote URL, loopback listeners (a front must forward).
        let w = public_url_warnings("https://pki.example.com", &[addr("127.0.0.1:8080")], false);
        assert!(w.len() == 1 && w[0].contains("forwards"), "{w:?}");
        // A remote URL and a reachable listener: nothing to say.
        // Acknowledged: the front at public_url forwards the revocation paths.
        assert!(
            public_url_warnings("https://pki.example.com", &[addr("127.0.0.1:8080")], true)
                .is_empty()
        );
        assert!(
            public_url_warnings("https://pki.example.com", &[addr("10.0.0.5:8443")], false)
                .is_empty()
        );
    }
}
