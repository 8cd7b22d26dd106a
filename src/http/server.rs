//! Listeners, connection hygiene and graceful shutdown.
//!
//! Our own accept loop on hyper-util's protocol-detecting connection builder (HTTP/1.1 and
//! HTTP/2, plain and TLS), with axum as the router. Every network input is bounded: the TLS
//! handshake (`[server] handshake_timeout_secs`), the request header section (time and size),
//! the body (time), idle kept-alive connections, and the number of open connections (kept
//! below the open-file limit; idle ones are evicted first). On shutdown the listeners stop
//! accepting, connections without a request in progress (idle, silent, half-sent) are closed
//! at once, and requests in progress get `[limits] shutdown_grace_secs` to finish.
//!
//! Here: the listeners and the accept loop; what runs for each connection is in
//! `per_connection`.

mod per_connection;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use super::connection::{ADMITTING, Registry, Timeouts};
use super::{router, tls};
use crate::issuance::Gateway;
use per_connection::serve_connection;

/// Which addresses to listen on (overrides of the configuration).
#[derive(Debug, Default)]
pub struct Listeners {
    /// An HTTP listener already bound by the embedding program (so it knows its URL before
    /// the server starts, with the port the OS assigned); takes precedence over `http`.
    pub http_bound: Option<std::net::TcpListener>,
    pub http: Option<SocketAddr>,
    /// HTTPS listen address, overriding [server] https (needs tls_cert and tls_key).
    pub https: Option<SocketAddr>,
}

/// A started server.
pub struct RunningServer {
    /// The bound HTTP address (port 0 resolved).
    pub http_addr: Option<SocketAddr>,
    /// The bound HTTPS address (port 0 resolved).
    pub https_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

impl RunningServer {
    /// Stops accepting, closes idle connections, lets in-flight requests finish (within the
    /// shutdown grace period), and waits.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(true);
        self.wait().await
    }

    /// Waits until every listener has stopped.
    pub async fn wait(self) -> std::io::Result<()> {
        for task in self.tasks {
            task.await.map_err(std::io::Error::other)??;
        }
        Ok(())
    }

    /// A handle that triggers graceful shutdown.
    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Marks a request that came over TLS (for HSTS and `Secure` cookies).
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

/// What every connection of a server shares.
struct Transport {
    registry: Arc<Registry>,
    timeouts: Timeouts,
    /// hyper's own ceiling on the header section (HTTP/1 read buffer, HTTP/2 header list):
    /// beyond it hyper answers a bare 431 and closes. Below it, the router's check answers 431
    /// with our error code (see `routes::middleware::header_limit`).
    header_ceiling: usize,
    grace: Duration,
    /// Accepted connections waiting for admission (see `connection::ADMITTING`).
    admitting: Arc<tokio::sync::Semaphore>,
    /// Concurrent HTTP/2 streams per connection.
    max_streams: u32,
    /// Requests per connection, after which it is closed gracefully.
    max_requests: u64,
}

/// The TLS side of the HTTPS listener.
struct TlsSetup {
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
}

/// Binds the listeners and starts serving in the background.
pub async fn start(gateway: Arc<Gateway>, listeners: Listeners) -> std::io::Result<RunningServer> {
    let settings = gateway.settings();
    let limits = &settings.limits;
    let transport = Arc::new(Transport {
        registry: Registry::new(connection_cap(limits.max_connections)),
        timeouts: Timeouts {
            header: limits.header_timeout,
            body: limits.body_timeout,
            idle: limits.idle_timeout,
            send: limits.send_timeout,
        },
        max_streams: limits.max_streams_per_connection,
        max_requests: limits.max_requests_per_connection,
        header_ceiling: (2 * limits.max_header_bytes).max(64 * 1024),
        grace: limits.shutdown_grace,
        admitting: Arc::new(tokio::sync::Semaphore::new(ADMITTING)),
    });
    let (shutdown, _) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut http_addr = None;
    let http_listener = match (
        listeners.http_bound,
        listeners.http.or(settings.server.http),
    ) {
        (Some(bound), _) => {
            bound.set_nonblocking(true)?;
            Some(TcpListener::from_std(bound)?)
        }
        (None, Some(addr)) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| bind_error(addr, e))?,
        ),
        (None, None) => None,
    };
    if let Some(listener) = http_listener {
        http_addr = Some(listener.local_addr()?);
        tasks.push(tokio::spawn(serve(
            listener,
            router(gateway.clone()),
            None,
            transport.clone(),
            shutdown.subscribe(),
        )));
    }
    let mut https_addr = None;
    if let Some(addr) = listeners.https.or(settings.server.https) {
        let server = &settings.server;
        let (Some(cert), Some(key)) = (&server.tls_cert, &server.tls_key) else {
            return Err(std::io::Error::other(
                "an HTTPS listener needs [server] tls_cert and tls_key",
            ));
        };
        let tls_config = tls::server_config(
            cert,
            key,
            server.client_ca.as_deref(),
            gateway.revoked_officers(),
        )
        .map_err(std::io::Error::other)?;
        if server.client_ca.is_none() {
            tracing::warn!(
                "HTTPS without [server] client_ca: no client certificates are requested, so officers cannot log in"
            );
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| bind_error(addr, e))?;
        https_addr = Some(listener.local_addr()?);
        let tls = Arc::new(TlsSetup {
            acceptor: TlsAcceptor::from(tls_config),
            handshake_timeout: server.handshake_timeout,
        });
        tasks.push(tokio::spawn(serve(
            listener,
            router(gateway.clone()),
            Some(tls),
            transport.clone(),
            shutdown.subscribe(),
        )));
    }
    if tasks.is_empty() {
        return Err(std::io::Error::other(
            "no listener configured: set [server] http or https",
        ));
    }
    Ok(RunningServer {
        http_addr,
        https_addr,
        shutdown,
        tasks,
    })
}

