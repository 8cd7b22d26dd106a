//! Tests of `config/settings.rs`.

use super::*;

#[test]
fn durations() {
    assert_eq!(
        parse_duration("365d").unwrap(),
        Duration::from_secs(365 * 86_400)
    );
    assert_eq!(
        parse_duration("1y").unwrap(),
        Duration::from_secs(365 * 86_400)
    );
    assert!(parse_duration("10x").is_err());
    assert!(parse_duration("0d").is_err());
    assert!(parse_duration("d").is_err());
}

/// The embedded default gateway.toml with `edit` applied, loaded.
fn load_edited(
    edit: impl FnOnce(String) -> String,
) -> Result<crate::rules::Configuration, ConfigErrors> {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    crate::issuance::write_default(&root).unwrap();
    let text = std::fs::read_to_string(root.gateway_toml()).unwrap();
    std::fs::write(root.gateway_toml(), edit(text)).unwrap();
    crate::rules::load(&root)
}

/// The embedded default gateway.toml's text with `edit` applied.
fn load_edited_text(edit: impl FnOnce(String) -> String) -> String {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    crate::issuance::write_default(&root).unwrap();
    edit(std::fs::read_to_string(root.gateway_toml()).unwrap())
}

fn pool(config: &crate::rules::Configuration) -> BTreeMap<KeyType, usize> {
    config.rules.key_pool_sizes(&config.settings.key_pool)
}

#[test]
fn key_pool_and_admin_defaults() {
    let config = load_edited(|t| t).unwrap();
    assert_eq!(pool(&config), BTreeMap::from([(KeyType::Rsa2048, 32)]));
    assert_eq!(config.settings.server.admin, "127.0.0.1:9102".parse().ok());

    // No [key_pool] at all: types the procedures use get their default size.
    let config = load_edited(|t| t.replace("[key_pool]", "").replace("rsa-2048 = 32", "")).unwrap();
    assert_eq!(pool(&config), BTreeMap::from([(KeyType::Rsa2048, 32)]));

    // 0 turns a type off; an unused type can be pooled explicitly; "" turns admin off.
    let config = load_edited(|t| {
        t.replace("rsa-2048 = 32", "rsa-2048 = 0\nec-p256 = 8")
            .replace("admin = \"127.0.0.1:9102\"", "admin = \"\"")
    })
    .unwrap();
    assert_eq!(pool(&config), BTreeMap::from([(KeyType::EcP256, 8)]));
    assert_eq!(config.settings.server.admin, None);
}

