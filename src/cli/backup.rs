//! `backup --out DIR`: everything needed to rebuild a root, in a new directory laid out like the
//! root itself, so that a restore is a copy back (`cp -a DIR/. NEWROOT/`).
//!
//! Contents: `conf/` and `data/` (every file: the secret key, the CA certificates and key
//! files, the TLS material), each configured CA, OCSP and TLS file that lives outside the root,
//! and for SQLite a consistent snapshot of the database taken with `VACUUM INTO` (safe while
//! the service runs) in place of the live database file and its journals.
//! Files outside the root go below `external/` with their absolute path, listed in the
//! manifest. PostgreSQL is not copied: the command prints the `pg_dump` to run. Keys held in a
//! PKCS#11 token are not files and are not copied (back the token up with its own tools).
//! Every file is written 0600 and every directory 0700: the backup holds the CA keys. The
//! backup directory must lie outside the root (it would copy itself), and symbolic links below
//! the root are followed only to regular files inside the root (listed otherwise).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::output::outln;
use crate::config::Root;

/// The manifest written at the top of a backup.
pub const MANIFEST: &str = "backup-manifest.txt";

/// `backup` options.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The backup directory: created (mode 0700); an existing one must be empty.
    #[arg(long)]
    pub out: PathBuf,
}

/// A backup being written.
struct Backup {
    /// The root, absolute.
    root: PathBuf,
    out: PathBuf,
    /// Paths written, relative to `out`.
    files: BTreeSet<PathBuf>,
    /// (original absolute path, path in the backup) of files outside the root.
    external: Vec<(PathBuf, PathBuf)>,
    /// What the manifest says about the database, and what to print.
    database: String,
    /// Files `copy_tree` leaves out (the live SQLite database and its journals: the snapshot
    /// replaces them).
    skip: BTreeSet<PathBuf>,
    /// Symbolic links below the root that were not followed (they lead out of the root, or to
    /// a directory), with why.
    links: Vec<(PathBuf, &'static str)>,
}

impl Backup {
    /// Where `source` goes in the backup: its path relative to the root, or `external/…`.
    fn place(&self, source: &Path) -> PathBuf {
        let source = absolute(source);
        match source.strip_prefix(&self.root) {
            Ok(relative) => relative.to_path_buf(),
            Err(_) => {
                let inner: PathBuf = source
                    .components()
                    .filter(|c| matches!(c, std::path::Component::Normal(_)))
                    .collect();
                Path::new("external").join(inner)
            }
        }
    }

    /// Copies one file (0600), once.
    fn copy(&mut self, source: &Path) -> anyhow::Result<()> {
        let relative = self.place(source);
        if self.files.contains(&relative) {
            return Ok(());
        }
        let bytes = zeroize::Zeroizing::new(
            std::fs::read(source).with_context(|| format!("reading {}", source.display()))?,
        );
        let dest = self.out.join(&relative);
        let mut file = create_private_file(&dest)?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", dest.display()))?;
        if relative.starts_with("external") {
            self.external.push((absolute(source), relative.clone()));
        }
        self.files.insert(relative);
        Ok(())
    }

