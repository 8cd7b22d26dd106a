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
//!
//! `report` holds the result of a run and its summary; `keygen` holds `--compare-rsa-keygen`,
//! the RSA key generation rate of each backend.

mod keygen;
mod report;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use keygen::{KeygenComparison, KeygenComparisonOptions, KeygenResult, compare_rsa_keygen};
pub use report::{BenchReport, Percentiles, StageMeans};

use super::recipe::{Planned, TokenRecipe, plan_subjects, with_cas};
use super::{IssuanceError, StageTimes, load_cas};
use crate::ca::{Attribute, Subject};
use crate::policy::EvaluatedFields;
use crate::rules::{Configuration, TokenProcedure};
use crate::token::{KeyPool, Pin, Pkcs12Profile, generate_key};

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

/// One token's latency and its time per stage.
type Sample = (Duration, StageTimes);

/// What every worker of the timed part makes.
struct Workload<'a> {
    config: &'a Configuration,
    procedure: &'a TokenProcedure,
    plan: &'a [Planned],
    pool: &'a KeyPool,
    tokens: usize,
    keygen_only: bool,
}

/// Runs the benchmark. Blocking and CPU-bound: call it from a blocking context.
pub fn run(config: &Configuration, options: &BenchOptions) -> Result<BenchReport, IssuanceError> {
    let cas = load_cas(&config.settings)?;
    let procedure = find_procedure(config, &options.procedure)?;
    let key_types: Vec<String> = procedure
        .certificates
        .iter()
        .map(|c| c.key.name().to_string())
        .collect();
    let threads = worker_threads(options.threads);
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
    fill_pool(&pool, threads)?;
    let pool_fill_seconds = fill_started.elapsed().as_secs_f64();

    let iterations = config.settings.pkcs12_iterations;
    let workload = Workload {
        config,
        procedure,
        plan: &plan,
        pool: &pool,
        tokens: options.tokens,
        keygen_only: options.keygen_only,
    };
    let started = Instant::now();
    let results = make_tokens(&workload, threads);
    let elapsed = started.elapsed();
    drop(pool);

    let mut samples = Vec::with_capacity(options.tokens);
    for r in results {
        samples.extend(r?);
    }
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
        latency_ms: report::latency(&samples),
        stage_mean_ms: report::stage_means(&samples),
        pooled_keys,
        inline_keys,
        machine: machine(),
    })
}

/// The token procedure to measure, or the names of the configured ones.
fn find_procedure<'c>(
    config: &'c Configuration,
    name: &str,
) -> Result<&'c TokenProcedure, IssuanceError> {
    config.rules.procedure(name).ok_or_else(|| {
        let names: Vec<&str> = config.rules.procedures.keys().map(String::as_str).collect();
        IssuanceError::BadRequest(format!(
            "no token procedure named `{}`; configured: {}",
            name,
            names.join(", ")
        ))
    })
}

/// Worker threads: `requested`, or one per core for 0.
fn worker_threads(requested: usize) -> usize {
    if requested == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    } else {
        requested
    }
}

/// Fills the pool on every core (the refill thread alone is one low-priority thread).
fn fill_pool(pool: &KeyPool, threads: usize) -> Result<(), IssuanceError> {
    std::thread::scope(|scope| {
        let fillers: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| pool.fill_now()))
            .collect();
        fillers.into_iter().try_for_each(|f| match f.join() {
            Ok(filled) => filled.map_err(IssuanceError::from),
            Err(_) => Err(IssuanceError::invariant("a key-pool filler panicked")),
        })
    })
}

/// The timed part: `threads` workers make the workload's tokens between them.
fn make_tokens(workload: &Workload<'_>, threads: usize) -> Vec<Result<Vec<Sample>, IssuanceError>> {
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| make_some_tokens(workload, &next)))
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(IssuanceError::invariant("a bench worker panicked")))
            })
            .collect()
    })
}

/// One worker: takes the next token number until all are taken, making each token.
fn make_some_tokens(
    workload: &Workload<'_>,
    next: &AtomicUsize,
) -> Result<Vec<Sample>, IssuanceError> {
    let mut samples = Vec::new();
    while next.fetch_add(1, Ordering::Relaxed) < workload.tokens {
        let token_started = Instant::now();
        if workload.keygen_only {
            samples.push(generate_keys_only(workload.procedure, token_started)?);
            continue;
        }
        let recipe = TokenRecipe::new(
            workload.plan.to_vec(),
            Pin::new("bench-pin-000000".into()),
            Pkcs12Profile::Modern,
            &workload.config.settings,
        )
        .with_layout(workload.procedure.layout);
        let made = recipe.make(workload.pool)?;
        std::hint::black_box(&made.files);
        samples.push((token_started.elapsed(), made.stages));
    }
    Ok(samples)
}

/// `--keygen-only`: the procedure's keys, generated inline, and nothing else.
fn generate_keys_only(
    procedure: &TokenProcedure,
    token_started: Instant,
) -> Result<Sample, IssuanceError> {
    let mut stages = StageTimes::default();
    for template in &procedure.certificates {
        let key = generate_key(template.key).map_err(IssuanceError::from)?;
        std::hint::black_box(key.spki_der());
        stages.inline_keys += 1;
    }
    stages.keygen = token_started.elapsed();
    Ok((stages.keygen, stages))
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
