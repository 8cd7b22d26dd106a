//! `ast-gateway bench --compare-rsa-keygen`: RSA key generation by every backend this build
//! has, in alternating rounds, so that machine noise hits every backend alike.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::Serialize;

use super::{machine, median, ms, percentile, worker_threads};
use crate::issuance::IssuanceError;
use crate::token::{KeyType, RsaBackend, generate_key_with};

/// What `bench --compare-rsa-keygen` measures.
#[derive(Debug, Clone)]
pub struct KeygenComparisonOptions {
    /// Keys per round, backend and key size.
    pub keys: usize,
    /// Rounds; the backends alternate which goes first.
    pub rounds: usize,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
}

/// One backend at one key size over all rounds.
#[derive(Debug, Clone, Serialize)]
pub struct KeygenResult {
    pub key_type: String,
    pub backend: RsaBackend,
    /// Library and version.
    pub library: String,
    pub keys_per_second_per_round: Vec<f64>,
    pub median_keys_per_second: f64,
    /// Median milliseconds per key over every key of every round.
    pub median_ms_per_key: f64,
    /// Median keys/s relative to aws-lc-rs at the same size (> 1: faster).
    pub speed_vs_aws_lc: f64,
}

/// The result of `bench --compare-rsa-keygen` (also its `--json` output).
#[derive(Debug, Clone, Serialize)]
pub struct KeygenComparison {
    pub machine: String,
    pub threads: usize,
    pub rounds: usize,
    pub keys_per_round: usize,
    pub results: Vec<KeygenResult>,
}

/// RSA-2048 and RSA-3072 key generation by every backend this build has, in alternating
/// rounds (machine noise hits every backend alike). Needs the cargo feature `openssl-rsa`.
pub fn compare_rsa_keygen(
    options: &KeygenComparisonOptions,
) -> Result<KeygenComparison, IssuanceError> {
    let backends = RsaBackend::compiled();
    if backends.len() < 2 {
        return Err(IssuanceError::BadRequest(
            "this build generates RSA keys with aws-lc-rs only; build with \
             `cargo build --release --features openssl-rsa` to compare it with OpenSSL"
                .into(),
        ));
    }
    let threads = worker_threads(options.threads);
    let rounds = options.rounds.max(1);
    let mut results = Vec::new();
    for key_type in [KeyType::Rsa2048, KeyType::Rsa3072] {
        let mut rates: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
        let mut latencies: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
        for round in 0..rounds {
            let mut order: Vec<usize> = (0..backends.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for b in order {
                let (rate, mut samples) =
                    generate_keys(key_type, backends[b], options.keys.max(1), threads)?;
                rates.entry(b).or_default().push(rate);
                latencies.entry(b).or_default().append(&mut samples);
            }
        }
        let mut row = Vec::new();
        for (b, backend) in backends.iter().enumerate() {
            let per_round = rates.remove(&b).unwrap_or_default();
            let mut lat = latencies.remove(&b).unwrap_or_default();
            lat.sort_by(f64::total_cmp);
            row.push(KeygenResult {
                key_type: key_type.name().to_string(),
                backend: *backend,
                library: backend.describe(),
                median_keys_per_second: median(&per_round),
                keys_per_second_per_round: per_round,
                median_ms_per_key: percentile(&lat, 0.5),
                speed_vs_aws_lc: 1.0,
            });
        }
        let base = row
            .iter()
            .find(|r| r.backend == RsaBackend::AwsLc)
            .map(|r| r.median_keys_per_second)
            .unwrap_or(0.0);
        for r in &mut row {
            if base > 0.0 {
                r.speed_vs_aws_lc = r.median_keys_per_second / base;
            }
        }
        results.extend(row);
    }
    Ok(KeygenComparison {
        machine: machine(),
        threads,
        rounds,
        keys_per_round: options.keys.max(1),
        results,
    })
}

/// `keys` keys of `key_type` from `backend` on `threads` threads: keys/s and ms per key.
fn generate_keys(
    key_type: KeyType,
    backend: RsaBackend,
    keys: usize,
    threads: usize,
) -> Result<(f64, Vec<f64>), IssuanceError> {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let per_thread: Vec<Result<Vec<f64>, IssuanceError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut samples = Vec::new();
                    while next.fetch_add(1, Ordering::Relaxed) < keys {
                        let one = Instant::now();
                        let key = generate_key_with(key_type, backend)?;
                        std::hint::black_box(key.spki_der());
                        samples.push(ms(one.elapsed()));
                    }
                    Ok(samples)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(IssuanceError::invariant("a keygen worker panicked")))
            })
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64().max(f64::MIN_POSITIVE);
    let mut samples = Vec::with_capacity(keys);
    for r in per_thread {
        samples.extend(r?);
    }
    Ok((samples.len() as f64 / elapsed, samples))
}

impl KeygenComparison {
    /// The human-readable table `bench --compare-rsa-keygen` prints.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "RSA key generation, {} rounds of {} keys per backend and size, {} threads, alternating\n\
             machine: {}\n",
            self.rounds, self.keys_per_round, self.threads, self.machine
        );
        for r in &self.results {
            out.push_str(&format!(
                "{:9} {:32} median {:7.1} keys/s ({:.2}× aws-lc-rs), {:7.1} ms per key; rounds: {}\n",
                r.key_type,
                r.library,
                r.median_keys_per_second,
                r.speed_vs_aws_lc,
                r.median_ms_per_key,
                r.keys_per_second_per_round
                    .iter()
                    .map(|v| format!("{v:.1}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        out
    }
}
