//! `serve`: the root guard rail, the start-up summary and warnings, the listeners, the
//! background tasks and the signals (SIGHUP reloads, SIGTERM/SIGINT stop gracefully).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

mod summary;
#[cfg(test)]
use summary::CaSummary;
use summary::log_summary;

use crate::config::Root;
use crate::http::{AdminServer, Listeners, RunningServer, start};
use crate::issuance::Gateway;

/// `serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Plain-HTTP listen address, overriding [server] http.
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// HTTPS listen address, overriding [server] https (uses tls_cert, tls_key, client_ca).
    #[arg(long)]
    pub https: Option<SocketAddr>,
    /// Admin (metrics) listen address, overriding [server] admin; "" turns it off.
    #[arg(long, value_parser = parse_admin)]
    pub admin: Option<AdminAddress>,
    /// Create the root (default configuration, demo CA, database) when --root or
    /// $AST_GATEWAY_ROOT names a directory that does not exist yet. Without it such a root is
    /// refused, so a typo cannot silently start a new CA.
    #[arg(long)]
    pub init: bool,
    /// With --init on a new root: the URL relying parties use to reach this service, written as
    /// [server] public_url and into the CA certificates (as `init --public-url`).
    #[arg(long, value_name = "URL", requires = "init")]
    pub public_url: Option<String>,
    /// With --init on a new root: your own CA subjects instead of the demo's (as `init`).
    #[command(flatten)]
    pub hierarchy: super::init::HierarchyArgs,
}

/// `--admin`: an address, or `""` for no admin listener (as `admin = ""` in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAddress {
    Off,
    At(SocketAddr),
}

fn parse_admin(s: &str) -> Result<AdminAddress, String> {
    if s.is_empty() {
        return Ok(AdminAddress::Off);
    }
    s.parse().map(AdminAddress::At).map_err(|_| {
        format!("`{s}` is not an address:port such as 127.0.0.1:9102 (\"\" turns it off)")
    })
}

/// What the root needs before the service can start.
#[derive(Debug, PartialEq, Eq)]
enum RootState {
    /// It has a configuration.
    Ready,
    /// First run: write the embedded default configuration and demo CA.
    WriteDefault,
}

/// The guard rail: a root named explicitly (--root or $AST_GATEWAY_ROOT) that does not exist
/// is most likely a typo, and serving from it would silently create a new demo CA. The default
/// root keeps its first-run behaviour, and an existing empty directory (a fresh volume) is
/// initialised as before.
fn root_state(root: &Root, explicit: bool, init: bool) -> anyhow::Result<RootState> {
    if root.is_initialised() {
        return Ok(RootState::Ready);
    }
    if explicit && !init && !root.dir().exists() {
        anyhow::bail!(
            "the root directory {} does not exist. Check --root or $AST_GATEWAY_ROOT for a \
             typo; to create a new root there (default configuration and a demo CA), run \
             `ast-gateway init` or add --init",
            root.dir().display()
        );
    }
    Ok(RootState::WriteDefault)
}

pub(super) async fn run(root: &Root, explicit: bool, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let written = prepare_root(root, explicit, &args)?;
    let config = super::load_config(root)?;
    tracing::info!(
        "ast-gateway {} starting, root {}",
        env!("CARGO_PKG_VERSION"),
        std::path::absolute(root.dir())
            .unwrap_or_else(|_| root.dir().to_path_buf())
            .display()
    );
    let gateway = Gateway::open(config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot start:\n{e}"))?;
    if let Some(written) = written {
        // The TLS server certificate the new root signed is accounted for like any other.
        written
            .record(root, gateway.store(), &crate::identity::Caller::Cli)
            .await?;
    }
    let _crl_refresher = gateway.spawn_crl_refresher();
    // Anchors at start, every [audit] anchor_interval_secs and at stop; refusal counts on a
    // timer and at stop.
    let upkeep = gateway
        .store()
        .start_audit_upkeep(gateway.settings().audit.anchor_interval)
        .await;
    // Before the listeners: a SIGHUP that arrives once the service is up must not kill it.
    reload_on_sighup(gateway.clone());
    let listeners = Listeners {
        http: args.http,
        https: args.https,
        ..Listeners::default()
    };
    let server = start(gateway.clone(), listeners)
        .await
        .context("binding the listeners")?;
    log_listeners(&gateway, &server);
    let admin = start_admin_listener(&gateway, args.admin).await?;
    let _expiry_refresher = admin.as_ref().map(|admin| {
        tracing::info!(
            "listener admin: {0} (metrics: http://{0}/metrics)",
            admin.addr
        );
        gateway.spawn_expiry_refresher()
    });
    log_summary(&gateway);
    summary::log_durability(&gateway).await;
    let stop = server.shutdown_handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stop.send(true);
    });
    let served = server.wait().await;
    // After the listeners: no request can add a refusal any more.
    match upkeep.stop().await {
        Ok(()) => tracing::info!(target: "audit", "audit trail flushed and anchored at stop"),
        Err(e) => {
            tracing::error!(target: "audit", error = %e, "could not flush or anchor the audit trail at stop")
        }
    }
    served?;
    Ok(ExitCode::SUCCESS)
}

