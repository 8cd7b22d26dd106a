//! Listeners and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::router;
use crate::issuance::Gateway;

/// Which addresses to listen on (overrides of the configuration).
#[derive(Debug, Clone, Default)]
pub struct Listeners {
    pub http: Option<SocketAddr>,
}

/// A started server.
pub struct RunningServer {
    /// The bound HTTP address (port 0 resolved).
    pub http_addr: Option<SocketAddr>,
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
    let http = listeners.http.or(gateway.config().gateway.server.http);
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
    if tasks.is_empty() {
        return Err(std::io::Error::other(
            "no listener configured: set [server] http or https",
        ));
    }
    Ok(RunningServer {
        http_addr,
        shutdown,
        tasks,
    })
}
