//! The one way the suite runs the `ast-gateway` binary: `ast(root)` for a command, `Serve` for a
//! running `serve` — on `127.0.0.1:0`, its real address read from the start-up summary the
//! server prints (the port the OS assigned; no bind-release-hope), its log collected line by
//! line as written (a pipe is not a terminal, so the server writes no colours: tests assert
//! that), killed when dropped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ast-gateway");

/// The binary with `--root`, the environment cleared of the root and colour variables, and
/// info logs (sqlx at warn).
pub fn ast(root: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--root")
        .arg(root)
        .env_remove("AST_GATEWAY_ROOT")
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info,sqlx=warn");
    c
}

/// Standard output and standard error of a finished command, as text.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `command` to completion (at most 60 s, then killed) with no standard input.
pub fn finish(mut command: Command) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{command:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// `text` without ANSI escape sequences.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}

/// The URL after `marker` in a log line (`AST endpoint: http://…`).
pub fn url_after(line: &str, marker: &str) -> Option<String> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let start = rest.find("http")?;
    let url: String = rest[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != ')')
        .collect();
    Some(url)
}

/// A running `ast-gateway serve`; killed when dropped.
pub struct Serve {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Serve {
    /// `serve` on a root: HTTP on 127.0.0.1:0, no admin listener (parallel tests would fight
    /// over its fixed port).
    pub fn start(root: &Path) -> Serve {
        Self::spawn(Self::command(root, &[]))
    }

    /// `ast(root) serve --http 127.0.0.1:0 --admin "" <extra>`; an `--http` or `--admin` in
    /// `extra` takes the place of the default one.
    pub fn command(root: &Path, extra: &[&str]) -> Command {
        let mut c = ast(root);
        c.arg("serve");
        for (option, default) in [("--http", "127.0.0.1:0"), ("--admin", "")] {
            if !extra.contains(&option) {
                c.args([option, default]);
            }
        }
        c.args(extra);
        c
    }

    /// The same `serve` run under a wrapper program (e.g. `prlimit --nofile=64:64 --`).
    pub fn wrapped(wrapper: &[&str], root: &Path, extra: &[&str]) -> Command {
        let inner = Self::command(root, extra);
        let (program, rest) = wrapper.split_first().expect("a wrapper program");
        let mut c = Command::new(program);
        c.args(rest).arg(inner.get_program()).args(inner.get_args());
        for (key, value) in inner.get_envs() {
            match value {
                Some(v) => c.env(key, v),
                None => c.env_remove(key),
            };
        }
        c
    }

    /// Starts `command` (one that runs `serve`) and waits (at most 60 s) for the start-up
    /// summary's `AST endpoint:` line, which carries the address the OS assigned.
    pub fn spawn(mut command: Command) -> Serve {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?}: {e}"));
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let base = loop {
            let found = log
                .lock()
                .unwrap()
                .iter()
                .find_map(|l| url_after(l, "AST endpoint:"));
            if let Some(url) = found {
                break url.trim_end_matches("/pgwy/ast").to_string();
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!("serve exited with {status}: {:#?}", log.lock().unwrap());
            }
            assert!(
                Instant::now() < deadline,
                "serve did not start: {:#?}",
                log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Serve { child, base, log }
    }

    /// `http://127.0.0.1:<port>` (or `https://…`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The base followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The admin listener's metrics URL (`http://…/metrics`), from the start-up summary;
    /// needs `--admin 127.0.0.1:0` (or another address) among the extra arguments.
    pub fn metrics_url(&self) -> String {
        self.wait_for("listener admin:")
            .iter()
            .find_map(|l| url_after(l, "metrics:"))
            .expect("a metrics URL in the start-up summary")
    }

    /// The listener's socket address.
    pub fn addr(&self) -> std::net::SocketAddr {
        let host = self.base.split("://").nth(1).unwrap_or(&self.base);
        host.parse().unwrap_or_else(|e| panic!("{host}: {e}"))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every line logged so far, as written.
    pub fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The log so far, one string.
    pub fn log_text(&self) -> String {
        self.lines().join("\n")
    }

    /// Waits (at most 30 s) until a line contains `needle`; returns every line so far.
    pub fn wait_for(&self, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let lines = self.lines();
            if lines.iter().any(|l| l.contains(needle)) {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with `{needle}`: {lines:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The first line containing `needle`, waiting for it (at most 30 s).
    pub fn wait_for_line(&self, needle: &str) -> String {
        let lines = self.wait_for(needle);
        lines.into_iter().find(|l| l.contains(needle)).unwrap()
    }

    /// Sends `signal` (`-HUP`, `-TERM`, `-KILL`, …) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} failed");
    }

    /// Waits (at most `limit`) for the process to end; its exit status.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not end within {limit:?}: {:#?}",
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The exit status if the process ends within `limit`, else `None` (it keeps running).
    pub fn exited_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
