//! Two plain PostgreSQL servers on free ports for the failover test: a primary made by
//! `initdb` and a streaming standby made from it by `pg_basebackup -R`, synchronous (the
//! primary's `synchronous_standby_names = '*'`). Run as the `postgres` user when the test runs as
//! root (PostgreSQL refuses root). Both are stopped (immediate) when the value is dropped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection, Row};

/// One server: its data directory and port.
pub struct Server {
    pub data: PathBuf,
    pub port: u16,
    log: PathBuf,
}

/// The pair.
pub struct Pair {
    pub primary: Server,
    pub standby: Server,
    bin: PathBuf,
    _dir: tempfile::TempDir,
}

/// The newest PostgreSQL server binaries of the machine (`/usr/lib/postgresql/<v>/bin`), or the
/// directory of `pg_ctl` on PATH.
pub fn server_binaries() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .or_else(|| crate::kit::tool("pg_ctl").and_then(|p| p.parent().map(Path::to_path_buf)))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Server {
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url("postgres")).await.unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The postmaster's pid (first line of postmaster.pid).
    pub fn postmaster_pid(&self) -> u32 {
        let pid = std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap();
        pid.lines().next().unwrap().trim().parse().unwrap()
    }
}

impl Pair {
    /// Builds and starts the pair; `None` when the server binaries are missing.
    pub async fn start() -> Option<Pair> {
        let bin = server_binaries()?;
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), "755");
        let (p1, p2) = (crate::kit::free_port(), crate::kit::free_port());
        let server = |name: &str, port| Server {
            data: dir.path().join(name),
            port,
            log: dir.path().join(format!("{name}.log")),
        };
        let pair = Pair {
            primary: server("primary", p1),
            standby: server("standby", p2),
            bin,
            _dir: dir,
        };
        pair.init_primary();
        pair.pg_ctl(&pair.primary, &["start", "-w", "-t", "60"]);
        pair.base_backup();
        pair.pg_ctl(&pair.standby, &["start", "-w", "-t", "60"]);
        pair.wait_synchronous().await;
        Some(pair)
    }

    /// Runs a server binary, as `postgres` when we are root.
    fn command(&self, program: &str, args: &[&str]) -> Output {
        let path = self.bin.join(program);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        command
            .args(args)
            .current_dir("/")
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"))
    }

    fn ok(&self, program: &str, args: &[&str]) {
        let out = self.command(program, args);
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn pg_ctl(&self, server: &Server, args: &[&str]) {
        let data = server.data.to_str().unwrap();
        let log = server.log.to_str().unwrap();
        let mut all = vec!["-D", data, "-l", log];
        all.extend_from_slice(args);
        self.ok("pg_ctl", &all);
    }

    fn init_primary(&self) {
        let data = self.primary.data.to_str().unwrap();
        if is_root() {
            std::fs::create_dir(&self.primary.data).unwrap();
            chown_postgres(&self.primary.data);
            chown_postgres(self.primary.data.parent().unwrap());
        }
        self.ok(
            "initdb",
            &[
                "-D",
                data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let socket_dir = self.primary.data.parent().unwrap().display().to_string();
        let conf = format!(
            "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{socket_dir}'\n\
             max_connections = 40\nshared_buffers = 16MB\nfsync = off\nwal_level = replica\n\
             max_wal_senders = 4\nwal_keep_size = 64MB\nsynchronous_standby_names = '*'\n\
             synchronous_commit = on\n",
            self.primary.port
        );
        append(&self.primary.data.join("postgresql.conf"), &conf);
    }

    /// The standby: a base backup with `-R` (standby.signal, primary_conninfo), its own port,
    /// and no synchronous standby of its own (after a promotion it commits alone).
    fn base_backup(&self) {
        let port = self.primary.port.to_string();
        self.ok(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                self.standby.data.to_str().unwrap(),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
        );
        append(
            &self.standby.data.join("postgresql.conf"),
            &format!(
                "\nport = {}\nsynchronous_standby_names = ''\ncluster_name = 'standby1'\n",
                self.standby.port
            ),
        );
    }

    async fn wait_synchronous(&self) {
        let started = Instant::now();
        let mut primary = self.primary.connect().await;
        loop {
            let row =
                sqlx::query("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")
                    .fetch_one(&mut primary)
                    .await
                    .unwrap();
            if row.get::<i64, _>(0) == 1 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the standby did not become synchronous:\n{}",
                self.standby.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `kill -9` of the primary's postmaster (its backends notice at once and exit too).
    pub fn kill_primary(&self) {
        let pid = self.primary.postmaster_pid();
        let out = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "kill -9 {pid}");
    }

    /// Promotes the standby and waits until it takes writes.
    pub fn promote_standby(&self) {
        self.pg_ctl(&self.standby, &["promote", "-w", "-t", "60"]);
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for server in [&self.standby, &self.primary] {
            if server.data.join("postmaster.pid").exists() {
                let _ = self.command(
                    "pg_ctl",
                    &[
                        "-D",
                        server.data.to_str().unwrap(),
                        "stop",
                        "-m",
                        "immediate",
                    ],
                );
            }
        }
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn chmod(path: &Path, mode: &str) {
    let out = Command::new("chmod").arg(mode).arg(path).output().unwrap();
    assert!(out.status.success());
}

fn chown_postgres(path: &Path) {
    let out = Command::new("chown")
        .arg("postgres:")
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "chown postgres {}", path.display());
}
