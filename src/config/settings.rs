//! The service settings of `conf/gateway.toml` (listeners, TLS, trust, database, limits, CAs,
//! CRL, OCSP), resolved from the raw file and typed. Token procedures are not settings: they are
//! rules, built by the `rules` module from the same file.
//!
//! Here: the settings types, durations, and `resolve_settings`, which checks every section and
//! reports every problem at once. The sections with more to check have their own files:
//! `server` (`[server]`, `[trust]`), `limits` (`[limits]`), `ca` (`[[ca]]`, `[crl]`, `[ocsp]`)
//! and `key_pool` (`[key_pool]`).

mod ca;
mod database;
mod key_pool;
mod limits;
mod server;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use super::toml_file::{GatewayFile, TomlText};
use super::{ConfigErrors, Diagnostics, Root};
use crate::policy::HeaderEncoding;
use crate::token::KeyType;

pub use ca::{CaRole, OFFICERS_CA_NAME};
pub use key_pool::{MAX_KEY_POOL_SIZE, default_key_pool_size};
pub use limits::{Limits, MAX_WRITE_BATCH, RateLimits};

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
    /// `public_url_via_front`: a front serves `public_url` and forwards the revocation paths.
    pub public_url_via_front: bool,
    /// The admin listener serving `/metrics` (default 127.0.0.1:9102; `None` when turned off).
    pub admin: Option<SocketAddr>,
    /// Other web origins (`scheme://host[:port]`, lower case) allowed to POST to `/pgwy/ast`.
    pub allowed_origins: Vec<String>,
}

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
    /// What OCSP answers for a serial the CA's records do not know.
    pub unknown_serials: UnknownSerials,
    /// `role = "officers"`: it issues officer certificates ([`GatewayConfig::officers_ca`]).
    pub role: Option<CaRole>,
    /// `subject_order`, completed: the RDN order of the subjects it signs when a token
    /// procedure certificate lists no `subject`; empty: the conventional order.
    pub subject_order: Vec<crate::ca::Attribute>,
}

/// `unknown_serials` of a `[[ca]]`: the OCSP answer for a serial that neither the certificates
/// this gateway issued nor the CA's imported history know (RFC 6960 §2.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnknownSerials {
    /// `unknown`: no statement (the default, and the only honest answer while the history is
    /// incomplete and the CRL is too).
    #[default]
    Unknown,
    /// `good`: not revoked as far as the CRL goes; only while the history of issued
    /// certificates is incomplete and the imported CRL is complete.
    Good,
    /// `revoked`: treated as never issued (revoked, certificateHold, 1 January 1970, with the
    /// extended-revoke extension); only once the history is complete.
    Revoked,
}

impl UnknownSerials {
    /// Parses the configured name.
    pub fn parse(text: &str) -> Result<UnknownSerials, String> {
        match text {
            "unknown" => Ok(UnknownSerials::Unknown),
            "good" => Ok(UnknownSerials::Good),
            "revoked" => Ok(UnknownSerials::Revoked),
            other => Err(format!(
                "`{other}`: use \"unknown\", \"good\" or \"revoked\""
            )),
        }
    }
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

/// `[audit]`: the audit trail's upkeep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// How often the chain's head is anchored (`anchor_interval_secs`, default 60 s): rows
    /// newer than the last anchor are what a database-only attacker can delete unnoticed.
    pub anchor_interval: Duration,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            anchor_interval: Duration::from_secs(60),
        }
    }
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
    /// `[database] require_synchronous_replication`: no issuance commits unless the database
    /// waits for a synchronous standby (PostgreSQL only).
    pub database_require_synchronous: bool,
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
    pub audit: AuditSettings,
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
    let server = diagnostics.take(server::server(root, &file.server, toml));
    let trusted_proxies = diagnostics.take(server::proxies(file, toml));
    let header_encoding = server::header_encoding(file, toml, &mut diagnostics);
    let database_url = database::url(root, file, toml, &mut diagnostics);
    let database_max_connections = database::max_connections(file, toml, &mut diagnostics);
    let database_require_synchronous =
        database::require_synchronous(file, &database_url, toml, &mut diagnostics);
    check_iterations(file, toml, &mut diagnostics);
    let cas = diagnostics.take(ca::cas(root, &file.cas, toml));
    let key_pool = diagnostics.take(key_pool::key_pool(file.key_pool.as_ref(), toml));
    let crl = ca::crl(file, toml, &mut diagnostics);
    let ocsp = ca::ocsp(file, toml, &mut diagnostics);
    let log_format = log_format(file, toml, &mut diagnostics);
    let limits = limits::limits(&file.limits, toml, &mut diagnostics);
    let signed_writes = signed_writes(file, toml, &mut diagnostics);
    let audit = AuditSettings {
        anchor_interval: file.audit.anchor_interval_secs.as_ref().map_or(
            AuditSettings::default().anchor_interval,
            |v| {
                limits::within(
                    "audit.anchor_interval_secs",
                    v,
                    3600,
                    toml,
                    &mut diagnostics,
                )
            },
        ),
    };
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
        database_max_connections,
        database_require_synchronous,
        pkcs12_iterations: *file.pkcs12.iterations.get_ref(),
        limits,
        key_pool,
        cas,
        crl,
        ocsp,
        log_format,
        api: ApiSettings { signed_writes },
        audit,
    })
}

/// `pkcs12.iterations`: 1000 to 1000000.
fn check_iterations(file: &GatewayFile, toml: &TomlText, diagnostics: &mut Diagnostics) {
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
}

/// `[log] format` (text when not written or malformed).
fn log_format(file: &GatewayFile, toml: &TomlText, diagnostics: &mut Diagnostics) -> LogFormat {
    match &file.log.format {
        None => LogFormat::Text,
        Some(f) => f.get_ref().parse().unwrap_or_else(|m: String| {
            diagnostics.push(toml.error(f.span(), "log.format", m));
            LogFormat::Text
        }),
    }
}

/// `[api] signed_writes`: "off" (the default) or "required".
fn signed_writes(
    file: &GatewayFile,
    toml: &TomlText,
    diagnostics: &mut Diagnostics,
) -> SignedWrites {
    match file.api.signed_writes.as_ref() {
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
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
