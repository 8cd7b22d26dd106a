//! The command line. Every subcommand is a thin call into the library. Commands print through
//! `output::outln!`, so a closed pipe (`… | head`) ends the output quietly instead of panicking.

mod audit;
mod backup;
mod bench;
mod ca_admin;
mod certs;
mod crl;
pub mod logging;
mod officer;
pub(crate) mod output;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{self, LogFormat, Root};
use output::{errln, out, outln};

/// The root used when neither --root nor $AST_GATEWAY_ROOT is given.
pub const DEFAULT_ROOT: &str = "ast-gateway-data";

/// Authenticated Soft Token gateway.
#[derive(Debug, Parser)]
#[command(name = "ast-gateway", version, about)]
pub struct Cli {
    /// Root directory (conf/ and data/). Defaults to $AST_GATEWAY_ROOT, else ./ast-gateway-data
    /// (created on first `serve`). `serve` refuses a --root or $AST_GATEWAY_ROOT directory that
    /// does not exist, unless --init is given.
    #[arg(long, global = true, env = "AST_GATEWAY_ROOT")]
    pub root: Option<PathBuf>,
    /// Log format on standard error: text or json (default: [log] format in gateway.toml, else
    /// text). Levels come from RUST_LOG (default info); NO_COLOR turns colours off.
    #[arg(long, global = true, value_parser = parse_log_format)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    s.parse()
}

impl Cli {
    /// The root directory: --root, $AST_GATEWAY_ROOT, or the default.
    pub fn root(&self) -> Root {
        Root::new(self.root.clone().unwrap_or_else(|| DEFAULT_ROOT.into()))
    }

