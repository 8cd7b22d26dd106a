//! `conf/gateway.toml`: the raw file (every key documented in the default file) and the
//! resolved, typed configuration the code uses.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use const_oid::ObjectIdentifier;
use ipnet::IpNet;
use serde::Deserialize;
use x509_cert::ext::pkix::KeyUsage;

use super::{ConfigError, ConfigErrors, Root};
use crate::ca::{Attribute, parse_extended_key_usage, parse_key_usage, parse_oid};
use crate::token::KeyType;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewayFile {
    server: ServerFile,
    #[serde(default)]
    trust: TrustFile,
    database: DatabaseFile,
    #[serde(default)]
    pkcs12: Pkcs12File,
    #[serde(default)]
    limits: LimitsFile,
    key_pool: Option<KeyPoolFile>,
    #[serde(default)]
    crl: CrlFile,
    #[serde(default)]
    ocsp: OcspFile,
    #[serde(default, rename = "ca")]
    cas: Vec<CaFile>,
    #[serde(default, rename = "token_procedure")]
    token_procedures: Vec<TokenProcedureFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerFile {
    http: Option<String>,
    https: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    client_ca: Option<String>,
    handshake_timeout_secs: Option<u64>,
    public_url: Option<String>,
    /// Admin listener (`/metrics`); `""` turns it off.
    admin: Option<String>,
}

/// `[key_pool]`: pre-generated keys per key type (SPEC §12). A type left out gets its default
/// size when a token procedure uses it; `0` turns pooling off for that type.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyPoolFile {
    #[serde(rename = "rsa-2048")]
    rsa_2048: Option<usize>,
    #[serde(rename = "rsa-3072")]
    rsa_3072: Option<usize>,
    #[serde(rename = "rsa-4096")]
    rsa_4096: Option<usize>,
    #[serde(rename = "ec-p256")]
    ec_p256: Option<usize>,
    #[serde(rename = "ec-p384")]
    ec_p384: Option<usize>,
    #[serde(rename = "ed25519")]
    ed25519: Option<usize>,
}

impl KeyPoolFile {
    fn get(&self, key_type: KeyType) -> Option<usize> {
        match key_type {
            KeyType::Rsa2048 => self.rsa_2048,
            KeyType::Rsa3072 => self.rsa_3072,
            KeyType::Rsa4096 => self.rsa_4096,
            KeyType::EcP256 => self.ec_p256,
            KeyType::EcP384 => self.ec_p384,
            KeyType::Ed25519 => self.ed25519,
        }
    }
}

/// Default pool size for a key type a token procedure uses and `[key_pool]` does not mention.
/// Only RSA is pooled by default: EC and Ed25519 keys take microseconds to make.
pub fn default_key_pool_size(key_type: KeyType) -> usize {
    match key_type {
        KeyType::Rsa2048 => 32,
        KeyType::Rsa3072 => 16,
        KeyType::Rsa4096 => 8,
        KeyType::EcP256 | KeyType::EcP384 | KeyType::Ed25519 => 0,
    }
}