    /// Copies every regular file below `dir`.
    fn copy_tree(&mut self, dir: &Path) -> anyhow::Result<()> {
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        let mut paths: Vec<PathBuf> = entries
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .with_context(|| format!("reading {}", dir.display()))?;
        paths.sort();
        for path in paths {
            let meta = std::fs::symlink_metadata(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            if meta.file_type().is_symlink() {
                self.copy_link(&path)?;
            } else if meta.is_dir() {
                self.copy_tree(&path)?;
            } else if meta.is_file() && !self.skip.contains(&absolute(&path)) {
                self.copy(&path)?;
            }
        }
        Ok(())
    }
}

impl Backup {
    /// A symbolic link below the root: copied (as the file it names) only when it names a
    /// regular file inside the root. A link out of the root (or a broken one) is not
    /// followed, nor is a link to a directory (its directory, if inside the root, is copied
    /// where it is), so the backup never reads outside the root unasked nor loops.
    fn copy_link(&mut self, link: &Path) -> anyhow::Result<()> {
        let Ok(target) = std::fs::canonicalize(link) else {
            self.links.push((link.to_path_buf(), "broken link"));
            return Ok(());
        };
        if !target.starts_with(&self.root) {
            self.links
                .push((link.to_path_buf(), "leads out of the root"));
            return Ok(());
        }
        if !target.is_file() {
            self.links.push((link.to_path_buf(), "link to a directory"));
            return Ok(());
        }
        if self.skip.contains(&target) {
            return Ok(());
        }
        self.copy(&target)
    }
}

/// Refuses a backup directory inside the root (`out`: created, canonical): it would be copied
/// into itself. The directory is removed again when this command created it.
fn refuse_inside_root(root: &Path, out: &Path, created: bool) -> anyhow::Result<()> {
    if out.starts_with(root) {
        if created {
            let _ = std::fs::remove_dir(out);
        }
        anyhow::bail!(
            "--out {} is inside the root {}: the backup would copy itself; write it outside the root",
            out.display(),
            root.display()
        );
    }
    Ok(())
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// Creates the directories above `path` (0700) and `path` itself (0600, must not exist).
fn create_private_file(path: &Path) -> anyhow::Result<std::fs::File> {
    if let Some(parent) = path.parent() {
        create_private_dir(parent)?;
    }
    crate::private_files::create(path).with_context(|| format!("creating {}", path.display()))
}

fn create_private_dir(path: &Path) -> anyhow::Result<()> {
    crate::private_files::create_dir_all(path)
        .with_context(|| format!("creating {}", path.display()))
}

/// The file of a `sqlite://PATH?…` URL (as resolved by the configuration: absolute or relative
/// to the working directory).
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.starts_with(':')).then(|| PathBuf::from(path))
}

pub(super) async fn run(root: &Root, args: BackupArgs) -> anyhow::Result<ExitCode> {
    let config = super::load_config(root)?;
    let out = args.out;
    let created = !out.exists();
    create_out(&out)?;
    let root_dir = absolute(root.dir());
    refuse_inside_root(&root_dir, &absolute(&out), created)?;
    let mut backup = Backup {
        root: root_dir,
        out: out.clone(),
        files: BTreeSet::new(),
        external: Vec::new(),
        database: String::new(),
        skip: BTreeSet::new(),
        links: Vec::new(),
    };
    let sqlite = sqlite_path(&config.settings.database_url);
    if let Some(db) = &sqlite {
        let db = absolute(db);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = db.clone().into_os_string();
            name.push(suffix);
            backup.skip.insert(PathBuf::from(name));
        }
    }
    let hsm = copy_files(&mut backup, root, &config)?;
    let pg_dump = back_up_database(&mut backup, sqlite, &config.settings.database_url).await?;
    write_manifest(&backup, &hsm)?;

