//! Tests of `issuance/bench.rs`.

use super::*;

#[test]
fn percentiles_use_nearest_rank() {
    let v: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(percentile(&v, 0.5), 50.0);
    assert_eq!(percentile(&v, 0.99), 99.0);
    assert_eq!(percentile(&[7.0], 0.99), 7.0);
    assert_eq!(percentile(&[], 0.5), 0.0);
}

#[test]
fn keygen_comparison_needs_two_backends_and_alternates_them() {
    let options = KeygenComparisonOptions {
        keys: 2,
        rounds: 2,
        threads: 2,
    };
    let result = compare_rsa_keygen(&options);
    if cfg!(feature = "openssl-rsa") {
        let report = result.unwrap();
        assert_eq!(report.results.len(), 4);
        for r in &report.results {
            assert_eq!(r.keys_per_second_per_round.len(), 2, "{r:?}");
            assert!(r.median_keys_per_second > 0.0 && r.median_ms_per_key > 0.0);
        }
        assert!(report.summary().contains("OpenSSL"));
    } else {
        let err = result.unwrap_err();
        assert!(err.to_string().contains("openssl-rsa"), "{err}");
    }
    assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    assert_eq!(median(&[4.0, 1.0]), 2.5);
}

#[test]
fn bench_makes_tokens_of_the_default_procedure() {
    let dir = tempfile::tempdir().unwrap();
    let root = crate::config::Root::new(dir.path());
    crate::issuance::write_default(&root).unwrap();
    let config = crate::rules::load(&root).unwrap();
    let options = BenchOptions {
        procedure: "default".into(),
        tokens: 2,
        pool: false,
        threads: 2,
        keygen_only: false,
    };
    let report = run(&config, &options).unwrap();
    assert_eq!(report.tokens, 2);
    assert_eq!(report.key_types, ["rsa-2048", "rsa-2048"]);
    assert_eq!((report.pooled_keys, report.inline_keys), (0, 4));
    assert!(report.tokens_per_second > 0.0);
    assert!(report.stage_mean_ms.keygen > 0.0 && report.stage_mean_ms.pkcs12 > 0.0);

    let missing = BenchOptions {
        procedure: "nope".into(),
        ..options
    };
    let err = run(&config, &missing).unwrap_err();
    assert!(err.to_string().contains("default"), "{err}");
}
