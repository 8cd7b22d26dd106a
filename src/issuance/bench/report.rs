//! The result of a `bench` run: throughput, latency percentiles and the mean time per stage,
//! as JSON (`--json`) or as the summary `bench` prints.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::{Sample, ms, percentile};
use crate::issuance::StageTimes;

/// Milliseconds at the usual percentiles.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// Mean milliseconds per token and stage.
#[derive(Debug, Clone, Serialize)]
pub struct StageMeans {
    pub keygen: f64,
    pub sign: f64,
    pub pkcs12: f64,
}

/// The result of a run (also the `--json` output).
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub procedure: String,
    pub key_types: Vec<String>,
    pub pkcs12_iterations: u32,
    pub tokens: usize,
    pub threads: usize,
    pub pool: bool,
    pub keygen_only: bool,
    /// Pool size per key type (empty without the pool).
    pub pool_capacity: BTreeMap<String, usize>,
    /// Seconds spent filling the pool before timing.
    pub pool_fill_seconds: f64,
    pub elapsed_seconds: f64,
    pub tokens_per_second: f64,
    pub keys_per_second: f64,
    /// Latency of one token (keygen + sign + PKCS#12) in milliseconds.
    pub latency_ms: Percentiles,
    pub stage_mean_ms: StageMeans,
    pub pooled_keys: u64,
    pub inline_keys: u64,
    /// CPU model and core count, for the record.
    pub machine: String,
}

/// The latency percentiles of the samples, in milliseconds.
pub(super) fn latency(samples: &[Sample]) -> Percentiles {
    let mut latencies: Vec<f64> = samples.iter().map(|(d, _)| ms(*d)).collect();
    latencies.sort_by(f64::total_cmp);
    Percentiles {
        p50: percentile(&latencies, 0.50),
        p90: percentile(&latencies, 0.90),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or(0.0),
    }
}

/// The mean milliseconds per token of each stage.
pub(super) fn stage_means(samples: &[Sample]) -> StageMeans {
    let n = samples.len().max(1) as f64;
    let sum =
        |f: fn(&StageTimes) -> Duration| samples.iter().map(|(_, s)| ms(f(s))).sum::<f64>() / n;
    StageMeans {
        keygen: sum(|s| s.keygen),
        sign: sum(|s| s.sign),
        pkcs12: sum(|s| s.pkcs12),
    }
}

impl BenchReport {
    /// The human-readable summary `bench` prints.
    pub fn summary(&self) -> String {
        let pool = if self.keygen_only {
            "keygen only (no certificates, no PKCS#12)".to_string()
        } else if self.pool {
            let caps: Vec<String> = self
                .pool_capacity
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!(
                "pool {} (filled in {:.1} s, untimed)",
                if caps.is_empty() {
                    "-".into()
                } else {
                    caps.join(" ")
                },
                self.pool_fill_seconds
            )
        } else {
            "no pool (every key generated inline)".into()
        };
        format!(
            "procedure {} [{}], PKCS#12 {} iterations, {} threads, {}\n\
             machine: {}\n\
             {} tokens in {:.2} s: {:.1} tokens/s, {:.1} keys/s ({} from the pool, {} inline)\n\
             latency per token ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}\n\
             mean per token ms: keygen {:.2}  sign {:.2}  pkcs12 {:.2}",
            self.procedure,
            self.key_types.join(", "),
            self.pkcs12_iterations,
            self.threads,
            pool,
            self.machine,
            self.tokens,
            self.elapsed_seconds,
            self.tokens_per_second,
            self.keys_per_second,
            self.pooled_keys,
            self.inline_keys,
            self.latency_ms.p50,
            self.latency_ms.p90,
            self.latency_ms.p99,
            self.latency_ms.max,
            self.stage_mean_ms.keygen,
            self.stage_mean_ms.sign,
            self.stage_mean_ms.pkcs12,
        )
    }
}