    outln!(
        "backup of {} written to {}: {} file(s)",
        backup.root.display(),
        out.display(),
        backup.files.len()
    );
    outln!("database: {}", backup.database);
    for (original, copy) in &backup.external {
        outln!(
            "outside the root: {} -> {} (restore it to its path)",
            original.display(),
            copy.display()
        );
    }
    for name in &hsm {
        outln!("CA `{name}`: its key is in a PKCS#11 token, not in this backup");
    }
    for (link, why) in &backup.links {
        outln!("not followed: symbolic link {} ({why})", link.display());
    }
    if let Some(command) = pg_dump {
        outln!("run now: {command}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates the backup directory (0700); an existing one must be empty.
fn create_out(out: &Path) -> anyhow::Result<()> {
    if out.exists()
        && std::fs::read_dir(out)
            .with_context(|| format!("reading {}", out.display()))?
            .next()
            .is_some()
    {
        anyhow::bail!(
            "{} exists and is not empty; a backup goes into a new directory",
            out.display()
        );
    }
    create_private_dir(out)?;
    crate::private_files::set_private(out)
        .with_context(|| format!("setting the mode of {}", out.display()))
}

/// Copies conf/, data/, the secret key, and the CA, OCSP and TLS files; returns the names of
/// the CAs whose key is in a PKCS#11 token (not copied).
fn copy_files(
    backup: &mut Backup,
    root: &Root,
    config: &crate::rules::Configuration,
) -> anyhow::Result<Vec<String>> {
    backup.copy_tree(&root.conf())?;
    if root.data().is_dir() {
        backup.copy_tree(&root.data())?;
    }
    if root.secret_key().exists() {
        backup.copy(&root.secret_key())?;
    }
    let mut hsm = Vec::new();
    for ca in &config.settings.cas {
        backup.copy(&ca.certificate)?;
        match &ca.pkcs11 {
            Some(_) => hsm.push(ca.name.clone()),
            None => backup.copy(&ca.key)?,
        }
        if let Some((certificate, key)) = &ca.ocsp_delegate {
            backup.copy(certificate)?;
            backup.copy(key)?;
        }
    }
    let server = &config.settings.server;
    for path in [&server.tls_cert, &server.tls_key, &server.client_ca]
        .into_iter()
        .flatten()
    {
        if path.exists() {
            backup.copy(path)?;
        }
    }
    Ok(hsm)
}

/// SQLite: a `VACUUM INTO` snapshot in place of the database file. PostgreSQL: nothing is
/// copied; returns the `pg_dump` command to run.
async fn back_up_database(
    backup: &mut Backup,
    sqlite: Option<PathBuf>,
    url: &str,
) -> anyhow::Result<Option<String>> {
    let mut pg_dump = None;
    if let Some(path) = sqlite {
        let relative = backup.place(&path);
        let dest = backup.out.join(&relative);
        // VACUUM INTO wants a new or empty file; creating it first fixes its mode.
        drop(create_private_file(&dest)?);
        let store = super::store::open_store(url, super::store::Access::Read).await?;
        store
            .snapshot_sqlite(&dest)
            .await
            .with_context(|| format!("writing the database snapshot {}", dest.display()))?;
        store.close().await;
        let size = std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
        backup.database = format!(
            "SQLite snapshot {} ({size} bytes, VACUUM INTO)",
            relative.display()
        );
        if relative.starts_with("external") {
            backup.external.push((absolute(&path), relative.clone()));
        }
        backup.files.insert(relative);
    } else {
        let command = format!(
            "pg_dump --format=custom --file={} '{}'",
            absolute(&backup.out).join("ast-gateway.pgdump").display(),
            super::database_url::database_url_without_secrets(url)
        );
        backup.database = format!(
            "PostgreSQL, NOT included: dump it now with\n  {command}\n(password from PGPASSWORD or ~/.pgpass)"
        );
        pg_dump = Some(command);
    }
    Ok(pg_dump)
}

fn write_manifest(backup: &Backup, hsm: &[String]) -> anyhow::Result<()> {
    let now = crate::timestamp::Timestamp::now();
    let mut text = format!(
        "ast-gateway {} backup\ncreated: {now}\nroot: {}\ndatabase: {}\n\
         restore: copy everything back into an empty root (cp -a BACKUP/. ROOT/), see docs/operations.md\n\nfiles:\n",
        env!("CARGO_PKG_VERSION"),
        backup.root.display(),
        backup.database
    );
    for file in &backup.files {
        text += &format!("  {}\n", file.display());
    }
    if !backup.external.is_empty() {
        text += "\noutside the root (copy each back to the path on the left):\n";
        for (original, copy) in &backup.external {
            text += &format!("  {} <- {}\n", original.display(), copy.display());
        }
    }
    for name in hsm {
        text += &format!("\nCA `{name}`: key in a PKCS#11 token, not included\n");
    }
    if !backup.links.is_empty() {
        text += "\nsymbolic links not followed:\n";
        for (link, why) in &backup.links {
            text += &format!("  {} ({why})\n", link.display());
        }
    }
    let path = backup.out.join(MANIFEST);
    let mut file = create_private_file(&path)?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
#[path = "backup_tests.rs"]
mod tests;
