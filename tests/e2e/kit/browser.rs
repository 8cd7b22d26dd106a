//! The one place the suite drives a browser: the scripts of `tests/browser` (playwright-core,
//! pinned in its package-lock.json) run by Node.js against Debian's Chromium.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{output_text, skipped, tool};

/// Node.js, Chromium and the scripts' directory, all present.
pub struct Browser {
    node: PathBuf,
    chromium: PathBuf,
    dir: PathBuf,
}

impl Browser {
    /// The browser of `test`, or `None` after `skipped` (a failure under `CI`) when Node.js,
    /// Chromium or playwright-core (`npm ci` in tests/browser) is missing.
    pub fn find(test: &str) -> Option<Browser> {
        let Some(node) = tool("node") else {
            skipped(test, "node not installed");
            return None;
        };
        let Some(chromium) = tool("chromium") else {
            skipped(test, "chromium not installed (apt-get install chromium)");
            return None;
        };
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
        if !dir.join("node_modules/playwright-core").exists() {
            skipped(test, "run `npm ci` in tests/browser (playwright-core)");
            return None;
        }
        Some(Browser {
            node,
            chromium,
            dir,
        })
    }

    /// Runs `node tests/browser/<script> <args…>` (on a blocking thread) with `CHROMIUM` set;
    /// whether it succeeded, and its standard output and error.
    pub async fn run(&self, script: &str, args: &[String]) -> (bool, String) {
        let output = self.output(script, args).await;
        (output.status.success(), output_text(&output))
    }

    /// The same, with the process's output as it came (for scripts that answer on stdout).
    pub async fn output(&self, script: &str, args: &[String]) -> Output {
        let mut command = Command::new(&self.node);
        command
            .arg(self.dir.join(script))
            .args(args)
            .env("CHROMIUM", &self.chromium);
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }
}
