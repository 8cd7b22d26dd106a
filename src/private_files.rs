//! Files and directories only their owner may use: files are created with mode 0600,
//! directories with 0700 (on Unix; elsewhere the platform's defaults apply). The one place the
//! gateway sets these modes: secret key, CA keys, audit anchors, the SQLite database, backups,
//! officer tokens and the data directory all go through here. Imports nothing of the crate, so
//! every module may use it.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// The mode of a private file.
pub const FILE_MODE: u32 = 0o600;
/// The mode of a private directory.
pub const DIRECTORY_MODE: u32 = 0o700;

/// Creates `path` for writing with mode 0600; an existing file is never overwritten
/// (`create_new`).
pub fn create(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    private(&mut options).open(path)
}

/// Opens `path` for appending, creating it with mode 0600 when it does not exist (an existing
/// file keeps its mode).
pub fn append(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    private(&mut options).open(path)
}

/// Creates `path` and the directories above it that do not exist, each with mode 0700 (the
/// existing ones keep their mode).
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIRECTORY_MODE);
    }
    builder.create(path)
}

/// Sets an existing file to 0600, or an existing directory to 0700.
pub fn set_private(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if std::fs::metadata(path)?.is_dir() {
            DIRECTORY_MODE
        } else {
            FILE_MODE
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        std::fs::metadata(path).map(|_| ())
    }
}

fn private(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    options
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn files_and_directories_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_dir_all(&nested).unwrap();
        assert_eq!((mode(&dir.path().join("a")), mode(&nested)), (0o700, 0o700));
        let file = nested.join("f");
        drop(create(&file).unwrap());
        assert_eq!(mode(&file), 0o600);
        // create never overwrites; append keeps adding to the same private file.
        assert!(create(&file).is_err());
        let log = nested.join("log");
        use std::io::Write;
        append(&log).unwrap().write_all(b"1\n").unwrap();
        append(&log).unwrap().write_all(b"2\n").unwrap();
        assert_eq!(std::fs::read(&log).unwrap(), b"1\n2\n");
        assert_eq!(mode(&log), 0o600);
        // set_private takes group and other access away from a file and a directory.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&nested, std::fs::Permissions::from_mode(0o755)).unwrap();
        set_private(&file).unwrap();
        set_private(&nested).unwrap();
        assert_eq!((mode(&file), mode(&nested)), (0o600, 0o700));
        assert!(set_private(&dir.path().join("missing")).is_err());
    }
}
