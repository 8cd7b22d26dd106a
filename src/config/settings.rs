//! The service settings of `conf/gateway.toml` (listeners, TLS, trust, database, limits, CAs,
//! CRL, OCSP), resolved from the raw file and typed. Token procedures are not settings: they are
//! rules, built by the `rules` module from the same file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use super::public_url::{check_public_url, public_url_from_listener};
use super::toml_file::{CaFile, GatewayFile, KeyPoolFile, ServerFile, TomlText};
use super::{ConfigError, ConfigErrors, Diagnostics, Root};
use crate::policy::HeaderEncoding;
use crate::token::KeyType;

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

/// The log format of `[log] format` (or `--log-format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines; colour only when standard error is a terminal and NO_COLOR is unset.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "`{other}` is not a log format; use \"text\" or \"json\""
            )),
        }
    }
}

/// `[log] format` of a root's gateway.toml, read leniently before logging starts: `None` when
/// the file is missing, broken or does not set it (the full check reports those problems).
pub fn peek_log_format(root: &Root) -> Option<LogFormat> {
    let text = std::fs::read_to_string(root.gateway_toml()).ok()?;
    let value: toml::Table = toml::from_str(&text).ok()?;
    value.get("log")?.get("format")?.as_str()?.parse().ok()
}

/// Largest accepted pool size per key type.
pub const MAX_KEY_POOL_SIZE: usize = 4096;

/// Listeners and TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Other web origins (`scheme://host[:port]`, lower case) allowed to POST to `/pgwy/ast`.
    pub allowed_origins: Vec<String>,
}

/// Request limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// The request header section must arrive within this (from connection ready, or from a
    /// kept-alive request's first byte).
    pub header_timeout: Duration,
    /// The request body must arrive within this after the header.
    pub body_timeout: Duration,
    /// A kept-alive connection without a request is closed after this.
    pub idle_timeout: Duration,
    /// Largest request header section in bytes.
    pub max_header_bytes: usize,
    /// Connections held at once; `None`: derived from the open-file limit at start.
    pub max_connections: Option<usize>,
    /// How long in-flight requests may run on after SIGTERM.
    pub shutdown_grace: Duration,
    /// Requests that may wait for a CPU slot; beyond it, 503 + `Retry-After`.
    pub issuance_queue: usize,
    /// Made tokens that may wait for the database writer; beyond it, 503 + `Retry-After`.
    pub write_queue: usize,
    /// The most issuances committed in one transaction.
    pub write_batch: usize,
    /// `Retry-After` of an overload refusal.
    pub retry_after: Duration,
    /// Per-caller rate limits.
    pub rates: RateLimits,
}

/// Tokens per minute per caller; 0 turns a limit off. Each allows a burst of its whole
/// minute's worth, then one token every `60 / n` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Per TCP peer (IPv6 per /64).
    pub per_peer: u32,
    /// Per proxy-asserted identity (the subject the headers make).
    pub per_identity: u32,
    /// Per officer (client certificate).
    pub per_officer: u32,
}

/// Upper bound of `[limits] write_batch`.
pub const MAX_WRITE_BATCH: usize = 1000;

/// A configured CA.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// CRL issuing (`[crl]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlConfig {
    /// nextUpdate − thisUpdate. A new CRL is issued when half of it has passed, or at once
    /// when a revocation changed.
    pub validity: Duration,
}

/// The OCSP responder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspConfig {
    /// Serve `/pgwy/ocsp` and write the AIA OCSP URL into issued certificates.
    pub enabled: bool,
    /// nextUpdate − thisUpdate of responses (and the HTTP max-age, RFC 5019 §6).
    pub validity: Duration,
}

/// Whether REST API writes must be signed by the calling officer (`[api] signed_writes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignedWrites {
    /// Signatures are neither required nor checked.
    #[default]
    Off,
    /// `POST softtokens`, `certificates/revoke` and `certificates/reinstate` must carry a
    /// detached CMS signature of the exact body by the mTLS officer (`X-Officer-Signature`).
    Required,
}

/// `[api]`: the REST API.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiSettings {
    pub signed_writes: SignedWrites,
}

