//! `[server]` (listeners, TLS files, public URL, admin listener, allowed origins) and `[trust]`
//! (proxies, header encoding): how the service is reached and whom it believes.

use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;

use super::super::public_url::{check_public_url, public_url_from_listener};
use super::super::toml_file::{GatewayFile, ServerFile, TomlText};
use super::super::{ConfigError, ConfigErrors, Diagnostics, Root};
use super::ServerConfig;
use crate::policy::HeaderEncoding;

/// `[server]`: listeners, TLS files, public URL, admin listener.
pub(super) fn server(
    root: &Root,
    file: &ServerFile,
    toml: &TomlText,
) -> Result<ServerConfig, ConfigErrors> {
    let mut diagnostics = Diagnostics::default();
    let http = address("server.http", &file.http, toml, &mut diagnostics);
    let https = address("server.https", &file.https, toml, &mut diagnostics);
    let admin = match file.admin.as_ref().map(|a| a.get_ref().as_str()) {
        None => "127.0.0.1:9102".parse().ok(),
        Some("") => None,
        Some(_) => address("server.admin", &file.admin, toml, &mut diagnostics),
    };
    if let Some(https_value) = &file.https
        && (file.tls_cert.is_none() || file.tls_key.is_none())
    {
        diagnostics.push(toml.error(
            https_value.span(),
            "server.https",
            "an HTTPS listener needs server.tls_cert and server.tls_key",
        ));
    }
    let public_url_derived = file.public_url.is_none();
    let public_url = public_url(file, http, https, toml, &mut diagnostics);
    let allowed_origins = allowed_origins(file, toml, &mut diagnostics);
    let handshake_timeout = match &file.handshake_timeout_secs {
        None => Duration::from_secs(10),
        Some(value) => super::limits::within(
            "server.handshake_timeout_secs",
            value,
            300,
            toml,
            &mut diagnostics,
        ),
    };
    diagnostics.finish(ServerConfig {
        http,
        https,
        tls_cert: file.tls_cert.as_deref().map(|p| root.resolve(p)),
        tls_key: file.tls_key.as_deref().map(|p| root.resolve(p)),
        client_ca: file.client_ca.as_deref().map(|p| root.resolve(p)),
        handshake_timeout,
        public_url: public_url.trim_end_matches('/').to_string(),
        public_url_derived,
        public_url_via_front: file.public_url_via_front,
        admin,
        allowed_origins,
    })
}

/// A listener's `address:port` under `key`, when written and valid.
fn address(
    key: &str,
    value: &Option<toml::Spanned<String>>,
    toml: &TomlText,
    diagnostics: &mut Diagnostics,
) -> Option<SocketAddr> {
    let value = value.as_ref()?;
    value
        .get_ref()
        .parse()
        .map_err(|_| {
            diagnostics.push(toml.error(
                value.span(),
                key,
                format!(
                    "`{}` is not an address:port such as 127.0.0.1:8080",
                    value.get_ref()
                ),
            ))
        })
        .ok()
}

/// `server.public_url` as written (checked), or derived from the HTTP listener, else the HTTPS
/// one. The result may end with a slash; empty when it could not be had.
fn public_url(
    file: &ServerFile,
    http: Option<SocketAddr>,
    https: Option<SocketAddr>,
    toml: &TomlText,
    diagnostics: &mut Diagnostics,
) -> String {
    // No silent default: without `public_url` the listener gives it (and `serve` and `config
    // check` say so); with no listener either there is nothing to derive it from.
    match (&file.public_url, http, https) {
        (Some(url), _, _) => {
            if let Err(m) = check_public_url(url.get_ref()) {
                diagnostics.push(toml.error(url.span(), "server.public_url", m));
            }
            url.get_ref().clone()
        }
        (None, listener, https_listener) => {
            let derived = match (listener, https_listener) {
                (Some(addr), _) => public_url_from_listener(addr, false),
                (None, Some(addr)) => public_url_from_listener(addr, true),
                (None, None) => Err(
                    "not set, and no [server] http or https listener to derive it from; set it to \
                     the URL relying parties use to reach this service (CRLs, OCSP, CA certificates)"
                        .into(),
                ),
            };
            derived.unwrap_or_else(|m| {
                diagnostics.push(ConfigError::at(
                    toml.path(),
                    None,
                    Some("server.public_url"),
                    m,
                ));
                String::new()
            })
        }
    }
}

/// `server.allowed_origins`, normalised; the malformed ones reported and left out.
fn allowed_origins(
    file: &ServerFile,
    toml: &TomlText,
    diagnostics: &mut Diagnostics,
) -> Vec<String> {
    let mut allowed_origins = Vec::new();
    for origin in &file.allowed_origins {
        match normalise_origin(origin.get_ref()) {
            Some(o) => allowed_origins.push(o),
            None => diagnostics.push(toml.error(
                origin.span(),
                "server.allowed_origins",
                format!(
                    "`{}` is not a web origin; write scheme://host[:port] such as https://portal.example.org (no path)",
                    origin.get_ref()
                ),
            )),
        }
    }
    allowed_origins
}

/// `Scheme://Host:Port` → `scheme://host:port` (a browser's `Origin` is lower case); `None`
/// for anything that is not an http(s) origin (a path, user info, query or fragment).
fn normalise_origin(origin: &str) -> Option<String> {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, authority) = origin.split_once("://")?;
    let valid_authority = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
    ((scheme == "http" || scheme == "https") && valid_authority).then_some(origin)
}

/// `[trust] proxies`: addresses or CIDRs.
pub(super) fn proxies(file: &GatewayFile, toml: &TomlText) -> Result<Vec<IpNet>, ConfigErrors> {
    let mut diagnostics = Diagnostics::default();
    let mut nets = Vec::new();
    for p in &file.trust.proxies {
        let text = p.get_ref();
        let parsed = text
            .parse::<IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => nets.push(net),
            Err(_) => diagnostics.push(toml.error(
                p.span(),
                "trust.proxies",
                format!("`{text}` is not an IP address or CIDR such as 10.0.0.0/24"),
            )),
        }
    }
    diagnostics.finish(nets)
}

/// `[trust] header_encoding` (the default when not written or malformed).
pub(super) fn header_encoding(
    file: &GatewayFile,
    toml: &TomlText,
    diagnostics: &mut Diagnostics,
) -> HeaderEncoding {
    match &file.trust.header_encoding {
        None => HeaderEncoding::default(),
        Some(value) => value.get_ref().parse().unwrap_or_else(|m| {
            diagnostics.push(toml.error(value.span(), "trust.header_encoding", m));
            HeaderEncoding::default()
        }),
    }
}
