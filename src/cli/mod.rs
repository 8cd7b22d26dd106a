//! The command line. Every subcommand is a thin call into the library. Commands print through
//! `output::outln!`, so a closed pipe (`… | head`) ends the output quietly instead of panicking.

mod audit;
mod backup;
mod bench;
mod ca;
mod ca_admin;
mod certs;
mod config_tools;
mod crl;
mod database_url;
mod db;
mod front_headers;
mod import;
mod init;
pub mod logging;
mod officer;
pub(crate) mod output;
mod serve;
mod store;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, LogFormat, Root};
use output::outln;

/// The root used when neither --root nor $AST_GATEWAY_ROOT is given.
pub const DEFAULT_ROOT: &str = "ast-gateway-data";

/// Authenticated Soft Token gateway.
#[derive(Debug, Parser)]
#[command(name = "ast-gateway", version, about)]
pub struct Cli {
    /// Root directory (conf/ and data/). Defaults to $AST_GATEWAY_ROOT (when set and not
    /// empty), else ./ast-gateway-data (created on first `serve`). `serve` refuses a --root or
    /// $AST_GATEWAY_ROOT directory that does not exist, unless --init is given.
    // $AST_GATEWAY_ROOT is read in `root_dir`, not by clap's `env`: clap takes an empty
    // variable for a missing value and refuses every command, even one with --root.
    #[arg(long, global = true)]
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
    /// The root directory named on the command line or in the environment: --root, else
    /// $AST_GATEWAY_ROOT when set and not empty.
    pub fn root_dir(&self) -> Option<PathBuf> {
        self.root.clone().or_else(|| {
            std::env::var_os("AST_GATEWAY_ROOT")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
    }

    /// The root directory: --root, $AST_GATEWAY_ROOT, or the default.
    pub fn root(&self) -> Root {
        Root::new(self.root_dir().unwrap_or_else(|| DEFAULT_ROOT.into()))
    }

    /// Whether the command runs the service (its log is the service's log).
    pub fn is_serve(&self) -> bool {
        matches!(self.command, Command::Serve(_))
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
        #[command(flatten)]
        hierarchy: init::HierarchyArgs,
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
    /// The HTTPS listener's TLS server certificate.
    Tls {
        #[command(subcommand)]
        command: tls::TlsCommand,
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
    /// The database: copy a SQLite root to PostgreSQL, report its replication.
    Db {
        #[command(subcommand)]
        command: db::DbCommand,
    },
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
        /// The request path: /pgwy/ast, /pgwy/ast/<path>, or just the part after /pgwy/ast/;
        /// or an EST path, /.well-known/est/[<label>/]simpleenroll.
        path: String,
        /// An identity header, as with curl: -H 'commonname: Alice Andersson'. Repeatable.
        #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// A client certificate (PEM or DER) for `cert:subject.*` / `cert:san.*` sources, as if
        /// the caller had presented it; for an EST path, the certification request (CSR).
        #[arg(long, value_name = "FILE")]
        client_cert: Option<PathBuf>,
    },
    /// Print the front's lines that remove every request header a handler reads, from the live
    /// configuration: Apache `RequestHeader unset <h> early`, nginx `proxy_set_header <h> "";`.
    /// Put them before the lines that set the identity headers from the authentication.
    FrontHeaders {
        /// apache or nginx.
        #[arg(long, value_enum)]
        front: front_headers::Front,
    },
    /// Encrypt a value for a `<param>.encrypted` key of ast.properties with the root's secret key
    /// (data/secret.key, created on first use). Reads the value from standard input (one line).
    Encrypt,
    /// Hash a secret for est.secret of ast.properties (HTTP Basic of an EST handler), with
    /// PBKDF2-HMAC-SHA256. Reads the secret from standard input (one line).
    HashSecret,
    /// Add a random AES-256 key-encryption key to an est.keks file of ast.properties (created
    /// with mode 0600 when missing) and print it in base64, for the EST client that will name it
    /// with DecryptKeyIdentifier.
    NewKek {
        /// The file, relative to the root (e.g. conf/est/devices.keks).
        file: String,
        /// The key's identifier (e.g. kek-1).
        id: String,
    },
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
    /// Import the CRLs a CA signed before this gateway took it over (PEM or DER): their
    /// revocations stay on our CRL and in OCSP answers, and our next CRL number is above the
    /// highest one read. Each CRL is checked against the CA's key first.
    ImportCrl(import::CrlImportArgs),
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
    let root_is_explicit = cli.root_dir().is_some();
    match cli.command {
        Command::Serve(args) => serve::run(&root, root_is_explicit, args).await,
        Command::Bench(args) => bench::run(&root, args).await,
        Command::Backup(args) => backup::run(&root, args).await,
        Command::Init {
            http,
            public_url,
            hierarchy,
        } => {
            let settings = init_settings(http, public_url)?;
            let names = hierarchy.hierarchy()?;
            let written = crate::issuance::write_default_with(&root, &settings, &names)?;
            let config = load_config(&root)?;
            // The database, sealed like the service's, accounts for the TLS server certificate
            // the new root signed.
            let store = store::open_configured(&config, store::Access::Write(&root)).await?;
            written
                .record(&root, &store, &crate::identity::Caller::Cli)
                .await?;
            store.close().await;
            let ca_names = &names.names;
            outln!(
                "wrote a default configuration, {} and the database to {}",
                if hierarchy.is_own() {
                    format!(
                        "your CA hierarchy ({}, {}, {}; TLS server certificate from your root)",
                        ca_names.root, ca_names.issuing, ca_names.officers
                    )
                } else {
                    "a demo CA".to_string()
                },
                root.dir().display()
            );
            outln!("{}", settings.describe());
            for warning in
                config::public_url_warnings(&settings.public_url, &[settings.http], false)
            {
                outln!("warning: {warning}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => config_tools::config_check(&root).await,
        Command::Config {
            command:
                ConfigCommand::Explain {
                    path,
                    headers,
                    client_cert,
                },
        } => config_tools::config_explain(&root, &path, &headers, client_cert.as_deref()),
        Command::Config {
            command: ConfigCommand::Encrypt,
        } => config_tools::config_encrypt(&root),
        Command::Config {
            command: ConfigCommand::HashSecret,
        } => config_tools::config_hash_secret(),
        Command::Config {
            command: ConfigCommand::NewKek { file, id },
        } => config_tools::config_new_kek(&root, &file, &id),
        Command::Config {
            command: ConfigCommand::FrontHeaders { front },
        } => front_headers::run(&root, front),
        Command::Certs { command } => certs::run(&root, command).await,
        Command::Officer { command } => officer::run(&root, command).await,
        Command::Tls { command } => tls::run(&root, command).await,
        Command::Ca { command } => ca::run(&root, command).await,
        Command::Crl { ca, out } => crl::run(&root, ca, out).await,
        Command::Audit {
            command: AuditCommand::Verify { json },
        } => audit::verify(&root, json).await,
        Command::Audit {
            command: AuditCommand::Export(args),
        } => audit::export(&root, args).await,
        Command::Db { command } => db::run(&root, command).await,
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
pub fn load_config(root: &Root) -> anyhow::Result<crate::rules::Configuration> {
    crate::rules::load(root).map_err(|e| anyhow::anyhow!("the configuration has problems:\n{e}"))
}
