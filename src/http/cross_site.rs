//! Cross-site request forgery protection for `POST /pgwy/ast`.
//!
//! A token is minted in the session of whoever's browser sends the form, with the PIN the form
//! carries: a page on another site that makes a logged-in user's browser POST to the gateway
//! would choose the PIN of the victim's token. Browsers say where a request comes from in two
//! headers that page scripts cannot set: `Sec-Fetch-Site` (all current browsers) and `Origin`
//! (older ones too). The rule is the one Go's `net/http.CrossOriginProtection` uses:
//!
//! 1. an `Origin` listed in `[server] allowed_origins` passes;
//! 2. `Sec-Fetch-Site: same-origin` or `none` (typed in the address bar) passes; any other
//!    value — `cross-site`, and also `same-site`, since a sibling host under the same
//!    registrable domain is not necessarily ours — is refused;
//! 3. without `Sec-Fetch-Site`: no `Origin` passes (curl, scripts, servers — not a browser
//!    that can be tricked), an `Origin` whose host is the request's `Host` passes (the
//!    gateway's own page), any other (including `null`) is refused.
//!
//! Rule 2 comes before the Host comparison so that a front that rewrites `Host` or terminates
//! TLS (the browser's origin is `https://…`, the gateway sees `http`) needs no configuration.

use axum::http::{HeaderMap, Uri, header};

use crate::issuance::IssuanceError;

/// Refuses a browser request that another site's page sent (see the module doc).
pub fn check(headers: &HeaderMap, uri: &Uri, allowed: &[String]) -> Result<(), IssuanceError> {
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let origin = match (origins.next(), origins.next()) {
        (None, _) => None,
        (Some(value), None) => Some(value.to_str().unwrap_or("null").to_ascii_lowercase()),
        (Some(_), Some(_)) => {
            return Err(IssuanceError::CrossSite(
                "the request carries more than one Origin header; it is refused as a cross-site request",
            ));
        }
    };
    if origin
        .as_deref()
        .is_some_and(|o| allowed.iter().any(|a| a == o))
    {
        return Ok(());
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.as_bytes() {
            b"same-origin" | b"none" => Ok(()),
            _ => Err(IssuanceError::CrossSite(
                "the browser reports that this form was sent from a page of another site \
                 (Sec-Fetch-Site); only the gateway's own page and [server] allowed_origins may send it",
            )),
        };
    }
    let Some(origin) = origin else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    let origin_host = origin.split_once("://").map(|(_, host)| host);
    match (origin_host, host) {
        (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => Ok(()),
        _ => Err(IssuanceError::CrossSite(
            "the Origin header names another site than this gateway; only the gateway's own \
             page and [server] allowed_origins may send the form",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn run(pairs: &[(&'static str, &'static str)], allowed: &[&str]) -> Result<(), String> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        check(&headers, &Uri::from_static("/pgwy/ast"), &allowed).map_err(|e| e.code().to_string())
    }

    #[test]
    fn browsers_on_other_sites_are_refused() {
        let host = ("host", "gw.example.org");
        assert_eq!(
            run(&[host, ("sec-fetch-site", "cross-site")], &[]),
            Err("cross-site".into())
        );
        assert_eq!(
            run(&[host, ("sec-fetch-site", "same-site")], &[]),
            Err("cross-site".into())
        );
        assert_eq!(
            run(&[host, ("origin", "https://evil.example")], &[]),
            Err("cross-site".into())
        );
        assert_eq!(
            run(&[host, ("origin", "null")], &[]),
            Err("cross-site".into())
        );
        assert_eq!(
            run(
                &[
                    host,
                    ("origin", "https://gw.example.org"),
                    ("origin", "https://evil.example")
                ],
                &[]
            ),
            Err("cross-site".into())
        );
        // Sec-Fetch-Site outranks an Origin that happens to match the Host.
        assert_eq!(
            run(
                &[
                    host,
                    ("origin", "https://gw.example.org"),
                    ("sec-fetch-site", "cross-site")
                ],
                &[]
            ),
            Err("cross-site".into())
        );
    }

    #[test]
    fn own_pages_listed_origins_and_non_browsers_pass() {
        let host = ("host", "gw.example.org");
        assert_eq!(run(&[host], &[]), Ok(()));
        assert_eq!(run(&[host, ("sec-fetch-site", "same-origin")], &[]), Ok(()));
        assert_eq!(run(&[host, ("sec-fetch-site", "none")], &[]), Ok(()));
        // Behind a TLS-terminating front that rewrites Host: Sec-Fetch-Site decides.
        assert_eq!(
            run(
                &[
                    ("host", "127.0.0.1:8080"),
                    ("origin", "https://gw.example.org"),
                    ("sec-fetch-site", "same-origin")
                ],
                &[]
            ),
            Ok(())
        );
        // Older browsers: Origin against Host (scheme-blind, case-blind).
        assert_eq!(
            run(&[host, ("origin", "https://GW.example.org")], &[]),
            Ok(())
        );
        assert_eq!(
            run(
                &[
                    ("host", "gw.example.org:8443"),
                    ("origin", "https://gw.example.org")
                ],
                &[]
            ),
            Err("cross-site".into())
        );
        // A listed portal may post cross-site.
        assert_eq!(
            run(
                &[
                    host,
                    ("origin", "https://portal.example.org"),
                    ("sec-fetch-site", "same-site")
                ],
                &["https://portal.example.org"]
            ),
            Ok(())
        );
    }
}
