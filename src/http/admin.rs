//! The admin listener: `/metrics` in Prometheus text format.
//!
//! Separate from the service listener so it can stay on loopback or a management network; it
//! is unauthenticated and serves nothing but metrics. The recorder is
//! `metrics-exporter-prometheus` without default features (no listener or push client of its
//! own): we install it once per process and render its handle here.

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
                    crate::issuance::metrics::describe();
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
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    let addr = listener.local_addr()?;
    let app = admin_router(gateway);
    let task = tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(AdminServer { addr, task })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Connection;
    use crate::issuance::SoftTokenRequest;
    use crate::policy::IdentityHeaders;
    use crate::token::Pin;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    fn request(pin: &str) -> SoftTokenRequest {
        SoftTokenRequest {
            connection: Connection {
                peer: "127.0.0.1:40000".parse().unwrap(),
                client_certificate: None,
            },
            handler: crate::issuance::HandlerChoice::Path(String::new()),
            headers: IdentityHeaders::new([
                ("commonname", "Metrics Test"),
                ("country", "SE"),
                ("email", "metrics.test@example.com"),
            ]),
            form: Ok(crate::issuance::TokenForm {
                pin: Pin::new(pin.into()),
                profile: None,
            }),
            request_id: format!("metrics-test-{pin}"),
        }
    }

    /// The value of the first sample line starting with `prefix`.
    fn sample(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[tokio::test]
    async fn metrics_after_one_issued_and_one_refused_token() {
        assert!(
            prometheus().is_some(),
            "the recorder could not be installed"
        );
        let dir = tempfile::tempdir().unwrap();
        let root = crate::config::Root::new(dir.path());
        crate::issuance::write_default(&root).unwrap();
        let config = crate::rules::load(&root).unwrap();
        let gateway = Gateway::open(config).await.unwrap();

        let token = gateway
            .issue_soft_token(request("metrics-pin-1"))
            .await
            .unwrap();
        assert!(!token.pkcs12.is_empty());
        let refused = gateway.issue_soft_token(request("123")).await.unwrap_err();
        assert_eq!(refused.code().as_str(), "password-policy");

        // The expiry gauge: nothing of a one-year token expires within 30 days; both of its
        // certificates within 400.
        assert_eq!(gateway.refresh_expiry_gauge().await.unwrap(), 0);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let in_400_days = now + 400 * 86_400;
        assert_eq!(
            gateway
                .store()
                .count_expiring(now, in_400_days)
                .await
                .unwrap(),
            2
        );

        let response = admin_router(gateway.clone())
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();

        let issued = sample(
            &text,
            "ast_tokens_issued_total{handler=\"handler.1\",token_procedure=\"default\"}",
        );
        assert!(issued.is_some_and(|v| v >= 1.0), "{text}");
        let refused = sample(
            &text,
            "ast_tokens_refused_total{handler=\"handler.1\",code=\"password-policy\"}",
        );
        assert!(refused.is_some_and(|v| v >= 1.0), "{text}");
        for stage in ["keygen", "sign", "pkcs12", "store"] {
            let count = sample(
                &text,
                &format!("ast_issuance_stage_seconds_count{{stage=\"{stage}\"}}"),
            );
            assert!(count.is_some_and(|v| v >= 1.0), "stage {stage}: {text}");
        }
        assert!(
            text.contains("ast_issuance_stage_seconds_bucket{stage=\"pkcs12\",le=\"0.005\"}"),
            "{text}"
        );
        let capacity = sample(&text, "ast_key_pool_capacity{key_type=\"rsa-2048\"}");
        assert_eq!(capacity, Some(32.0), "{text}");
        assert!(
            sample(&text, "ast_key_pool_keys{key_type=\"rsa-2048\"}").is_some(),
            "{text}"
        );
        assert_eq!(sample(&text, "ast_db_max_connections"), Some(8.0), "{text}");
        assert!(
            sample(&text, "ast_db_connections{state=\"idle\"}").is_some(),
            "{text}"
        );
        let build = format!(
            "ast_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(sample(&text, &build), Some(1.0), "{text}");
        let issuing = gateway.cas()["issuing"]
            .certificate()
            .tbs_certificate()
            .validity()
            .not_after
            .to_unix_duration()
            .as_secs() as f64;
        assert_eq!(
            sample(&text, "ast_ca_not_after_seconds{ca=\"issuing\"}"),
            Some(issuing),
            "{text}"
        );
        assert!(
            sample(&text, "ast_ca_not_after_seconds{ca=\"root\"}").is_some(),
            "{text}"
        );
        assert_eq!(
            sample(&text, "ast_certificates_expiring{within=\"30d\"}"),
            Some(0.0),
            "{text}"
        );
        // Every metric has its # HELP line.
        let types: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        assert!(types.len() >= 10, "{text}");
        for name in types {
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "no HELP for {name}: {text}"
            );
        }
        // No secret ever reaches a label.
        assert!(!text.contains("metrics-pin-1"));
    }
}
