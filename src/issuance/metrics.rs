//! Issuance metrics, recorded through the `metrics` facade. The Prometheus exporter
//! that renders them lives in `http` (the admin listener); without an installed recorder every
//! call here is a no-op.
//!
//! Names and labels are a public interface for operators' dashboards: change them only with a
//! note in the changelog.
//!
//! The key pool (`token::KeyPool`) records its own: `ast_key_pool_keys{key_type}` and
//! `ast_key_pool_capacity{key_type}` (gauges, also re-sampled on every scrape) and
//! `ast_key_pool_requests_total{key_type,source="pool"|"inline"}` (a growing `inline` count
//! means the pool is too small or the host too busy to refill it). Every metric is described
//! in [`describe`], which gives it its `# HELP` line; docs/operations.md lists them.
//! means the pool is too small or the host too busy to refill it).
//!
//! Load and backpressure: `ast_issuance_shed_total{queue="cpu"|"write"}` (requests refused
//! with 503 because a bounded queue was full), `ast_rate_limited_total{scope}` (429s),
//! `ast_issuance_waiting` and `ast_issuance_cpu_busy` (gauges: requests waiting for a CPU slot,
//! slots in use), `ast_store_write_queue` (gauge: issuances reserved or queued for the database
//! writer) and, recorded by the store, `ast_store_batch_size` (issuances per committed
//! transaction) and `ast_store_commit_seconds`.

use std::time::Duration;

use super::{Gateway, StageTimes};
use crate::store::WriterStats;

pub use super::admission::{BUSY, RATE_LIMITED, SHED, WAITING};
/// Gauge: issuances reserved or queued for the database writer.
pub const WRITE_QUEUE: &str = "ast_store_write_queue";

/// How loaded the issuance path is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssuanceLoad {
    /// CPU slots in use: blocking tasks making tokens (also for requests already gone).
    pub cpu_busy: usize,
    /// Requests waiting for a CPU slot.
    pub cpu_waiting: usize,
    /// The database writer's counters.
    pub writer: WriterStats,
}

/// Counter: tokens delivered, by handler and token procedure.
pub const TOKENS_ISSUED: &str = "ast_tokens_issued_total";
/// Counter: refused requests, by handler (`none` when no handler matched) and error code.
pub const TOKENS_REFUSED: &str = "ast_tokens_refused_total";
/// Histogram: seconds per issuance stage (`keygen`, `sign`, `pkcs12`, `store`).
pub const STAGE_SECONDS: &str = "ast_issuance_stage_seconds";
/// Histogram: seconds of the whole issuance (all stages), by handler.
pub const ISSUANCE_SECONDS: &str = "ast_issuance_seconds";
/// Gauges: database connections (`state` = `idle` | `in_use`) and the configured maximum.
pub const DB_CONNECTIONS: &str = "ast_db_connections";
pub const DB_MAX_CONNECTIONS: &str = "ast_db_max_connections";
/// Gauge: 1, with the version as a label.
pub const BUILD_INFO: &str = "ast_build_info";
/// Gauge: each CA certificate's notAfter in Unix seconds, by CA name.
pub const CA_NOT_AFTER: &str = "ast_ca_not_after_seconds";
/// Gauge: good (unrevoked) certificates whose notAfter falls within the next `within`
/// (`30d`), refreshed from the database every [`EXPIRY_REFRESH`].
pub const CERTIFICATES_EXPIRING: &str = "ast_certificates_expiring";
/// Key-pool metrics, recorded by `token::KeyPool`.
pub const KEY_POOL_KEYS: &str = "ast_key_pool_keys";
pub const KEY_POOL_CAPACITY: &str = "ast_key_pool_capacity";
pub const KEY_POOL_REQUESTS: &str = "ast_key_pool_requests_total";

/// The window of [`CERTIFICATES_EXPIRING`] and its label value.
pub const EXPIRING_WINDOW: Duration = Duration::from_secs(30 * 86_400);
pub const EXPIRING_LABEL: &str = "30d";
/// How often the expiring-certificates gauge is recounted (one COUNT query per node).
pub const EXPIRY_REFRESH: Duration = Duration::from_secs(300);