#[test]
fn connection_limits_and_allowed_origins() {
    let config = load_edited(|t| t).unwrap();
    assert_eq!(
        config.settings.limits.header_timeout,
        Duration::from_secs(10)
    );
    assert_eq!(config.settings.limits.body_timeout, Duration::from_secs(20));
    assert_eq!(config.settings.limits.idle_timeout, Duration::from_secs(15));
    assert_eq!(config.settings.limits.max_header_bytes, 32 * 1024);
    assert_eq!(config.settings.limits.max_connections, None);
    assert_eq!(
        config.settings.limits.shutdown_grace,
        Duration::from_secs(30)
    );
    assert!(config.settings.server.allowed_origins.is_empty());

    let config = load_edited(|t| {
        t.replace("# header_timeout_secs = 10", "header_timeout_secs = 3")
            .replace("# max_connections = 0", "max_connections = 500")
            .replace("# shutdown_grace_secs = 30", "shutdown_grace_secs = 5")
            .replace(
                "# allowed_origins = [\"https://portal.example.org\"]",
                "allowed_origins = [\"HTTPS://Portal.Example.org/\", \"http://10.0.0.1:8080\"]",
            )
    })
    .unwrap();
    assert_eq!(
        config.settings.limits.header_timeout,
        Duration::from_secs(3)
    );
    assert_eq!(config.settings.limits.max_connections, Some(500));
    assert_eq!(
        config.settings.limits.shutdown_grace,
        Duration::from_secs(5)
    );
    assert_eq!(
        config.settings.server.allowed_origins,
        ["https://portal.example.org", "http://10.0.0.1:8080"]
    );

    let e = load_edited(|t| {
        t.replace("# header_timeout_secs = 10", "header_timeout_secs = 0")
            .replace("# max_header_bytes = 32768", "max_header_bytes = 100")
            .replace(
                "# allowed_origins = [\"https://portal.example.org\"]",
                "allowed_origins = [\"https://portal.example.org/form\"]",
            )
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("limits.header_timeout_secs"), "{e}");
    assert!(e.contains("limits.max_header_bytes"), "{e}");
    assert!(e.contains("server.allowed_origins"), "{e}");
}

#[test]
fn limits_defaults_values_and_errors() {
    let limits = load_edited(|t| t).unwrap().settings.limits;
    assert_eq!(
        (
            limits.issuance_queue,
            limits.write_queue,
            limits.write_batch,
            limits.retry_after
        ),
        (256, 1024, 64, Duration::from_secs(1))
    );
    assert_eq!(
        limits.rates,
        RateLimits {
            per_peer: 0,
            per_identity: 30,
            per_officer: 600
        }
    );
    let edited = |extra: &str| {
        load_edited(|t| {
            t.replace(
                "request_timeout_secs = 60",
                &format!("request_timeout_secs = 60\n{extra}"),
            )
        })
    };
    let limits = edited(
        "issuance_queue = 0\nwrite_queue = 8\nwrite_batch = 2\nretry_after_secs = 9\n\
         peer_per_minute = 5\nidentity_per_minute = 0\nofficer_per_minute = 7",
    )
    .unwrap()
    .settings
    .limits;
    assert_eq!(
        (
            limits.issuance_queue,
            limits.write_queue,
            limits.write_batch,
            limits.retry_after
        ),
        (0, 8, 2, Duration::from_secs(9))
    );
    assert_eq!(
        limits.rates,
        RateLimits {
            per_peer: 5,
            per_identity: 0,
            per_officer: 7
        }
    );
    let e = edited("write_batch = 0").unwrap_err().to_string();
    assert!(e.contains("limits.write_batch"), "{e}");
    let e = edited("write_queue = 0").unwrap_err().to_string();
    assert!(e.contains("limits.write_queue"), "{e}");
    let e = edited("write_delay_ms = 101").unwrap_err().to_string();
    assert!(e.contains("limits.write_delay_ms"), "{e}");
    assert_eq!(
        edited("write_delay_ms = 0")
            .unwrap()
            .settings
            .limits
            .write_delay,
        Duration::ZERO
    );
}

/// Out-of-range timeouts and pool sizes are reported with their line, never clamped silently.
#[test]
fn out_of_range_values_are_reported_with_their_line() {
    fn edit(t: String) -> String {
        t.replace(
            "request_timeout_secs = 60",
            "request_timeout_secs = 0\nretry_after_secs = 7200",
        )
        .replace(
            "# handshake_timeout_secs = 10",
            "handshake_timeout_secs = 301",
        )
        .replace("[database]", "[database]\nmax_connections = 0")
    }
    let text = load_edited(edit).unwrap_err().to_string();
    let file = load_edited_text(edit);
    let line_of = |needle: &str| 1 + file.lines().position(|l| l.starts_with(needle)).unwrap();
    for (key, needle, what) in [
        (
            "limits.request_timeout_secs",
            "request_timeout_secs",
            "between 1 and 3600 seconds",
        ),
        (
            "limits.retry_after_secs",
            "retry_after_secs",
            "between 1 and 3600 seconds",
        ),
        (
            "server.handshake_timeout_secs",
            "handshake_timeout_secs",
            "between 1 and 300 seconds",
        ),
        (
            "database.max_connections",
            "max_connections = 0",
            "at least 1",
        ),
    ] {
        let expected = format!("gateway.toml:{}: {key}: must be {what}", line_of(needle));
        assert!(text.contains(&expected), "{expected} not in {text}");
    }
    // In range, they are taken as written.
    let config = load_edited(|t| {
        t.replace("request_timeout_secs = 60", "request_timeout_secs = 3600")
            .replace(
                "# handshake_timeout_secs = 10",
                "handshake_timeout_secs = 300",
            )
            .replace("[database]", "[database]\nmax_connections = 3")
    })
    .unwrap();
    assert_eq!(
        config.settings.limits.request_timeout,
        Duration::from_secs(3600)
    );
    assert_eq!(
        config.settings.server.handshake_timeout,
        Duration::from_secs(300)
    );
    assert_eq!(config.settings.database_max_connections, 3);
}

#[test]
fn key_pool_and_admin_errors_name_the_key() {
    let e = load_edited(|t| t.replace("rsa-2048 = 32", "rsa-1024 = 4")).unwrap_err();
    assert!(e.to_string().contains("rsa-1024"), "{e}");
    let e = load_edited(|t| t.replace("rsa-2048 = 32", "rsa-2048 = 5000")).unwrap_err();
    assert!(e.to_string().contains("key_pool.rsa-2048"), "{e}");
    assert!(e.to_string().contains("0 to 4096"), "{e}");
    let e = load_edited(|t| t.replace("admin = \"127.0.0.1:9102\"", "admin = \"nowhere\""))
        .unwrap_err();
    assert!(e.to_string().contains("server.admin"), "{e}");
}

#[test]
fn log_format() {
    let format = |c: crate::rules::Configuration| c.settings.log_format;
    assert_eq!(format(load_edited(|t| t).unwrap()), LogFormat::Text);
    let json = |t: String| t.replace("format = \"text\"", "format = \"json\"");
    assert_eq!(format(load_edited(json).unwrap()), LogFormat::Json);
    let e = load_edited(|t| t.replace("format = \"text\"", "format = \"xml\"")).unwrap_err();
    assert!(e.to_string().contains("log.format"), "{e}");
    assert!(e.to_string().contains("\"json\""), "{e}");
    let e = load_edited(|t| t.replace("[log]", "[log]\ncolour = true")).unwrap_err();
    assert!(e.to_string().contains("colour"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    assert_eq!(peek_log_format(&root), None);
    crate::issuance::write_default(&root).unwrap();
    assert_eq!(peek_log_format(&root), Some(LogFormat::Text));
    let text = std::fs::read_to_string(root.gateway_toml()).unwrap();
    std::fs::write(root.gateway_toml(), json(text) + "\n[broken").unwrap();
    assert_eq!(peek_log_format(&root), None);
}

#[test]
fn public_url_comes_from_the_file_or_the_listener() {
    let config = load_edited(|t| t).unwrap();
    assert_eq!(config.settings.server.public_url, "http://127.0.0.1:8080");
    assert!(!config.settings.server.public_url_derived);
    let config = load_edited(|t| {
        t.replace("public_url = \"http://127.0.0.1:8080\"", "")
            .replace("http = \"127.0.0.1:8080\"", "http = \"10.9.8.7:8000\"")
    })
    .unwrap();
    assert_eq!(config.settings.server.public_url, "http://10.9.8.7:8000");
    assert!(config.settings.server.public_url_derived);
    // No URL and no listener: nothing to derive it from.
    let e = load_edited(|t| {
        t.replace("public_url = \"http://127.0.0.1:8080\"", "")
            .replace("http = \"127.0.0.1:8080\"", "")
    })
    .unwrap_err();
    assert!(e.to_string().contains("server.public_url"), "{e}");
    let e = load_edited(|t| {
        t.replace(
            "public_url = \"http://127.0.0.1:8080\"",
            "public_url = \"ftp://x\"",
        )
    })
    .unwrap_err();
    assert!(
        e.to_string().contains("not an http:// or https:// URL"),
        "{e}"
    );
}

#[test]
fn api_signed_writes() {
    let config = load_edited(|t| t).unwrap();
    assert_eq!(config.settings.api.signed_writes, SignedWrites::Off);
    let config =
        load_edited(|t| t.replace("# signed_writes = \"off\"", "signed_writes = \"required\""))
            .unwrap();
    assert_eq!(config.settings.api.signed_writes, SignedWrites::Required);
    let e = load_edited(|t| t.replace("# signed_writes = \"off\"", "signed_writes = \"yes\""))
        .unwrap_err();
    assert!(e.to_string().contains("api.signed_writes"), "{e}");
    assert!(e.to_string().contains("\"required\""), "{e}");
}

#[test]
fn audit_anchor_interval() {
    let config = load_edited(|t| t).unwrap();
    assert_eq!(
        config.settings.audit.anchor_interval,
        std::time::Duration::from_secs(60)
    );
    let config =
        load_edited(|t| t.replace("# anchor_interval_secs = 60", "anchor_interval_secs = 5"))
            .unwrap();
    assert_eq!(
        config.settings.audit.anchor_interval,
        std::time::Duration::from_secs(5)
    );
    for bad in ["0", "3601"] {
        let e = load_edited(|t| {
            t.replace(
                "# anchor_interval_secs = 60",
                &format!("anchor_interval_secs = {bad}"),
            )
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("audit.anchor_interval_secs"), "{e}");
        assert!(e.contains("between 1 and 3600"), "{e}");
    }
}

#[test]
fn synchronous_replication_is_required_only_of_postgresql() {
    // SQLite (the default) has no standby: the requirement is an error at its line.
    let edit = |t: String| {
        t.replace(
            "# require_synchronous_replication = false",
            "require_synchronous_replication = true",
        )
    };
    let text = load_edited(edit).unwrap_err().to_string();
    let file = load_edited_text(edit);
    let line = 1 + file
        .lines()
        .position(|l| l.starts_with("require_synchronous_replication"))
        .unwrap();
    assert!(
        text.contains(&format!(
            "gateway.toml:{line}: database.require_synchronous_replication: needs a PostgreSQL database"
        )),
        "{text}"
    );
    // PostgreSQL, with several servers: taken as written; absent: false.
    let config = load_edited(|t| {
        edit(t).replace(
            "url = \"sqlite://data/ast-gateway.db\"",
            "url = \"postgres://ast@db1:5432,db2:5432/ast?target_session_attrs=read-write\"",
        )
    })
    .unwrap();
    assert!(config.settings.database_require_synchronous);
    assert!(
        config
            .settings
            .database_url
            .starts_with("postgres://ast@db1:5432,db2:5432/")
    );
    assert!(
        !load_edited(|t| t)
            .unwrap()
            .settings
            .database_require_synchronous
    );
}

#[test]
fn the_officers_role_names_the_officers_ca() {
    // The default marks `officers`.
    let config = load_edited(|t| t).unwrap();
    assert_eq!(config.settings.officers_ca(), Some("officers"));
    // Without the mark, the CA named `officers` (roots written before the role existed).
    let config = load_edited(|t| t.replace("role = \"officers\"\n", "")).unwrap();
    assert_eq!(config.settings.officers_ca(), Some("officers"));
    // The mark wins over the name.
    let config = load_edited(|t| {
        t.replace("role = \"officers\"\n", "").replace(
            "parent = \"root\"\n\n[[ca]]\nname = \"officers\"",
            "parent = \"root\"\nrole = \"officers\"\n\n[[ca]]\nname = \"officers\"",
        )
    })
    .unwrap();
    assert_eq!(config.settings.officers_ca(), Some("issuing"));
    // Two marks, or another role, are reported at their line.
    let e = load_edited(|t| {
        t.replace(
            "parent = \"root\"\n\n[[ca]]\nname = \"officers\"",
            "parent = \"root\"\nrole = \"officers\"\n\n[[ca]]\nname = \"officers\"",
        )
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("only one CA may have role = \"officers\""),
        "{e}"
    );
    let e = load_edited(|t| t.replace("role = \"officers\"", "role = \"staff\""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("the only role is \"officers\""), "{e}");
}

#[test]
fn a_ca_subject_order_is_completed_and_used_by_its_procedures() {
    let config = load_edited(|t| {
        t.replace(
            "key = \"data/ca/issuing.key\"\n",
            "key = \"data/ca/issuing.key\"\nsubject_order = [\"commonname\", \"organizationname\", \"countryname\"]\n",
        )
    })
    .unwrap();
    let issuing = config
        .settings
        .cas
        .iter()
        .find(|c| c.name == "issuing")
        .unwrap();
    let mut reversed = crate::ca::Attribute::CONVENTIONAL_ORDER.to_vec();
    reversed.reverse();
    assert_eq!(issuing.subject_order, reversed);
    let template = &config.rules.procedures["default"].certificates[0];
    assert_eq!(template.subject_order, reversed);
    let e = load_edited(|t| {
        t.replace(
            "key = \"data/ca/issuing.key\"\n",
            "key = \"data/ca/issuing.key\"\nsubject_order = [\"dnsname\"]\n",
        )
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("ca.issuing.subject_order") && e.contains("not a subject DN attribute"),
        "{e}"
    );
}