    /// The log format: --log-format, else the root's `[log] format`, else text.
    pub fn log_format(&self) -> LogFormat {
        logging::format_for(&self.root(), self.log_format)
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (writes the embedded default configuration first on an empty root).
    Serve(serve::ServeArgs),
    /// Write the default configuration and demo CA without serving. Refuses to overwrite.
    Init {
        /// Plain-HTTP listen address written as [server] http (default 127.0.0.1:8080).
        #[arg(long)]
        http: Option<SocketAddr>,
        /// The URL relying parties use to reach this service, written as [server] public_url
        /// and into the demo CA certificates (default: derived from the HTTP listener).
        #[arg(long, value_name = "URL")]
        public_url: Option<String>,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The certificate database.
    Certs {
        #[command(subcommand)]
        command: certs::CertsCommand,
    },
    /// The configured CAs.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// Issue a fresh CRL now (every CA unless --ca). PEM on stdout, or DER to --out.
    Crl {
        /// The CA (default: every configured CA).
        #[arg(long)]
        ca: Option<String>,
        /// Write the DER CRL to this file (needs --ca when more than one CA is configured).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Officer client certificates and their roles.
    Officer {
        #[command(subcommand)]
        command: officer::OfficerCommand,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// In-process issuance benchmark: keygen + certificates + PKCS#12 on all cores.
    Bench(bench::BenchArgs),
    /// Back up the root into a new directory: a consistent SQLite snapshot, conf/, the secret
    /// key, CA and TLS files (files 0600, directories 0700). For PostgreSQL it prints the
    /// pg_dump command to run alongside.
    Backup(backup::BackupArgs),
}

/// `config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load everything, report every problem, print the effective handlers.
    Check,
    /// Show which handler a request would hit and the certificates it would get (or the
    /// refusal), without issuing anything.
    Explain {
        /// The request path: /pgwy/ast, /pgwy/ast/<path>, or just the part after /pgwy/ast/.
        path: String,
        /// An identity header, as with curl: -H 'commonname: Alice Andersson'. Repeatable.
        #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// A client certificate (PEM or DER) for `cert:subject.*` / `cert:san.*` sources, as if
        /// the caller had presented it.
        #[arg(long, value_name = "FILE")]
        client_cert: Option<PathBuf>,
    },
    /// Encrypt a value for a `<param>.encrypted` key of ast.properties with the root's secret key
    /// (data/secret.key, created on first use). Reads the value from standard input (one line).
    Encrypt,
}

/// `ca …`
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// List the configured CAs.
    List {
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Print a CA's chain as PEM, the CA first.
    Export { name: String },
    /// Create a CA: a new key (file or PKCS#11 token) and a certificate signed by a parent
    /// (or self-signed); appends a [[ca]] block to gateway.toml.
    Create(ca_admin::CreateArgs),
    /// Bring an existing CA (certificate + key file or pkcs11: URI) into gateway.toml, after
    /// checking that the key matches the certificate.
    Import(ca_admin::ImportArgs),
}

/// `audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit trail end to end: the hash chain and its keyed MACs (with
    /// data/secret.key), the anchors (data/audit-anchors.log and the database; reports a
    /// truncated chain), and certificate and officer statuses against the chain. Exit code 1
    /// on any problem.
    Verify {
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Print the audit trail as JSON lines (one object per row, in chain order).
    Export(audit::ExportArgs),
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let root = cli.root();
    let root_is_explicit = cli.root.is_some();
    match cli.command {
        Command::Serve(args) => serve::run(&root, root_is_explicit, args).await,
        Command::Bench(args) => bench::run(&root, args).await,
        Command::Backup(args) => backup::run(&root, args).await,
        Command::Init { http, public_url } => {
            let settings = init_settings(http, public_url)?;
            crate::issuance::write_default_for(&root, &settings)?;
            let config = load_config(&root)?;
            crate::store::Store::open(&config.settings.database_url, 1).await?;
            outln!(
                "wrote a default configuration, a demo CA and the database to {}",
                root.dir().display()
            );
            outln!("{}", settings.describe());
            for warning in config::public_url_warnings(&settings.public_url, &[settings.http]) {
                outln!("warning: {warning}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => config_check(&root).await,
        Command::Config {
            command:
                ConfigCommand::Explain {
                    path,
                    headers,
                    client_cert,
                },
        } => config_explain(&root, &path, &headers, client_cert.as_deref()),
        Command::Config {
            command: ConfigCommand::Encrypt,
        } => config_encrypt(&root),
        Command::Certs { command } => certs::run(&root, command).await,
        Command::Officer { command } => officer::run(&root, command).await,
        Command::Ca { command } => ca(&root, command).await,
        Command::Crl { ca, out } => crl::run(&root, ca, out).await,
        Command::Audit {
            command: AuditCommand::Verify { json },
        } => audit::verify(&root, json).await,
        Command::Audit {
            command: AuditCommand::Export(args),
        } => audit::export(&root, args).await,
    }
}

/// Loads the configuration or fails with every problem listed.
/// derived from it.
fn init_settings(
    http: Option<SocketAddr>,
    public_url: Option<String>,
) -> anyhow::Result<config::InitSettings> {
    let embedded = config::InitSettings::embedded();
    let http = http.unwrap_or(embedded.http);
    let (public_url, derived) = match public_url {
        Some(url) => (url, false),
        None if http.port() == 0 => anyhow::bail!(
            "--http {http}: port 0 is only chosen when the service starts, so no URL can be \
             derived from it for the certificates; give a port, or --public-url"
        ),
        None => (
            config::public_url_from_listener(http, false).map_err(anyhow::Error::msg)?,
            true,
        ),
    };
    config::check_public_url(&public_url).map_err(|m| anyhow::anyhow!("--public-url: {m}"))?;
    Ok(config::InitSettings {
        http,
        public_url: public_url.trim_end_matches('/').to_string(),
        derived,
    })
}

pub fn load_config(root: &Root) -> anyhow::Result<crate::rules::Configuration> {
    crate::rules::load(root).map_err(|e| anyhow::anyhow!("the configuration has problems:\n{e}"))
}

fn config_explain(
    root: &Root,
    path: &str,
    headers: &[String],
    client_cert: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let config = load_config(root)?;
    let pairs = headers
        .iter()
        .map(|h| crate::issuance::parse_header_argument(h))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let facts = match client_cert {
        None => None,
        Some(file) => {
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            Some(
                crate::policy::CertificateFacts::from_pem_or_der(&bytes)
                    .map_err(anyhow::Error::msg)?,
            )
        }
    };
    let headers = crate::policy::IdentityHeaders::new(pairs);
    let explanation = crate::issuance::explain(&config.rules, path, &headers, facts.as_ref());
    outln!("{explanation}");
    Ok(if explanation.outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn config_encrypt(root: &Root) -> anyhow::Result<ExitCode> {
    let key = config::SecretKey::load_or_create(root).map_err(anyhow::Error::msg)?;
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the value from standard input")?;
    let value = line.trim_end_matches(['\r', '\n']);
    let encrypted = key.encrypt(value).map_err(anyhow::Error::msg)?;
    outln!("{encrypted}");
    errln!(
        "write it as <param>.encrypted = {encrypted}  (key: {})",
        root.secret_key().display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn config_check(root: &Root) -> anyhow::Result<ExitCode> {
    let config = match crate::issuance::check_configuration(root) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                outln!("{e}");
            }
            outln!("{} problem(s) found", errors.0.len());
            return Ok(ExitCode::FAILURE);
        }
    };
    outln!("configuration OK ({})", root.dir().display());
    let server = &config.settings.server;
    outln!(
        "public URL: {} (CRL, OCSP and CA-certificate URLs in certificates)",
        server.public_url
    );
    if server.public_url_derived {
        outln!(
            "warning: [server] public_url is not set; it was derived from the listener. Set it to \
             the URL relying parties use"
        );
    }
    let listeners: Vec<SocketAddr> = server.http.into_iter().chain(server.https).collect();
    for warning in config::public_url_warnings(&server.public_url, &listeners) {
        outln!("warning: {warning}");
    }
    outln!(
        "AST service: {}",
        if config.rules.enabled {
            "enabled"
        } else {
            "disabled (start = false)"
        }
    );
    for h in &config.rules.handlers {
        outln!();
        outln!(
            "handler.{}: filter \"{}\", format {}, token procedure {}, roles {}",
            h.number,
            h.filter_source,
            h.format,
            h.token_procedure,
            match &h.required_roles {
                None => "- (trusted proxies)".to_string(),
                Some(crate::rules::RequiredRoles::AnyCertificate) =>
                    "none (any client certificate)".to_string(),
                Some(crate::rules::RequiredRoles::All(r)) => r.join(","),
            }
        );
        outln!(
            "  PIN {}..{} chars; PKCS#12 {} (offered: {})",
            h.password_policy.min_length,
            h.password_policy.max_length,
            h.pkcs12_profile,
            h.pkcs12_profiles
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
        for f in &h.fields {
            let source = f
                .source
                .as_ref()
                .map_or("(disabled)".to_string(), |s| s.to_string());
            let modules = f
                .modules
                .iter()
                .map(|m| m.describe())
                .collect::<Vec<_>>()
                .join(" | ");
            let from = std::path::Path::new(&f.origin.file)
                .file_name()
                .map(|n| format!("{}:{}", n.to_string_lossy(), f.origin.line))
                .unwrap_or_default();
            outln!(
                "  {:>3}  {:<48} <- {:<28} {:<40} ({from})",
                f.index,
                f.target.to_string(),
                source,
                modules
            );
        }
    }
    let mut warnings = subject_warnings(&config);
    warnings.extend(ca_lifetime_warnings(
        &config,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    ));
    if !warnings.is_empty() {
        outln!();
    }
    for w in &warnings {
        outln!("warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A certificate template with `subject = [...]` carries only the listed DN attributes: a
/// format field that sets another one for that certificate is silently dropped from it. One
/// warning per handler and certificate, naming the fields.
fn subject_warnings(config: &crate::rules::Configuration) -> Vec<String> {
    use crate::policy::Scope;
    let mut warnings = Vec::new();
    for h in &config.rules.handlers {
        let Some(procedure) = config.rules.procedure(&h.token_procedure) else {
            continue;
        };
        for (i, template) in procedure.certificates.iter().enumerate() {
            if template.subject_order.is_empty() {
                continue;
            }
            let dropped: Vec<String> = h
                .fields
                .iter()
                .filter(|f| f.source.is_some())
                .filter(|f| match f.target.scope {
                    Scope::Common => true,
                    Scope::Request(r) => r == i,
                })
                .filter(|f| {
                    !f.target.attribute.is_san()
                        && !template.subject_order.contains(&f.target.attribute)
                })
                .map(|f| format!("{} ({})", f.index, f.target.attribute.name()))
                .collect();
            if dropped.is_empty() {
                continue;
            }
            warnings.push(format!(
                "handler.{}: certificate {i} ({}) of token procedure `{}` lists subject = [{}]; \
                 format field(s) {} set attributes it leaves out, so those values are dropped \
                 from that certificate (add them to `subject`, or disable the fields)",
                h.number,
                template.purpose,
                procedure.name,
                template
                    .subject_order
                    .iter()
                    .map(|a| a.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                dropped.join(", ")
            ));
        }
    }
    warnings
}

/// A certificate template whose validity reaches past its CA's notAfter: with
/// `leaf_not_after = "cap"` its certificates end with the CA, with `refuse` they are refused.
/// One warning per template, and one per expired CA.
fn ca_lifetime_warnings(config: &crate::rules::Configuration, now: i64) -> Vec<String> {
    use der::Decode;
    let not_after = |name: &str| -> Option<i64> {
        let ca = config.settings.cas.iter().find(|c| c.name == name)?;
        let der = crate::ca::read_certificate_file(&ca.certificate).ok()?;
        let certificate = x509_cert::Certificate::from_der(&der).ok()?;
        let t = certificate.tbs_certificate().validity().not_after;
        Some(t.to_unix_duration().as_secs() as i64)
    };
    let date = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t)
            .ok()
            .and_then(|d| {
                d.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| t.to_string())
    };
    let mut warnings = Vec::new();
    let mut expired = std::collections::BTreeSet::new();
    for procedure in config.rules.procedures.values() {
        for template in &procedure.certificates {
            let Some(end) = not_after(&template.ca) else {
                continue;
            };
            let left = end - now;
            if left <= 0 {
                if expired.insert(template.ca.clone()) {
                    warnings.push(format!(
                        "CA `{}` expired on {}: every request for its certificates is refused; \
                         roll it over (ast-gateway ca create NEW --replaces {})",
                        template.ca,
                        date(end),
                        template.ca
                    ));
                }
                continue;
            }
            let validity = template.validity.as_secs();
            if validity as i64 <= left {
                continue;
            }
            let outcome = match template.leaf_not_after {
                crate::rules::LeafNotAfter::Cap => format!(
                    "its certificates are cut to end with the CA (leaf_not_after = \"cap\"), {} \
                     days instead of {}",
                    left / 86_400,
                    validity.div_ceil(86_400)
                ),
                crate::rules::LeafNotAfter::Refuse => {
                    "every request for it is refused (leaf_not_after = \"refuse\")".to_string()
                }
            };
            warnings.push(format!(
                "token procedure `{}`, certificate `{}`: validity {} days exceeds the remaining \
                 life of CA `{}` (until {}, {} days left): {outcome}. Roll the CA over \
                 (ast-gateway ca create NEW --replaces {})",
                procedure.name,
                template.purpose,
                validity.div_ceil(86_400),
                template.ca,
                date(end),
                left / 86_400,
                template.ca
            ));
        }
    }
    warnings
}

/// The state of every configured CA (active / retiring / retired / unused), counting the
/// certificates in the database; `None` (with a message on standard error) when the database
/// cannot be read.
async fn ca_states(
    config: &crate::rules::Configuration,
) -> Option<std::collections::BTreeMap<String, crate::issuance::CaState>> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let usage = async {
        let store = crate::store::Store::open(&config.settings.database_url, 1).await?;
        let usage = store.ca_usage(now).await;
        store.close().await;
        usage
    }
    .await;
    match usage {
        Ok(usage) => Some(crate::issuance::ca_states(
            &config.settings,
            &config.rules,
            &usage,
        )),
        Err(e) => {
            errln!("warning: the database cannot be read, CA states are left out: {e}");
            None
        }
    }
}

async fn ca(root: &Root, command: CaCommand) -> anyhow::Result<ExitCode> {
    let command = match command {
        CaCommand::Create(args) => return ca_admin::create(root, args),
        CaCommand::Import(args) => return ca_admin::import(root, args),
        other => other,
    };
    let config = load_config(root)?;
    let cas = crate::issuance::load_cas(&config.settings).map_err(|e| anyhow::anyhow!("{e}"))?;
    match command {
        CaCommand::List { json } => {
            let states = ca_states(&config).await;
            let rows: Vec<serde_json::Value> = cas
                .values()
                .map(|ca| {
                    let tbs = ca.certificate().tbs_certificate();
                    let state = states.as_ref().and_then(|s| s.get(ca.name()));
                    let mut row = serde_json::json!({
                        "name": ca.name(),
                        "subject": tbs.subject().to_string(),
                        "issuer": tbs.issuer().to_string(),
                        "notAfter": tbs.validity().not_after.to_string(),
                        "chainLength": ca.chain().len(),
                        "state": state.map(|s| s.name()),
                        "stateDetail": state.map(|s| s.to_string()),
                    });
                    if let Some(crate::issuance::CaState::Retiring {
                        certificates,
                        until,
                    }) = state
                    {
                        row["unexpiredCertificates"] = (*certificates).into();
                        row["lastNotAfter"] = time::OffsetDateTime::from_unix_timestamp(*until)
                            .ok()
                            .and_then(|t| {
                                t.format(&time::format_description::well_known::Rfc3339)
                                    .ok()
                            })
                            .into();
                    }
                    row
                })
                .collect();
            if json {
                outln!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for r in rows {
                    outln!(
                        "{:<12} {}  (until {})  {}",
                        r["name"].as_str().unwrap_or(""),
                        r["subject"].as_str().unwrap_or(""),
                        r["notAfter"].as_str().unwrap_or(""),
                        r["stateDetail"].as_str().unwrap_or("")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        CaCommand::Export { name } => match cas.get(&name) {
            Some(ca) => {
                out!("{}", ca.chain_pem());
                Ok(ExitCode::SUCCESS)
            }
            None => anyhow::bail!(
                "no CA named `{name}`; configured: {}",
                cas.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        },
        CaCommand::Create(_) | CaCommand::Import(_) => Ok(ExitCode::FAILURE),
    }
}

#[cfg(test)]
mod tests;
