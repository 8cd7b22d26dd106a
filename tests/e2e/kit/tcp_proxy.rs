//! A TCP proxy between gateways and PostgreSQL that a test can cut and restore: a database
//! outage without stopping the shared server. Cutting closes every open connection and the
//! listening socket (new connections are refused, as with a stopped server); restoring binds
//! the same address again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct TcpProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    target: SocketAddr,
    /// `true` while the proxy forwards; every connection task watches it.
    up: Arc<watch::Sender<bool>>,
    listener: Mutex<Option<JoinHandle<()>>>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, _) = watch::channel(true);
        let proxy = TcpProxy {
            addr,
            target,
            up: Arc::new(up),
            listener: Mutex::new(None),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let (up, target) = (self.up.clone(), self.target);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut down = up.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        *self.listener.lock().unwrap() = Some(task);
    }

    /// The outage: open connections are closed, new ones refused.
    pub async fn cut(&self) {
        let task = self.listener.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        self.up.send_replace(false);
    }

    /// The database is back.
    pub async fn restore(&self) {
        self.up.send_replace(true);
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        if let Some(task) = self.listener.lock().unwrap().take() {
            task.abort();
        }
        self.up.send_replace(false);
    }
}