/// A bind failure that names the address ("Address already in use" alone does not say which).
fn bind_error(addr: SocketAddr, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
}

/// Raises the soft open-file limit to the hard limit, logs both, and returns how many
/// connections may be open at once: the configured number, or by default the soft limit less
/// a reserve (database, CA and key files, logs, the admin listener), and never more than that.
fn connection_cap(configured: Option<usize>) -> usize {
    let before = rlimit::Resource::NOFILE.get().ok();
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!("cannot raise the open-file limit: {e}");
    }
    let soft = match rlimit::Resource::NOFILE.get() {
        Ok((soft, hard)) => {
            tracing::info!(
                soft,
                hard,
                soft_at_start = before.map(|(s, _)| s),
                "open-file limit (RLIMIT_NOFILE)"
            );
            usize::try_from(soft).unwrap_or(usize::MAX)
        }
        Err(e) => {
            tracing::warn!("cannot read the open-file limit ({e}); assuming 1024");
            1024
        }
    };
    let reserve = (soft / 8).clamp(64, 1024);
    let ceiling = if soft > 2 * reserve {
        soft - reserve
    } else {
        soft / 2
    }
    .max(8);
    let cap = match configured {
        Some(n) if n > ceiling => {
            tracing::warn!(
                configured = n,
                used = ceiling,
                "[limits] max_connections is above the open-file limit less a reserve; using the lower number"
            );
            ceiling
        }
        Some(n) => n,
        // Automatic: also bounded for memory (each connection holds buffers).
        None => ceiling.min(16_384),
    };
    tracing::info!(max_connections = cap, "connection limit");
    cap
}

/// Accepts until told to stop, then drains.
async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<TlsSetup>>,
    transport: Arc<Transport>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        // Admission may wait for a connection being closed to make room: it runs beside the
        // accept loop, at most `ADMITTING` at once (the loop waits beyond that).
        let admitting = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            permit = transport.admitting.clone().acquire_owned() => permit,
        };
        let Ok(admitting) = admitting else { break };
        let accepted = tokio::select! {
            // A dropped sender (the RunningServer is gone) stops the server too.
            _ = stop.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_per_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors (EMFILE/ENFILE) or memory: back off instead of
                // spinning; connections closing free descriptors.
                tracing::warn!("accept failed: {e}; retrying in 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (app, tls, transport, stop) =
            (app.clone(), tls.clone(), transport.clone(), stop.clone());
        connections.spawn(async move {
            let admitted = transport.registry.admit(peer.ip()).await;
            drop(admitting);
            let Ok(slot) = admitted else {
                return; // dropping `tcp` closes it
            };
            let _ = tcp.set_nodelay(true);
            serve_connection(tcp, peer, slot, app, tls, transport, stop).await;
        });
    }
    drop(listener);
    let in_progress = connections.len();
    if in_progress > 0 {
        tracing::info!(
            connections = in_progress,
            grace_secs = transport.grace.as_secs(),
            "listener closed; waiting for requests in progress"
        );
    }
    let drained = tokio::time::timeout(transport.grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "shutdown grace period over: closing connections with requests still in progress"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// Errors of one incoming connection that say nothing about the listener.
fn is_per_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    )
}
