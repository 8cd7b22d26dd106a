//! A Python virtual environment under `target/test-venv` with the PyPI packages the suite's
//! Python programs use — openapi-python-client (the generated API client) and pyca/cryptography
//! (whose bundled OpenSSL reads PBMAC1) — pinned, made on first use (`.ci/run` makes it first).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use super::{skipped, tool};

/// What the environment holds.
pub const PYTHON_PACKAGES: &[&str] = &["openapi-python-client==0.29.1", "cryptography==51.0.1"];

/// The environment's directory (`bin/python`, `bin/openapi-python-client`), made if needed; or
/// `None` after `skipped(test, …)` when python3 is missing or the packages cannot be installed
/// (no network to PyPI).
pub fn python_venv(test: &str) -> Option<PathBuf> {
    static MAKING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv");
    if ready(&venv) {
        return Some(venv);
    }
    let Some(python) = tool("python3") else {
        skipped(test, "python3 is not installed");
        return None;
    };
    let made = Command::new(&python)
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .unwrap();
    if !made.status.success() {
        skipped(
            test,
            &format!(
                "python3 -m venv failed: {}",
                String::from_utf8_lossy(&made.stderr)
            ),
        );
        return None;
    }
    let installed = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "--timeout", "20", "--retries", "1"])
        .args(PYTHON_PACKAGES)
        .output()
        .unwrap();
    if !installed.status.success() || !ready(&venv) {
        skipped(
            test,
            &format!(
                "pip install {} failed (no network to PyPI?): {}",
                PYTHON_PACKAGES.join(" "),
                String::from_utf8_lossy(&installed.stderr)
            ),
        );
        return None;
    }
    Some(venv)
}

/// Whether the environment has every package at its pinned version.
fn ready(venv: &Path) -> bool {
    let python = venv.join("bin/python");
    python.is_file()
        && PYTHON_PACKAGES.iter().all(|pinned| {
            let (name, version) = pinned.split_once("==").unwrap();
            Command::new(&python)
                .args([
                    "-c",
                    "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))",
                    name,
                ])
                .output()
                .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == version)
        })
}
