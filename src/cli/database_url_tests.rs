//! Tests of `cli/database_url.rs`.

use super::*;

#[test]
fn database_urls_lose_their_secrets() {
    for (url, shown) in [
        (
            "postgres://ast:s3cret@db.example:5432/ast?sslmode=require",
            "postgres://ast:***@db.example:5432/ast?sslmode=require",
        ),
        ("postgres://ast@db/ast", "postgres://ast@db/ast"),
        ("postgres://db/ast", "postgres://db/ast"),
        // An unencoded @ in the password: the host is after the last one.
        ("postgres://u:p@ss@db/x", "postgres://u:***@db/x"),
        (
            "postgresql://db/x?user=u&password=pw&sslpassword=k",
            "postgresql://db/x?user=u&password=***&sslpassword=***",
        ),
        ("postgres://u:pw@db", "postgres://u:***@db"),
        (
            "sqlite:///srv/ast/data/ast-gateway.db?mode=rwc",
            "sqlite:///srv/ast/data/ast-gateway.db?mode=rwc",
        ),
    ] {
        assert_eq!(redact_database_url(url), shown, "{url}");
    }
    assert!(!redact_database_url("postgres://u:topsecret@h/d").contains("topsecret"));
    assert_eq!(
        database_url_without_secrets("postgres://u:pw@db:5432/x?password=pw&sslmode=require"),
        "postgres://u@db:5432/x?sslmode=require"
    );
    assert_eq!(
        database_url_without_secrets("postgres://u:pw@db/x?password=pw"),
        "postgres://u@db/x"
    );
}
