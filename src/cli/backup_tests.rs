use super::*;

#[test]
fn sqlite_paths() {
    assert_eq!(
        sqlite_path("sqlite:///srv/ast/data/ast-gateway.db?mode=rwc"),
        Some(PathBuf::from("/srv/ast/data/ast-gateway.db"))
    );
    assert_eq!(
        sqlite_path("sqlite://rel/x.db"),
        Some(PathBuf::from("rel/x.db"))
    );
    assert_eq!(sqlite_path("sqlite::memory:"), None);
    assert_eq!(sqlite_path("postgres://u@h/d"), None);
}

#[test]
fn files_outside_the_root_go_below_external() {
    let dir = tempfile::tempdir().unwrap();
    let backup = Backup {
        root: absolute(dir.path()),
        out: dir.path().join("out"),
        files: BTreeSet::new(),
        external: Vec::new(),
        database: String::new(),
        skip: BTreeSet::new(),
        links: Vec::new(),
    };
    assert_eq!(
        backup.place(&dir.path().join("data/ca/root.key")),
        PathBuf::from("data/ca/root.key")
    );
    assert_eq!(
        backup.place(Path::new("/etc/pki/issuing.key")),
        PathBuf::from("external/etc/pki/issuing.key")
    );
}
