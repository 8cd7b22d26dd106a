//! `conf/gateway.toml` as written: the raw file structs (`deny_unknown_fields`, every key
//! documented in the embedded default file) with `toml::Spanned` where a problem must be
//! reported at its line. Meaning is given to them elsewhere: `settings` (listeners, database,
//! CAs …) and the `rules` module (token procedures).

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, ConfigErrors, Root};

/// The text of gateway.toml, to turn spans into line numbers.
#[derive(Debug, Clone)]
pub struct TomlText {
    path: PathBuf,
    text: String,
}

impl TomlText {
    /// The 1-based line of a byte offset.
    pub fn line(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text[..end].matches('\n').count() + 1
    }

    /// A problem at `span`, under `key`.
    pub fn error(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::at(&self.path, Some(self.line(&span)), Some(key), message)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads and parses gateway.toml (syntax and types only).
pub fn read_gateway_file(root: &Root) -> Result<(GatewayFile, TomlText), ConfigErrors> {
    let path = root.gateway_toml();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        ConfigErrors(vec![ConfigError::at(
            &path,
            None,
            None,
            format!("cannot read the file: {e}; run `ast-gateway init` to create a default configuration"),
        )])
    })?;
    let source = TomlText { path, text };
    let file: GatewayFile = toml::from_str(&source.text).map_err(|e| {
        let line = e.span().map(|s| source.line(&s));
        ConfigErrors(vec![ConfigError::at(
            &source.path,
            line,
            None,
            e.message().to_string(),
        )])
    })?;
    Ok((file, source))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayFile {
    pub server: ServerFile,
    #[serde(default)]
    pub trust: TrustFile,
    pub database: DatabaseFile,
    #[serde(default)]
    pub pkcs12: Pkcs12File,
    #[serde(default)]
    pub limits: LimitsFile,
    pub key_pool: Option<KeyPoolFile>,
    #[serde(default)]
    pub crl: CrlFile,
    #[serde(default)]
    pub ocsp: OcspFile,
    #[serde(default)]
    pub api: ApiSection,
    #[serde(default)]
    pub audit: AuditSection,
    #[serde(default, rename = "ca")]
    pub cas: Vec<CaFile>,
    #[serde(default, rename = "token_procedure")]
    pub token_procedures: Vec<TokenProcedureFile>,
    #[serde(default)]
    pub log: LogFile,
}

/// `[log]`: how the service writes its log on standard error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFile {
    /// `text` (default; coloured only on a terminal without NO_COLOR) or `json` (one object
    /// per line, for journald/SIEM ingestion).
    pub format: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    pub http: Option<Spanned<String>>,
    pub https: Option<Spanned<String>>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub client_ca: Option<String>,
    pub handshake_timeout_secs: Option<Spanned<u64>>,
    pub public_url: Option<Spanned<String>>,
    /// The front at `public_url` forwards /pgwy/crl/, /pgwy/ocsp and /pgwy/ca/ to this node
    /// (the documented nginx topology): no start-up warning that public_url is not an address
    /// of this node.
    #[serde(default)]
    pub public_url_via_front: bool,
    /// Admin listener (`/metrics`); `""` turns it off.
    pub admin: Option<Spanned<String>>,
    /// Web origins (`https://portal.example.org`) besides the gateway's own whose pages may
    /// POST to `/pgwy/ast`. Default: none, only the gateway's own pages.
    #[serde(default)]
    pub allowed_origins: Vec<Spanned<String>>,
}