/// The resolved gateway.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    pub root: Root,
    pub server: ServerConfig,
    pub trusted_proxies: Vec<IpNet>,
    /// `[trust] header_encoding`: how identity header values are decoded (a handler's
    /// `headerEncoding` overrides it).
    pub header_encoding: HeaderEncoding,
    pub database_url: String,
    pub database_max_connections: u32,
    pub pkcs12_iterations: u32,
    pub limits: Limits,
    /// `[key_pool]` sizes as written (0 included); types left out get their default size
    /// when a token procedure uses them (see `rules`).
    pub key_pool: BTreeMap<KeyType, usize>,
    pub cas: Vec<CaConfig>,
    pub crl: CrlConfig,
    pub ocsp: OcspConfig,
    /// `[log] format`.
    pub log_format: LogFormat,
    pub api: ApiSettings,
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

/// Reads gateway.toml and resolves its settings.
pub fn load_gateway(root: &Root) -> Result<GatewayConfig, ConfigErrors> {
    let (file, toml) = super::toml_file::read_gateway_file(root)?;
    resolve_settings(root, &file, &toml)
}

/// Resolves the raw gateway.toml into settings, reporting every problem at once.
pub fn resolve_settings(
    root: &Root,
    file: &GatewayFile,
    toml: &TomlText,
) -> Result<GatewayConfig, ConfigErrors> {
    let mut diagnostics = Diagnostics::default();
    let server = diagnostics.take(server(root, &file.server, toml));
    let trusted_proxies = diagnostics.take(proxies(file, toml));
    let header_encoding = match &file.trust.header_encoding {
        None => HeaderEncoding::default(),
        Some(value) => value.get_ref().parse().unwrap_or_else(|m| {
            diagnostics.push(toml.error(value.span(), "trust.header_encoding", m));
            HeaderEncoding::default()
        }),
    };
    let database_url = resolve_database_url(root, file.database.url.get_ref());
    if !(database_url.starts_with("sqlite:")
        || database_url.starts_with("postgres://")
        || database_url.starts_with("postgresql://"))
    {
        diagnostics.push(toml.error(
            file.database.url.span(),
            "database.url",
            format!(
                "`{}` is not a sqlite:// or postgres:// URL",
                file.database.url.get_ref()
            ),
        ));
    }
    let iterations = &file.pkcs12.iterations;
    if !(1_000..=1_000_000).contains(iterations.get_ref()) {
        diagnostics.push(toml.error(
            iterations.span(),
            "pkcs12.iterations",
            format!(
                "{} is out of range; use 1000 to 1000000 (readers refuse more)",
                iterations.get_ref()
            ),
        ));
    }
    let cas = diagnostics.take(cas(root, &file.cas, toml));
    let key_pool = diagnostics.take(key_pool(file.key_pool.as_ref(), toml));
    let duration = |d: &mut Diagnostics, value: &toml::Spanned<String>, key: &str| {
        parse_duration(value.get_ref())
            .map_err(|m| d.push(toml.error(value.span(), key, m)))
            .ok()
    };
    let crl_validity = duration(&mut diagnostics, &file.crl.validity, "crl.validity");
    if crl_validity.is_some_and(|v| v < Duration::from_secs(600)) {
        diagnostics.push(toml.error(
            file.crl.validity.span(),
            "crl.validity",
            "a CRL validity below 10 minutes leaves relying parties no time; use e.g. 1d or 7d",
        ));
    }
    let ocsp_validity = duration(&mut diagnostics, &file.ocsp.validity, "ocsp.validity");
    let log_format = match &file.log.format {
        None => LogFormat::Text,
        Some(f) => f.get_ref().parse().unwrap_or_else(|m: String| {
            diagnostics.push(toml.error(f.span(), "log.format", m));
            LogFormat::Text
        }),
    };
    if *file.limits.max_body_bytes.get_ref() < 256 {
        diagnostics.push(toml.error(
            file.limits.max_body_bytes.span(),
            "limits.max_body_bytes",
            "must be at least 256 bytes",
        ));
    }
    let max_header_bytes = match &file.limits.max_header_bytes {
        None => 32 * 1024,
        Some(value) => {
            if !(4096..=1024 * 1024).contains(value.get_ref()) {
                diagnostics.push(toml.error(
                    value.span(),
                    "limits.max_header_bytes",
                    "must be between 4096 and 1048576 bytes",
                ));
            }
            *value.get_ref()
        }
    };
    let mut seconds = |key: &str, value: &Option<toml::Spanned<u64>>, default: u64| {
        let Some(value) = value else {
            return Duration::from_secs(default);
        };
        if !(1..=3600).contains(value.get_ref()) {
            diagnostics.push(toml.error(
                value.span(),
                &format!("limits.{key}"),
                "must be between 1 and 3600 seconds",
            ));
        }
        Duration::from_secs((*value.get_ref()).clamp(1, 3600))
    };
    let header_timeout = seconds("header_timeout_secs", &file.limits.header_timeout_secs, 10);
    let body_timeout = seconds("body_timeout_secs", &file.limits.body_timeout_secs, 20);
    let idle_timeout = seconds("idle_timeout_secs", &file.limits.idle_timeout_secs, 15);
    let shutdown_grace = seconds("shutdown_grace_secs", &file.limits.shutdown_grace_secs, 30);
    let signed_writes = match file.api.signed_writes.as_ref() {
        None => SignedWrites::Off,
        Some(value) => match value.get_ref().as_str() {
            "off" => SignedWrites::Off,
            "required" => SignedWrites::Required,
            other => {
                diagnostics.push(toml.error(
                    value.span(),
                    "api.signed_writes",
                    format!("`{other}` is not a choice; write \"off\" or \"required\""),
                ));
                SignedWrites::Off
            }
        },
    };
    if !(1..=MAX_WRITE_BATCH).contains(file.limits.write_batch.get_ref()) {
        diagnostics.push(toml.error(
            file.limits.write_batch.span(),
            "limits.write_batch",
            format!("use 1 to {MAX_WRITE_BATCH} issuances per transaction"),
        ));
    }
    if *file.limits.write_queue.get_ref() == 0 {
        diagnostics.push(toml.error(
            file.limits.write_queue.span(),
            "limits.write_queue",
            "must be at least 1 (it is the bound of the database writer's queue)",
        ));
    }
    let (Some(server), Some(trusted_proxies), Some(cas), Some(key_pool)) =
        (server, trusted_proxies, cas, key_pool)
    else {
        return Err(diagnostics.into_errors());
    };
    diagnostics.finish(GatewayConfig {
        root: root.clone(),
        server,
        trusted_proxies,
        header_encoding,
        database_url,
        database_max_connections: file.database.max_connections.unwrap_or(8),
        pkcs12_iterations: *iterations.get_ref(),
        limits: Limits {
            max_body_bytes: *file.limits.max_body_bytes.get_ref(),
            request_timeout: Duration::from_secs(file.limits.request_timeout_secs.max(1)),
            header_timeout,
            body_timeout,
            idle_timeout,
            max_header_bytes,
            max_connections: file.limits.max_connections.filter(|n| *n > 0),
            shutdown_grace,
            issuance_queue: file.limits.issuance_queue,
            write_queue: *file.limits.write_queue.get_ref(),
            write_batch: *file.limits.write_batch.get_ref(),
            retry_after: Duration::from_secs(file.limits.retry_after_secs.clamp(1, 3600)),
            rates: RateLimits {
                per_peer: file.limits.peer_per_minute,
                per_identity: file.limits.identity_per_minute,
                per_officer: file.limits.officer_per_minute,
            },
        },
        key_pool,
        cas,
        crl: CrlConfig {
            validity: crl_validity.unwrap_or(Duration::from_secs(7 * 86_400)),
        },
        ocsp: OcspConfig {
            enabled: file.ocsp.enabled,
            validity: ocsp_validity.unwrap_or(Duration::from_secs(3_600)),
        },
        log_format,
        api: ApiSettings { signed_writes },
    })
}

