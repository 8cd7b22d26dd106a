//! Issuance metrics (SPEC §12), recorded through the `metrics` facade. The Prometheus exporter
//! that renders them lives in `http` (the admin listener); without an installed recorder every
//! call here is a no-op.
//!
//! Names and labels are a public interface for operators' dashboards: change them only with a
//! note in the changelog.
//!
//! The key pool (`token::KeyPool`) records its own: `ast_key_pool_keys{key_type}` and
//! `ast_key_pool_capacity{key_type}` (gauges, also re-sampled on every scrape) and
//! `ast_key_pool_requests_total{key_type,source="pool"|"inline"}` (a growing `inline` count
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
            metrics::gauge!("ast_key_pool_keys", "key_type" => name).set(fill.keys as f64);
            metrics::gauge!("ast_key_pool_capacity", "key_type" => name).set(fill.capacity as f64);
        }
        metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        let load = self.load();
        metrics::gauge!(BUSY).set(load.cpu_busy as f64);
        metrics::gauge!(WAITING).set(load.cpu_waiting as f64);
        metrics::gauge!(WRITE_QUEUE).set((load.writer.queued + load.writer.in_flight) as f64);
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
