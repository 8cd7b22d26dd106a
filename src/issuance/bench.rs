//! `ast-gateway bench`: the in-process issuance floor (keygen, signing, PKCS#12 per stage).
//!
//! Makes N tokens of one token procedure with the same code path as a request — key pool (or
//! inline keygen), certificate building and signing by the configured CA, PKCS#12 under a PIN —
//! on one OS thread per core, and reports tokens/s, latency percentiles and the mean time per
//! stage. It leaves out HTTP, policy evaluation and the database: it is the ceiling the HTTP
//! service can approach, not a load test (bench/run.sh drives the server with `wrk`).
//!
//! With the pool (the default) the pool is filled first, untimed, and its refill thread keeps
//! running during the timed part exactly as in the server; for N well above the pool size the
//! result converges to the `--no-pool` number, because a saturated server is keygen-bound.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::recipe::{Planned, TokenRecipe, plan_subjects, with_cas};
use super::{IssuanceError, StageTimes, load_cas};
use crate::ca::{Attribute, Subject};
use crate::policy::EvaluatedFields;
use crate::rules::Configuration;
use crate::token::{
    KeyPool, KeyType, Pin, Pkcs12Profile, RsaBackend, generate_key, generate_key_with,
};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Token procedure name (gateway.toml `[[token_procedure]] name`).
    pub procedure: String,
    /// Tokens to make (timed).
    pub tokens: usize,
    /// Use the key pool as configured (filled before the timed part).
    pub pool: bool,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// Only generate the procedure's keys (inline, no certificates, no PKCS#12): the raw
    /// key-generation rate, to compare with other libraries' keygen.
    pub keygen_only: bool,
}

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

/// Runs the benchmark. Blocking and CPU-bound: call it from a blocking context.
pub fn run(config: &Configuration, options: &BenchOptions) -> Result<BenchReport, IssuanceError> {
    let cas = load_cas(&config.settings)?;
    let procedure = config.rules.procedure(&options.procedure).ok_or_else(|| {
        let names: Vec<&str> = config.rules.procedures.keys().map(String::as_str).collect();
        IssuanceError::BadRequest(format!(
            "no token procedure named `{}`; configured: {}",
            options.procedure,
            names.join(", ")
        ))
    })?;
    let key_types: Vec<String> = procedure
        .certificates
        .iter()
        .map(|c| c.key.name().to_string())
        .collect();
    let threads = if options.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    } else {
        options.threads
    };
    let fields = bench_fields();
    // The same planning as a request, once: a procedure that cannot be planned (unknown CA,
    // empty subject) fails before timing.
    let plan: Vec<Planned> = with_cas(plan_subjects(procedure, &fields)?, &cas)?;

    let capacity = if options.pool && !options.keygen_only {
        config.rules.key_pool_sizes(&config.settings.key_pool)
    } else {
        BTreeMap::new()
    };
    let fill_started = Instant::now();
    let pool = if options.pool && !options.keygen_only {
        KeyPool::start(capacity.clone())
    } else {
        KeyPool::without_refill(BTreeMap::new())
    };
    // Fill on every core (the refill thread alone is one low-priority thread).
    std::thread::scope(|scope| {
        let fillers: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| pool.fill_now()))
            .collect();
        fillers
            .into_iter()
            .try_for_each(|f| f.join().unwrap_or(Ok(())))
    })
    .map_err(IssuanceError::from)?;
    let pool_fill_seconds = fill_started.elapsed().as_secs_f64();

    let iterations = config.settings.pkcs12_iterations;
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let results: Vec<Result<Vec<(Duration, StageTimes)>, IssuanceError>> =
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut samples = Vec::new();
                        while next.fetch_add(1, Ordering::Relaxed) < options.tokens {
                            let token_started = Instant::now();
                            if options.keygen_only {
                                let mut stages = StageTimes::default();
                                for template in &procedure.certificates {
                                    let key =
                                        generate_key(template.key).map_err(IssuanceError::from)?;
                                    std::hint::black_box(key.spki_der());
                                    stages.inline_keys += 1;
                                }
                                stages.keygen = token_started.elapsed();
                                samples.push((stages.keygen, stages));
                                continue;
                            }
                            let recipe = TokenRecipe::new(
                                plan.clone(),
                                Pin::new("bench-pin-000000".into()),
                                Pkcs12Profile::Modern,
                                &config.settings,
                            )
                            .with_layout(procedure.layout);
                            let made = recipe.make(&pool)?;
                            std::hint::black_box(&made.files);
                            samples.push((token_started.elapsed(), made.stages));
                        }
                        Ok(samples)
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join().unwrap_or_else(|_| {
                        Err(IssuanceError::invariant("a bench worker panicked"))
                    })
                })
                .collect()
        });
    let elapsed = started.elapsed();
    drop(pool);

    let mut samples = Vec::with_capacity(options.tokens);
    for r in results {
        samples.extend(r?);
    }
    let n = samples.len().max(1) as f64;
    let mut latencies: Vec<f64> = samples.iter().map(|(d, _)| ms(*d)).collect();
    latencies.sort_by(f64::total_cmp);
    let sum =
        |f: fn(&StageTimes) -> Duration| samples.iter().map(|(_, s)| ms(f(s))).sum::<f64>() / n;
    let pooled_keys = samples.iter().map(|(_, s)| u64::from(s.pooled_keys)).sum();
    let inline_keys = samples.iter().map(|(_, s)| u64::from(s.inline_keys)).sum();
    let secs = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
    Ok(BenchReport {
        procedure: options.procedure.clone(),
        key_types,
        pkcs12_iterations: iterations,
        tokens: samples.len(),
        threads,
        pool: options.pool && !options.keygen_only,
        keygen_only: options.keygen_only,
        pool_capacity: capacity
            .iter()
            .map(|(k, v)| (k.name().to_string(), *v))
            .collect(),
        pool_fill_seconds,
        elapsed_seconds: secs,
        tokens_per_second: samples.len() as f64 / secs,
        keys_per_second: (pooled_keys + inline_keys) as f64 / secs,
        latency_ms: Percentiles {
            p50: percentile(&latencies, 0.50),
            p90: percentile(&latencies, 0.90),
            p99: percentile(&latencies, 0.99),
            max: latencies.last().copied().unwrap_or(0.0),
        },
        stage_mean_ms: StageMeans {
            keygen: sum(|s| s.keygen),
            sign: sum(|s| s.sign),
            pkcs12: sum(|s| s.pkcs12),
        },
        pooled_keys,
        inline_keys,
        machine: machine(),
    })
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
    let threads = if options.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    } else {
        options.threads
    };
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

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
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

/// A realistic subject: what the default format makes of typical proxy headers.
fn bench_fields() -> EvaluatedFields {
    let values = [
        (Attribute::CommonName, "Bench User"),
        (Attribute::GivenName, "Bench"),
        (Attribute::Surname, "User"),
        (Attribute::CountryName, "SE"),
        (Attribute::OrganizationName, "Example AB"),
        (Attribute::SerialNumber, "19800101-1234"),
        (Attribute::Rfc822Name, "bench.user@example.com"),
    ];
    EvaluatedFields {
        common: Subject {
            values: values.iter().map(|(a, v)| (*a, v.to_string())).collect(),
        },
        requests: BTreeMap::new(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cpu}, {cores} logical CPUs")
}

#[cfg(test)]
#[path = "bench_tests.rs"]
mod tests;
