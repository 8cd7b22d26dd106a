//! Tests of `store/targets.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

#[test]
fn multi_host_urls_become_one_url_per_server() {
    let (hosts, attrs) = split_hosts(
        "postgres://u:p%40ss@db1.example:5433,db2.example,[::1]:6432/ast?sslmode=require&target_session_attrs=read-write",
    )
    .unwrap();
    assert_eq!(attrs, SessionAttrs::ReadWrite);
    let labels: Vec<&str> = hosts.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        ["db1.example:5433", "db2.example:5432", "[::1]:6432"]
    );
    assert_eq!(
        hosts[0].1,
        "postgres://u:p%40ss@db1.example:5433/ast?sslmode=require"
    );
    assert_eq!(
        hosts[1].1,
        "postgres://u:p%40ss@db2.example/ast?sslmode=require"
    );
    assert_eq!(
        hosts[2].1,
        "postgres://u:p%40ss@[::1]:6432/ast?sslmode=require"
    );
    // Each per-host URL is one sqlx accepts.
    let targets =
        Targets::parse("postgresql://u@h1:5432,h2:5433/db?target_session_attrs=primary").unwrap();
    assert!(targets.is_multi_host());
    assert_eq!(targets.attrs, SessionAttrs::Primary);
    assert_eq!(targets.labels(), "h1:5432, h2:5433");
}

#[test]
fn single_hosts_and_sqlite_are_one_target() {
    let targets = Targets::parse("postgres://u@localhost/db").unwrap();
    assert!(!targets.is_multi_host());
    assert_eq!(targets.attrs, SessionAttrs::Any);
    assert_eq!(targets.labels(), "localhost:5432");
    let targets = Targets::parse("sqlite:///tmp/x.db?mode=rwc").unwrap();
    assert_eq!(targets.list.len(), 1);
    let (hosts, _) = split_hosts("postgres:///db?host=/run/postgresql").unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].1, "postgres:///db?host=/run/postgresql");
}

#[test]
fn unusable_urls_are_refused_without_repeating_the_password() {
    for (url, says) in [
        (
            "postgres://u:secret@h1,h2/db?target_session_attrs=standby",
            "target_session_attrs=standby",
        ),
        (
            "postgres://u:secret@h1,h2/db?target_session_attrs=read-only",
            "read-write",
        ),
        ("postgres://u:secret@h1,,h2/db", "empty entry"),
        ("postgres://u:secret@h1:54x2,h2/db", "ports are numbers"),
        ("postgres://u:secret@[::1/db", "`]`"),
        ("postgres://u:secret@/db?host=a,b", "name the servers"),
    ] {
        let message = split_hosts(url).unwrap_err().to_string();
        assert!(message.contains(says), "{url}: {message}");
        assert!(!message.contains("secret"), "{message}");
    }
}