/// Largest accepted pool size per key type.
pub const MAX_KEY_POOL_SIZE: usize = 4096;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustFile {
    #[serde(default)]
    proxies: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseFile {
    url: String,
    max_connections: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pkcs12File {
    #[serde(default = "default_iterations")]
    iterations: u32,
}

impl Default for Pkcs12File {
    fn default() -> Self {
        Pkcs12File {
            iterations: default_iterations(),
        }
    }
}

fn default_iterations() -> u32 {
    10_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    #[serde(default = "default_body")]
    max_body_bytes: usize,
    #[serde(default = "default_timeout")]
    request_timeout_secs: u64,
}

impl Default for LimitsFile {
    fn default() -> Self {
        LimitsFile {
            max_body_bytes: default_body(),
            request_timeout_secs: default_timeout(),
        }
    }
}

fn default_body() -> usize {
    16 * 1024
}
fn default_timeout() -> u64 {
    60
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CrlFile {
    #[serde(default = "default_crl_validity")]
    validity: String,
}

impl Default for CrlFile {
    fn default() -> Self {
        CrlFile {
            validity: default_crl_validity(),
        }
    }
}

fn default_crl_validity() -> String {
    "7d".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OcspFile {
    #[serde(default = "default_true")]
    enabled: bool,
    #[serde(default = "default_ocsp_validity")]
    validity: String,
}

impl Default for OcspFile {
    fn default() -> Self {
        OcspFile {
            enabled: true,
            validity: default_ocsp_validity(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_ocsp_validity() -> String {
    "1h".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaFile {
    name: String,
    certificate: String,
    key: String,
    parent: Option<String>,
    key_passphrase_env: Option<String>,
    key_passphrase_encrypted: Option<String>,
    ocsp_certificate: Option<String>,
    ocsp_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenProcedureFile {
    name: String,
    #[serde(default)]
    certificate: Vec<CertificateFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CertificateFile {
    purpose: String,
    ca: String,
    key: String,
    validity: String,
    key_usage: Vec<String>,
    #[serde(default)]
    extended_key_usage: Vec<String>,
    #[serde(default)]
    policies: Vec<String>,
    /// The DN attributes this certificate carries, in RDN order (default: all, SPEC §6 order).
    #[serde(default)]
    subject: Vec<String>,
}

/// Listeners and TLS.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
    /// How long a TLS handshake may take before the connection is dropped.
    pub handshake_timeout: Duration,
    /// Base URL written into certificates (CRL distribution point, AIA OCSP and caIssuers),
    /// without a trailing slash.
    pub public_url: String,
    /// True when gateway.toml has no `public_url` and it was derived from a listener.
    pub public_url_derived: bool,
    /// The admin listener serving `/metrics` (default 127.0.0.1:9102; `None` when turned off).
    pub admin: Option<SocketAddr>,
}

/// Request limits.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
}

/// A configured CA.
#[derive(Debug, Clone)]
pub struct CaConfig {
    pub name: String,
    pub certificate: PathBuf,
    /// The key file (unused when `pkcs11` is set).
    pub key: PathBuf,
    /// The key as a `pkcs11:` URI (RFC 7512), when the key lives in a PKCS#11 token.
    pub pkcs11: Option<String>,
    pub parent: Option<String>,
    /// The environment variable holding the passphrase of an encrypted PKCS#8 or PKCS#12 key.
    pub key_passphrase_env: Option<String>,
    /// Or the passphrase itself, encrypted with the root's secret key (`config encrypt`).
    pub key_passphrase_encrypted: Option<String>,
    /// A delegated OCSP responder: its certificate (issued by this CA, EKU OCSPSigning) and
    /// its PKCS#8 key file.
    pub ocsp_delegate: Option<(PathBuf, PathBuf)>,
}

/// CRL issuing (SPEC §3).
#[derive(Debug, Clone)]
pub struct CrlConfig {
    /// nextUpdate − thisUpdate. A new CRL is issued when half of it has passed, or at once
    /// when a revocation changed.
    pub validity: Duration,
}

/// The OCSP responder.
#[derive(Debug, Clone)]
pub struct OcspConfig {
    /// Serve `/pgwy/ocsp` and write the AIA OCSP URL into issued certificates.
    pub enabled: bool,
    /// nextUpdate − thisUpdate of responses (and the HTTP max-age, RFC 5019 §6).
    pub validity: Duration,
}

/// One certificate of a token procedure.
#[derive(Debug, Clone)]
pub struct CertificateTemplate {
    pub purpose: String,
    pub ca: String,
    pub key: KeyType,
    pub validity: Duration,
    pub key_usage: KeyUsage,
    pub extended_key_usage: Vec<ObjectIdentifier>,
    pub policies: Vec<ObjectIdentifier>,
    pub subject_order: Vec<Attribute>,
}

/// A named list of certificates (SPEC §7.1).
#[derive(Debug, Clone)]
pub struct TokenProcedure {
    pub name: String,
    pub certificates: Vec<CertificateTemplate>,
}

/// The resolved gateway.toml.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub server: ServerConfig,
    pub trusted_proxies: Vec<IpNet>,
    pub database_url: String,
    pub database_max_connections: u32,
    pub pkcs12_iterations: u32,
    pub limits: Limits,
    /// Pre-generated keys per key type (only types with a size above 0).
    pub key_pool: BTreeMap<KeyType, usize>,
    pub cas: Vec<CaConfig>,
    pub token_procedures: BTreeMap<String, TokenProcedure>,
    pub crl: CrlConfig,
    pub ocsp: OcspConfig,
}

/// Parses `365d`, `12h`, `1y`, `30m` (minutes).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration; write e.g. 365d, 12h or 2y"))?;
    let secs = match unit {
        "y" => n * 365 * 86_400,
        "d" => n * 86_400,
        "h" => n * 3_600,
        "m" => n * 60,
        _ => return Err(format!("`{s}`: unknown unit `{unit}`; use y, d, h or m")),
    };
    if secs == 0 {
        return Err("a validity must be longer than zero".into());
    }
    Ok(Duration::from_secs(secs))
}

/// Reads and resolves gateway.toml.
pub fn load_gateway(root: &Root) -> Result<GatewayConfig, ConfigErrors> {
    let path = root.gateway_toml();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        ConfigErrors(vec![ConfigError::at(
            &path,
            None,
            None,
            format!("cannot read the file: {e}; run `ast-gateway init` to create a default configuration"),
        )])
    })?;
    let file: GatewayFile = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        ConfigErrors(vec![ConfigError::at(
            &path,
            line,
            None,
            e.message().to_string(),
        )])
    })?;
    let mut errors = Vec::new();
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).map(|i| i + 1);
    let mut err = |key: &str, needle: &str, message: String| {
        errors.push(ConfigError::at(&path, line_of(needle), Some(key), message));
    };

    let addr = |key: &str,
                v: &Option<String>,
                err: &mut dyn FnMut(&str, &str, String)|
     -> Option<SocketAddr> {
        let v = v.as_ref()?;
        v.parse()
            .map_err(|_| {
                err(
                    key,
                    v,
                    format!("`{v}` is not an address:port such as 127.0.0.1:8080"),
                )
            })
            .ok()
    };
    let http = addr("server.http", &file.server.http, &mut err);
    let https = addr("server.https", &file.server.https, &mut err);
    if https.is_some() && (file.server.tls_cert.is_none() || file.server.tls_key.is_none()) {
        err(
            "server.https",
            "https",
            "an HTTPS listener needs server.tls_cert and server.tls_key".into(),
        );
    }
    let admin = match file.server.admin.as_deref() {
        None => "127.0.0.1:9102".parse().ok(),
        Some("") => None,
        Some(_) => addr("server.admin", &file.server.admin, &mut err),
    };
    // No silent default: without `public_url` the listener gives it (and `serve` and `config
    // check` say so); with no listener either there is nothing to derive it from.
    let public_url_derived = file.server.public_url.is_none();
    let public_url = match (&file.server.public_url, http, https) {
        (Some(url), _, _) => Some(url.clone()),
        (None, Some(addr), _) => public_url_from_listener(addr, false)
            .map_err(|m| err("server.public_url", "[server]", m))
            .ok(),
        (None, None, Some(addr)) => public_url_from_listener(addr, true)
            .map_err(|m| err("server.public_url", "[server]", m))
            .ok(),
        (None, None, None) => {
            err(
                "server.public_url",
                "[server]",
                "not set, and no [server] http or https listener to derive it from; set it to \
                 the URL relying parties use to reach this service (CRLs, OCSP, CA certificates)"
                    .into(),
            );
            None
        }
    }
    .unwrap_or_default();
    if let Err(m) = check_public_url(&public_url)
        && !public_url.is_empty()
    {
        err("server.public_url", "public_url", m);
    }

    let mut trusted_proxies = Vec::new();
    for p in &file.trust.proxies {
        let parsed = p
            .parse::<IpNet>()
            .or_else(|_| p.parse::<std::net::IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => trusted_proxies.push(net),
            Err(_) => err(
                "trust.proxies",
                p,
                format!("`{p}` is not an IP address or CIDR such as 10.0.0.0/24"),
            ),
        }
    }

    let database_url = resolve_database_url(root, &file.database.url);
    if !(database_url.starts_with("sqlite:")
        || database_url.starts_with("postgres://")
        || database_url.starts_with("postgresql://"))
    {
        err(
            "database.url",
            "url",
            format!(
                "`{}` is not a sqlite:// or postgres:// URL",
                file.database.url
            ),
        );
    }

    if file.pkcs12.iterations < 1_000 || file.pkcs12.iterations > 1_000_000 {
        err(
            "pkcs12.iterations",
            "iterations",
            format!(
                "{} is out of range; use 1000 to 1000000 (readers refuse more)",
                file.pkcs12.iterations
            ),
        );
    }

    let mut cas = Vec::new();
    for ca in &file.cas {
        if cas.iter().any(|c: &CaConfig| c.name == ca.name) {
            err(
                "ca.name",
                &format!("\"{}\"", ca.name),
                format!("CA `{}` is defined twice", ca.name),
            );
        }
        cas.push(CaConfig {
            name: ca.name.clone(),
            certificate: root.resolve(&ca.certificate),
            key: root.resolve(&ca.key),
            pkcs11: ca.key.starts_with("pkcs11:").then(|| ca.key.clone()),
            parent: ca.parent.clone(),
            key_passphrase_env: ca.key_passphrase_env.clone(),
            key_passphrase_encrypted: ca.key_passphrase_encrypted.clone(),
            ocsp_delegate: match (&ca.ocsp_certificate, &ca.ocsp_key) {
                (Some(c), Some(k)) => Some((root.resolve(c), root.resolve(k))),
                (None, None) => None,
                _ => {
                    err(
                        &format!("ca.{}.ocsp_certificate", ca.name),
                        "ocsp_",
                        "ocsp_certificate and ocsp_key go together (a delegated OCSP responder needs both)".into(),
                    );
                    None
                }
            },
        });
    }
    for ca in &cas {
        if let Some(parent) = &ca.parent
            && !cas.iter().any(|c| &c.name == parent)
        {
            {
                err(
                    "ca.parent",
                    &format!("\"{parent}\""),
                    format!(
                        "CA `{}` names parent `{parent}`, which is not configured",
                        ca.name
                    ),
                );
            }
        }
    }

    let mut token_procedures = BTreeMap::new();
    for tp in &file.token_procedures {
        let mut certificates = Vec::new();
        if tp.certificate.is_empty() {
            err(
                "token_procedure",
                &tp.name,
                format!(
                    "token procedure `{}` has no [[token_procedure.certificate]]",
                    tp.name
                ),
            );
        }
        for c in &tp.certificate {
            let key_name = format!("token_procedure.{}.certificate.{}", tp.name, c.purpose);
            let needle = format!("\"{}\"", c.purpose);
            if !cas.iter().any(|ca| ca.name == c.ca) {
                err(
                    &key_name,
                    &needle,
                    format!("CA `{}` is not configured (see [[ca]])", c.ca),
                );
            }
            let key = c
                .key
                .parse::<KeyType>()
                .map_err(|m| err(&key_name, &needle, m))
                .ok();
            let validity = parse_duration(&c.validity)
                .map_err(|m| err(&key_name, &needle, m))
                .ok();
            let key_usage = parse_key_usage(&c.key_usage)
                .map_err(|m| err(&key_name, &needle, m))
                .ok();
            let mut eku = Vec::new();
            for e in &c.extended_key_usage {
                match parse_extended_key_usage(e) {
                    Ok(o) => eku.push(o),
                    Err(m) => err(&key_name, &needle, m),
                }
            }
            let mut policies = Vec::new();
            for p in &c.policies {
                match parse_oid(p) {
                    Ok(o) => policies.push(o),
                    Err(m) => err(&key_name, &needle, m),
                }
            }
            let mut subject_order = Vec::new();
            for a in &c.subject {
                match Attribute::from_name(a).filter(|a| !a.is_san()) {
                    Some(a) => subject_order.push(a),
                    None => err(
                        &key_name,
                        &needle,
                        format!("`{a}` is not a subject DN attribute"),
                    ),
                }
            }
            if let (Some(key), Some(validity), Some(key_usage)) = (key, validity, key_usage) {
                certificates.push(CertificateTemplate {
                    purpose: c.purpose.clone(),
                    ca: c.ca.clone(),
                    key,
                    validity,
                    key_usage,
                    extended_key_usage: eku,
                    policies,
                    subject_order,
                });
            }
        }
        if token_procedures
            .insert(
                tp.name.clone(),
                TokenProcedure {
                    name: tp.name.clone(),
                    certificates,
                },
            )
            .is_some()
        {
            err(
                "token_procedure.name",
                &tp.name,
                format!("token procedure `{}` is defined twice", tp.name),
            );
        }
    }
    let crl_validity = parse_duration(&file.crl.validity)
        .map_err(|m| err("crl.validity", "validity", m))
        .ok();
    if crl_validity.is_some_and(|v| v < Duration::from_secs(600)) {
        err(
            "crl.validity",
            "validity",
            "a CRL validity below 10 minutes leaves relying parties no time; use e.g. 1d or 7d"
                .into(),
        );
    }
    let ocsp_validity = parse_duration(&file.ocsp.validity)
        .map_err(|m| err("ocsp.validity", "validity", m))
        .ok();
    let mut key_pool = BTreeMap::new();
    let pool_file = file.key_pool.unwrap_or_default();
    for key_type in KeyType::ALL {
        let used = token_procedures
            .values()
            .any(|tp: &TokenProcedure| tp.certificates.iter().any(|c| c.key == key_type));
        let size = pool_file.get(key_type).unwrap_or(if used {
            default_key_pool_size(key_type)
        } else {
            0
        });
        if size > MAX_KEY_POOL_SIZE {
            err(
                &format!("key_pool.{key_type}"),
                key_type.name(),
                format!("{size} keys is too many; use 0 to {MAX_KEY_POOL_SIZE}"),
            );
        } else if size > 0 {
            key_pool.insert(key_type, size);
        }
    }
    if file.limits.max_body_bytes < 256 {
        err(
            "limits.max_body_bytes",
            "max_body_bytes",
            "must be at least 256 bytes".into(),
        );
    }

    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    Ok(GatewayConfig {
        server: ServerConfig {
            http,
            https,
            tls_cert: file.server.tls_cert.as_deref().map(|p| root.resolve(p)),
            tls_key: file.server.tls_key.as_deref().map(|p| root.resolve(p)),
            client_ca: file.server.client_ca.as_deref().map(|p| root.resolve(p)),
            handshake_timeout: Duration::from_secs(
                file.server
                    .handshake_timeout_secs
                    .unwrap_or(10)
                    .clamp(1, 300),
            ),
            public_url: public_url.trim_end_matches('/').to_string(),
            public_url_derived,
            admin,
        },
        trusted_proxies,
        database_url,
        database_max_connections: file.database.max_connections.unwrap_or(8),
        pkcs12_iterations: file.pkcs12.iterations,
        limits: Limits {
            max_body_bytes: file.limits.max_body_bytes,
            request_timeout: Duration::from_secs(file.limits.request_timeout_secs.max(1)),
        },
        key_pool,
        cas,
        token_procedures,
        crl: CrlConfig {
            validity: crl_validity.unwrap_or(Duration::from_secs(7 * 86_400)),
        },
        ocsp: OcspConfig {
            enabled: file.ocsp.enabled,
            validity: ocsp_validity.unwrap_or(Duration::from_secs(3_600)),
        },
    })
}

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
pub fn public_url_warnings(public_url: &str, listeners: &[SocketAddr]) -> Vec<String> {
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
    } else if !url.is_loopback() && !listeners.is_empty() && !reachable {
        warnings.push(format!(
            "[server] public_url = `{public_url}` is not an address of this node, which listens on \
             {shown} (loopback only): make sure the front at {} forwards /pgwy/crl/, /pgwy/ocsp \
             and /pgwy/ca/ to this node, or relying parties cannot check revocation",
            url.host
        ));
    }
    warnings
}

/// `sqlite://relative/path` is taken relative to the root; `mode=rwc` creates the file.
fn resolve_database_url(root: &Root, url: &str) -> String {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return url.to_string();
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = root.resolve(path);
    let query = if query.is_empty() {
        "mode=rwc".to_string()
    } else {
        query.to_string()
    };
    format!("sqlite://{}?{}", path.display(), query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("365d").unwrap(),
            Duration::from_secs(365 * 86_400)
        );
        assert_eq!(
            parse_duration("1y").unwrap(),
            Duration::from_secs(365 * 86_400)
        );
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("d").is_err());
    }

    /// The embedded default gateway.toml with `edit` applied, loaded.
    fn load_edited(edit: impl FnOnce(String) -> String) -> Result<GatewayConfig, ConfigErrors> {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        crate::config::write_default(&root).unwrap();
        let text = std::fs::read_to_string(root.gateway_toml()).unwrap();
        std::fs::write(root.gateway_toml(), edit(text)).unwrap();
        load_gateway(&root)
    }

    #[test]
    fn key_pool_and_admin_defaults() {
        let config = load_edited(|t| t).unwrap();
        assert_eq!(config.key_pool, BTreeMap::from([(KeyType::Rsa2048, 32)]));
        assert_eq!(config.server.admin, "127.0.0.1:9102".parse().ok());

        // No [key_pool] at all: types the procedures use get their default size.
        let config =
            load_edited(|t| t.replace("[key_pool]", "").replace("rsa-2048 = 32", "")).unwrap();
        assert_eq!(config.key_pool, BTreeMap::from([(KeyType::Rsa2048, 32)]));

        // 0 turns a type off; an unused type can be pooled explicitly; "" turns admin off.
        let config = load_edited(|t| {
            t.replace("rsa-2048 = 32", "rsa-2048 = 0\nec-p256 = 8")
                .replace("admin = \"127.0.0.1:9102\"", "admin = \"\"")
        })
        .unwrap();
        assert_eq!(config.key_pool, BTreeMap::from([(KeyType::EcP256, 8)]));
        assert_eq!(config.server.admin, None);
    }

    #[test]
    fn public_url_comes_from_the_file_or_the_listener() {
        let config = load_edited(|t| t).unwrap();
        assert_eq!(config.server.public_url, "http://127.0.0.1:8080");
        assert!(!config.server.public_url_derived);
        let config = load_edited(|t| {
            t.replace("public_url = \"http://127.0.0.1:8080\"", "")
                .replace("http = \"127.0.0.1:8080\"", "http = \"10.9.8.7:8000\"")
        })
        .unwrap();
        assert_eq!(config.server.public_url, "http://10.9.8.7:8000");
        assert!(config.server.public_url_derived);
        // No URL and no listener: nothing to derive it from.
        let e = load_edited(|t| {
            t.replace("public_url = \"http://127.0.0.1:8080\"", "")
                .replace("http = \"127.0.0.1:8080\"", "")
        })
        .unwrap_err();
        assert!(e.to_string().contains("server.public_url"), "{e}");
        let e = load_edited(|t| {
            t.replace(
                "public_url = \"http://127.0.0.1:8080\"",
                "public_url = \"ftp://x\"",
            )
        })
        .unwrap_err();
        assert!(
            e.to_string().contains("not an http:// or https:// URL"),
            "{e}"
        );
    }

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
        assert!(public_url_warnings("http://127.0.0.1:8080", &[addr("127.0.0.1:8080")]).is_empty());
        // Loopback URL while the node is reachable from elsewhere.
        let w = public_url_warnings("http://127.0.0.1:8080", &[addr("0.0.0.0:8080")]);
        assert!(w.len() == 1 && w[0].contains("loopback"), "{w:?}");
        let w = public_url_warnings("http://localhost:8080", &[addr("10.0.0.5:8080")]);
        assert!(w.len() == 1 && w[0].contains("loopback"), "{w:?}");
        // Unspecified host.
        let w = public_url_warnings("http://0.0.0.0:8080", &[addr("0.0.0.0:8080")]);
        assert!(w.len() == 1 && w[0].contains("names no host"), "{w:?}");
        // Loopback URL on a port nobody listens on.
        let w = public_url_warnings("http://127.0.0.1:8080", &[addr("127.0.0.1:9000")]);
        assert!(w.len() == 1 && w[0].contains("port 8080"), "{w:?}");
        // The other way round: a remote URL, loopback listeners (a front must forward).
        let w = public_url_warnings("https://pki.example.com", &[addr("127.0.0.1:8080")]);
        assert!(w.len() == 1 && w[0].contains("forwards"), "{w:?}");
        // A remote URL and a reachable listener: nothing to say.
        assert!(
            public_url_warnings("https://pki.example.com", &[addr("10.0.0.5:8443")]).is_empty()
        );
    }

    #[test]
    fn key_pool_and_admin_errors_name_the_key() {
        let e = load_edited(|t| t.replace("rsa-2048 = 32", "rsa-1024 = 4")).unwrap_err();
        assert!(e.to_string().contains("rsa-1024"), "{e}");
        let e = load_edited(|t| t.replace("rsa-2048 = 32", "rsa-2048 = 5000")).unwrap_err();
        assert!(e.to_string().contains("key_pool.rsa-2048"), "{e}");
        assert!(e.to_string().contains("0 to 4096"), "{e}");
        let e = load_edited(|t| t.replace("admin = \"127.0.0.1:9102\"", "admin = \"nowhere\""))
            .unwrap_err();
        assert!(e.to_string().contains("server.admin"), "{e}");
    }
}