/// Gives every metric its `# HELP` line (and unit). Call once, right after the recorder is
/// installed; the exporter prints the text of each described metric.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        super::admission::SHED,
        "Requests refused with 503 because a bounded queue was full (queue = cpu or write)."
    );
    describe_counter!(
        super::admission::RATE_LIMITED,
        "Requests refused with 429 by a per-caller rate limit (scope = peer, identity or officer)."
    );
    describe_gauge!(
        super::admission::WAITING,
        "Requests waiting for a CPU slot (key generation, signing, PKCS#12)."
    );
    describe_gauge!(super::admission::BUSY, "CPU slots in use by issuance work.");
    describe_gauge!(
        WRITE_QUEUE,
        "Issuances reserved or queued for the database writer (group commit)."
    );
    describe_histogram!(
        crate::store::BATCH_SIZE,
        "Issuances committed per database transaction by the group-commit writer."
    );
    describe_histogram!(
        crate::store::COMMIT_SECONDS,
        Unit::Seconds,
        "Time of one group-commit transaction, from begin to commit."
    );
    describe_counter!(
        crate::store::CONNECTIONS_DROPPED,
        "Database connections dropped or refused: reason lost (their server went away, turned \
         read-only, or a write's outcome was unknown) or read_only (the server is a standby or \
         read-only)."
    );
    describe_counter!(
        crate::store::SERVER_SWITCHES,
        "Times this node moved its database connections to another server of a multi-host URL \
         (a failover)."
    );
    describe_counter!(
        TOKENS_ISSUED,
        "Soft tokens delivered, by handler and token procedure."
    );
    describe_counter!(
        TOKENS_REFUSED,
        "Refused soft-token requests, by handler (none when no handler matched) and error code."
    );
    describe_histogram!(
        STAGE_SECONDS,
        Unit::Seconds,
        "Seconds per issuance stage (keygen, sign, pkcs12, store)."
    );
    describe_histogram!(
        ISSUANCE_SECONDS,
        Unit::Seconds,
        "Seconds of a whole issuance (all stages), by handler."
    );
    describe_gauge!(
        DB_CONNECTIONS,
        "Database connections of this node, by state (idle, in_use)."
    );
    describe_gauge!(
        DB_MAX_CONNECTIONS,
        "Configured maximum of database connections of this node."
    );
    describe_gauge!(BUILD_INFO, "Always 1; the version is a label.");
    describe_gauge!(
        CA_NOT_AFTER,
        Unit::Seconds,
        "notAfter of each configured CA certificate, Unix seconds."
    );
    describe_gauge!(
        CERTIFICATES_EXPIRING,
        "Unrevoked certificates whose notAfter falls within the window given by the label, \
         recounted from the database every 5 minutes."
    );
    describe_gauge!(
        KEY_POOL_KEYS,
        "Pre-generated keys waiting in the key pool, by key type."
    );
    describe_gauge!(KEY_POOL_CAPACITY, "Key pool size, by key type.");
    describe_counter!(
        KEY_POOL_REQUESTS,
        "Keys handed out, by key type and source (pool, or inline when the pool was empty)."
    );
}

/// Histogram bucket bounds in seconds: from a pooled P-256 token (≈ 1 ms) to a 4096-bit RSA
/// keygen tail (seconds).
pub const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Records a delivered token.
pub fn issued(handler: &str, procedure: &str, stages: &StageTimes, store: Duration) {
    metrics::counter!(TOKENS_ISSUED, "handler" => handler.to_string(), "token_procedure" => procedure.to_string())
        .increment(1);
    for (stage, time) in [
        ("keygen", stages.keygen),
        ("sign", stages.sign),
        ("pkcs12", stages.pkcs12),
        ("store", store),
    ] {
        metrics::histogram!(STAGE_SECONDS, "stage" => stage).record(time.as_secs_f64());
    }
    let total = stages.keygen + stages.sign + stages.pkcs12 + store;
    metrics::histogram!(ISSUANCE_SECONDS, "handler" => handler.to_string())
        .record(total.as_secs_f64());
}

/// Records a refusal.
pub fn refused(handler: &str, code: &'static str) {
    metrics::counter!(TOKENS_REFUSED, "handler" => handler.to_string(), "code" => code)
        .increment(1);
}

impl Gateway {
    /// Sets the gauges that are sampled rather than counted (database pool, key-pool fill,
    /// build info). Call before rendering a scrape.
    pub fn sample_gauges(&self) {
        let db = self.store.pool_status();
        metrics::gauge!(DB_CONNECTIONS, "state" => "idle").set(db.idle as f64);
        metrics::gauge!(DB_CONNECTIONS, "state" => "in_use")
            .set(db.size.saturating_sub(db.idle) as f64);
        metrics::gauge!(DB_MAX_CONNECTIONS).set(db.max as f64);
        for fill in self.key_pool.fill() {
            let name = fill.key_type.name();
            metrics::gauge!(KEY_POOL_KEYS, "key_type" => name).set(fill.keys as f64);
            metrics::gauge!(KEY_POOL_CAPACITY, "key_type" => name).set(fill.capacity as f64);
        }
        metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        for (name, ca) in &self.cas {
            let not_after = ca
                .certificate()
                .tbs_certificate()
                .validity()
                .not_after
                .to_unix_duration();
            metrics::gauge!(CA_NOT_AFTER, "ca" => name.clone()).set(not_after.as_secs() as f64);
        }
        let load = self.load();
        metrics::gauge!(BUSY).set(load.cpu_busy as f64);
        metrics::gauge!(WAITING).set(load.cpu_waiting as f64);
        metrics::gauge!(WRITE_QUEUE).set((load.writer.queued + load.writer.in_flight) as f64);
    }

    /// Recounts the certificates expiring within [`EXPIRING_WINDOW`] and sets the gauge.
    /// Returns the count.
    pub async fn refresh_expiry_gauge(&self) -> Result<i64, crate::store::StoreError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let count = self
            .store
            .count_expiring(now, now + EXPIRING_WINDOW.as_secs() as i64)
            .await?;
        metrics::gauge!(CERTIFICATES_EXPIRING, "within" => EXPIRING_LABEL).set(count as f64);
        Ok(count)
    }

    /// Keeps the expiring-certificates gauge current: now, then every [`EXPIRY_REFRESH`].
    /// Stops when the gateway is dropped.
    pub fn spawn_expiry_refresher(self: &std::sync::Arc<Self>) -> tokio::task::JoinHandle<()> {
        let gateway = std::sync::Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EXPIRY_REFRESH);
            loop {
                tick.tick().await;
                let Some(gateway) = gateway.upgrade() else {
                    return;
                };
                if let Err(e) = gateway.refresh_expiry_gauge().await {
                    tracing::warn!(error = %e, "could not count the expiring certificates");
                }
            }
        })
    }

    /// The load of the issuance path now (CPU slots, queue, database writer).
    pub fn load(&self) -> IssuanceLoad {
        IssuanceLoad {
            cpu_busy: self.admission.cpu.busy(),
            cpu_waiting: self.admission.cpu.waiting(),
            writer: self.store.writer_stats(),
        }
    }
}
