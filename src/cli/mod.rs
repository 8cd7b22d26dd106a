//! The command line (SPEC §2). Every subcommand is a thin call into the library.

mod bench;
mod ca_admin;
mod certs;
mod crl;
mod officer;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{self, Root};
use crate::http::{Listeners, start};
use crate::issuance::Gateway;

/// Authenticated Soft Token gateway.
#[derive(Debug, Parser)]
#[command(name = "ast-gateway", version, about)]
pub struct Cli {
    /// Root directory (conf/ and data/). Defaults to $AST_GATEWAY_ROOT, else ./ast-gateway-data.
    #[arg(
        long,
        global = true,
        env = "AST_GATEWAY_ROOT",
        default_value = "ast-gateway-data"
    )]
    pub root: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (writes the embedded default configuration first on an empty root).
    Serve {
        /// Plain-HTTP listen address, overriding [server] http.
        #[arg(long)]
        http: Option<SocketAddr>,
        /// HTTPS listen address, overriding [server] https (uses tls_cert, tls_key, client_ca).
        #[arg(long)]
        https: Option<SocketAddr>,
        /// Admin (metrics) listen address, overriding [server] admin.
        #[arg(long)]
        admin: Option<SocketAddr>,
    },
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
    /// In-process issuance benchmark: keygen + certificates + PKCS#12 on all cores (SPEC §12).
    Bench(bench::BenchArgs),
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
    /// Check the audit trail's hash chain end to end.
    Verify,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let root = Root::new(cli.root);
    match cli.command {
        Command::Serve { http, https, admin } => {
            serve(&root, Listeners { http, https }, admin).await
        }
        Command::Bench(args) => bench::run(&root, args).await,
        Command::Init { http, public_url } => {
            let settings = init_settings(http, public_url)?;
            config::write_default_for(&root, &settings)?;
            let config = load_config(&root)?;
            crate::store::Store::open(&config.gateway.database_url, 1).await?;
            println!(
                "wrote a default configuration, a demo CA and the database to {}",
                root.dir().display()
            );
            println!("{}", settings.describe());
            for warning in config::public_url_warnings(&settings.public_url, &[settings.http]) {
                println!("warning: {warning}");
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
        Command::Ca { command } => ca(&root, command),
        Command::Crl { ca, out } => crl::run(&root, ca, out).await,
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let config = load_config(&root)?;
            let store = crate::store::Store::open(&config.gateway.database_url, 2).await?;
            let result = store.verify_audit().await?;
            match result.first_bad {
                None => {
                    println!("audit trail intact: {} rows", result.rows);
                    Ok(ExitCode::SUCCESS)
                }
                Some(seq) => {
                    println!("audit trail BROKEN at row {seq} (of {} rows)", result.rows);
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

/// The listener and public URL of a new root: given, or the default listener, with the URL
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

/// Loads the configuration or fails with every problem listed.
pub fn load_config(root: &Root) -> anyhow::Result<config::Config> {
    config::load(root).map_err(|e| anyhow::anyhow!("the configuration has problems:\n{e}"))
}

async fn serve(
    root: &Root,
    listeners: Listeners,
    admin: Option<SocketAddr>,
) -> anyhow::Result<ExitCode> {
    if !root.is_initialised() {
        // Port 0 is chosen at bind time: nothing to derive a URL from, keep the default.
        let settings = init_settings(listeners.http.filter(|a| a.port() != 0), None)?;
        config::write_default_for(root, &settings).context("writing the default configuration")?;
        tracing::info!(root = %root.dir().display(), "wrote the embedded default configuration and a demo CA");
        tracing::info!("{}", settings.describe());
    }
    let config = load_config(root)?;
    let proxies = config.gateway.trusted_proxies.clone();
    if proxies.iter().all(|p| p.addr().is_loopback()) {
        tracing::warn!(
            "[trust] proxies lists only loopback addresses: identity headers are believed from this machine only. \
             Put your authenticating reverse proxy's address there."
        );
    }
    let gateway = Gateway::open(config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot start:\n{e}"))?;
    let _crl_refresher = gateway.spawn_crl_refresher();
    // Before the listeners: a SIGHUP that arrives once the service is up must not kill it.
    reload_on_sighup(gateway.clone());
    let server = start(gateway.clone(), listeners)
        .await
        .context("binding the listeners")?;
    if let Some(addr) = server.http_addr {
        tracing::info!("PIN page:      http://{addr}/pgwy/request/ast.html");
        tracing::info!("AST endpoint:  http://{addr}/pgwy/ast");
    }
    if let Some(addr) = server.https_addr {
        tracing::info!("HTTPS (officers, mTLS): https://{addr}/pgwy/ast");
    }
    let public_url = gateway.config().gateway.server.public_url.clone();
    tracing::info!(
        "certificates point relying parties at {public_url} (CRL, OCSP, CA certificates)"
    );
    let bound: Vec<SocketAddr> = server
        .http_addr
        .into_iter()
        .chain(server.https_addr)
        .collect();
    if gateway.config().gateway.server.public_url_derived {
        tracing::warn!(
            "[server] public_url is not set: certificates carry {public_url}, derived from the listener; \
             set it to the URL relying parties use"
        );
    }
    for warning in config::public_url_warnings(&public_url, &bound) {
        tracing::warn!("{warning}");
    }
    // Metrics are auxiliary: when the configured admin address is taken (a second node on the
    // same host, say) the service still issues and says so loudly. An address given on the
    // command line must work.
    if let Some(addr) = admin {
        let admin = crate::http::start_admin(gateway.clone(), addr)
            .await
            .context("binding the admin listener (--admin)")?;
        tracing::info!("metrics:       http://{}/metrics", admin.addr);
    } else if let Some(addr) = gateway.config().gateway.server.admin {
        match crate::http::start_admin(gateway.clone(), addr).await {
            Ok(admin) => tracing::info!("metrics:       http://{}/metrics", admin.addr),
            Err(e) => tracing::error!(
                "cannot listen on [server] admin = {addr} ({e}): /metrics is unavailable; \
                 set another address, or admin = \"\" to turn it off"
            ),
        }
    }
    let stop = server.shutdown_handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stop.send(true);
    });
    server.wait().await?;
    Ok(ExitCode::SUCCESS)
}

/// SIGHUP re-reads ast.properties, the formats and the token procedures (Gateway::reload logs
/// the outcome; a broken configuration is refused and the running one stays).
fn reload_on_sighup(gateway: std::sync::Arc<Gateway>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        tracing::info!(target: "config", "SIGHUP: reloading the configuration");
                        let _ = gateway.reload();
                    }
                });
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGHUP, configuration reload is unavailable: {e}")
            }
        }
    }
    #[cfg(not(unix))]
    let _ = gateway;
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
    let explanation = crate::issuance::explain(&config, path, &headers, facts.as_ref());
    println!("{explanation}");
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
    println!("{encrypted}");
    eprintln!(
        "write it as <param>.encrypted = {encrypted}  (key: {})",
        root.secret_key().display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn config_check(root: &Root) -> anyhow::Result<ExitCode> {
    let config = match crate::issuance::check_configuration(root) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                println!("{e}");
            }
            println!("{} problem(s) found", errors.0.len());
            return Ok(ExitCode::FAILURE);
        }
    };
    println!("configuration OK ({})", root.dir().display());
    let server = &config.gateway.server;
    println!(
        "public URL: {} (CRL, OCSP and CA-certificate URLs in certificates)",
        server.public_url
    );
    if server.public_url_derived {
        println!(
            "warning: [server] public_url is not set; it was derived from the listener. Set it to \
             the URL relying parties use"
        );
    }
    let listeners: Vec<SocketAddr> = server.http.into_iter().chain(server.https).collect();
    for warning in config::public_url_warnings(&server.public_url, &listeners) {
        println!("warning: {warning}");
    }
    println!(
        "AST service: {}",
        if config.ast.enabled {
            "enabled"
        } else {
            "disabled (start = false)"
        }
    );
    for h in &config.ast.handlers {
        println!();
        println!(
            "handler.{}: filter \"{}\", format {}, token procedure {}, roles {}",
            h.number,
            h.filter_source,
            h.format,
            h.token_procedure,
            match &h.required_roles {
                None => "- (trusted proxies)".to_string(),
                Some(config::RequiredRoles::AnyCertificate) =>
                    "none (any client certificate)".to_string(),
                Some(config::RequiredRoles::All(r)) => r.join(","),
            }
        );
        println!(
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
            println!(
                "  {:>3}  {:<48} <- {:<28} {:<40} ({from})",
                f.index,
                f.target.to_string(),
                source,
                modules
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ca(root: &Root, command: CaCommand) -> anyhow::Result<ExitCode> {
    let command = match command {
        CaCommand::Create(args) => return ca_admin::create(root, args),
        CaCommand::Import(args) => return ca_admin::import(root, args),
        other => other,
    };
    let config = load_config(root)?;
    let cas = crate::issuance::load_cas(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
    match command {
        CaCommand::List { json } => {
            let rows: Vec<serde_json::Value> = cas
                .values()
                .map(|ca| {
                    let tbs = ca.certificate().tbs_certificate();
                    serde_json::json!({
                        "name": ca.name(),
                        "subject": tbs.subject().to_string(),
                        "issuer": tbs.issuer().to_string(),
                        "notAfter": tbs.validity().not_after.to_string(),
                        "chainLength": ca.chain().len(),
                    })
                })
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for r in rows {
                    println!(
                        "{:<12} {}  (until {})",
                        r["name"].as_str().unwrap_or(""),
                        r["subject"].as_str().unwrap_or(""),
                        r["notAfter"].as_str().unwrap_or("")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        CaCommand::Export { name } => match cas.get(&name) {
            Some(ca) => {
                print!("{}", ca.chain_pem());
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
