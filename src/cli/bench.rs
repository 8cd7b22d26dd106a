//! `ast-gateway bench`: a thin wrapper over `issuance::bench`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::output::outln;
use crate::config::Root;
use crate::issuance::bench::{
    BenchOptions, KeygenComparisonOptions, compare_rsa_keygen, run as run_bench,
};

/// `bench` options.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Token procedure to measure.
    #[arg(long, default_value = "default")]
    procedure: String,
    /// Tokens to make (timed).
    #[arg(long, default_value_t = 200)]
    tokens: usize,
    /// Generate every key inline instead of taking it from a pre-filled key pool.
    #[arg(long)]
    no_pool: bool,
    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Only generate the procedure's keys (no certificates, no PKCS#12): raw keygen rate.
    #[arg(long)]
    keygen_only: bool,
    /// Compare RSA-2048/3072 key generation by aws-lc-rs and OpenSSL in alternating rounds
    /// (`--tokens` keys per round; needs a build with `--features openssl-rsa`).
    #[arg(long)]
    compare_rsa_keygen: bool,
    /// Rounds of `--compare-rsa-keygen`.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark on the root's configuration (writing the embedded default on an empty
/// root, as `serve` does).
pub async fn run(root: &Root, args: BenchArgs) -> anyhow::Result<ExitCode> {
    if !root.is_initialised() {
        crate::issuance::write_default(root).context("writing the default configuration")?;
    }
    if args.compare_rsa_keygen {
        let options = KeygenComparisonOptions {
            keys: args.tokens,
            rounds: args.rounds,
            threads: args.threads,
        };
        let report = tokio::task::spawn_blocking(move || compare_rsa_keygen(&options))
            .await
            .context("the benchmark task failed")?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print!("{}", report.summary());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let config = super::load_config(root)?;
    let options = BenchOptions {
        procedure: args.procedure,
        tokens: args.tokens,
        pool: !args.no_pool,
        threads: args.threads,
        keygen_only: args.keygen_only,
    };
    let report = tokio::task::spawn_blocking(move || run_bench(&config, &options))
        .await
        .context("the benchmark task failed")?
        // Debug, not Display: the operator running a bench wants the internal detail.
        .map_err(|e| anyhow::anyhow!("{e}: {e:?}"))?;
    if args.json {
        outln!("{}", serde_json::to_string(&report)?);
    } else {
        outln!("{}", report.summary());
    }
    Ok(ExitCode::SUCCESS)
}
