//! What runs for each accepted connection: the TLS handshake (bounded by
//! `[server] handshake_timeout_secs`), then HTTP/1.1 or HTTP/2 under the connection's
//! watchdog (header, idle and body deadlines, eviction, graceful shutdown).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt;

use super::super::connection::{ConnectionState, DeadlineBody, Slot, Watched};
use super::super::tls;
use super::{OverTls, TlsSetup, Transport};
use crate::identity::Connection;

/// One connection: the TLS handshake (bounded) if any, then HTTP.
pub(super) async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    app: Router,
    tls: Option<Arc<TlsSetup>>,
    transport: Arc<Transport>,
    mut stop: watch::Receiver<bool>,
) {
    let state = slot.state.clone();
    let Some(tls) = tls else {
        let connection = Connection {
            peer,
            client_certificate: None,
        };
        let io = Watched::new(tcp, state.clone());
        serve_http(io, connection, false, app, state, &transport, &mut stop).await;
        return;
    };
    let handshake = tokio::select! {
        handshake = tokio::time::timeout(tls.handshake_timeout, tls.acceptor.accept(tcp)) => handshake,
        () = state.evicted() => return,
        _ = stop.wait_for(|stop| *stop) => return,
    };
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(%peer, "TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let connection = Connection {
        peer,
        client_certificate: tls::verified_client_certificate(stream.get_ref().1),
    };
    state.ready();
    let io = Watched::new(stream, state.clone());
    serve_http(io, connection, true, app, state, &transport, &mut stop).await;
}

/// HTTP/1.1 or HTTP/2 on a ready connection, watched until it ends, idles out or is told to
/// stop. Returning drops (closes) the connection.
async fn serve_http<I>(
    io: I,
    connection: Connection,
    over_tls: bool,
    app: Router,
    state: Arc<ConnectionState>,
    transport: &Transport,
    stop: &mut watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = connection.peer;
    let body_timeout = transport.timeouts.body;
    let service_state = state.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let multiplexed = request.version() == axum::http::Version::HTTP_2;
        let mut in_progress = service_state.begin_request(multiplexed);
        let mut request = request.map(|body| DeadlineBody::new(body, body_timeout));
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(connection.clone());
        if over_tls {
            request.extensions_mut().insert(OverTls);
        }
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await?;
            // The request counts as in progress until its response body is gone; from now on
            // the response must make progress within the send timeout.
            in_progress.responding();
            Ok::<_, std::convert::Infallible>(response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    in_progress.progress();
                    frame
                }))
            }))
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().max_buf_size(transport.header_ceiling);
    builder
        .http2()
        .max_header_list_size(u32::try_from(transport.header_ceiling).unwrap_or(u32::MAX))
        .max_concurrent_streams(transport.max_streams);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    let mut retiring = false;
    loop {
        if stopping && state.is_idle() {
            return;
        }
        if !retiring && state.served() >= transport.max_requests {
            // Enough requests on one connection (pipelined or kept alive): finish the one in
            // progress, then close (HTTP/2: GOAWAY). The client reconnects.
            retiring = true;
            conn.as_mut().graceful_shutdown();
        }
        let deadline = state.deadline(&transport.timeouts);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
                return;
            }
            () = state.changed() => {}
            () = state.evicted() => {
                tracing::debug!(%peer, "closing an idle connection to admit a new one");
                return;
            }
            () = sleep_until(deadline) => {
                if state.deadline(&transport.timeouts).is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!(%peer, "closing a connection: no complete request, or no response sent, within the time limits");
                    return;
                }
            }
            _ = stop.wait_for(|stop| *stop), if !stopping => {
                stopping = true;
                if !retiring {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
