//! Test databases: a SQLite file in a temporary directory, or a fresh PostgreSQL database on
//! the local server (`CREATE DATABASE ast_test_<random>`, dropped again when the value is
//! dropped). PostgreSQL is skipped, with a message, only when no server answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use sqlx::{Connection, PgConnection};

/// The PostgreSQL server the tests use (trust authentication). `AST_TEST_POSTGRES` overrides it.
pub fn postgres_server() -> String {
    std::env::var("AST_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// The server's address, for the outage proxy.
pub fn postgres_addr() -> SocketAddr {
    let server = postgres_server();
    let host_port = server
        .rsplit('@')
        .next()
        .unwrap_or("127.0.0.1:5432")
        .trim_end_matches('/');
    host_port
        .parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 5432)))
}

/// Which backend a test database is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One database for one test run.
pub struct TestDatabase {
    pub backend: Backend,
    /// The URL the gateway's `[database] url` takes.
    pub url: String,
    /// PostgreSQL: the database name.
    pub name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// A SQLite file in a fresh temporary directory.
    pub fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("store.db").display()
        );
        TestDatabase {
            backend: Backend::Sqlite,
            url,
            name: None,
            _dir: Some(dir),
        }
    }

    /// A fresh PostgreSQL database, or `None` (after printing why) when no server answers at
    /// all. A server that answers but refuses to create the database fails the test.
    pub async fn postgres() -> Option<TestDatabase> {
        let addr = postgres_addr();
        if TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err() {
            crate::kit::skipped("postgres", &format!("no PostgreSQL at {addr}"));
            return None;
        }
        let name = format!("ast_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&format!("{}/postgres", postgres_server()))
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        let url = format!("{}/{name}", postgres_server());
        Some(TestDatabase {
            backend: Backend::Postgres,
            url,
            name: Some(name),
            _dir: None,
        })
    }

    /// SQLite, and PostgreSQL when a server answers: the backends a store test runs on.
    pub async fn all() -> Vec<TestDatabase> {
        let mut all = vec![TestDatabase::sqlite()];
        all.extend(TestDatabase::postgres().await);
        all
    }

    /// The same PostgreSQL database reached through another address (an outage proxy).
    pub fn url_via(&self, addr: SocketAddr) -> String {
        let name = self.name.as_deref().unwrap_or("postgres");
        format!("postgres://postgres@{addr}/{name}")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.name.take() else { return };
        // Drop may run inside a runtime: use a thread with its own.
        let admin_url = format!("{}/postgres", postgres_server());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url)
                    .await
                    .map_err(std::io::Error::other)?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .map_err(std::io::Error::other)?;
                admin.close().await.map_err(std::io::Error::other)
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop a test database: {dropped:?}");
        }
    }
}