/// `[server]`: listeners, TLS files, public URL, admin listener.
fn server(root: &Root, file: &ServerFile, toml: &TomlText) -> Result<ServerConfig, ConfigErrors> {
    let mut diagnostics = Diagnostics::default();
    let mut addr = |key: &str, value: &Option<toml::Spanned<String>>| -> Option<SocketAddr> {
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
    };
    let http = addr("server.http", &file.http);
    let https = addr("server.https", &file.https);
    let admin = match file.admin.as_ref().map(|a| a.get_ref().as_str()) {
        None => "127.0.0.1:9102".parse().ok(),
        Some("") => None,
        Some(_) => addr("server.admin", &file.admin),
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
    // No silent default: without `public_url` the listener gives it (and `serve` and `config
    // check` say so); with no listener either there is nothing to derive it from.
    let public_url_derived = file.public_url.is_none();
    let public_url = match (&file.public_url, http, https) {
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
    };
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
    diagnostics.finish(ServerConfig {
        http,
        https,
        tls_cert: file.tls_cert.as_deref().map(|p| root.resolve(p)),
        tls_key: file.tls_key.as_deref().map(|p| root.resolve(p)),
        client_ca: file.client_ca.as_deref().map(|p| root.resolve(p)),
        handshake_timeout: Duration::from_secs(
            file.handshake_timeout_secs.unwrap_or(10).clamp(1, 300),
        ),
        public_url: public_url.trim_end_matches('/').to_string(),
        public_url_derived,
        admin,
        allowed_origins,
    })
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
fn proxies(file: &GatewayFile, toml: &TomlText) -> Result<Vec<IpNet>, ConfigErrors> {
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

/// `[[ca]]`: names unique, parents configured, OCSP delegate complete.
fn cas(root: &Root, files: &[CaFile], toml: &TomlText) -> Result<Vec<CaConfig>, ConfigErrors> {
    let mut diagnostics = Diagnostics::default();
    let mut cas: Vec<CaConfig> = Vec::new();
    for ca in files {
        let name = ca.name.get_ref();
        if cas.iter().any(|c| &c.name == name) {
            diagnostics.push(toml.error(
                ca.name.span(),
                "ca.name",
                format!("CA `{name}` is defined twice"),
            ));
        }
        let ocsp_delegate = match (&ca.ocsp_certificate, &ca.ocsp_key) {
            (Some(c), Some(k)) => Some((root.resolve(c.get_ref()), root.resolve(k))),
            (None, None) => None,
            _ => {
                diagnostics.push(toml.error(
                    ca.ocsp_certificate.as_ref().map_or(ca.name.span(), |c| c.span()),
                    &format!("ca.{name}.ocsp_certificate"),
                    "ocsp_certificate and ocsp_key go together (a delegated OCSP responder needs both)",
                ));
                None
            }
        };
        cas.push(CaConfig {
            name: name.clone(),
            certificate: root.resolve(&ca.certificate),
            key: root.resolve(&ca.key),
            pkcs11: ca.key.starts_with("pkcs11:").then(|| ca.key.clone()),
            parent: ca.parent.as_ref().map(|p| p.get_ref().clone()),
            key_passphrase_env: ca.key_passphrase_env.clone(),
            key_passphrase_encrypted: ca.key_passphrase_encrypted.clone(),
            ocsp_delegate,
        });
    }
    for ca in files {
        if let Some(parent) = &ca.parent
            && !cas.iter().any(|c| &c.name == parent.get_ref())
        {
            diagnostics.push(toml.error(
                parent.span(),
                "ca.parent",
                format!(
                    "CA `{}` names parent `{}`, which is not configured",
                    ca.name.get_ref(),
                    parent.get_ref()
                ),
            ));
        }
    }
    diagnostics.finish(cas)
}

/// `[key_pool]` as written: explicit sizes only, each at most `MAX_KEY_POOL_SIZE`.
fn key_pool(
    file: Option<&KeyPoolFile>,
    toml: &TomlText,
) -> Result<BTreeMap<KeyType, usize>, ConfigErrors> {
    let mut diagnostics = Diagnostics::default();
    let mut sizes = BTreeMap::new();
    let Some(file) = file else {
        return Ok(sizes);
    };
    for key_type in KeyType::ALL {
        let written = match key_type {
            KeyType::Rsa2048 => &file.rsa_2048,
            KeyType::Rsa3072 => &file.rsa_3072,
            KeyType::Rsa4096 => &file.rsa_4096,
            KeyType::EcP256 => &file.ec_p256,
            KeyType::EcP384 => &file.ec_p384,
            KeyType::Ed25519 => &file.ed25519,
        };
        let Some(size) = written else { continue };
        if *size.get_ref() > MAX_KEY_POOL_SIZE {
            diagnostics.push(toml.error(
                size.span(),
                &format!("key_pool.{key_type}"),
                format!(
                    "{} keys is too many; use 0 to {MAX_KEY_POOL_SIZE}",
                    size.get_ref()
                ),
            ));
        } else {
            sizes.insert(key_type, *size.get_ref());
        }
    }
    diagnostics.finish(sizes)
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
#[path = "settings_tests.rs"]
mod tests;