/// On a first run, writes the embedded default configuration and a demo CA (after the guard
/// rail of `root_state`); what it wrote, for the database to record.
fn prepare_root(
    root: &Root,
    explicit: bool,
    args: &ServeArgs,
) -> anyhow::Result<Option<crate::issuance::InitWritten>> {
    let mut written = None;
    if root_state(root, explicit, args.init)? == RootState::WriteDefault {
        // Port 0 is chosen at bind time: nothing to derive a URL from, keep the default.
        let settings =
            super::init_settings(args.http.filter(|a| a.port() != 0), args.public_url.clone())?;
        let names = args.hierarchy.hierarchy()?;
        written = Some(
            crate::issuance::write_default_with(root, &settings, &names)
                .context("writing the default configuration")?,
        );
        let cas = if args.hierarchy.is_own() {
            "your CA hierarchy"
        } else {
            "a demo CA"
        };
        tracing::info!(root = %root.dir().display(), "wrote the embedded default configuration and {cas}");
        tracing::info!("{}", settings.describe());
    } else if args.public_url.is_some() || args.hierarchy.is_own() || args.hierarchy.is_named() {
        tracing::warn!(
            "--public-url / --root-dn / --root-name … apply only when --init creates a new root; {} is \
             initialised already, so they were ignored",
            root.dir().display()
        );
    }
    Ok(written)
}

/// The bound listeners and their URLs, then the warnings about the public URL.
fn log_listeners(gateway: &Gateway, server: &RunningServer) {
    let settings = gateway.settings();
    if let Some(addr) = server.http_addr {
        tracing::info!("listener http:  {addr}");
        tracing::info!("PIN page:      http://{addr}/pgwy/request/ast.html");
        tracing::info!("AST endpoint:  http://{addr}/pgwy/ast");
    }
    if let Some(addr) = server.https_addr {
        let clients = match &settings.server.client_ca {
            Some(ca) => format!("client certificates verified against {}", ca.display()),
            None => "no client certificates requested".into(),
        };
        tracing::info!("listener https: {addr} ({clients})");
        tracing::info!("HTTPS (officers, mTLS): https://{addr}/pgwy/ast");
    }
    let public_url = &settings.server.public_url;
    let bound: Vec<std::net::SocketAddr> = server
        .http_addr
        .into_iter()
        .chain(server.https_addr)
        .collect();
    if settings.server.public_url_derived {
        tracing::warn!(
            "[server] public_url is not set: certificates carry {public_url}, derived from the listener; \
             set it to the URL relying parties use"
        );
    }
    for warning in
        crate::config::public_url_warnings(public_url, &bound, settings.server.public_url_via_front)
    {
        tracing::warn!("{warning}");
    }
}

/// The admin (metrics) listener: --admin, else [server] admin.
///
/// Metrics are auxiliary: when the configured admin address is taken (a second node on the
/// same host, say) the service still issues and says so loudly. An address given on the
/// command line must work.
async fn start_admin_listener(
    gateway: &Arc<Gateway>,
    admin: Option<AdminAddress>,
) -> anyhow::Result<Option<AdminServer>> {
    let settings = gateway.settings();
    Ok(match admin {
        Some(AdminAddress::At(addr)) => Some(
            crate::http::start_admin(gateway.clone(), addr)
                .await
                .context("binding the admin listener (--admin)")?,
        ),
        Some(AdminAddress::Off) => {
            tracing::info!("listener admin: off (--admin \"\"): no /metrics");
            None
        }
        None => match settings.server.admin {
            None => {
                tracing::info!("listener admin: off ([server] admin = \"\"): no /metrics");
                None
            }
            Some(addr) => match crate::http::start_admin(gateway.clone(), addr).await {
                Ok(admin) => Some(admin),
                Err(e) => {
                    tracing::error!(
                        "{e} ([server] admin): /metrics is unavailable; set another address, \
                         or admin = \"\" to turn it off"
                    );
                    None
                }
            },
        },
    })
}

/// SIGHUP re-reads ast.properties, the formats and the token procedures (Gateway::reload logs
/// the outcome; a broken configuration is refused and the running one stays).
fn reload_on_sighup(gateway: Arc<Gateway>) {
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

#[cfg(test)]
#[path = "serve_tests.rs"]
mod tests;
