//! The import rules of ARCHITECTURE.md, checked on the source: a module may only use the
//! modules its row allows, and only `http` may use the HTTP stack (axum, hyper, tower).
//! Unit tests (`*_tests.rs`, `tests.rs`, and what follows `#[cfg(test)]`) are not checked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

/// Top-level modules and the crate modules each must not import.
const FORBIDDEN: &[(&str, &[&str])] = &[
    // File syntax and settings: no meaning, sockets, databases or keys.
    (
        "config",
        &["rules", "issuance", "identity", "store", "http", "cli"],
    ),
    // The meaning of the configuration: no HTTP, keys or database.
    ("rules", &["issuance", "identity", "store", "http", "cli"]),
    // The domain leaves: never the use cases, the front doors or the configuration files.
    ("identity", &["config", "issuance", "store", "http", "cli"]),
    (
        "policy",
        &[
            "config", "rules", "issuance", "identity", "store", "http", "cli",
        ],
    ),
    (
        "ca",
        &[
            "config", "rules", "issuance", "identity", "store", "http", "cli",
        ],
    ),
    (
        "token",
        &[
            "config", "rules", "issuance", "identity", "store", "http", "cli",
        ],
    ),
    (
        "store",
        &["config", "rules", "issuance", "identity", "http", "cli"],
    ),
    // The use cases know no front door.
    ("issuance", &["http", "cli"]),
    // The HTTP front door does not reach into the command line.
    ("http", &["cli"]),
    // Leaves every module may use: they import none of them.
    (
        "private_files",
        &[
            "config", "rules", "issuance", "identity", "policy", "ca", "token", "store", "http",
            "cli",
        ],
    ),
    (
        "timestamp",
        &[
            "config", "rules", "issuance", "identity", "policy", "ca", "token", "store", "http",
            "cli",
        ],
    ),
];

/// Crates of the HTTP stack: only `http` may use them.
const HTTP_STACK: &[&str] = &[
    "axum",
    "hyper",
    "hyper_util",
    "tower",
    "http_body",
    "http_body_util",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The production lines of a file (up to its first `#[cfg(test)]`), with line numbers.
fn production_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, line)| line.trim() != "#[cfg(test)]")
        .map(|(i, line)| (i + 1, line))
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
}

/// Whether `line` names `name` as a path root (`name::`, `use name`), not as a part of a word.
fn names(line: &str, name: &str) -> bool {
    line.match_indices(name).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = &line[at + name.len()..];
        let starts = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'));
        starts && (after.starts_with("::") || after.starts_with(';') || after.starts_with(" as"))
    })
}

/// The violations of the import rules under `src`.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap();
        let name = file.file_name().unwrap().to_str().unwrap();
        if name.ends_with("_tests.rs") || name == "tests.rs" {
            continue;
        }
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        let forbidden = FORBIDDEN
            .iter()
            .find(|(module, _)| *module == top)
            .map_or(&[][..], |(_, f)| *f);
        for (number, line) in production_lines(&text) {
            for module in forbidden {
                let grouped = line.split_once("crate::{").is_some_and(|(_, rest)| {
                    rest.split([',', '}'])
                        .any(|p| p.trim().split("::").next() == Some(module))
                });
                if grouped
                    || line.contains(&format!("crate::{module}::"))
                    || line.contains(&format!("crate::{module};"))
                    || line.contains(&format!("crate::{module}}}"))
                    || line.contains(&format!("crate::{module},"))
                {
                    found.push(format!(
                        "src/{}:{number}: `{top}` must not import `{module}`: {}",
                        relative.display(),
                        line.trim()
                    ));
                }
            }
            if top != "http" {
                for stack in HTTP_STACK {
                    if names(line, stack) {
                        found.push(format!(
                            "src/{}:{number}: only `http` may use `{stack}`: {}",
                            relative.display(),
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    found
}

#[test]
fn the_import_rules_of_architecture_md_hold() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "import rules broken (see ARCHITECTURE.md):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_import_check_catches_a_wrong_import() {
    // A copy of a small tree with one import against the rules, and one allowed.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("store")).unwrap();
    std::fs::create_dir_all(src.join("http")).unwrap();
    std::fs::write(
        src.join("store/mod.rs"),
        "use crate::ca::Serial;\nuse crate::{ca, http::error::Refusal};\nuse axum::Router;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("http/mod.rs"),
        "use axum::Router;\nuse crate::store;\n",
    )
    .unwrap();
    let found = violations(src);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0].contains("`store` must not import `http`")
            || found[1].contains("`store` must not import `http`"),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|f| f.contains("only `http` may use `axum`")),
        "{found:#?}"
    );
}

/// The migration numbers of one backend's directory.
fn migration_numbers(backend: &str) -> Vec<(u32, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut numbers: Vec<(u32, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().to_string())
        .filter(|name| name.ends_with(".sql"))
        .map(|name| {
            let number = name
                .split('_')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{backend}/{name}: no leading migration number"));
            (number, name)
        })
        .collect();
    numbers.sort();
    numbers
}

#[test]
fn migrations_have_unique_numbers_and_match_across_backends() {
    let sqlite = migration_numbers("sqlite");
    let postgres = migration_numbers("postgres");
    for (backend, list) in [("sqlite", &sqlite), ("postgres", &postgres)] {
        for pair in list.windows(2) {
            assert_ne!(
                pair[0].0, pair[1].0,
                "migrations/{backend}: {} and {} share a number (branches merged without renumbering)",
                pair[0].1, pair[1].1
            );
        }
    }
    assert_eq!(
        sqlite.iter().map(|(_, n)| n).collect::<Vec<_>>(),
        postgres.iter().map(|(_, n)| n).collect::<Vec<_>>(),
        "SQLite and PostgreSQL migrations differ"
    );
}
