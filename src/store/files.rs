//! File modes of a SQLite database: the file (and its `-wal`, `-shm` and `-journal`
//! companions, which SQLite creates with the main file's mode) is readable by its owner only,
//! and the directories the gateway keeps its data in are private.

use std::path::{Path, PathBuf};

use super::StoreError;

/// The file of a `sqlite://PATH?…` URL, when it names one (not `:memory:`), and whether the URL
/// lets SQLite create it (`mode=rwc`).
fn sqlite_file(url: &str) -> Option<(PathBuf, bool)> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path.contains(":memory:") {
        return None;
    }
    let creates = query.split('&').any(|p| p == "mode=rwc");
    Some((PathBuf::from(path), creates))
}

/// Creates the database file with mode 0600 before SQLite does (SQLite would create it with
/// the process umask, typically 0644), and takes group and other access away from an existing
/// one and its companions, saying so in the log. Warns when the file's directory is open to
/// others: that directory is the operator's choice, so it is not changed here.
pub(super) fn prepare_sqlite_file(url: &str) -> Result<(), StoreError> {
    let Some((path, creates)) = sqlite_file(url) else {
        return Ok(());
    };
    if !path.exists() && creates {
        crate::private_files::create(&path).map(drop).map_err(|e| {
            StoreError::File(format!(
                "{}: cannot create the database file: {e}",
                path.display()
            ))
        })?;
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        make_private(&file, crate::private_files::FILE_MODE)?;
    }
    if let Some(directory) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Some(mode) = mode_of(directory)
        && mode & 0o077 != 0
    {
        tracing::warn!(
            directory = %directory.display(),
            mode = format!("{mode:o}"),
            "the database's directory is open to group or others; keep it private (chmod 700)"
        );
    }
    Ok(())
}

/// Sets `directory` (which the gateway owns: its data directory) to mode 0700 when group or
/// others have any access, and says so. Refuses shared directories (sticky bit, such as /tmp)
/// rather than changing them.
pub fn make_private_directory(directory: &Path) -> Result<(), StoreError> {
    let Some(mode) = mode_of(directory) else {
        return Ok(());
    };
    if mode & 0o1000 != 0 {
        return Err(StoreError::File(format!(
            "{} is a shared directory (mode {:o}); keep the gateway's data in a directory of its own",
            directory.display(),
            mode & 0o7777
        )));
    }
    make_private(directory, crate::private_files::DIRECTORY_MODE)
}

#[cfg(unix)]
fn mode_of(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn mode_of(_path: &Path) -> Option<u32> {
    None
}

/// Sets an existing path private (`private`: 0600 for a file, 0700 for a directory, named in
/// the message) when group or others have access.
#[cfg(unix)]
fn make_private(path: &Path, private: u32) -> Result<(), StoreError> {
    let Some(mode) = mode_of(path) else {
        return Ok(());
    };
    if mode & 0o077 == 0 {
        return Ok(());
    }
    crate::private_files::set_private(path).map_err(|e| {
        StoreError::File(format!(
            "{} is open to group or others (mode {:o}) and cannot be made private: {e}; run `chmod {private:o} {}`",
            path.display(),
            mode & 0o777,
            path.display()
        ))
    })?;
    tracing::warn!(
        path = %path.display(),
        was = format!("{:o}", mode & 0o777),
        now = format!("{private:o}"),
        "made a data file or directory private"
    );
    Ok(())
}

#[cfg(not(unix))]
fn make_private(_path: &Path, _private: u32) -> Result<(), StoreError> {
    Ok(())
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn urls() {
        assert_eq!(
            sqlite_file("sqlite:///a/b.db?mode=rwc"),
            Some((PathBuf::from("/a/b.db"), true))
        );
        assert_eq!(
            sqlite_file("sqlite:///a/b.db?mode=rw"),
            Some((PathBuf::from("/a/b.db"), false))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://x/y"), None);
    }

    #[test]
    fn database_file_and_directory_become_private() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
        let db = data.join("x.db");
        prepare_sqlite_file(&format!("sqlite://{}?mode=rwc", db.display())).unwrap();
        assert_eq!(mode(&db), 0o600);
        // An existing file at 0644 (and its WAL) are made private.
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let wal = data.join("x.db-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        prepare_sqlite_file(&format!("sqlite://{}?mode=rwc", db.display())).unwrap();
        assert_eq!((mode(&db), mode(&wal)), (0o600, 0o600));
        make_private_directory(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        // Shared directories are refused, not changed.
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(make_private_directory(&shared).is_err());
        assert_eq!(mode(&shared), 0o777);
    }
}
