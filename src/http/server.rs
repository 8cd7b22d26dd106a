//! Listeners and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::middleware;
use axum_server::Handle;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{router, tls};
use crate::issuance::Gateway;

/// Which addresses to listen on (overrides of the configuration).
#[derive(Debug, Clone, Default)]
pub struct Listeners {
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
    /// Stops accepting, lets in-flight requests finish, and waits.
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

/// Binds the listeners and starts serving in the background.
pub async fn start(gateway: Arc<Gateway>, listeners: Listeners) -> std::io::Result<RunningServer> {
    let (shutdown, mut rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut http_addr = None;
    let http = listeners.http.or(gateway.settings().server.http);
    if let Some(addr) = http {
        let listener = TcpListener::bind(addr).await?;
        http_addr = Some(listener.local_addr()?);
        let app = router(gateway.clone()).into_make_service_with_connect_info::<SocketAddr>();
        tasks.push(tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await
        }));
    }
    let mut https_addr = None;
    if let Some(addr) = listeners.https.or(gateway.settings().server.https) {
        let (addr, task) = start_https(gateway.clone(), addr, shutdown.subscribe()).await?;
        https_addr = Some(addr);
        tasks.push(task);
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

/// Binds the HTTPS listener: the same router, plus the middleware that attaches the verified
/// client certificate (see `tls`).
async fn start_https(
    gateway: Arc<Gateway>,
    addr: SocketAddr,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, JoinHandle<std::io::Result<()>>)> {
    let server = gateway.settings().server.clone();
    let (Some(cert), Some(key)) = (&server.tls_cert, &server.tls_key) else {
        return Err(std::io::Error::other(
            "an HTTPS listener needs [server] tls_cert and tls_key",
        ));
    };
    let tls = tls::server_config(
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
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let acceptor = RustlsAcceptor::new(RustlsConfig::from_config(tls))
        .handshake_timeout(server.handshake_timeout);
    let handle: Handle<SocketAddr> = Handle::new();
    let app = router(gateway)
        .layer(middleware::from_fn(tls::attach_connection))
        .into_make_service_with_connect_info::<SocketAddr>();
    let server = axum_server::from_tcp(listener)?
        .acceptor(acceptor)
        .handle(handle.clone());
    let task = tokio::spawn(async move {
        let on_stop = handle.clone();
        tokio::spawn(async move {
            let _ = stop.wait_for(|stop| *stop).await;
            on_stop.graceful_shutdown(None);
        });
        server.serve(app).await
    });
    Ok((bound, task))
}
