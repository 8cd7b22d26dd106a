//! The admin listener: `/metrics` in Prometheus text format (SPEC §12).
//!
//! Separate from the service listener so it can stay on loopback or a management network; it
//! is unauthenticated and serves nothing but metrics. The recorder is
//! `metrics-exporter-prometheus` without default features (no listener or push client of its
//! own, crates.md P13): we install it once per process and render its handle here.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::issuance::Gateway;
use crate::issuance::metrics::{BUCKETS, ISSUANCE_SECONDS, STAGE_SECONDS};

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first use. `None` when another global
/// `metrics` recorder was installed first (then `/metrics` answers 503).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(STAGE_SECONDS.into()), BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(ISSUANCE_SECONDS.into()), BUCKETS))
                .and_then(|b| b.install_recorder());
            match installed {
                Ok(handle) => {
                    // Histogram upkeep (drains samples into buckets) even when nobody scrapes.
                    let upkeep = handle.clone();
                    let _ = std::thread::Builder::new().name("ast-metrics-upkeep".into()).spawn(move || {
                        loop {
                            std::thread::sleep(Duration::from_secs(5));
                            upkeep.run_upkeep();
                        }
                    });
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot install the Prometheus recorder; /metrics is unavailable");
                    None
                }
            }
        })
        .as_ref()
}

/// The admin router: `GET /metrics`.
pub fn admin_router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(gateway)
}

async fn metrics(State(gateway): State<Arc<Gateway>>) -> Response {
    let Some(handle) = prometheus() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed\n",
        )
            .into_response();
    };
    gateway.sample_gauges();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// A started admin listener.
pub struct AdminServer {
    /// The bound address (port 0 resolved).
    pub addr: SocketAddr,
    /// The serving task; abort it to stop.
    pub task: JoinHandle<std::io::Result<()>>,
}

/// Installs the recorder (if not yet), binds `addr` and serves `/metrics` in the background.
pub async fn start_admin(gateway: Arc<Gateway>, addr: SocketAddr) -> std::io::Result<AdminServer> {
    prometheus();
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = admin_router(gateway);
    let task = tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(AdminServer { addr, task })
}
