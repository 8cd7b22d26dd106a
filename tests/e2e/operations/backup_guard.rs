//! `backup --out`: a directory inside the root is refused (the backup would copy itself), and
//! symbolic links below the root are not followed out of it (nor into directories).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::operations::audit_upkeep::{init, output};

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn backup_refuses_an_out_inside_the_root_and_links_out_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = init(dir.path());
    // Inside the root, named directly or through a link to the root.
    let inside = root.join("backups/today");
    let out = output(&root, &["backup", "--out", inside.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("is inside the root"), "{}", text(&out));
    assert!(!inside.exists(), "the refused directory is left behind");
    let alias = dir.path().join("alias");
    std::os::unix::fs::symlink(&root, &alias).unwrap();
    let through = alias.join("b2");
    let out = output(&root, &["backup", "--out", through.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("is inside the root"), "{}", text(&out));

    // Links below the root: out of it, to a directory (a loop), and to a file inside it.
    let secret = dir.path().join("not-ours.txt");
    std::fs::write(&secret, "outside the root").unwrap();
    std::os::unix::fs::symlink(&secret, root.join("data/outside-link")).unwrap();
    std::os::unix::fs::symlink(&root, root.join("conf/loop")).unwrap();
    std::os::unix::fs::symlink(root.join("conf/gateway.toml"), root.join("data/toml-link"))
        .unwrap();
    let backup = dir.path().join("backup");
    let out = output(&root, &["backup", "--out", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("outside-link (leads out of the root)"),
        "{said}"
    );
    assert!(said.contains("loop (link to a directory)"), "{said}");
    assert!(!backup.join("data/outside-link").exists());
    assert!(!backup.join("conf/loop").exists());
    let copied = walk(&backup);
    assert!(
        copied
            .iter()
            .all(|p| std::fs::read(p).map_or(true, |b| b != b"outside the root")),
        "a file outside the root was copied"
    );
    assert!(backup.join("conf/gateway.toml").is_file());
    let manifest = std::fs::read_to_string(backup.join("backup-manifest.txt")).unwrap();
    assert!(
        manifest.contains("symbolic links not followed"),
        "{manifest}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