/// `[key_pool]`: pre-generated keys per key type. A type left out gets its default size when a
/// token procedure uses it; `0` turns pooling off for that type.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPoolFile {
    #[serde(rename = "rsa-2048")]
    pub rsa_2048: Option<Spanned<usize>>,
    #[serde(rename = "rsa-3072")]
    pub rsa_3072: Option<Spanned<usize>>,
    #[serde(rename = "rsa-4096")]
    pub rsa_4096: Option<Spanned<usize>>,
    #[serde(rename = "ec-p256")]
    pub ec_p256: Option<Spanned<usize>>,
    #[serde(rename = "ec-p384")]
    pub ec_p384: Option<Spanned<usize>>,
    #[serde(rename = "ed25519")]
    pub ed25519: Option<Spanned<usize>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustFile {
    #[serde(default)]
    pub proxies: Vec<Spanned<String>>,
    /// How the front encodes identity header values: `utf-8`, `latin-1`, `utf-8-or-latin-1`
    /// (default), `base64url` or `percent`. A handler may override it (`headerEncoding`).
    pub header_encoding: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseFile {
    pub url: Spanned<String>,
    pub max_connections: Option<Spanned<u32>>,
    /// Refuse to issue while the database commits without a synchronous standby.
    pub require_synchronous_replication: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs12File {
    #[serde(default = "default_iterations")]
    pub iterations: Spanned<u32>,
}

impl Default for Pkcs12File {
    fn default() -> Self {
        Pkcs12File {
            iterations: default_iterations(),
        }
    }
}

fn default_iterations() -> Spanned<u32> {
    Spanned::new(0..0, 10_000)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    #[serde(default = "default_body")]
    pub max_body_bytes: Spanned<usize>,
    #[serde(default = "default_timeout")]
    pub request_timeout_secs: Spanned<u64>,
    /// Seconds a client has to send a request's complete header section, counted from the
    /// moment the connection is ready (TCP accepted, TLS handshake done) or from the first byte
    /// of a request on a kept-alive connection. Default 10.
    pub header_timeout_secs: Option<Spanned<u64>>,
    /// Seconds a client has to send the whole request body once the header is in. Default 20.
    pub body_timeout_secs: Option<Spanned<u64>>,
    /// Seconds a kept-alive connection may wait for its next request. Default 15.
    pub idle_timeout_secs: Option<Spanned<u64>>,
    /// Largest request header section (request line and header fields), bytes. Default 32768.
    pub max_header_bytes: Option<Spanned<usize>>,
    /// Connections held open at once, over all listeners. Default 0: automatic, the open-file
    /// limit less a reserve for the database, CA files and logs.
    pub max_connections: Option<usize>,
    /// Seconds requests in progress get to finish after SIGTERM. Default 30.
    pub shutdown_grace_secs: Option<Spanned<u64>>,
    /// Seconds a response may go without any of it being sent (the client reads nothing)
    /// before its connection is closed. Default 20.
    pub send_timeout_secs: Option<Spanned<u64>>,
    /// HTTP/2 streams (requests) open at once on one connection. Default 32.
    pub max_streams_per_connection: Option<Spanned<u32>>,
    /// Requests served on one connection (kept alive or pipelined) before it is closed
    /// gracefully. Default 1000.
    pub max_requests_per_connection: Option<Spanned<u64>>,
    /// Requests that may wait for a CPU slot (key generation, signing, PKCS#12) while every slot
    /// is busy; one more is refused at once with 503 `unavailable` and `Retry-After`.
    #[serde(default = "default_issuance_queue")]
    pub issuance_queue: usize,
    /// Made tokens that may wait for the database writer (group commit) behind the batch it is
    /// writing; one more is refused at once with 503 `unavailable` and `Retry-After`.
    #[serde(default = "default_write_queue")]
    pub write_queue: Spanned<usize>,
    /// The most issuances the writer commits in one transaction.
    #[serde(default = "default_write_batch")]
    pub write_batch: Spanned<usize>,
    /// How long (ms) the writer waits for tokens still being made before it commits.
    #[serde(default = "default_write_delay")]
    pub write_delay_ms: Spanned<u64>,
    /// The `Retry-After` (seconds) sent with an overload refusal.
    #[serde(default = "default_retry_after")]
    pub retry_after_secs: Spanned<u64>,
    /// Tokens per minute per TCP peer (IPv6: per /64); 0 turns the limit off. Behind an
    /// authenticating proxy every request comes from the proxy: keep it off there.
    #[serde(default)]
    pub peer_per_minute: u32,
    /// Tokens per minute per proxy-asserted identity (the certificate subject the headers make).
    #[serde(default = "default_identity_rate")]
    pub identity_per_minute: u32,
    /// Tokens per minute per officer (client certificate).
    #[serde(default = "default_officer_rate")]
    pub officer_per_minute: u32,
}

impl Default for LimitsFile {
    fn default() -> Self {
        LimitsFile {
            max_body_bytes: default_body(),
            request_timeout_secs: default_timeout(),
            header_timeout_secs: None,
            body_timeout_secs: None,
            idle_timeout_secs: None,
            max_header_bytes: None,
            max_connections: None,
            shutdown_grace_secs: None,
            send_timeout_secs: None,
            max_streams_per_connection: None,
            max_requests_per_connection: None,
            issuance_queue: default_issuance_queue(),
            write_queue: default_write_queue(),
            write_batch: default_write_batch(),
            write_delay_ms: default_write_delay(),
            retry_after_secs: default_retry_after(),
            peer_per_minute: 0,
            identity_per_minute: default_identity_rate(),
            officer_per_minute: default_officer_rate(),
        }
    }
}

fn default_issuance_queue() -> usize {
    256
}

fn default_write_queue() -> Spanned<usize> {
    Spanned::new(0..0, 1024)
}

fn default_write_batch() -> Spanned<usize> {
    Spanned::new(0..0, 64)
}

fn default_write_delay() -> Spanned<u64> {
    Spanned::new(0..0, 5)
}

fn default_retry_after() -> Spanned<u64> {
    Spanned::new(0..0, 1)
}

fn default_identity_rate() -> u32 {
    30
}

fn default_officer_rate() -> u32 {
    600
}

fn default_body() -> Spanned<usize> {
    Spanned::new(0..0, 16 * 1024)
}

fn default_timeout() -> Spanned<u64> {
    Spanned::new(0..0, 60)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrlFile {
    #[serde(default = "default_crl_validity")]
    pub validity: Spanned<String>,
}

impl Default for CrlFile {
    fn default() -> Self {
        CrlFile {
            validity: default_crl_validity(),
        }
    }
}

fn default_crl_validity() -> Spanned<String> {
    Spanned::new(0..0, "7d".into())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OcspFile {
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default = "default_ocsp_validity")]
    pub validity: Spanned<String>,
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

fn default_ocsp_validity() -> Spanned<String> {
    Spanned::new(0..0, "1h".into())
}

/// `[api]`: the REST API under /pgwy/api.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// `"off"` (default) or `"required"`: write calls (softtokens, revoke, reinstate) must carry
    /// the officer's detached CMS signature of the body in `X-Officer-Signature`.
    pub signed_writes: Option<Spanned<String>>,
}

/// `[audit]`: the audit trail's upkeep.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// Seconds between anchors of the audit chain's head (1 to 3600; default 60).
    pub anchor_interval_secs: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaFile {
    pub name: Spanned<String>,
    pub certificate: String,
    pub key: String,
    pub parent: Option<Spanned<String>>,
    pub key_passphrase_env: Option<String>,
    pub key_passphrase_encrypted: Option<String>,
    pub ocsp_certificate: Option<Spanned<String>>,
    pub ocsp_key: Option<String>,
    /// What OCSP answers for a serial this CA's records do not know: `unknown` (default),
    /// `good` or `revoked` (RFC 6960 §2.2).
    pub unknown_serials: Option<Spanned<String>>,
    /// `"officers"`: this CA issues officer client certificates (at most one CA; without it,
    /// the CA named `officers` does).
    pub role: Option<Spanned<String>>,
    /// The RDN order of the subjects it signs when a token procedure certificate lists no
    /// `subject` of its own (format attribute names; the rest follow in the conventional order).
    pub subject_order: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenProcedureFile {
    pub name: Spanned<String>,
    /// `combined` (default): one PKCS#12 with every key and certificate; `per-purpose`: one
    /// PKCS#12 per certificate, all under the same PIN (a zip for the form).
    pub layout: Option<Spanned<String>>,
    #[serde(default)]
    pub certificate: Vec<CertificateFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateFile {
    pub purpose: Spanned<String>,
    pub ca: Spanned<String>,
    pub key: Spanned<String>,
    pub validity: Spanned<String>,
    pub key_usage: Spanned<Vec<String>>,
    pub extended_key_usage: Option<Spanned<Vec<String>>>,
    pub policies: Option<Spanned<Vec<String>>>,
    /// Certificate policies with an optional CPS URI qualifier,
    /// `[{ oid = "2.23.140.1.5.4.2", cps = "https://pki.example.com/cps" }]`; written after
    /// the OIDs of `policies`.
    pub certificate_policies: Option<Vec<CertificatePolicyFile>>,
    /// The DN attributes this certificate carries, in RDN order (default: all, in the default
    /// order).
    pub subject: Option<Spanned<Vec<String>>>,
    /// `cap` (default): a certificate ends no later than its CA's certificate; `refuse`: a
    /// request whose certificate would outlive the CA is refused.
    pub leaf_not_after: Option<Spanned<String>>,
}

/// One entry of `certificate_policies`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificatePolicyFile {
    /// The policy OID, dotted.
    pub oid: Spanned<String>,
    /// The URI of the certification practice statement (RFC 5280 §4.2.1.4 id-qt-cps).
    pub cps: Option<Spanned<String>>,
}
